"""Keep native libraries off stdout: `--json` promises one JSON document there.

HiGHS (highspy >= 1.16) prints its banner from C++ when the first solver object is created,
before any option can turn output off, so Python's `sys.stdout` cannot catch it: the file
descriptor itself is pointed at /dev/null for that one call.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_created: set[str] = set()


@contextmanager
def native_stdout_silenced() -> Iterator[None]:
    """Send whatever native code writes to file descriptor 1 to /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def create_quietly(kind: str, factory: Callable[[], T]) -> T:
    """`factory()`, silenced the first time a `kind` is created in this process (the banner
    prints once); later calls run as is, so a busy service never loses its own output."""
    if kind in _created:
        return factory()
    with _lock:
        if kind in _created:
            return factory()
        with native_stdout_silenced():
            obj = factory()
        _created.add(kind)
        return obj
