"""Serving at a rate: a placement that falls behind the arrivals is not offered."""

from __future__ import annotations

from suanli.jobs import parse_job
from suanli.network import load_network
from suanli.plan import plan


def _serving(rate_per_s: float, max_count: int = 64):
    return parse_job({
        "name": "chat", "kind": "inference", "model": "llama-3-70b",
        "work": {"rate_per_s": rate_per_s, "window_s": 3600, "input_tokens": 1024,
                 "output_tokens": 256},
        "resources": {"accelerators": ["H20", "H100", "910B"],
                      "count": {"min": 8, "max": max_count}},
    })


def test_every_serving_option_keeps_up_with_the_rate():
    result = plan(_serving(20), load_network("east-west"))
    assert result.chosen is not None
    assert all(o.run_s <= 3600 * (1 + 1e-9) for o in result.options)


def test_a_rate_nothing_sustains_is_infeasible_with_the_best_rate_named():
    result = plan(_serving(1e6, max_count=8), load_network("east-west"))
    assert result.chosen is None
    assert result.infeasible and result.infeasible[0].startswith("work.rate_per_s: 1e+06")
    assert "the most is" in result.infeasible[0]
