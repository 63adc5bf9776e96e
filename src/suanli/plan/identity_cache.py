"""A small LRU cache keyed by object identity, for per-network tables built once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityCache(Generic[K, V]):
    """Networks are frozen but not hashable cheaply; identity is the right key.

    Each entry keeps its key object alive, so a recycled id() can never return a stale value.
    """

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[K, V]] = OrderedDict()

    def get_or_build(self, key: K, build: Callable[[K], V]) -> V:
        hit = self._entries.get(id(key))
        if hit is not None and hit[0] is key:
            self._entries.move_to_end(id(key))
            return hit[1]
        value = build(key)
        self._entries[id(key)] = (key, value)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value
