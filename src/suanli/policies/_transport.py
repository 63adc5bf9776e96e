"""`_lp.max_linear`'s LP over two pool groups, solved exactly without HiGHS.

Why. suanli_jct solves one `max_linear` LP per reallocation; on the loaded Philly replay that is
~3,500 LPs of ~200 job classes x 2 pool groups, and HiGHS spent ~1 ms on each (~6 s of ~20 s),
mostly in fixed per-solve costs. In chip units y[k, g] = chips_k n_k s[k, g] the LP is a
transportation problem with two sinks:

    maximise  sum_kg profit[k, g] y[k, g]          (profit = weight / chips: value per chip)
    s.t.      sum_g y[k, g] <= supply_k            (supply = chips_k n_k: the class's chips)
              sum_k y[k, g] <= cap_g,  y >= 0.

Its dual is: minimise cap_a v_a + cap_b v_b + sum_k supply_k u_k over prices v >= 0, with
u_k = max(0, profit_ka - v_a, profit_kb - v_b). At optimal prices a class sends chips only to
the sinks of largest reduced profit, so with d = v_a - v_b every class with gain_k = profit_ka
- profit_kb above d uses only A, below d only B. Sorted by gain, the classes that may use A
are a prefix, and for a given prefix each side is a fractional knapsack (fill by profit) with
its own price interval. The prefix's prices rise with its length while the gains at its end
fall, so a binary search over the prefix length finds where they cross: either a prefix whose
prices are consistent with its end gains, or one class between two prefixes whose gain is d
and that is split between the sinks (`optimal_prices`). The allocation is then read off the
prices (`allocation_at`), and returned only with a certificate: it is feasible and its
objective equals the dual objective of the prices (to 1e-10 relative), which proves it
optimal. Anything the reading cannot settle (unusual ties) returns None and the caller uses
HiGHS, so the answer is always an optimum of the same LP, possibly another vertex on ties.
It can also differ from HiGHS's where HiGHS stops short: on the replay 486 of 3,490 answers
differ, each with an objective 2e-10 to 7e-7 (relative) above HiGHS's, whose 1e-7 optimality
tolerance meets suanli_jct's 1e-7 dynamic range of values.

Cost: three argsorts (four when a class is split), ~log2(classes) rounds of two cumulative
sums, and a few passes: ~0.2 ms on the replay's LPs (~250 classes), where HiGHS took ~1 ms
plus ~0.6 ms to build its model.
"""

from __future__ import annotations

import numpy as np

GAP_RELATIVE = 1e-10  # certificate: primal objective within this of the dual's
TIE_RELATIVE = 1e-12  # reduced profits this close (relative to the largest profit) are ties


class _SinkOrder:
    """One sink's classes sorted by profit (largest first), to price the fractional knapsack
    over a set of classes chosen by their position in the gain order."""

    def __init__(self, profit: np.ndarray, supply: np.ndarray, gain_rank: np.ndarray,
                 cap: float) -> None:
        order = np.argsort(-profit, kind="stable")
        ranked = profit[order]
        self.supply = np.where(np.isfinite(ranked), supply[order], 0.0)
        self.profit = np.append(ranked, 0.0)  # [n]: the price when the members cannot fill it
        self.gain_rank = gain_rank[order]
        self.cap = cap

    def filled(self, members: np.ndarray) -> np.ndarray:
        """Cumulative supply of `members` (bool, in this order), best profit first."""
        return np.cumsum(self.supply * members)

    def high_price(self, filled: np.ndarray) -> float:
        """Highest optimal price of the knapsack: the profit of the unit that fills the sink
        (0 while the members cannot fill it)."""
        return float(self.profit[filled.searchsorted(self.cap, side="left")])

    def low_price(self, filled: np.ndarray) -> float:
        """Lowest optimal price: as `high_price`, but of the first unit left out when the
        members fill the sink exactly."""
        return float(self.profit[filled.searchsorted(self.cap, side="right")])


class _Prefixes:
    """The knapsack prices of both sinks when the first m classes in gain order may use A and
    the rest B."""

    def __init__(self, profit_a: np.ndarray, profit_b: np.ndarray, supply: np.ndarray,
                 cap_a: float, cap_b: float) -> None:
        gain = profit_a - profit_b  # +inf where only A is usable, -inf where only B
        by_gain = np.argsort(-gain, kind="stable")
        self.gain = np.append(gain[by_gain], -np.inf)  # [m]: the first class after m
        rank = np.empty(gain.size, dtype=np.int64)
        rank[by_gain] = np.arange(gain.size)
        self.sink_a = _SinkOrder(profit_a, supply, rank, cap_a)
        self.sink_b = _SinkOrder(profit_b, supply, rank, cap_b)

    def filled(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        return (self.sink_a.filled(self.sink_a.gain_rank < m),
                self.sink_b.filled(self.sink_b.gain_rank >= m))

    def a_too_cheap(self, m: int) -> bool:
        """At the prefix's prices the next class would rather use A: the prefix is too short.
        False from some m on (A's prices rise with m, B's fall, and the gains fall)."""
        filled_a, filled_b = self.filled(m)
        return self.sink_a.high_price(filled_a) - self.sink_b.low_price(filled_b) < self.gain[m]

    def shortest_long_enough(self) -> int:
        """The least m that is not too short, by bisection."""
        low, high = 0, self.gain.size - 1  # m = n (all classes on A's side) is long enough
        while low < high:
            mid = (low + high) // 2
            if self.a_too_cheap(mid):
                low = mid + 1
            else:
                high = mid
        return low


def optimal_prices(
    profit_a: np.ndarray, profit_b: np.ndarray, supply: np.ndarray, cap_a: float, cap_b: float
) -> tuple[float, float] | None:
    """(v_a, v_b): optimal dual prices of the two sinks (module docstring), or None."""
    prefixes = _Prefixes(profit_a, profit_b, supply, cap_a, cap_b)
    m = prefixes.shortest_long_enough()
    filled_a, filled_b = prefixes.filled(m)
    low_a = prefixes.sink_a.low_price(filled_a)
    low_b, high_b = prefixes.sink_b.low_price(filled_b), prefixes.sink_b.high_price(filled_b)
    gain_before = float(prefixes.gain[m - 1]) if m > 0 else np.inf
    if low_a - high_b <= gain_before:  # consistent: this prefix's knapsacks are optimal
        diff = max(low_a - high_b, float(prefixes.gain[m]))
        price_a = max(low_a, low_b + diff)
        return price_a, price_a - diff
    if not np.isfinite(gain_before):
        return None
    return split_prices(profit_a, profit_b, supply, cap_a + cap_b, gain_before)


def split_prices(
    profit_a: np.ndarray, profit_b: np.ndarray, supply: np.ndarray, cap: float, diff: float
) -> tuple[float, float]:
    """(v_a, v_b) with v_a - v_b = diff fixed (a class with that gain is split between the
    sinks): the dual is then one price v_b >= max(0, -diff) against the total capacity, each
    class valued at its better sink in B's terms, max(profit_a - diff, profit_b)."""
    value = np.maximum(profit_a - diff, profit_b)
    floor = max(0.0, -diff)
    order = np.argsort(-value, kind="stable")
    ranked = value[order]
    filled = np.cumsum(np.where(ranked > floor, supply[order], 0.0))
    upper = int(np.searchsorted(filled, cap, side="left"))
    price_b = max(float(ranked[upper]), floor) if upper < filled.size else floor
    return price_b + diff, price_b


def allocation_at(
    profit_a: np.ndarray, profit_b: np.ndarray, supply: np.ndarray, cap_a: float, cap_b: float,
    price_a: float, price_b: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(y_a, y_b) that complementary slackness allows at these prices: a class with positive
    reduced profit sends all its supply to its best sink, one at zero may send any part, and a
    sink with a positive price is filled. The classes with a choice (tied between the sinks,
    or at zero: usually just the two marginal ones) are settled by `_settle_loose`."""
    tol = TIE_RELATIVE * max(float(profit_a.max()), float(profit_b.max()))
    reduced_a, reduced_b = profit_a - price_a, profit_b - price_b
    best = np.maximum(np.maximum(reduced_a, reduced_b), 0.0)
    to_a, to_b = reduced_a >= best - tol, reduced_b >= best - tol
    must = best > tol
    y_a = np.where(must & ~to_b, supply, 0.0)  # must: at least one sink is best
    y_b = np.where(must & ~to_a, supply, 0.0)
    loose = np.flatnonzero((to_a & to_b) | (~must & (to_a | to_b)))
    if loose.size:
        y_a[loose], y_b[loose] = _settle_loose(
            supply[loose].tolist(), list(zip(must[loose].tolist(), to_a[loose].tolist(),
                                              to_b[loose].tolist(), strict=True)),
            cap_a - float(y_a.sum()), cap_b - float(y_b.sum()), price_a > tol, price_b > tol)
    return y_a, y_b


def _settle_loose(
    supply: list[float], kinds: list[tuple[bool, bool, bool]], room_a: float, room_b: float,
    fill_a: bool, fill_b: bool,
) -> tuple[list[float], list[float]]:
    """(y_a, y_b) of the classes with a choice, given each one's (must run, may use A, may use
    B) and the room the others leave. Plain Python: there are usually one or two of them, and
    numpy's per-call cost on such arrays was most of the solve.

    Those that must run but are tied between the sinks go to A as far as A needs them beyond
    its own optional classes (`_tied_share_a`), so that each sink draws least on the optional
    classes the two share; then optional classes fill each priced sink, its own first."""
    tied = [i for i, (must, _, _) in enumerate(kinds) if must]
    own_a = [i for i, (must, _, to_b) in enumerate(kinds) if not must and not to_b]
    own_b = [i for i, (must, to_a, _) in enumerate(kinds) if not must and not to_a]
    shared = [i for i, (must, to_a, to_b) in enumerate(kinds) if not must and to_a and to_b]
    left = list(supply)
    y_a, y_b = [0.0] * len(left), [0.0] * len(left)
    share_a = _tied_share_a(sum(left[i] for i in tied), room_a, room_b,
                            sum(left[i] for i in own_a), fill_a)
    _pour(tied, left, y_a, share_a)
    _pour(tied, left, y_b, np.inf)
    if fill_a:
        _pour(own_a + shared, left, y_a, room_a - sum(y_a))
    if fill_b:
        _pour(own_b + shared, left, y_b, room_b - sum(y_b))
    return y_a, y_b


def _pour(order: list[int], left: list[float], into: list[float], need: float) -> None:
    """Move up to `need` from `left` into `into`, entries in `order`."""
    for i in order:
        take = min(left[i], max(need, 0.0))
        into[i] += take
        left[i] -= take
        need -= take


def _tied_share_a(tied: float, room_a: float, room_b: float, own_a: float,
                  fill_a: bool) -> float:
    """How much of the classes that must run and are tied between the sinks goes to A: within
    what both sinks can hold, what A still needs beyond its own optional classes (none when A
    need not be filled)."""
    lowest, highest = max(0.0, tied - room_b), min(tied, room_a)
    wanted = room_a - own_a if fill_a else -np.inf
    return min(max(wanted, lowest), max(lowest, highest))


def certified(
    profit_a: np.ndarray, profit_b: np.ndarray, supply: np.ndarray, cap_a: float, cap_b: float,
    price_a: float, price_b: float, y_a: np.ndarray, y_b: np.ndarray,
) -> bool:
    """True when (y_a, y_b) is feasible and its objective meets the dual bound of the prices:
    then it is optimal, however it was found. (Chips sent where the profit is -inf make the
    objective -inf, so they fail the bound.)"""
    slack = 1e-12
    if min(price_a, price_b) < 0 or min(float(y_a.min()), float(y_b.min())) < 0:
        return False
    if ((y_a + y_b) > supply * (1 + slack)).any():
        return False
    if y_a.sum() > cap_a * (1 + slack) or y_b.sum() > cap_b * (1 + slack):
        return False
    primal = float(np.where(y_a > 0, profit_a, 0.0) @ y_a + np.where(y_b > 0, profit_b, 0.0) @ y_b)
    reduced = np.maximum(np.maximum(profit_a - price_a, profit_b - price_b), 0.0)
    dual = cap_a * price_a + cap_b * price_b + float(supply @ reduced)
    return dual - primal <= GAP_RELATIVE * max(abs(dual), np.finfo(float).tiny)


def solve_two_sinks(
    profit_a: np.ndarray, profit_b: np.ndarray, supply: np.ndarray, cap_a: float, cap_b: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Optimal (y_a, y_b) in chip units (module docstring), or None when not certified.

    `profit_*`: value per chip of each class on each sink, -inf where it cannot go (at least
    one finite per class); `supply` > 0 chips per class; caps > 0.
    """
    prices = optimal_prices(profit_a, profit_b, supply, cap_a, cap_b)
    if prices is None:
        return None
    y_a, y_b = allocation_at(profit_a, profit_b, supply, cap_a, cap_b, *prices)
    if not certified(profit_a, profit_b, supply, cap_a, cap_b, *prices, y_a, y_b):
        return None
    return y_a, y_b
