"""The broker: every feasible placement of one job over a whole network, data included.

For each allowed pool and chip count: the dataset's transfer to the pool's center (fastest and
cheapest route), the wait for chips, the run time from the performance model, then
finish = max(wait, transfer) + run and cost = chip-hours x price + egress. One
`estimate_grid` call covers every accelerator type and count; the rest is NumPy over
pools x counts. Mixed-chip splits over two pools of one center are added for training jobs.

`plan()` runs these stages in order, each over the typed tables of `suanli.plan.table`:

1. `_eligible_pools`: the hard filters (allowed chips, regions, blocked centers or pools).
2. `_transfers`: the dataset's move to each eligible pool, by the fastest and cheapest route.
3. `_chip_counts`, `_performance_grid`: the counts to try and the model's answer for each.
4. `_single_pool_options`: every (pool, count) that fits, can get the data and comes free.
5. `_split_options`: mixed-chip splits over two pools of one center (training only).
6. `_choose_routes`: per option, the route the objective prefers; finish and cost.
7. `_apply_limits`: the deadline and budget, then splits a single pool beats.
8. `_rank`: the objective's order and the Pareto front; `_plan_result` builds the answer.

A stage that finds no placement raises `_NoPlacement` with the reasons, which `plan()` returns
as an infeasible result. An option's compute cost is computed in one place, `_compute_cost`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from suanli.catalog import Catalog, builtin_catalog
from suanli.errors import SpecError
from suanli.jobs.spec import InferenceWork, JobSpec, TrainWork
from suanli.network import Network
from suanli.plan.counts import allowed_for_pool, candidate_counts
from suanli.plan.explain import explain_choice, infeasible_after_constraints
from suanli.plan.hetero import Grid, split_candidates
from suanli.plan.objectives import Objective, resolve_objective
from suanli.plan.pareto import dominated_by, pareto_mask
from suanli.plan.prepared import PreparedNetwork, prepare
from suanli.plan.result import PlacementOption, PlanResult, PoolShare
from suanli.plan.state import NetworkState
from suanli.plan.table import EligiblePools, OptionRows, OptionTable, PerfGrid, Transfers
from suanli.plan.units import format_duration, format_money
from suanli.plan.vouchers import VoucherTerms, net_prices

HETERO_KINDS = ("train", "finetune")


@dataclass(frozen=True)
class DatasetMove:
    """The job's dataset as the planner sees it."""

    name: str
    size_gb: float
    location: str  # region or center id
    region: str
    at_center: bool


@dataclass(frozen=True)
class Limits:
    """The hard limits an option must meet; None where the job sets none."""

    deadline_s: float | None  # finish within this many seconds
    budget: float | None  # cost at most this (network currency)


@dataclass(frozen=True)
class SingleChecks:
    """Whether any single-pool option passed each test, in order: the reason a job has none."""

    shape: bool  # some count fits some pool's capacity and node shape
    fits: bool  # ... and runs on that pool's chip (memory, rate, useful range)
    reach: bool  # ... and the dataset has a route to the pool
    free: bool  # ... and enough chips come free some time


@dataclass(frozen=True)
class RouteTrial:
    """Finish and cost of every option under both routes, before the limits: the evidence for
    why no option meets them."""

    finish_fast_s: np.ndarray  # float: finish on the fastest route
    cost_fast: np.ndarray  # float: cost on the fastest route
    finish_cheap_s: np.ndarray  # float: finish on the cheapest route
    cost_cheap: np.ndarray  # float: cost on the cheapest route
    ok_fast: np.ndarray  # bool: the fastest route meets the limits
    ok_cheap: np.ndarray  # bool: the cheapest route meets the limits
    ok: np.ndarray  # bool: the chosen route meets the limits


@dataclass(frozen=True)
class Ranking:
    """The objective's order of a table's rows and its Pareto front."""

    order: np.ndarray  # int64: row indices, best first
    front: np.ndarray  # bool: the row is on the time-cost Pareto front


class _NoPlacement(Exception):
    """A stage found no placement; `reasons` say why, each naming the field at fault."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def plan(
    job: JobSpec,
    network: Network,
    state: NetworkState | None = None,
    blocked: Iterable[str] = (),
    *,
    objective: str = "cost",
    deadline_s: float | None = None,
    budget: float | None = None,
    weights: Mapping[str, float] | None = None,
    catalog: Catalog | None = None,
    top: int | None = None,
    vouchers: tuple[VoucherTerms, ...] = (),  # the tenant's: costs are its net price
) -> PlanResult:
    """Where should this job run? Every feasible placement, best first, with the reasons.

    `deadline_s` and `budget` default to the job's own; `blocked` holds center ids or
    "center/pool" ids to exclude (failover); `top` limits the options listed (the chosen one,
    the Pareto front, the explanation and the count of options always cover all of them).
    """
    from suanli import perf  # imported late: the performance model is a sibling layer

    catalog = catalog or builtin_catalog()
    obj = resolve_objective(objective, weights)
    limits = _limits(job, deadline_s, budget, top)
    net, state = prepare(network), state or NetworkState()
    result = functools.partial(_empty_result, job, network, obj, limits)
    rank_of = _accelerator_ranks(job, catalog)
    try:
        pools = _eligible_pools(job, net, rank_of, blocked, vouchers)
        move = _dataset_move(job, network)
        transfers = _transfers(net, pools.index, move,
                               state.dataset_copies.get(move.name, ()) if move else ())
        grid = _performance_grid(job, net, pools, catalog, perf)
        singles, checks = _single_pool_options(job, net, state, pools, grid, transfers)
        splits = _split_options(job, net, state, pools, grid, transfers, singles)
        rows = singles if splits is None else splits if not len(singles) else singles.concat(splits)
        if not len(rows):
            raise _NoPlacement(_no_placement(job, net, pools, grid, checks, move, perf, catalog))
        table, trial = _choose_routes(rows, transfers, obj, limits)
        kept = _apply_limits(table, trial, limits, _Describer(job, net, pools, table,
                                                               network.currency))
        ranking = _rank(kept, obj)
    except _NoPlacement as none:
        return result(infeasible=none.reasons)
    return _plan_result(job, network, net, pools, grid, move, obj, limits, rank_of, table,
                        kept, ranking, top, perf, catalog)


# ----------------------------------------------------------------------------------------
# the stages, in the order plan() runs them


def _limits(job: JobSpec, deadline_s: float | None, budget: float | None,
            top: int | None) -> Limits:
    """The deadline and budget in force (the call's, else the job's), checked positive."""
    deadline = job.deadline_s if deadline_s is None else float(deadline_s)
    max_cost = job.budget if budget is None else float(budget)
    if deadline is not None and not deadline > 0:
        raise SpecError(f"deadline: must be positive (got {deadline})", field="deadline",
                        value=deadline)
    if max_cost is not None and not max_cost > 0:
        raise SpecError(f"budget: must be positive (got {max_cost})", field="budget",
                        value=max_cost)
    if top is not None and top < 1:
        raise SpecError(f"top: must be at least 1 (got {top})", field="top", value=top)
    return Limits(deadline, max_cost)


def _eligible_pools(job: JobSpec, net: PreparedNetwork, rank_of: dict[str, int],
                    blocked: Iterable[str],
                    vouchers: tuple[VoucherTerms, ...] = ()) -> EligiblePools:
    """The pools the job may use: an allowed chip, in an allowed region, not blocked.

    Each filter that empties the set says so, naming what the network has instead, because a
    job that asks for a chip or a region the network lacks is the commonest planning error.
    """
    accs = net.accelerators
    name = net.network.name
    acc_ok = (np.array([a in rank_of for a in accs], dtype=bool) if rank_of
              else np.ones(len(accs), dtype=bool))
    if not acc_ok.any():
        have = ", ".join(sorted(set(accs)))
        raise _NoPlacement([
            f"accelerators: none of the allowed {', '.join(rank_of)} is in network "
            f"{name} (it has {have})"])
    region_names = np.array(net.routes.regions)
    pool_region_name = region_names[net.pool_region] if len(accs) else np.zeros(0, dtype=str)
    if job.regions:
        unknown = [r for r in job.regions if r not in net.routes.index]
        if unknown:
            raise SpecError(
                f"regions: unknown region {unknown[0]!r}; known: "
                f"{', '.join(net.routes.regions)}", field="regions", value=unknown[0])
        region_ok = np.isin(pool_region_name, list(job.regions))
    else:
        region_ok = np.ones(len(accs), dtype=bool)
    if not (acc_ok & region_ok).any():
        where = sorted({str(r) for r in pool_region_name[acc_ok]})
        raise _NoPlacement([
            f"regions: the allowed regions ({', '.join(job.regions)}) hold none of the allowed "
            f"accelerators ({_acc_list(rank_of, accs, acc_ok)}); they are in "
            f"{', '.join(where)}"])
    cand = np.flatnonzero(acc_ok & region_ok & ~_blocked_mask(net, blocked))
    if len(cand) == 0:
        names = sorted({net.pool_keys[i] for i in np.flatnonzero(acc_ok & region_ok)})
        raise _NoPlacement([
            f"blocked: every eligible pool is blocked ({', '.join(names[:8])}"
            f"{', ...' if len(names) > 8 else ''})"])
    cand_accs = [accs[i] for i in cand]
    grid_accs = list(dict.fromkeys(cand_accs))
    spot_price = net.spot_price[cand]
    use_spot = job.resources.spot & ~np.isnan(spot_price)
    # the tenant's net price where its vouchers pay a share (plan.vouchers)
    price = net_prices(np.where(use_spot, spot_price, net.price[cand]), net, cand, vouchers)
    return EligiblePools(
        index=cand, capacity=net.capacity[cand], chips_per_node=net.chips_per_node[cand],
        accelerators=grid_accs,
        acc_code=np.array([grid_accs.index(a) for a in cand_accs], dtype=np.int64),
        price_per_chip_hour=price, spot=use_spot,
        rank=np.array([rank_of.get(a, 0) for a in cand_accs], dtype=np.int64))


def _chip_counts(job: JobSpec, net: PreparedNetwork,
                 pools: EligiblePools) -> tuple[np.ndarray, np.ndarray, bool]:
    """(counts for one pool, the grid's counts, whether splits are tried).

    A pool holding a share f of the layers behaves like n/f chips on the whole model, so the
    grid also carries the powers of two such shares need; shares below 1/8 are read off the
    largest count (fits there is conservative).
    """
    lo, hi = job.min_count, job.max_count
    cpn = pools.chips_per_node
    counts = candidate_counts(lo, min(hi, int(pools.capacity.max())), cpn.tolist())
    splits = (job.kind in HETERO_KINDS and job.model is not None and job.model.layers >= 2
              and isinstance(job.work, TrainWork) and len(pools.accelerators) > 1 and hi >= 2)
    if not splits:
        return counts, counts, False
    pair_max = int(min(hi, _largest_pair(net, pools.index)))
    span = max(pair_max * min(job.model.layers, 8), 1)
    smallest = int(cpn.min())
    pow2 = 2 ** np.arange(int(np.ceil(np.log2(span))) + 1)
    pow2 = pow2[(pow2 >= smallest) & (pow2 <= span)]
    if pair_max < max(lo, 2 * smallest):
        return counts, counts, False
    return counts, np.union1d(counts, pow2).astype(np.int64), True


def _performance_grid(job: JobSpec, net: PreparedNetwork, pools: EligiblePools,
                      catalog: Catalog, perf) -> PerfGrid:
    """The performance model over the eligible chips x counts, and which cells may run.

    A cell runs if the job fits in memory, keeps up with a serving rate, and does not buy
    chips past the useful range (`EstimateGrid.beyond_useful_range`) where the same chip has
    a count in range (a job's minimum may force one).
    """
    counts, grid_counts, splits = _chip_counts(job, net, pools)
    if len(grid_counts) == 0:
        cap, best = pools.capacity, int(np.argmax(pools.capacity))
        raise _NoPlacement([
            f"count: the job needs at least {job.min_count} chips; the largest eligible pool "
            f"has {int(cap[best])} ({net.accelerators[pools.index[best]]} at "
            f"{net.pool_keys[pools.index[best]]})"
            + ("" if job.kind not in HETERO_KINDS else
               " and no two pools of one center together have enough")])
    chips = tuple(catalog.get(a) for a in pools.accelerators)
    grid = perf.estimate_grid(job, list(chips), grid_counts)
    run_s = np.asarray(grid.duration_s, dtype=float)
    fits = np.asarray(grid.fits, dtype=bool) & np.isfinite(run_s) & (run_s > 0)
    window_s = _serving_window_s(job)
    fits_in_memory = fits.copy()
    if window_s is not None:
        # Serving at a rate: a placement that falls behind the arrivals is not a placement.
        fits &= run_s <= window_s * (1 + 1e-9)
    idle = np.asarray(grid.beyond_useful_range, dtype=bool)
    fits &= ~(idle & (fits & ~idle).any(axis=1, keepdims=True))
    return PerfGrid(
        single_counts=counts, counts=grid_counts, run_s=run_s, fits=fits,
        fits_in_memory=fits_in_memory, power_w=np.asarray(grid.power_w, dtype=float),
        mfu=np.asarray(grid.mfu, dtype=float), bound=np.asarray(grid.bound),
        bounds=tuple(getattr(perf, "BOUNDS", ())), chips=chips, window_s=window_s,
        splits=splits)


def _single_pool_options(job: JobSpec, net: PreparedNetwork, state: NetworkState,
                         pools: EligiblePools, grid: PerfGrid,
                         transfers: Transfers) -> tuple[OptionRows, SingleChecks]:
    """Every (pool, count) whose shape fits the pool, that runs on its chip, that the data
    can reach, and whose chips come free some time; and which of these tests any passed."""
    counts = grid.single_counts
    if not len(counts):
        return _no_rows(), SingleChecks(False, False, False, False)
    col = np.searchsorted(grid.counts, counts)
    shape_ok = allowed_for_pool(counts, pools.capacity, pools.chips_per_node, job.min_count,
                                job.max_count)
    fits = grid.fits[pools.acc_code][:, col]
    reach = np.isfinite(transfers.fast_s)[:, None]
    pi, ci = np.nonzero(shape_ok)
    wait = np.full(shape_ok.shape, np.inf)
    wait[pi, ci] = _wait(net, state, pools.index[pi], counts[ci])
    valid = shape_ok & fits & reach & np.isfinite(wait)
    checks = SingleChecks(shape=len(pi) > 0, fits=bool((shape_ok & fits).any()),
                          reach=bool((shape_ok & fits & reach).any()), free=bool(valid.any()))
    pi, ci = np.nonzero(valid)
    n = counts[ci]
    run_s = grid.run_s[pools.acc_code[pi], col[ci]]
    cell = (pools.acc_code[pi], col[ci])
    zeros = np.zeros(len(pi), dtype=np.int64)
    return OptionRows(
        pool=pi, pool_b=np.full(len(pi), -1), count=n, count_a=n, count_b=zeros,
        layers_a=zeros, layers_b=zeros, run_s=run_s, wait_s=wait[pi, ci],
        power_w=grid.power_w[cell], mfu=grid.mfu[cell], bound=grid.bound[cell].astype(np.int64),
        price_per_chip_hour=pools.price_per_chip_hour[pi], spot=pools.spot[pi],
        compute_cost=_compute_cost(pools, pi, n, run_s), rank=pools.rank[pi],
    ), checks


def _split_options(job: JobSpec, net: PreparedNetwork, state: NetworkState,
                   pools: EligiblePools, grid: PerfGrid, transfers: Transfers,
                   singles: OptionRows) -> OptionRows | None:
    """Mixed-chip splits over two pools of one center (see `suanli.plan.hetero`) that the
    data can reach and whose chips come free; None where splits are not tried or none is.

    Splits whose best case a single-pool option already beats are pruned while searching.
    """
    if not grid.splits:
        return None
    splits = split_candidates(
        pool_center=net.pool_center[pools.index], pool_acc=pools.acc_code,
        capacity=pools.capacity, chips_per_node=pools.chips_per_node,
        scaleout_gbps=np.array([a.scaleout_gbps for a in grid.chips]),
        min_count=job.min_count, max_count=job.max_count,
        grid=Grid(grid.counts, grid.run_s, grid.fits, grid.power_w), layers=job.model.layers,
        hidden=job.model.hidden, tokens=job.work.tokens,
        prune=_prune_by_singles(singles, transfers, pools),
    )
    if splits is None or not len(splits):
        return None
    a, b = splits.pool_a, splits.pool_b
    wait = np.maximum(_wait(net, state, pools.index[a], splits.count_a),
                      _wait(net, state, pools.index[b], splits.count_b))
    keep = np.isfinite(wait) & np.isfinite(transfers.fast_s[a])
    if not keep.any():
        return None
    a, b, wait = a[keep], b[keep], wait[keep]
    na, nb = splits.count_a[keep], splits.count_b[keep]
    run_s = splits.run_s[keep]
    total = na + nb
    price = pools.price_per_chip_hour
    return OptionRows(
        pool=a, pool_b=b, count=total, count_a=na, count_b=nb,
        layers_a=splits.layers_a[keep], layers_b=splits.layers_b[keep], run_s=run_s,
        wait_s=wait, power_w=splits.power_w[keep], mfu=np.full(len(a), np.nan),
        bound=np.full(len(a), -1), price_per_chip_hour=(na * price[a] + nb * price[b]) / total,
        spot=pools.spot[a] | pools.spot[b],
        compute_cost=_compute_cost(pools, a, na, run_s, b, nb),
        rank=np.maximum(pools.rank[a], pools.rank[b]),
    )


def _compute_cost(pools: EligiblePools, pool: np.ndarray, count: np.ndarray, run_s: np.ndarray,
                  pool_b: np.ndarray | None = None,
                  count_b: np.ndarray | None = None) -> np.ndarray:
    """Chip-hours x price per chip-hour of each option, before egress: the one place an
    option's compute cost is computed. `pool_b` and `count_b` are a split's second pool."""
    price = pools.price_per_chip_hour
    if pool_b is None or count_b is None:
        return count * run_s / 3600.0 * price[pool]
    return (count * price[pool] + count_b * price[pool_b]) * run_s / 3600.0


def _choose_routes(rows: OptionRows, transfers: Transfers, obj: Objective,
                   limits: Limits) -> tuple[OptionTable, RouteTrial]:
    """Per option, the data route (fastest or cheapest) the objective prefers, with its finish
    and cost. A route that meets the limits beats one that does not; between equals the
    objective's keys decide, the cheapest route winning a tie. Finish is rounded to whole
    milliseconds and cost to cents: options equal to the cent (linear scaling makes many) tie
    exactly, so ties break on the other axis rather than on rounding noise."""
    p = rows.pool
    finish_f = np.maximum(rows.wait_s, transfers.fast_s[p]) + rows.run_s
    finish_c = np.maximum(rows.wait_s, transfers.cheap_s[p]) + rows.run_s
    cost_f = rows.compute_cost + transfers.fast_cost[p]
    cost_c = rows.compute_cost + transfers.cheap_cost[p]
    d = np.inf if limits.deadline_s is None else limits.deadline_s
    m = np.inf if limits.budget is None else limits.budget
    ok_f = (finish_f <= d) & (cost_f <= m)
    ok_c = (finish_c <= d) & (cost_c <= m)
    any_ok = ok_f | ok_c
    best_f = float(np.min(np.where(any_ok, finish_f, np.inf))) if any_ok.any() else 1.0
    best_c = float(np.min(np.where(any_ok, cost_c, np.inf))) if any_ok.any() else 1.0
    kf1, kf2 = obj.keys(finish_f, cost_f, best_f, best_c)
    kc1, kc2 = obj.keys(finish_c, cost_c, best_f, best_c)
    cheap = (ok_c & ~ok_f) | ((ok_c == ok_f) & ((kc1 < kf1) | ((kc1 == kf1) & (kc2 <= kf2))))
    table = OptionTable.routed(
        rows,
        transfer_s=np.where(cheap, transfers.cheap_s[p], transfers.fast_s[p]),
        egress_cost=np.where(cheap, transfers.cheap_cost[p], transfers.fast_cost[p]),
        finish_s=np.round(np.where(cheap, finish_c, finish_f), 3),
        cost=np.round(np.where(cheap, cost_c, cost_f), 2),
        cheap_route=cheap,
    )
    return table, RouteTrial(finish_f, cost_f, finish_c, cost_c, ok_f, ok_c,
                             np.where(cheap, ok_c, ok_f))


def _apply_limits(table: OptionTable, trial: RouteTrial, limits: Limits,
                  describe: _Describer) -> OptionTable:
    """The options that meet the deadline and budget, less the mixed-chip splits a single
    pool beats: a split is offered when no single pool can run the job, or when no
    single-pool option of the same or a better preference dominates it."""
    if not trial.ok.any():
        raise _NoPlacement(infeasible_after_constraints(
            describe, trial.finish_fast_s, trial.cost_cheap, trial.ok_fast, trial.ok_cheap,
            trial.finish_cheap_s, trial.cost_fast, limits.deadline_s, limits.budget))
    kept = table.take(np.flatnonzero(trial.ok))
    het = kept.pool_b >= 0
    if het.any() and (~het).any():
        beaten = _dominated_by_singles(kept.finish_s[het], kept.cost[het], kept.rank[het],
                                       kept.finish_s[~het], kept.cost[~het], kept.rank[~het])
        if beaten.any():
            keep = np.ones(len(het), dtype=bool)
            keep[np.flatnonzero(het)[beaten]] = False
            kept = kept.take(keep)
    return kept


def _rank(table: OptionTable, obj: Objective) -> Ranking:
    """The objective's order (preferred chips first, then its keys; pool and count settle
    exact ties so the order is stable) and the time-cost Pareto front."""
    best_f = float(table.finish_s.min())
    best_c = float(table.cost.min())
    k1, k2 = obj.keys(table.finish_s, table.cost, best_f, best_c)
    order = np.lexsort((table.pool_b, table.pool, table.count, k2, k1, table.rank))
    return Ranking(order=order, front=pareto_mask(table.finish_s, table.cost))


def _plan_result(job, network, net, pools, grid, move, obj, limits, rank_of, everything,
                 table, ranking, top, perf, catalog) -> PlanResult:
    """The answer: the chosen option, the Pareto front (fastest first) and the explanation
    built now; the listed options built when first read (a long list is costly to build)."""
    order, front = ranking.order, ranking.front
    shown = order if top is None else order[:top]
    builder = _OptionBuilder(job, net, pools, grid, table, move, front, order[0], perf, catalog)
    front_rows = np.flatnonzero(front)
    front_rows = front_rows[np.lexsort((table.cost[front_rows], table.finish_s[front_rows]))]
    pareto = builder.build(front_rows)
    on_front = dict(zip(front_rows.tolist(), pareto, strict=True))
    chosen = on_front.get(int(order[0])) or builder.build(order[:1])[0]
    options = functools.partial(_listed_options, builder, shown, chosen, pareto, front_rows)
    explanation = explain_choice(
        _Describer(job, net, pools, table, network.currency), builder, order, obj,
        limits.deadline_s, limits.budget, everything, move,
        rank_of if job.resources.prefer_order else None, chosen)
    return _empty_result(job, network, obj, limits, options, chosen, pareto, (), explanation,
                         len(order))


def _empty_result(job: JobSpec, network: Network, obj: Objective, limits: Limits,
                  options=(), chosen=None, pareto=(), infeasible=(), explanation=(),
                  total=0) -> PlanResult:
    """A PlanResult; with the defaults, one with no placement (give `infeasible`)."""
    return PlanResult(
        job=job.name, network=network.name, objective=obj.name, currency=network.currency,
        options_source=options, chosen=chosen, pareto=list(pareto),
        infeasible=list(infeasible), explanation=list(explanation),
        deadline_s=limits.deadline_s, budget=limits.budget, weights=obj.weights,
        total_options=total,
    )


def _no_rows() -> OptionRows:
    """An option table with no rows (a job whose count no single pool holds)."""
    i, f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return OptionRows(pool=i, pool_b=i, count=i, count_a=i, count_b=i, layers_a=i,
                      layers_b=i, run_s=f, wait_s=f, power_w=f, mfu=f, bound=i,
                      price_per_chip_hour=f, spot=np.zeros(0, dtype=bool), compute_cost=f,
                      rank=i)


def _no_placement(job, net, pools, grid, checks, move, perf, catalog) -> list[str]:
    """Why no option exists before the deadline and budget: rate, count, memory, data or
    load, the first test that nothing passed."""
    if grid.window_s is not None and grid.fits_in_memory.any():
        return [_rate_shortfall(job, pools.accelerators, grid.counts, grid.run_s,
                                grid.fits_in_memory, grid.window_s)]
    return _infeasible_before_constraints(job, net, pools, grid, checks, move, perf, catalog)


# ----------------------------------------------------------------------------------------
# helpers of the stages


def _listed_options(builder, shown, chosen, pareto, front_rows) -> list[PlacementOption]:
    """The listed options, built when first asked for; reuses the chosen and Pareto objects."""
    known = {**dict(zip(front_rows.tolist(), pareto, strict=True)), int(shown[0]): chosen}
    missing = np.array([i for i in shown.tolist() if i not in known], dtype=np.int64)
    known.update(zip(missing.tolist(), builder.build(missing), strict=True))
    return [known[i] for i in shown.tolist()]


def _accelerator_ranks(job: JobSpec, catalog: Catalog) -> dict[str, int]:
    """Allowed accelerator ids -> preference rank (0 best); {} means any chip."""
    ranks: dict[str, int] = {}
    for i, name in enumerate(job.resources.accelerators):
        acc = catalog.get(name, field=f"resources.accelerators.{i}")
        ranks.setdefault(acc.id, i if job.resources.prefer_order else 0)
    return ranks


def _acc_list(rank_of: dict[str, int], accs: list[str], mask: np.ndarray) -> str:
    if rank_of:
        return ", ".join(rank_of)
    return ", ".join(sorted({accs[i] for i in np.flatnonzero(mask)}))


def _blocked_mask(net: PreparedNetwork, blocked: Iterable[str]) -> np.ndarray:
    mask = np.zeros(len(net.pool_ids), dtype=bool)
    centers, keys = net.center_index, net.pool_index
    for item in blocked:
        item = str(item).strip()
        if not item:
            continue
        if item in keys:
            mask[keys[item]] = True
        elif item in centers:
            mask |= net.pool_center == centers[item]
        else:
            raise SpecError(
                f"blocked: {item!r} is neither a center id nor a 'center/pool' id of network "
                f"{net.network.name}", field="blocked", value=item)
    return mask


def _largest_pair(net: PreparedNetwork, cand: np.ndarray) -> int:
    """The most chips two pools of one center hold together (whole nodes)."""
    cap = (net.capacity[cand] // net.chips_per_node[cand]) * net.chips_per_node[cand]
    centers = net.pool_center[cand]
    order = np.lexsort((-cap, centers))
    c, v = centers[order], cap[order]
    first = np.ones(len(c), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    second = np.zeros(len(c), dtype=bool)
    second[1:] = ~first[1:] & first[:-1]
    if not second.any():
        return 0
    return int((v[np.flatnonzero(second) - 1] + v[second]).max())


def _dominated_by_singles(finish, cost, rank, s_finish, s_cost, s_rank) -> np.ndarray:
    """Mixed-chip points beaten by a single-pool point of the same or a better preference."""
    beaten = np.zeros(len(finish), dtype=bool)
    for r in np.unique(rank):
        sel = rank == r
        ok = s_rank <= r
        if ok.any():
            beaten[sel] = dominated_by(finish[sel], cost[sel], s_finish[ok], s_cost[ok])
    return beaten


def _prune_by_singles(singles: OptionRows, transfers: Transfers, pools: EligiblePools):
    """A pruning test for mixed-chip splits: drop those whose best case a single pool beats."""
    if not len(singles):
        return None
    p = singles.pool
    tr_fast_s, tr_fast_cost = transfers.fast_s, transfers.fast_cost
    tr_cheap_s, tr_cheap_cost = transfers.cheap_s, transfers.cheap_cost
    price, ranks = pools.price_per_chip_hour, pools.rank
    s_finish = np.concatenate([np.maximum(singles.wait_s, tr_fast_s[p]) + singles.run_s,
                               np.maximum(singles.wait_s, tr_cheap_s[p]) + singles.run_s])
    s_cost = np.concatenate([singles.compute_cost + tr_fast_cost[p],
                             singles.compute_cost + tr_cheap_cost[p]])
    s_rank = np.concatenate([singles.rank, singles.rank])

    def prune(pa, pb, na, nb, run_lb):
        finish_lb = tr_fast_s[pa] + run_lb
        cost_lb = ((na * price[pa] + nb * price[pb]) * run_lb / 3600.0
                   + np.minimum(tr_fast_cost[pa], tr_cheap_cost[pa]))
        rank = np.maximum(ranks[pa], ranks[pb])
        return ~_dominated_by_singles(finish_lb, cost_lb, rank, s_finish, s_cost, s_rank)

    return prune


def _dataset_move(job: JobSpec, network: Network) -> DatasetMove | None:
    ref = job.dataset
    if ref is None:
        return None
    known = network.dataset(ref.name)
    size = ref.size_gb if ref.size_gb is not None else (known.size_gb if known else None)
    location = ref.location or (known.location if known else None)
    if size is None:
        raise SpecError(
            f"dataset.size_gb: dataset {ref.name!r} is not in network {network.name}; give its "
            "size_gb", field="dataset.size_gb", value=ref.name)
    if location is None:
        raise SpecError(
            f"dataset.location: dataset {ref.name!r} is not in network {network.name}; give its "
            "location (a region or center id)", field="dataset.location", value=ref.name)
    centers = {c.id for c in network.centers}
    if location not in centers and location not in network.regions:
        raise SpecError(
            f"dataset.location: {location!r} is neither a region nor a center of network "
            f"{network.name}; regions: {', '.join(sorted(network.regions))}",
            field="dataset.location", value=location)
    return DatasetMove(ref.name, float(size), location, network.region_of(location),
                       location in centers)


def _transfers(net: PreparedNetwork, cand: np.ndarray, move: DatasetMove | None,
               copies: Iterable[str] = ()) -> Transfers:
    """The dataset's move to each candidate pool (network indices `cand`) by the fastest and
    the cheapest route, from its home or the nearest region holding a copy (`copies`)."""
    n = len(cand)
    if move is None or move.size_gb == 0:
        z = np.zeros(n)
        return Transfers(z, z, z, z)
    tr = net.routes.transfer(move.region, move.size_gb)
    reg = net.pool_region[cand]
    fast_s, cheap_s = tr.fast_s[reg].copy(), tr.cheap_s[reg].copy()
    fast_cost = move.size_gb * tr.fast_price_per_gb[reg]
    cheap_cost = move.size_gb * tr.cheap_price_per_gb[reg]
    if move.at_center:
        src = net.center_ids.index(move.location)
        same_region = reg == net.routes.index[move.region]
        other_center = net.pool_center[cand] != src
        intra = 8.0 * move.size_gb / net.network.intra_region_gbps
        fast_s[same_region & other_center] = intra
        cheap_s[same_region & other_center] = intra
    for region in copies:
        if region == move.region or region not in net.routes.index:
            continue
        other = net.routes.transfer(region, move.size_gb)
        here = reg == net.routes.index[region]
        o_fast, o_cheap = other.fast_s[reg], other.cheap_s[reg]
        o_fast_cost = move.size_gb * other.fast_price_per_gb[reg]
        o_cheap_cost = move.size_gb * other.cheap_price_per_gb[reg]
        o_fast[here] = o_cheap[here] = o_fast_cost[here] = o_cheap_cost[here] = 0.0
        faster = o_fast < fast_s
        fast_s, fast_cost = np.where(faster, o_fast, fast_s), np.where(faster, o_fast_cost,
                                                                          fast_cost)
        cheaper = o_cheap_cost < cheap_cost
        cheap_s, cheap_cost = (np.where(cheaper, o_cheap, cheap_s),
                               np.where(cheaper, o_cheap_cost, cheap_cost))
    return Transfers(fast_s, fast_cost, cheap_s, cheap_cost)


def _wait(net: PreparedNetwork, state: NetworkState, pools: np.ndarray,
          counts: np.ndarray) -> np.ndarray:
    """Seconds until `counts` chips of each pool (global index) can start."""
    cap = net.capacity[pools]
    wait = np.where(counts <= cap, 0.0, np.inf)
    if not state.pools:
        return wait
    loaded = {net.pool_index[k]: ps for k, ps in state.pools.items() if k in net.pool_index}
    if not loaded:
        return wait
    has_state = np.zeros(len(net.pool_ids), dtype=bool)
    has_state[list(loaded)] = True
    rows = np.flatnonzero(has_state[pools])
    if len(rows) == 0:
        return wait
    rows = rows[np.argsort(pools[rows], kind="stable")]
    keys, starts = np.unique(pools[rows], return_index=True)
    for gi, group in zip(keys.tolist(), np.split(rows, starts[1:]), strict=True):
        wait[group] = loaded[gi].wait_s(counts[group], int(net.capacity[gi]))
    return wait


def _serving_window_s(job: JobSpec) -> float | None:
    """The serving window of an inference job given as a rate; None for a fixed batch."""
    work = job.work
    if isinstance(work, InferenceWork) and work.requests is None and work.window_s is not None:
        return work.window_s
    return None


def _rate_shortfall(job, accs, counts, dur, fits, window_s) -> str:
    """The rate no allowed placement sustains, and the best rate one reaches."""
    work = job.work
    rates = np.where(fits, work.rate_per_s * window_s / dur, 0.0)
    a, c = np.unravel_index(int(np.argmax(rates)), rates.shape)
    return (f"work.rate_per_s: {work.rate_per_s:g} requests/s cannot be sustained on any "
            f"allowed placement; the most is {rates[a, c]:.3g} requests/s on {int(counts[c])} "
            f"{accs[a]} (count range {job.min_count}-{job.max_count})")


def _infeasible_before_constraints(job, net, pools, grid, checks, move, perf,
                                   catalog) -> list[str]:
    """Why no placement exists before deadline and budget: count, memory, data or load."""
    accs = net.accelerators
    cand, cap, counts = pools.index, pools.capacity, grid.single_counts
    best = int(np.argmax(cap))
    biggest = f"{int(cap[best])} {accs[cand[best]]} at {net.pool_keys[cand[best]]}"
    pair = " (nor two pools of one center together)" if grid.splits else ""
    if not checks.shape:
        return [f"count: the job needs at least {job.min_count} chips; the largest eligible pool "
                f"has {biggest}{pair}"]
    if not checks.fits:
        # Ask the model why, on the chip with the most memory at the largest count tried.
        mem = [catalog.get(accs[i]).memory_gb for i in cand]
        i = int(np.lexsort((cap, mem))[-1])
        n = int(min(cap[i], counts.max()))
        est = perf.estimate(job, catalog.get(accs[cand[i]]), n, catalog=catalog)
        why = getattr(est, "reason", None) or "it does not fit in memory"
        return [f"memory: the job fits on no allowed chip count up to {job.max_count}{pair}; "
                f"on {n} {accs[cand[i]]} (most memory per chip): {why}"]
    if not checks.reach:
        assert move is not None
        return [f"dataset: {move.name} ({move.size_gb:g} GB at {move.location}) has no route "
                f"over the network's links to any center where the job fits"]
    return ["capacity: every pool where the job fits is busy with no end in sight "
            "(no running job frees enough chips)"]


class _Describer:
    """Labels for flattened option rows, for reasons and explanations."""

    def __init__(self, job: JobSpec, net: PreparedNetwork, pools: EligiblePools,
                 cols: OptionTable, currency: str) -> None:
        self.job, self.net, self.cand, self.cols = job, net, pools.index, cols
        self.currency = currency

    def label(self, i: int, cols: OptionTable | None = None) -> str:
        c = self.cols if cols is None else cols
        pa = self.cand[c.pool[i]]
        center = self.net.center_ids[self.net.pool_center[pa]]
        if c.pool_b[i] >= 0:
            pb = self.cand[c.pool_b[i]]
            return (f"{int(c.count_a[i])} {self.net.accelerators[pa]} + "
                    f"{int(c.count_b[i])} {self.net.accelerators[pb]} at {center}")
        return f"{int(c.count[i])} {self.net.accelerators[pa]} at {center}"

    def money(self, x: float) -> str:
        return format_money(x, self.currency)

    @staticmethod
    def dur(x: float) -> str:
        return format_duration(x)


class _OptionBuilder:
    """Turns flattened rows into PlacementOption objects; asks the model for parallelism."""

    def __init__(self, job: JobSpec, net: PreparedNetwork, pools: EligiblePools,
                 grid: PerfGrid, cols: OptionTable, move: DatasetMove | None, front: np.ndarray,
                 chosen_row: int, perf, catalog: Catalog) -> None:
        self.job, self.net, self.cand, self.cols = job, net, pools.index, cols
        self.move, self.front, self.chosen_row, self.perf = move, front, int(chosen_row), perf
        self.acc_by_id = dict(zip(pools.accelerators, grid.chips, strict=True))
        self.bounds, self.catalog = grid.bounds, catalog
        self._estimates: dict[tuple[str, int], object] = {}
        self._routes: dict[tuple[int, bool], tuple[str, ...]] = {}

    def estimate(self, acc: str, count: int):
        key = (acc, count)
        if key not in self._estimates:
            self._estimates[key] = self.perf.estimate(self.job, self.acc_by_id[acc], count,
                                                      catalog=self.catalog)
        return self._estimates[key]

    def route(self, region: int, cheap: bool) -> tuple[str, ...]:
        move = self.move
        if move is None or move.size_gb == 0:
            return ()
        key = (region, cheap)
        if key not in self._routes:
            dst = self.net.routes.regions[region]
            self._routes[key] = tuple(self.net.routes.path(
                move.region, dst, "cheap" if cheap else "fast", move.size_gb))
        return self._routes[key]

    def build(self, rows: np.ndarray) -> list[PlacementOption]:
        """Options for flattened rows, vectorised: one NumPy pass, then one object per row."""
        rows = np.asarray(rows, dtype=np.int64)
        c, net = self.cols, self.net
        pa = self.cand[c.pool[rows]]
        pb_local = c.pool_b[rows]
        het = pb_local >= 0
        pb = np.where(het, self.cand[np.maximum(pb_local, 0)], -1)
        center = net.pool_center[pa]
        region = net.center_region[center]
        run = c.run_s[rows]
        energy = c.power_w[rows] * run / 3.6e6 * net.pue[pa]
        carbon = energy * net.carbon_g_per_kwh[pa] / 1000.0
        moved = (c.transfer_s[rows] > 0) if self.move is not None else np.zeros(len(rows), bool)
        cheap = c.cheap_route[rows]
        mfu = c.mfu[rows]
        codes = c.bound[rows]
        columns = zip(
            rows.tolist(), pa.tolist(), pb.tolist(), het.tolist(), center.tolist(),
            region.tolist(), c.count[rows].tolist(), c.count_a[rows].tolist(),
            c.count_b[rows].tolist(), c.layers_a[rows].tolist(),
            c.layers_b[rows].tolist(), c.transfer_s[rows].tolist(),
            c.wait_s[rows].tolist(), run.tolist(), c.finish_s[rows].tolist(),
            c.cost[rows].tolist(), c.compute_cost[rows].tolist(),
            c.egress_cost[rows].tolist(), c.price_per_chip_hour[rows].tolist(),
            c.spot[rows].tolist(), energy.tolist(), carbon.tolist(), c.power_w[rows].tolist(),
            mfu.tolist(), codes.tolist(), moved.tolist(), cheap.tolist(), c.rank[rows].tolist(),
            self.front[rows].tolist(), strict=True)
        regions, centers = net.routes.regions, net.center_ids
        accs, pool_ids = net.accelerators, net.pool_ids
        bounds = self.bounds
        out = []
        for (i, a, b, is_het, ci, ri, n, na, nb, la, lb, tr, wait, run_s, fin, cost, comp, egr,
             price, spot, kwh, kg, watts, m, code, mv, ch, rank, front) in columns:
            if is_het:
                split = (PoolShare(pool_ids[a], accs[a], na, la),
                         PoolShare(pool_ids[b], accs[b], nb, lb))
                pool_id, acc_label, source = (f"{pool_ids[a]}+{pool_ids[b]}",
                                              f"{accs[a]}+{accs[b]}", None)
            else:
                split, pool_id, acc_label = (), pool_ids[a], accs[a]
                source = functools.partial(self.estimate, accs[a], n)
            out.append(PlacementOption(
                center=centers[ci], region=regions[ri], pool=pool_id, accelerator=acc_label,
                count=n, transfer_s=tr, wait_s=wait, run_s=run_s, finish_s=fin, cost=cost,
                compute_cost=comp, egress_cost=egr, price_per_chip_hour=price, spot=spot,
                energy_kwh=kwh, carbon_kg=kg, power_w=watts,
                mfu=None if m != m else m,
                bound=bounds[code] if 0 <= code < len(bounds) else None,
                route=self.route(ri, ch) if mv else (),
                route_kind=("cheapest" if ch else "fastest") if mv else "none",
                heterogeneous=is_het, split=split, preference_rank=rank, pareto=front,
                chosen=i == self.chosen_row, estimate_source=source,
            ))
        return out
