"""Trace replay on the engine: results, metrics and plots."""

from suanli.sim.metrics import JobResult, SimResult

__all__ = ["JobResult", "SimResult"]
