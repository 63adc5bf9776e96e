"""Real backends: they run jobs the engine places (`local` processes, a `ray` cluster).

Backends implement the engine's Backend protocol (start, stop, poll, next_event_s) and depend
on the engine's job and placement only by attribute name (`types.run_spec_from`); the core
never imports this package. Ray is imported only when the ray backend is built.
"""

from __future__ import annotations

from typing import Any

from suanli.backends.local import LocalBackend
from suanli.backends.types import (
    AdoptingBackend,
    BackendCapabilities,
    BackendEvent,
    ProcessHandle,
    RunSpec,
    ServiceBackend,
    run_spec_from,
)
from suanli.errors import UnknownNameError

BACKENDS = ("local", "ray")

__all__ = ["BACKENDS", "AdoptingBackend", "BackendCapabilities", "BackendEvent", "LocalBackend",
           "ProcessHandle", "RunSpec", "ServiceBackend", "make_backend", "run_spec_from"]


def make_backend(name: str, **kwargs: Any) -> ServiceBackend:
    """Build a backend by name: `local` (root_dir=...) or `ray` (address=..., root_dir=...)."""
    if name == "local":
        return LocalBackend(**kwargs)
    if name == "ray":
        from suanli.backends.ray_backend import RayBackend

        return RayBackend(**kwargs)
    raise UnknownNameError("backend", name, list(BACKENDS), field="backend")
