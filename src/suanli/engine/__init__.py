"""The event-driven engine shared by the simulator and the live service.

Only the clock and the backend differ between the two: `SimClock` + `SimBackend` replay a
trace in virtual time; the service uses `WallClock` and a process backend.
"""

from suanli.engine.adapters import (
    engine_job_from_spec,
    engine_job_from_trace,
    engine_jobs_from_workload,
)
from suanli.engine.backend import Backend, SimBackend, run_end_s
from suanli.engine.clock import Clock, SimClock, WallClock
from suanli.engine.cluster import Cluster, PoolInfo
from suanli.engine.engine import Engine
from suanli.engine.placement import BrokerPlacer, Choice, LiveView, Placer
from suanli.engine.types import (
    TERMINAL_STATES,
    BackendEvent,
    DataNeed,
    EngineJob,
    JobRecord,
    JobState,
    Placement,
    Transition,
)

__all__ = [
    "TERMINAL_STATES",
    "Backend",
    "BackendEvent",
    "BrokerPlacer",
    "Choice",
    "Clock",
    "Cluster",
    "DataNeed",
    "Engine",
    "EngineJob",
    "JobRecord",
    "JobState",
    "LiveView",
    "Placement",
    "Placer",
    "PoolInfo",
    "SimBackend",
    "SimClock",
    "Transition",
    "WallClock",
    "engine_job_from_spec",
    "engine_job_from_trace",
    "engine_jobs_from_workload",
    "run_end_s",
]
