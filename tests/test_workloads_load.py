"""The format dispatcher and --jobs FROM:TO selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.errors import SuanliError
from suanli.workloads import (
    detect_format,
    load_gavel_trace,
    load_workload,
    parse_job_range,
    select_jobs,
)

FIXTURES = Path(__file__).parent / "fixtures"
TRACE = FIXTURES / "gavel" / "max_min_fairness.trace"
PHILLY = FIXTURES / "philly" / "philly_first500.csv"
PODS = FIXTURES / "alibaba" / "openb_pod_list_first500.csv"


def test_formats_are_detected_from_file_names():
    assert detect_format(TRACE) == "gavel"
    assert detect_format(PHILLY) == "philly"
    assert detect_format(PODS) == "openb"
    assert detect_format("jobs.csv") == "csv"
    assert detect_format("jobs.parquet") == "parquet"
    with pytest.raises(SuanliError):
        detect_format("jobs.xlsx")


def test_each_format_loads_through_the_dispatcher():
    assert len(load_workload(TRACE, "gavel").jobs) == 96
    assert len(load_workload(PHILLY, "philly").jobs) == 500
    assert len(load_workload(PODS, "openb").jobs) == 461
    table = load_workload(PHILLY, "csv", mapping={"arrival_s": "timestamp",
                                                  "duration_s": "duration",
                                                  "num_chips": "num_gpus"}, time_format="iso")
    assert len(table.jobs) == 500
    assert len(load_workload(TRACE).jobs) == 96  # auto


def test_loader_options_pass_through():
    w = load_workload(
        TRACE, "gavel", throughputs=FIXTURES / "gavel" / "simulation_throughputs_trimmed.json"
    )
    assert w.throughputs is not None
    assert load_workload(PHILLY, "philly", reference_accelerator="V100").jobs[0] \
        .reference_accelerator == "V100"


def test_bad_format_or_option_is_a_user_error():
    with pytest.raises(SuanliError) as err:
        load_workload(TRACE, "slurm")
    assert err.value.field == "format"
    with pytest.raises(SuanliError) as err:
        load_workload(TRACE, "gavel", colour="red")
    assert err.value.field == "opts"
    with pytest.raises(SuanliError) as err:
        load_workload(PHILLY, "csv")
    assert err.value.field == "mapping"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:10", (0, 10)), (":5", (None, 5)), ("90:", (90, None)), ("7", (7, 8)),
     ("-10:", (-10, None))],
)
def test_job_ranges_parse_like_slices(text, expected):
    assert parse_job_range(text) == expected


def test_bad_job_range_names_the_option():
    with pytest.raises(SuanliError) as err:
        parse_job_range("a:b")
    assert err.value.field == "jobs"


def test_select_jobs_slices_by_position_and_keeps_ids():
    w = load_gavel_trace(TRACE)
    part = select_jobs(w, 10, 20)
    assert [j.job_id for j in part.jobs] == list(range(10, 20))
    assert part.jobs[0] == w.jobs[10]
    assert part.metadata["selected_jobs"] == 10
    assert select_jobs(w, *parse_job_range("90:")).jobs == w.jobs[90:]


def test_select_jobs_can_rebase_arrivals():
    w = load_gavel_trace(TRACE)
    part = select_jobs(w, 50, 60, rebase=True)
    assert part.jobs[0].arrival_s == 0.0
    shift = w.jobs[50].arrival_s
    assert [j.arrival_s + shift for j in part.jobs] == [j.arrival_s for j in w.jobs[50:60]]
    assert part.metadata["rebased_by_s"] == shift
