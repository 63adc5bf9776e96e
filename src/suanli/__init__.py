"""suanli (算力): a computing-power network for AI jobs across heterogeneous compute centers."""

__version__ = "0.1.0"
