"""The live network: an HTTP API over the store, driving the same engine as the simulator.

`create_app(settings)` builds the FastAPI app; `runner.Runner` owns the engine and backend
loop; `server.serve_in_thread` runs it on loopback for tests and the demo.
"""

from suanli.service.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings):  # type: ignore[no-untyped-def]
    from suanli.service.app import create_app as _create

    return _create(settings)
