"""Workloads: trace loaders (Gavel, Philly, Alibaba openb, generic CSV) and generators."""

from suanli.workloads._parse import TraceError
from suanli.workloads.elastic import make_elastic
from suanli.workloads.gavel import (
    gavel_reference_duration_s,
    load_gavel_throughputs,
    load_gavel_trace,
)
from suanli.workloads.generate import generate_llm_mix, generate_poisson
from suanli.workloads.load import (
    detect_format,
    load_workload,
    parse_job_range,
    select_jobs,
)
from suanli.workloads.openb import load_openb, load_openb_nodes, parse_gpu_spec
from suanli.workloads.philly import load_philly
from suanli.workloads.table import load_table
from suanli.workloads.types import ThroughputTable, TraceJob, Workload

__all__ = [
    "ThroughputTable",
    "TraceError",
    "TraceJob",
    "Workload",
    "detect_format",
    "gavel_reference_duration_s",
    "generate_llm_mix",
    "generate_poisson",
    "load_gavel_throughputs",
    "load_gavel_trace",
    "load_openb",
    "load_openb_nodes",
    "load_philly",
    "load_table",
    "load_workload",
    "make_elastic",
    "parse_gpu_spec",
    "parse_job_range",
    "select_jobs",
]
