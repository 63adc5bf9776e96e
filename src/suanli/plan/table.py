"""The planner's typed tables: the pools a job may use, their data transfers, and its options.

The planner scores every placement at once with NumPy, so its data are columns, one entry per
pool or per option. Each table here is a frozen dataclass with a comment on every column (its
dtype and unit), so a stage says which columns it reads and writes by name, and a missing or
misspelt one fails where it is written rather than deep inside a later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np


@dataclass(frozen=True)
class EligiblePools:
    """The pools a job may use after the hard filters (chip, region, failover), with what the
    later stages read per pool. Arrays have one entry per eligible pool, in network order."""

    index: np.ndarray  # int64: the pool's index in the prepared network (PreparedNetwork)
    capacity: np.ndarray  # int64: chips in the pool
    chips_per_node: np.ndarray  # int64: chips per node
    accelerators: list[str]  # the distinct accelerator ids, first-seen order: the grid's rows
    acc_code: np.ndarray  # int64: the pool's row in `accelerators` (and in the perf grid)
    price_per_chip_hour: np.ndarray  # float: the price paid, spot where asked for and offered
    spot: np.ndarray  # bool: `price_per_chip_hour` is the spot price
    rank: np.ndarray  # int64: preference rank of the pool's chip, 0 best (0 for all if none)

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class Transfers:
    """The dataset's move to each eligible pool's center, by the fastest and by the cheapest
    route (zero where there is no dataset or it is already there; inf time where no route)."""

    fast_s: np.ndarray  # float: seconds on the fastest route
    fast_cost: np.ndarray  # float: egress on the fastest route (network currency)
    cheap_s: np.ndarray  # float: seconds on the cheapest route
    cheap_cost: np.ndarray  # float: egress on the cheapest route (network currency)


@dataclass(frozen=True)
class PerfGrid:
    """The performance model over the eligible chips x chip counts: rows follow
    `EligiblePools.accelerators`, columns `counts`."""

    single_counts: np.ndarray  # int64: the counts tried on one pool (ascending, may be empty)
    counts: np.ndarray  # int64: the grid's columns: `single_counts` plus split equivalents
    run_s: np.ndarray  # float [acc, count]: run time
    fits: np.ndarray  # bool [acc, count]: runnable: fits, keeps up with a rate, not idle chips
    fits_in_memory: np.ndarray  # bool [acc, count]: fits, before the rate and idle tests
    power_w: np.ndarray  # float [acc, count]: draw of all the chips while running
    mfu: np.ndarray  # float [acc, count]: model FLOPs utilisation
    bound: np.ndarray  # int [acc, count]: index into `bounds` (what limits the speed)
    bounds: tuple[str, ...]  # names of the bound codes (perf.BOUNDS)
    chips: tuple  # the catalog's accelerator objects, one per row
    window_s: float | None  # a serving job's window (rate given); None for a fixed batch
    splits: bool  # mixed-chip splits over two pools are tried


class _Columns:
    """Row selection and concatenation for a frozen table of equal-length columns."""

    def __len__(self) -> int:
        return len(self.pool)

    def take(self, rows: np.ndarray) -> Self:
        """The table restricted to `rows` (indices or a boolean mask), in that order."""
        return type(self)(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def concat(self, other: Self) -> Self:
        """This table's rows, then `other`'s."""
        return type(self)(**{f.name: np.concatenate([getattr(self, f.name),
                                                     getattr(other, f.name)])
                             for f in fields(self)})


@dataclass(frozen=True)
class OptionRows(_Columns):
    """Placement options before the data route is chosen: one row per (pool, count) or
    mixed-chip split. Pool columns index `EligiblePools`."""

    pool: np.ndarray  # int64: the (first) pool
    pool_b: np.ndarray  # int64: a split's second pool; -1 on a single pool
    count: np.ndarray  # int64: chips in all
    count_a: np.ndarray  # int64: chips of `pool` (= count on a single pool)
    count_b: np.ndarray  # int64: chips of `pool_b` (0 on a single pool)
    layers_a: np.ndarray  # int64: a split's layers on `pool` (0 on a single pool)
    layers_b: np.ndarray  # int64: a split's layers on `pool_b` (0 on a single pool)
    run_s: np.ndarray  # float: run time
    wait_s: np.ndarray  # float: until the chips are free (the later of both pools')
    power_w: np.ndarray  # float: draw of all the chips while running
    mfu: np.ndarray  # float: model FLOPs utilisation (NaN on a split)
    bound: np.ndarray  # int64: code into PerfGrid.bounds (-1 on a split)
    price_per_chip_hour: np.ndarray  # float: paid per chip-hour (a split's chip-weighted mean)
    spot: np.ndarray  # bool: priced at spot (either pool of a split)
    compute_cost: np.ndarray  # float: chip-hours x price (network currency), before egress
    rank: np.ndarray  # int64: preference rank (a split's worse pool), 0 best


@dataclass(frozen=True)
class OptionTable(OptionRows):
    """Placement options with the data route chosen by the objective: what is ranked,
    explained and turned into PlacementOption objects."""

    transfer_s: np.ndarray  # float: the dataset's move on the chosen route
    egress_cost: np.ndarray  # float: its egress on the chosen route
    finish_s: np.ndarray  # float: max(wait, transfer) + run, whole milliseconds
    cost: np.ndarray  # float: compute cost + egress, whole cents
    cheap_route: np.ndarray  # bool: the cheapest route was chosen (else the fastest)

    @classmethod
    def routed(cls, rows: OptionRows, **route_columns: np.ndarray) -> OptionTable:
        """`rows` with the route columns added (transfer_s, egress_cost, finish_s, cost,
        cheap_route)."""
        return cls(**{f.name: getattr(rows, f.name) for f in fields(rows)}, **route_columns)
