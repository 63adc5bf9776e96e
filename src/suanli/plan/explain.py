"""Sentences: why the chosen placement wins, and why a job has no placement at all."""

from __future__ import annotations

import numpy as np

from suanli.plan.hetero import HETERO_EFFICIENCY


def infeasible_after_constraints(desc, finish_f, cost_c, ok_f, ok_c, finish_c, cost_f,
                                 deadline, budget) -> list[str]:
    """Placements exist but none meets the deadline and/or the budget: say by how much.

    The fast route gives each row its soonest finish and the cheap route its lowest cost.
    """
    dur, money, label = desc.dur, desc.money, desc.label
    fastest = int(np.argmin(finish_f))
    cheapest = int(np.argmin(cost_c))
    d = np.inf if deadline is None else deadline
    b = np.inf if budget is None else budget
    reasons = []
    if finish_f[fastest] > d:
        reasons.append(
            f"deadline: {dur(d)} is {dur(finish_f[fastest] - d)} short of the fastest option "
            f"({dur(finish_f[fastest])} on {label(fastest)})")
    if cost_c[cheapest] > b:
        reasons.append(
            f"budget: {money(b)} is {money(cost_c[cheapest] - b)} short of the cheapest option "
            f"({money(cost_c[cheapest])} on {label(cheapest)})")
    if reasons:
        return reasons
    # Each constraint alone can be met, but not both at once.
    cost_by_deadline = np.minimum(np.where(finish_f <= d, cost_f, np.inf),
                                  np.where(finish_c <= d, cost_c, np.inf))
    finish_in_budget = np.minimum(np.where(cost_f <= b, finish_f, np.inf),
                                  np.where(cost_c <= b, finish_c, np.inf))
    i = int(np.argmin(cost_by_deadline))
    j = int(np.argmin(finish_in_budget))
    return [
        f"deadline and budget: no option meets both {dur(d)} and {money(b)}: the cheapest "
        f"option that meets the deadline costs {money(cost_by_deadline[i])} "
        f"({money(cost_by_deadline[i] - b)} over budget, {label(i)}); the fastest within budget "
        f"finishes in {dur(finish_in_budget[j])} ({dur(finish_in_budget[j] - d)} past the "
        f"deadline, {label(j)})"
    ]


def _center_of(desc, i: int) -> int:
    return int(desc.net.pool_center[desc.cand[desc.cols.pool[i]]])


def _runner_up(desc, order: np.ndarray) -> int | None:
    """The next best placement on another pool (more or fewer chips of the same pool are
    variants of the winner, not alternatives to it); the next option if there is none."""
    if len(order) < 2:
        return None
    c = desc.cols
    first, rest = int(order[0]), order[1:]
    other = rest[(c.pool[rest] != c.pool[first]) | (c.pool_b[rest] != c.pool_b[first])]
    return int(other[0]) if len(other) else int(rest[0])


def _best_elsewhere(desc, order: np.ndarray) -> int | None:
    """The best option at another center than the winner's, if any."""
    if len(order) < 2:
        return None
    rest = order[1:]
    centers = desc.net.pool_center[desc.cand[desc.cols.pool[rest]]]
    other = rest[centers != _center_of(desc, int(order[0]))]
    return int(other[0]) if len(other) else None


def _sooner_later(delta_s: float, dur) -> str:
    if abs(delta_s) < 1:
        return "finishes at the same time"
    return f"finishes {dur(abs(delta_s))} {'sooner' if delta_s < 0 else 'later'}"


def _less_more(delta: float, money) -> str:
    if abs(delta) < 0.005:
        return "costs the same"
    return f"costs {money(abs(delta))} {'less' if delta < 0 else 'more'}"


def explain_choice(desc, builder, order, obj, deadline, budget, everything, move, rank_of,
                   chosen) -> list[str]:
    """Why the winner wins: against the runner-up, and against the best on the other axis."""
    c, dur, money, label = desc.cols, desc.dur, desc.money, desc.label
    i0 = int(order[0])
    f0, c0 = float(c.finish_s[i0]), float(c.cost[i0])
    start = "now" if chosen.start_s < 1 else f"in {dur(chosen.start_s)}"
    lines = [
        f"Chosen: {chosen.label} (pool {chosen.pool}): starts {start}, runs "
        f"{dur(chosen.run_s)}, finishes in {dur(f0)}, costs {money(c0)}."
    ]
    ru = _runner_up(desc, order)
    fastest = int(np.argmin(c.finish_s))
    cheapest = int(np.argmin(c.cost))
    if ru is not None:
        f1, c1 = float(c.finish_s[ru]), float(c.cost[ru])
        if obj.name == "cost":
            lines.append(f"Cheapest: {money(c0)} vs {money(c1)} for the runner-up, {label(ru)}, "
                         f"which {_sooner_later(f1 - f0, dur)}.")
        elif obj.name == "time":
            lines.append(f"Fastest: finishes in {dur(f0)} vs {dur(f1)} for the runner-up, "
                         f"{label(ru)}, which {_less_more(c1 - c0, money)}.")
        else:
            bf, bc = float(c.finish_s.min()), float(c.cost.min())
            s = obj.score(c.finish_s, c.cost, bf, bc)
            lines.append(
                f"Best weighted score (time {obj.time_weight:.2f}, cost {obj.cost_weight:.2f}; "
                f"1.00 is best on both): {s[i0]:.2f} vs {s[ru]:.2f} for the runner-up, "
                f"{label(ru)}, which {_sooner_later(f1 - f0, dur)} and "
                f"{_less_more(c1 - c0, money)}.")
    else:
        lines.append("It is the only feasible option.")
    away = _best_elsewhere(desc, order)
    if away is not None and away not in (ru, fastest, cheapest):
        fa, ca = float(c.finish_s[away]), float(c.cost[away])
        lines.append(f"Best at another center: {label(away)}, {money(ca)}, finishing in "
                     f"{dur(fa)}.")
    if obj.name in ("cost", "mix") and fastest != i0 and c.finish_s[fastest] < f0 - 1:
        ff, cf = float(c.finish_s[fastest]), float(c.cost[fastest])
        lines.append(f"The fastest option, {label(fastest)}, finishes {dur(f0 - ff)} sooner "
                     f"(in {dur(ff)}) but {_less_more(cf - c0, money)}.")
    elif obj.name == "cost":
        lines.append("It is also the fastest option.")
    if obj.name in ("time", "mix") and cheapest != i0 and c.cost[cheapest] < c0 - 0.005:
        fc, cc = float(c.finish_s[cheapest]), float(c.cost[cheapest])
        lines.append(f"The cheapest option, {label(cheapest)}, costs {money(c0 - cc)} less "
                     f"({money(cc)}) but {_sooner_later(fc - f0, dur)}.")
    elif obj.name == "time":
        lines.append("It is also the cheapest option.")

    e = everything
    if deadline is not None:
        line = f"Meets the deadline of {dur(deadline)} with {dur(deadline - f0)} to spare"
        miss = np.flatnonzero((e.cost < c0 - 1e-9) & (e.finish_s > deadline))
        if len(miss):
            k = int(miss[np.argmin(e.cost[miss])])
            verb = "s miss" if len(miss) > 1 else " misses"
            line += (f"; {len(miss)} cheaper option{verb} it (the "
                     f"cheapest, {label(k, e)}, {money(e.cost[k])}, would finish in "
                     f"{dur(e.finish_s[k])})")
        lines.append(line + ".")
    if budget is not None:
        line = f"Within the budget of {money(budget)} with {money(budget - c0)} to spare"
        over = np.flatnonzero((e.finish_s < f0 - 1e-9) & (e.cost > budget))
        if len(over):
            k = int(over[np.argmin(e.finish_s[over])])
            verb = "s exceed" if len(over) > 1 else " exceeds"
            line += (f"; {len(over)} faster option{verb} it (the "
                     f"fastest, {label(k, e)}, would finish in {dur(e.finish_s[k])} for "
                     f"{money(e.cost[k])})")
        lines.append(line + ".")

    if move is not None:
        lines.append(_data_sentence(move, chosen, desc))
        if move.size_gb > 0 and chosen.transfer_s > 0:
            local = order[c.transfer_s[order] == 0]
            if len(local):
                k = int(local[0])
                lines.append(
                    f"Running where the data is, the best option is {label(k)}: it skips the "
                    f"{dur(chosen.transfer_s)} transfer and {money(chosen.egress_cost)} egress "
                    f"but {_less_more(c.cost[k] - c0, money)} and "
                    f"{_sooner_later(c.finish_s[k] - f0, dur)}.")
            else:
                lines.append(f"No feasible option runs where the data is ({move.location}).")
    if chosen.wait_s > 0:
        overlap = " (the data transfer overlaps the wait)" if chosen.transfer_s > 0 else ""
        lines.append(f"Waits {dur(chosen.wait_s)} for {chosen.count} chips to come "
                     f"free{overlap}.")
    if chosen.heterogeneous:
        lines.append(
            f"Mixed-chip pipeline over two pools: {chosen.split_text}; layers in proportion to "
            f"each pool's throughput, pace set by the slower stage, with a "
            f"{round((1 - HETERO_EFFICIENCY) * 100)}% cross-pool penalty.")
    if chosen.spot:
        lines.append(f"Uses the spot price ({chosen.price_per_chip_hour:g} "
                     f"{desc.currency}/chip-hour); spot capacity may be reclaimed.")
    if rank_of:
        prefs = list(rank_of)
        r = chosen.preference_rank
        if r > 0:
            lines.append(f"Preference order {', '.join(prefs)}: no feasible option on "
                         f"{', '.join(prefs[:r])}; {prefs[r]} is choice {r + 1}.")
        else:
            others = np.flatnonzero(c.rank > 0)
            if len(others):
                bf, bc = float(c.finish_s.min()), float(c.cost.min())
                k1, k2 = obj.keys(c.finish_s, c.cost, bf, bc)
                k = int(others[np.lexsort((k2[others], k1[others]))[0]])
                if (k1[k], k2[k]) < (k1[i0], k2[i0]):
                    lines.append(
                        f"Preferred {prefs[0]} (first choice) over {label(k)}, which "
                        f"{_sooner_later(c.finish_s[k] - f0, dur)} and "
                        f"{_less_more(c.cost[k] - c0, money)}.")
    return lines


def _data_sentence(move, chosen, desc) -> str:
    dur, money = desc.dur, desc.money
    what = f"The dataset {move.name} ({move.size_gb:g} GB)"
    if move.size_gb == 0 or chosen.transfer_s == 0:
        where = move.location if move.at_center else chosen.region
        return f"{what} is already at {where}: no transfer."
    if not chosen.route or len(chosen.route) < 2:
        return (f"{what} moves from {move.location} to {chosen.center} within {chosen.region} "
                f"in {dur(chosen.transfer_s)}, free of charge.")
    return (f"{what} moves from {move.location} over {' -> '.join(chosen.route)} "
            f"({chosen.route_kind} route) in {dur(chosen.transfer_s)} for "
            f"{money(chosen.egress_cost)}.")
