"""The contract between the layout search (search.py) and a performance kernel.

Every kernel (training, inference, generic work) evaluates a job elementwise over broadcastable
NumPy arrays of chips, layouts and data-parallel degrees. Kernels that also provide the fast,
buffer-reusing path of the search declare it with `fast_path = True` and implement
`FastKernel`; the search chooses the path once, from that declaration, never by probing.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from suanli.perf.efficiency import Efficiency

Arrays = dict[str, Any]


class Kernel(Protocol):
    """What every kernel gives the search and `solve`."""

    eff: Efficiency
    kind_label: ClassVar[str]
    fast_path: ClassVar[bool]

    @property
    def max_dp(self) -> int:
        """The largest useful data-parallel degree (the global batch, the requests)."""
        ...

    def layouts(self) -> list[tuple[int, int]]:
        """The (tensor, pipeline) degrees to try."""
        ...

    def variants(self) -> list[int]:
        """Bit-coded memory/time trade-offs; the first is never slower where it fits."""
        ...

    def valid(self, c: Any, tp: np.ndarray) -> np.ndarray: ...

    def fits(self, c: Any, tp: Any, pp: Any, var: Any, dp: Any) -> np.ndarray: ...

    def evaluate(self, c: Any, tp: Any, pp: Any, var: Any, dp: Any, lean: bool = False,
                 duration_only: bool = False) -> Arrays:
        """Every quantity of the time model (duration_s, fits, time terms, memory)."""
        ...

    def tokens_per_s(self, duration: Any) -> Any: ...

    def model_flops(self) -> float: ...


class FastKernel(Kernel, Protocol):
    """The fast path of the search: count-independent rows computed once per layout, a
    duration with reused buffers bit-identical to `evaluate`, and a lower bound to prune."""

    def duration_rows(self, c: Any, tp: Any, pp: Any, var: int) -> Arrays: ...

    def duration(self, c: Any, tp: Any, pp: Any, var: int, dp: Any, nodes: Any = None,
                 out: np.ndarray | None = None, fit: bool = False, parts: dict | None = None,
                 rows: dict | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def memory_total(self, c: Any, tp: Any, pp: Any, var: Any, dp: Any) -> np.ndarray: ...

    def lower_bound_rows(self, c: Any, tp: Any, pp: Any, var: Any) -> tuple[Any, Any]: ...

    def lower_bound_at(self, comp_row: Any, t_bubble: Any, dp: Any) -> Any: ...

    def lower_bound_is_safe(self) -> bool: ...

    def lean_terms(self, c: Any, tp: Any, pp: Any, var: Any, dp: Any) -> Arrays: ...


def power_and_bound(eff: Efficiency, tdp_w: np.ndarray, busy: np.ndarray,
                    mem_busy: np.ndarray, terms: Arrays, decode_power: float):
    """(watts per busy chip, binding bound code) from a layout's time terms: the one place
    the power model and the bound ranking are written."""
    activity = np.minimum(np.maximum(busy + decode_power * mem_busy, 0.0), 1.0)
    chip_power = tdp_w * (eff.power_idle + (eff.power_busy - eff.power_idle) * activity)
    shape = np.shape(chip_power)
    bound = np.zeros(shape, dtype=np.int64)
    top = np.broadcast_to(terms["t_compute"] + terms["t_bubble"], shape)
    for code, key in ((1, "t_memory"), (2, "t_link"), (3, "t_network")):
        term = np.broadcast_to(np.asarray(terms[key]), shape)
        bigger = term > top
        bound = np.where(bigger, code, bound)
        top = np.where(bigger, term, top)
    return chip_power, bound


def running_min(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running minimum along counts, and where it strictly improves (the counts a job runs
    on: a count between two improvements uses the earlier one and leaves the rest idle)."""
    best = np.minimum.accumulate(exact, axis=1)
    improve = np.empty(exact.shape, dtype=bool)
    np.less(exact[:, :1], np.inf, out=improve[:, :1])
    np.less(exact[:, 1:], best[:, :-1], out=improve[:, 1:])
    return best, improve
