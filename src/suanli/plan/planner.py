"""The broker: every feasible placement of one job over a whole network, data included.

For each allowed pool and chip count: the dataset's transfer to the pool's center (fastest and
cheapest route), the wait for chips, the run time from the performance model, then
finish = max(wait, transfer) + run and cost = chip-hours x price + egress. One
`estimate_grid` call covers every accelerator type and count; the rest is NumPy over
pools x counts. Mixed-chip splits over two pools of one center are added for training jobs.
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
from suanli.plan.objectives import resolve_objective
from suanli.plan.pareto import dominated_by, pareto_mask
from suanli.plan.prepared import PreparedNetwork, prepare
from suanli.plan.result import PlacementOption, PlanResult, PoolShare
from suanli.plan.state import NetworkState
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
    net = prepare(network)
    state = state or NetworkState()
    cur = network.currency

    def result(options=(), chosen=None, pareto=(), infeasible=(), explanation=(),
               total=0) -> PlanResult:
        return PlanResult(
            job=job.name, network=network.name, objective=obj.name, currency=cur,
            options_source=options, chosen=chosen, pareto=list(pareto),
            infeasible=list(infeasible), explanation=list(explanation), deadline_s=deadline,
            budget=max_cost, weights=obj.weights, total_options=total,
        )

    # --- hard filters on pools: accelerators, regions, failover -------------------------
    rank_of = _accelerator_ranks(job, catalog)
    accs = net.accelerators
    acc_ok = (np.array([a in rank_of for a in accs], dtype=bool) if rank_of
              else np.ones(len(accs), dtype=bool))
    if not acc_ok.any():
        have = ", ".join(sorted(set(accs)))
        return result(infeasible=[
            f"accelerators: none of the allowed {', '.join(rank_of)} is in network "
            f"{network.name} (it has {have})"])
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
        return result(infeasible=[
            f"regions: the allowed regions ({', '.join(job.regions)}) hold none of the allowed "
            f"accelerators ({_acc_list(rank_of, accs, acc_ok)}); they are in "
            f"{', '.join(where)}"])
    blocked_mask = _blocked_mask(net, blocked)
    cand = np.flatnonzero(acc_ok & region_ok & ~blocked_mask)
    if len(cand) == 0:
        names = sorted({net.pool_keys[i] for i in np.flatnonzero(acc_ok & region_ok)})
        return result(infeasible=[
            f"blocked: every eligible pool is blocked ({', '.join(names[:8])}"
            f"{', ...' if len(names) > 8 else ''})"])

    # --- the dataset's transfer to each candidate pool's center -------------------------
    move = _dataset_move(job, network)
    tr_fast_s, tr_fast_cost, tr_cheap_s, tr_cheap_cost = _transfers(
        net, cand, move, state.dataset_copies.get(move.name, ()) if move else ())

    # --- counts and the performance grid -------------------------------------------------
    lo, hi = job.min_count, job.max_count
    cap = net.capacity[cand]
    cpn = net.chips_per_node[cand]
    counts = candidate_counts(lo, min(hi, int(cap.max())), cpn.tolist())
    cand_accs = [accs[i] for i in cand]
    grid_accs = list(dict.fromkeys(cand_accs))
    acc_code = np.array([grid_accs.index(a) for a in cand_accs], dtype=np.int64)
    hetero_ok = (job.kind in HETERO_KINDS and job.model is not None and job.model.layers >= 2
                 and isinstance(job.work, TrainWork) and len(grid_accs) > 1 and hi >= 2)
    grid_counts = counts
    if hetero_ok:
        # A pool holding a share f of the layers behaves like n/f chips on the whole model;
        # shares below 1/8 are read off the largest count (fits there is conservative).
        pair_max = int(min(hi, _largest_pair(net, cand)))
        span = max(pair_max * min(job.model.layers, 8), 1)
        smallest = int(cpn.min())
        pow2 = 2 ** np.arange(int(np.ceil(np.log2(span))) + 1)
        pow2 = pow2[(pow2 >= smallest) & (pow2 <= span)]
        hetero_ok = pair_max >= max(lo, 2 * smallest)
        if hetero_ok:
            grid_counts = np.union1d(counts, pow2).astype(np.int64)
    if len(grid_counts) == 0:
        best = int(np.argmax(cap))
        return result(infeasible=[
            f"count: the job needs at least {lo} chips; the largest eligible pool has "
            f"{int(cap[best])} ({accs[cand[best]]} at {net.pool_keys[cand[best]]})"
            + ("" if job.kind not in HETERO_KINDS else
               " and no two pools of one center together have enough")])
    acc_objs = [catalog.get(a) for a in grid_accs]
    grid = perf.estimate_grid(job, acc_objs, grid_counts)
    g_dur = np.asarray(grid.duration_s, dtype=float)
    g_fits = np.asarray(grid.fits, dtype=bool) & np.isfinite(g_dur) & (g_dur > 0)
    window_s = _serving_window_s(job)
    fits_in_memory = g_fits.copy()
    if window_s is not None:
        # Serving at a rate: a placement that falls behind the arrivals is not a placement.
        g_fits &= g_dur <= window_s * (1 + 1e-9)
    # Counts past the useful range buy chips that would idle (EstimateGrid.beyond_useful_range):
    # dropped wherever the same chip has a count in range (a job's minimum may force one).
    idle = np.asarray(grid.beyond_useful_range, dtype=bool)
    g_fits &= ~(idle & (g_fits & ~idle).any(axis=1, keepdims=True))
    g_power = np.asarray(grid.power_w, dtype=float)
    g_mfu = np.asarray(grid.mfu, dtype=float)
    g_bound = np.asarray(grid.bound)
    bounds = tuple(getattr(perf, "BOUNDS", ()))

    price = net.price[cand]
    spot_price = net.spot_price[cand]
    use_spot = job.resources.spot & ~np.isnan(spot_price)
    eff_price = np.where(use_spot, spot_price, price)
    eff_price = net_prices(eff_price, net, cand, vouchers)  # plan.vouchers
    ranks = np.array([rank_of.get(a, 0) for a in cand_accs], dtype=np.int64)

    # --- single-pool options: pools x counts -------------------------------------------
    cols: dict[str, np.ndarray] = {}
    stage = {"shape": False, "fits": False, "reach": False, "free": False}
    if len(counts):
        col = np.searchsorted(grid_counts, counts)
        shape_ok = allowed_for_pool(counts, cap, cpn, lo, hi)
        fits = g_fits[acc_code][:, col]
        reach = np.isfinite(tr_fast_s)[:, None]
        pi, ci = np.nonzero(shape_ok)
        stage["shape"] = len(pi) > 0
        wait = np.full(shape_ok.shape, np.inf)
        wait[pi, ci] = _wait(net, state, cand[pi], counts[ci])
        stage["fits"] = bool((shape_ok & fits).any())
        stage["reach"] = bool((shape_ok & fits & reach).any())
        valid = shape_ok & fits & reach & np.isfinite(wait)
        stage["free"] = bool(valid.any())
        pi, ci = np.nonzero(valid)
        n = counts[ci]
        run = g_dur[acc_code[pi], col[ci]]
        cols = {
            "pool": pi, "pool_b": np.full(len(pi), -1), "count": n, "count_a": n,
            "count_b": np.zeros(len(pi), dtype=np.int64), "layers_a": np.zeros(len(pi), int),
            "layers_b": np.zeros(len(pi), int), "run": run, "wait": wait[pi, ci],
            "power": g_power[acc_code[pi], col[ci]], "mfu": g_mfu[acc_code[pi], col[ci]],
            "bound": g_bound[acc_code[pi], col[ci]].astype(np.int64),
            "price": eff_price[pi], "spot": use_spot[pi],
            "compute_cost": n * run / 3600.0 * eff_price[pi], "rank": ranks[pi],
        }

    # --- mixed-chip splits over two pools of one center -------------------------------
    het_cols = None
    if hetero_ok:
        scaleout = np.array([a.scaleout_gbps for a in acc_objs])
        splits = split_candidates(
            pool_center=net.pool_center[cand], pool_acc=acc_code, capacity=cap,
            chips_per_node=cpn, scaleout_gbps=scaleout, min_count=lo, max_count=hi,
            grid=Grid(grid_counts, g_dur, g_fits, g_power), layers=job.model.layers,
            hidden=job.model.hidden, tokens=job.work.tokens,
            prune=_prune_by_singles(cols, tr_fast_s, tr_fast_cost, tr_cheap_s, tr_cheap_cost,
                                    eff_price, ranks),
        )
        if splits is not None and len(splits):
            a, b = splits.pool_a, splits.pool_b
            wait = np.maximum(_wait(net, state, cand[a], splits.count_a),
                              _wait(net, state, cand[b], splits.count_b))
            keep = np.isfinite(wait) & np.isfinite(tr_fast_s[a])
            if keep.any():
                a, b, wait = a[keep], b[keep], wait[keep]
                na, nb = splits.count_a[keep], splits.count_b[keep]
                run = splits.run_s[keep]
                total = na + nb
                chip_cost = na * eff_price[a] + nb * eff_price[b]
                het_cols = {
                    "pool": a, "pool_b": b, "count": total, "count_a": na, "count_b": nb,
                    "layers_a": splits.layers_a[keep], "layers_b": splits.layers_b[keep],
                    "run": run, "wait": wait, "power": splits.power_w[keep],
                    "mfu": np.full(len(a), np.nan), "bound": np.full(len(a), -1),
                    "price": chip_cost / total, "spot": use_spot[a] | use_spot[b],
                    "compute_cost": chip_cost * run / 3600.0,
                    "rank": np.maximum(ranks[a], ranks[b]),
                }
    if het_cols is not None:
        cols = het_cols if not cols else {k: np.concatenate([cols[k], het_cols[k]])
                                          for k in cols}
    if not cols or len(cols["pool"]) == 0:
        if window_s is not None and fits_in_memory.any():
            return result(infeasible=[_rate_shortfall(job, grid_accs, grid_counts, g_dur,
                                                      fits_in_memory, window_s)])
        return result(infeasible=_infeasible_before_constraints(
            job, network, net, cand, cap, counts, stage, move, perf, catalog, hetero_ok))

    # --- finish time and cost under both routes; the objective picks the route --------
    p = cols["pool"]
    finish_f = np.maximum(cols["wait"], tr_fast_s[p]) + cols["run"]
    finish_c = np.maximum(cols["wait"], tr_cheap_s[p]) + cols["run"]
    cost_f = cols["compute_cost"] + tr_fast_cost[p]
    cost_c = cols["compute_cost"] + tr_cheap_cost[p]
    d = np.inf if deadline is None else deadline
    m = np.inf if max_cost is None else max_cost
    ok_f = (finish_f <= d) & (cost_f <= m)
    ok_c = (finish_c <= d) & (cost_c <= m)
    any_ok = ok_f | ok_c
    best_f = float(np.min(np.where(any_ok, finish_f, np.inf))) if any_ok.any() else 1.0
    best_c = float(np.min(np.where(any_ok, cost_c, np.inf))) if any_ok.any() else 1.0
    kf1, kf2 = obj.keys(finish_f, cost_f, best_f, best_c)
    kc1, kc2 = obj.keys(finish_c, cost_c, best_f, best_c)
    cheap = (ok_c & ~ok_f) | ((ok_c == ok_f) & ((kc1 < kf1) | ((kc1 == kf1) & (kc2 <= kf2))))
    cols["transfer"] = np.where(cheap, tr_cheap_s[p], tr_fast_s[p])
    cols["egress"] = np.where(cheap, tr_cheap_cost[p], tr_fast_cost[p])
    # Whole milliseconds and cents: options equal to the cent (linear scaling makes many)
    # tie exactly, so ties break on the other axis rather than on rounding noise.
    cols["finish"] = np.round(np.where(cheap, finish_c, finish_f), 3)
    cols["cost"] = np.round(np.where(cheap, cost_c, cost_f), 2)
    cols["cheap_route"] = cheap
    ok = np.where(cheap, ok_c, ok_f)
    if not ok.any():
        return result(infeasible=infeasible_after_constraints(
            _Describer(job, net, cand, cols, cur), finish_f, cost_c, ok_f, ok_c, finish_c,
            cost_f, deadline, max_cost))
    everything = cols  # before the deadline and budget, for the explanation
    keep = np.flatnonzero(ok)
    cols = {k: v[keep] for k, v in cols.items()}

    # Mixed-chip options are offered when no single pool can run the job or when they are
    # not dominated by a single-pool option.
    het = cols["pool_b"] >= 0
    if het.any() and (~het).any():
        beaten = _dominated_by_singles(cols["finish"][het], cols["cost"][het], cols["rank"][het],
                                       cols["finish"][~het], cols["cost"][~het],
                                       cols["rank"][~het])
        if beaten.any():
            keep = np.ones(len(het), dtype=bool)
            keep[np.flatnonzero(het)[beaten]] = False
            cols = {k: v[keep] for k, v in cols.items()}

    # --- rank, Pareto front, materialise --------------------------------------------------
    best_f = float(cols["finish"].min())
    best_c = float(cols["cost"].min())
    k1, k2 = obj.keys(cols["finish"], cols["cost"], best_f, best_c)
    order = np.lexsort((cols["pool_b"], cols["pool"], cols["count"], k2, k1, cols["rank"]))
    front = pareto_mask(cols["finish"], cols["cost"])
    total = len(order)
    shown = order if top is None else order[:top]
    builder = _OptionBuilder(job, network, net, cand, cols, move, front, order[0], perf,
                             acc_objs, grid_accs, bounds, catalog)
    front_rows = np.flatnonzero(front)
    front_rows = front_rows[np.lexsort((cols["cost"][front_rows], cols["finish"][front_rows]))]
    pareto = builder.build(front_rows)
    on_front = dict(zip(front_rows.tolist(), pareto, strict=True))
    chosen = on_front.get(int(order[0])) or builder.build(order[:1])[0]
    options = functools.partial(_listed_options, builder, shown, chosen, pareto, front_rows)
    explanation = explain_choice(
        _Describer(job, net, cand, cols, cur), builder, order, obj, deadline, max_cost,
        everything, move, rank_of if job.resources.prefer_order else None, chosen)
    return result(options, chosen, pareto, (), explanation, total)


# ----------------------------------------------------------------------------------------
# helpers


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


def _prune_by_singles(cols, tr_fast_s, tr_fast_cost, tr_cheap_s, tr_cheap_cost, price, ranks):
    """A pruning test for mixed-chip splits: drop those whose best case a single pool beats."""
    if not cols or len(cols["pool"]) == 0:
        return None
    p = cols["pool"]
    s_finish = np.concatenate([np.maximum(cols["wait"], tr_fast_s[p]) + cols["run"],
                               np.maximum(cols["wait"], tr_cheap_s[p]) + cols["run"]])
    s_cost = np.concatenate([cols["compute_cost"] + tr_fast_cost[p],
                             cols["compute_cost"] + tr_cheap_cost[p]])
    s_rank = np.concatenate([cols["rank"], cols["rank"]])

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
               copies: Iterable[str] = ()):
    """Per candidate pool: (fast time, fast egress cost, cheap time, cheap egress cost), from
    the dataset's home or the nearest region holding a copy (`copies`)."""
    n = len(cand)
    if move is None or move.size_gb == 0:
        z = np.zeros(n)
        return z, z, z, z
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
    return fast_s, fast_cost, cheap_s, cheap_cost


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


def _infeasible_before_constraints(job, network, net, cand, cap, counts, stage, move, perf,
                                   catalog, hetero_ok) -> list[str]:
    """Why no placement exists before deadline and budget: count, memory, data or load."""
    accs = net.accelerators
    best = int(np.argmax(cap))
    biggest = f"{int(cap[best])} {accs[cand[best]]} at {net.pool_keys[cand[best]]}"
    pair = " (nor two pools of one center together)" if hetero_ok else ""
    if not stage["shape"]:
        return [f"count: the job needs at least {job.min_count} chips; the largest eligible pool "
                f"has {biggest}{pair}"]
    if not stage["fits"]:
        # Ask the model why, on the chip with the most memory at the largest count tried.
        mem = [catalog.get(accs[i]).memory_gb for i in cand]
        i = int(np.lexsort((cap, mem))[-1])
        n = int(min(cap[i], counts.max()))
        est = perf.estimate(job, catalog.get(accs[cand[i]]), n, catalog=catalog)
        why = getattr(est, "reason", None) or "it does not fit in memory"
        return [f"memory: the job fits on no allowed chip count up to {job.max_count}{pair}; "
                f"on {n} {accs[cand[i]]} (most memory per chip): {why}"]
    if not stage["reach"]:
        assert move is not None
        return [f"dataset: {move.name} ({move.size_gb:g} GB at {move.location}) has no route "
                f"over the network's links to any center where the job fits"]
    return ["capacity: every pool where the job fits is busy with no end in sight "
            "(no running job frees enough chips)"]


class _Describer:
    """Labels for flattened option rows, for reasons and explanations."""

    def __init__(self, job, net, cand, cols, currency) -> None:
        self.job, self.net, self.cand, self.cols, self.currency = job, net, cand, cols, currency

    def label(self, i: int, cols=None) -> str:
        c = cols or self.cols
        pa = self.cand[c["pool"][i]]
        center = self.net.center_ids[self.net.pool_center[pa]]
        if c["pool_b"][i] >= 0:
            pb = self.cand[c["pool_b"][i]]
            return (f"{int(c['count_a'][i])} {self.net.accelerators[pa]} + "
                    f"{int(c['count_b'][i])} {self.net.accelerators[pb]} at {center}")
        return f"{int(c['count'][i])} {self.net.accelerators[pa]} at {center}"

    def money(self, x: float) -> str:
        return format_money(x, self.currency)

    @staticmethod
    def dur(x: float) -> str:
        return format_duration(x)


class _OptionBuilder:
    """Turns flattened rows into PlacementOption objects; asks the model for parallelism."""

    def __init__(self, job, network, net, cand, cols, move, front, chosen_row, perf, acc_objs,
                 grid_accs, bounds, catalog) -> None:
        self.job, self.network, self.net, self.cand, self.cols = job, network, net, cand, cols
        self.move, self.front, self.chosen_row, self.perf = move, front, int(chosen_row), perf
        self.acc_by_id = dict(zip(grid_accs, acc_objs, strict=True))
        self.bounds, self.catalog = bounds, catalog
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
        pa = self.cand[c["pool"][rows]]
        pb_local = c["pool_b"][rows]
        het = pb_local >= 0
        pb = np.where(het, self.cand[np.maximum(pb_local, 0)], -1)
        center = net.pool_center[pa]
        region = net.center_region[center]
        run = c["run"][rows]
        energy = c["power"][rows] * run / 3.6e6 * net.pue[pa]
        carbon = energy * net.carbon_g_per_kwh[pa] / 1000.0
        moved = (c["transfer"][rows] > 0) if self.move is not None else np.zeros(len(rows), bool)
        cheap = c["cheap_route"][rows]
        mfu = c["mfu"][rows]
        codes = c["bound"][rows]
        columns = zip(
            rows.tolist(), pa.tolist(), pb.tolist(), het.tolist(), center.tolist(),
            region.tolist(), c["count"][rows].tolist(), c["count_a"][rows].tolist(),
            c["count_b"][rows].tolist(), c["layers_a"][rows].tolist(),
            c["layers_b"][rows].tolist(), c["transfer"][rows].tolist(),
            c["wait"][rows].tolist(), run.tolist(), c["finish"][rows].tolist(),
            c["cost"][rows].tolist(), c["compute_cost"][rows].tolist(),
            c["egress"][rows].tolist(), c["price"][rows].tolist(), c["spot"][rows].tolist(),
            energy.tolist(), carbon.tolist(), c["power"][rows].tolist(), mfu.tolist(),
            codes.tolist(), moved.tolist(), cheap.tolist(), c["rank"][rows].tolist(),
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
