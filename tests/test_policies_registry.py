"""Policies are found by name or alias; an unknown name says which names are close."""

from __future__ import annotations

import pytest

from suanli.errors import UnknownNameError
from suanli.policies import canonical_name, get_policy, policy_aliases, policy_names, register

EXPECTED = {
    "fifo", "fifo_perf", "max_min_fairness", "max_min_fairness_perf", "finish_time_fairness",
    "finish_time_fairness_perf", "min_total_duration", "min_total_duration_perf", "srtf",
    "srtf_perf", "las", "max_throughput_per_cost", "edf", "suanli_jct",
}


def test_all_issue_policies_are_registered():
    assert EXPECTED <= set(policy_names())


def test_aliases_resolve_to_the_same_function():
    assert get_policy("least_attained_service") is get_policy("las")
    assert get_policy("MMF-perf") is get_policy("max_min_fairness_perf")
    assert canonical_name("themis_perf") == "finish_time_fairness_perf"
    assert all(target in policy_names() for target in policy_aliases().values())


def test_unknown_name_lists_close_names():
    with pytest.raises(UnknownNameError) as err:
        get_policy("max_min_fairnes_perf")
    assert "max_min_fairness_perf" in err.value.closest
    assert err.value.field == "policy"


def test_registering_a_taken_name_fails():
    with pytest.raises(ValueError):
        register("fifo")(lambda state: None)
