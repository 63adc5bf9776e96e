"""Gavel-mode replays reproduce Gavel's own simulator (stanford-futuredata/gavel, c4fa400).

Reference numbers: ../shared/data/README.md ("Reference results for the Gavel files"); the
traces and throughputs are copies in tests/fixtures/gavel (see tests/fixtures/README.md).

What the replay matches and why the rest does not:
- fifo_perf on the single-GPU trace matches to 0.3% (JCT) and exactly (makespan): rounds,
  arrivals, Gavel's 1920 s reallocation interval and its priority rule are reproduced.
- max_min_fairness(_perf) on max_min_fairness.trace match within 0.5% when the policy's LP is
  solved without the policies package's second "efficiency" pass (checked by hand); with it,
  within 5%. On the single-GPU trace they come out ~8% lower (better) than Gavel: Gavel's
  max-min LP is solved by ECOS, an interior-point method that spreads the slack of jobs not at
  the minimum, while HiGHS returns a vertex plus an efficiency pass; the LP optimum is not
  unique and the allocations of non-bottleneck jobs differ.
- finish_time_fairness_perf comes out ~14% lower (better) than Gavel's 3.23 h. Gavel's FTF
  minimises only the largest rho (one epigraph objective, ECOS interior point); ours also
  improves every other job's rho (a Dinkelbach-style iteration of max-min LPs). Same cause as
  above, larger effect: a policy difference, not a mechanism one.
- fifo (agnostic) is random by design: Gavel gives each arriving job a uniformly random
  accelerator type from a seeded RNG; with our policy's hashed choice (and with an exact copy
  of Gavel's FIFO RNG tried for seeds 0-5) average JCT lands in 5.2-6.4 h (reference 6.28 h)
  but makespan in 43-59 h (reference 37.85 h): the makespan is set by which long jobs are
  pinned to K80s, i.e. by the RNG stream. The version of Gavel's fifo.py at c4fa400 is not
  known; one stored version picks a stale loop variable instead of the random type.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.engine import Cluster
from suanli.engine.adapters import engine_jobs_from_workload
from suanli.sim.runner import simulate
from suanli.workloads import load_gavel_throughputs, load_gavel_trace

FIXTURES = Path(__file__).parent / "fixtures" / "gavel"
HOUR = 3600.0

SINGLE = "gen_100jobs_lam1200_seed0_single.trace"
MULTI = "gen_100jobs_lam1200_seed0_multi.trace"
MMF = "max_min_fairness.trace"
MAKESPAN = "minimize_makespan.trace"

# (trace, V100:P100:K80, policy, average JCT h, makespan h) from the reference table.
REFERENCE = [
    (SINGLE, (4, 4, 4), "max_min_fairness", 4.76, 36.78),
    (SINGLE, (4, 4, 4), "max_min_fairness_perf", 3.11, 37.03),
    (SINGLE, (4, 4, 4), "fifo", 6.28, 37.85),
    (SINGLE, (4, 4, 4), "fifo_perf", 3.80, 35.71),
    (SINGLE, (4, 4, 4), "finish_time_fairness_perf", 3.23, 37.04),
    (MULTI, (4, 4, 4), "max_min_fairness", 9.81, None),
    (MULTI, (4, 4, 4), "max_min_fairness_perf", 8.55, None),
    (MMF, (8, 16, 24), "max_min_fairness", 5.55, None),
    (MMF, (8, 16, 24), "max_min_fairness_perf", 4.06, None),
    (MAKESPAN, (4, 4, 4), "min_total_duration", None, 69.88),
    (MAKESPAN, (4, 4, 4), "min_total_duration_perf", None, 60.48),
]

KNOWN_DEVIATIONS = {
    (SINGLE, "fifo"): "agnostic FIFO pins jobs to random chip types: RNG-dependent makespan",
    (SINGLE, "finish_time_fairness_perf"): "FTF LP optimum not unique; ours improves all rho",
}

_TABLE = load_gavel_throughputs(FIXTURES / "simulation_throughputs_trimmed.json")


def replay(trace: str, counts: tuple[int, int, int], policy: str):
    workload = load_gavel_trace(FIXTURES / trace, throughputs=_TABLE)
    cluster = Cluster.from_counts({"V100": counts[0], "P100": counts[1], "K80": counts[2]})
    jobs = engine_jobs_from_workload(workload, cluster)
    return simulate(jobs, cluster, policy, gavel_mode=True, seed=0).summary()


def _params():
    for trace, counts, policy, jct_h, makespan_h in REFERENCE:
        marks = []
        if (trace, policy) in KNOWN_DEVIATIONS:
            marks.append(pytest.mark.xfail(reason=KNOWN_DEVIATIONS[(trace, policy)],
                                           strict=False))
        yield pytest.param(trace, counts, policy, jct_h, makespan_h, marks=marks,
                           id=f"{trace.split('.')[0]}-{policy}")


@pytest.mark.parametrize("trace,counts,policy,jct_h,makespan_h", list(_params()))
def test_gavel_mode_reproduces_reference_within_ten_percent(
    trace, counts, policy, jct_h, makespan_h
):
    s = replay(trace, counts, policy)
    assert s["states"]["succeeded"] == s["jobs"]
    if jct_h is not None:
        assert s["avg_jct_s"] / HOUR == pytest.approx(jct_h, rel=0.10)
    if makespan_h is not None:
        assert s["makespan_s"] / HOUR == pytest.approx(makespan_h, rel=0.10)


def test_fifo_perf_replay_matches_gavel_closely():
    """The tightest anchor: no LP, so only the mechanism decides (Gavel: 3.80 h, 35.71 h)."""
    s = replay(SINGLE, (4, 4, 4), "fifo_perf")
    assert s["avg_jct_s"] / HOUR == pytest.approx(3.80, rel=0.01)
    assert s["makespan_s"] / HOUR == pytest.approx(35.71, rel=0.005)


@pytest.mark.parametrize("trace,counts", [(SINGLE, (4, 4, 4)), (MULTI, (4, 4, 4)),
                                          (MMF, (8, 16, 24))])
def test_suanli_jct_beats_max_min_fairness_perf_on_average_jct(trace, counts):
    ours = replay(trace, counts, "suanli_jct")
    mmf = replay(trace, counts, "max_min_fairness_perf")
    assert ours["states"]["succeeded"] == ours["jobs"]
    assert ours["avg_jct_s"] < mmf["avg_jct_s"]


def test_heterogeneity_aware_policies_beat_agnostic_ones():
    for trace, counts in ((SINGLE, (4, 4, 4)), (MMF, (8, 16, 24))):
        agnostic = replay(trace, counts, "max_min_fairness")
        aware = replay(trace, counts, "max_min_fairness_perf")
        assert aware["avg_jct_s"] < agnostic["avg_jct_s"]
