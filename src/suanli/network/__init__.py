"""The compute network: centers with pools of chips, WAN links between regions, datasets."""

from suanli.network.load import builtin_network_names, load_network
from suanli.network.schema import Center, Dataset, Link, Network, Pool

__all__ = ["Center", "Dataset", "Link", "Network", "Pool", "builtin_network_names", "load_network"]
