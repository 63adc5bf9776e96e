"""Running the service: in the foreground (`suanli up`) or in a thread on a free loopback port
(tests, benchmarks, `suanli demo`)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from suanli.service.settings import Settings


def _loopback_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class RunningServer:
    """A uvicorn server in a daemon thread; `stop()` shuts it down (lifespan included)."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str
    app: Any

    @property
    def state(self) -> Any:
        return self.app.state.svc

    def stop(self, timeout_s: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout_s)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(settings: Settings, app: Any = None, *, port: int = 0,
                    log_level: str = "warning", timeout_s: float = 30.0) -> RunningServer:
    """Start the service on 127.0.0.1 (a free port unless given) and wait until it listens."""
    from suanli.service.app import create_app

    app = app or create_app(settings)
    sock = _loopback_socket(settings.host, port)
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False,
                            backlog=2048)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="suanli-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the service failed to start (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the service did not start in time")
        time.sleep(0.02)
    host, real_port = sock.getsockname()[:2]
    return RunningServer(server, thread, f"http://{host}:{real_port}", app)


def serve_forever(settings: Settings, log_level: str = "info") -> None:
    """`suanli up`: the service in the foreground until Ctrl-C."""
    from suanli.service.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level,
                access_log=False, backlog=2048)
