"""The priority rule's greedy pass (`priority._greedy_in_order`) against its definition.

The pass filters pairs that can no longer be taken in NumPy batches between runs of its Python
loop; whatever the pairs, gangs and capacities, it must place exactly what the plain loop over
the pairs places.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suanli.engine.priority import _greedy_in_order


def _plain(js, ps, chips, cap) -> list[int]:
    """The definition: each pair in order is taken if its job is unplaced and its gang fits."""
    target = [-1] * len(chips)
    left = list(cap)
    for j, p in zip(js, ps, strict=True):
        if target[j] < 0 and chips[j] <= left[p]:
            left[p] -= chips[j]
            target[j] = p
    return target


@st.composite
def _instances(draw):
    n_jobs = draw(st.integers(1, 60))
    n_pools = draw(st.integers(1, 5))
    chips = draw(st.lists(st.sampled_from([1, 1, 1, 2, 4, 8]), min_size=n_jobs,
                          max_size=n_jobs))
    cap = draw(st.lists(st.integers(0, 40), min_size=n_pools, max_size=n_pools))
    pairs = [(j, p) for j in range(n_jobs) for p in range(n_pools)
             if draw(st.booleans())]
    order = draw(st.permutations(pairs)) if pairs else []
    return order, np.array(chips, dtype=np.int64), np.array(cap, dtype=np.int64)


@settings(max_examples=400, deadline=None)
@given(_instances())
def test_the_greedy_pass_places_what_the_plain_loop_places(instance):
    order, chips, cap = instance
    js = np.array([j for j, _ in order], dtype=np.int64)
    ps = np.array([p for _, p in order], dtype=np.int64)
    got = _greedy_in_order(js, ps, chips, cap)
    assert got.tolist() == _plain(js.tolist(), ps.tolist(), chips.tolist(), cap.tolist())


def test_a_long_list_with_full_pools_midway_matches_the_plain_loop():
    rng = np.random.default_rng(7)
    chips = rng.choice([1, 1, 2, 4], size=3000)
    cap = np.array([150, 90, 40])
    pairs = np.array([(j, p) for j in range(3000) for p in range(3)])
    pairs = pairs[rng.permutation(len(pairs))]
    got = _greedy_in_order(pairs[:, 0], pairs[:, 1], chips, cap)
    assert got.tolist() == _plain(pairs[:, 0].tolist(), pairs[:, 1].tolist(), chips.tolist(),
                                  cap.tolist())
