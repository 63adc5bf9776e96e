"""Workloads: trace loaders (Gavel, Philly, Alibaba openb, generic CSV) and generators."""

from suanli.workloads.types import ThroughputTable, TraceJob, Workload

__all__ = ["ThroughputTable", "TraceJob", "Workload"]
