"""Philly loader on the first 500 rows of philly.csv (tests/fixtures/philly)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest

from suanli.errors import SuanliError
from suanli.workloads import load_philly

PHILLY = Path(__file__).parent / "fixtures" / "philly" / "philly_first500.csv"
HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


@pytest.fixture(scope="module")
def workload():
    return load_philly(PHILLY)


def test_every_row_becomes_a_job_sorted_by_submission(workload):
    assert len(workload.jobs) == 500
    assert workload.metadata["rows"] == 500
    assert [j.job_id for j in workload.jobs] == list(range(500))
    arrivals = [j.arrival_s for j in workload.jobs]
    assert arrivals == sorted(arrivals)
    assert arrivals[0] == 0.0


def test_first_and_last_arrivals_match_the_file(workload):
    # Earliest row of the slice: 2017-09-28 16:59:54, 908661 s on 4 GPUs, cluster b436b2.
    first = workload.jobs[0]
    assert (first.duration_s, first.num_chips, first.tenant) == (908661.0, 4, "b436b2")
    # Latest: the file's first row, 2017-10-09 07:01:55, 66 s on 1 GPU, cluster 11cb48.
    last = workload.jobs[-1]
    span = datetime(2017, 10, 9, 7, 1, 55) - datetime(2017, 9, 28, 16, 59, 54)
    assert last.arrival_s == span.total_seconds()
    assert (last.duration_s, last.num_chips, last.tenant) == (66.0, 1, "11cb48")
    assert workload.metadata["start_time"] == "2017-09-28 16:59:54"


def test_reference_chip_is_p100_unless_given(workload):
    assert {j.reference_accelerator for j in workload.jobs} == {"P100"}
    assert workload.metadata["reference_accelerator"] == "P100"
    other = load_philly(PHILLY, reference_accelerator="v100")
    assert other.jobs[0].reference_accelerator == "V100"


def test_gpu_counts_and_tenants_match_the_file(workload):
    with PHILLY.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(j.num_chips for j in workload.jobs) == sorted(int(r["num_gpus"]) for r in rows)
    assert {j.tenant for j in workload.jobs} == {r["cluster"] for r in rows}
    total = sum(j.duration_s * j.num_chips for j in workload.jobs)
    assert total == pytest.approx(sum(float(r["gpu_time"]) for r in rows))


def test_equal_timestamps_keep_file_order(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        HEADER
        + "2017-10-01 00:00:10,30.0,1,30.0,b\n"
        + "2017-10-01 00:00:00,10.0,2,20.0,a\n"
        + "2017-10-01 00:00:10,20.0,4,80.0,c\n"
    )
    w = load_philly(path)
    assert [j.tenant for j in w.jobs] == ["a", "b", "c"]
    assert [j.arrival_s for j in w.jobs] == [0.0, 10.0, 10.0]


def test_rows_without_work_are_dropped_and_counted(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        HEADER
        + "2017-10-01 00:00:00,10.0,1,10.0,a\n"
        + "2017-10-01 00:00:01,0.0,1,0.0,a\n"
        + "2017-10-01 00:00:02,-3.0,1,0.0,a\n"
        + "2017-10-01 00:00:03,10.0,0,0.0,a\n"
        + "2017-10-01 00:00:04,10.0,-1,0.0,a\n"
    )
    w = load_philly(path)
    assert len(w.jobs) == 1
    assert w.metadata["dropped_nonpositive_duration"] == 2
    assert w.metadata["dropped_nonpositive_gpus"] == 2


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("2017-10-01 00:00:00,ten,1,10.0,a", "duration"),
        ("2017-10-01 00:00:00,10.0,one,10.0,a", "num_gpus"),
        ("2017-10-01 00:00:00,10.0,1.5,10.0,a", "num_gpus"),
        ("yesterday,10.0,1,10.0,a", "timestamp"),
        ("2017-10-01 00:00:00,nan,1,10.0,a", "duration"),
    ],
)
def test_bad_cells_name_the_column_and_line(tmp_path, row, field):
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "2017-10-01 00:00:00,10.0,1,10.0,a\n" + row + "\n")
    with pytest.raises(SuanliError) as err:
        load_philly(path)
    assert err.value.field == field
    assert err.value.line == 3
    assert "line 3" in str(err.value)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("timestamp,duration,gpus,cluster\n2017-10-01 00:00:00,10.0,1,a\n")
    with pytest.raises(SuanliError) as err:
        load_philly(path)
    assert err.value.field == "num_gpus"
    assert "missing column 'num_gpus'" in str(err.value)


def test_short_row_is_reported(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "2017-10-01 00:00:00,10.0\n")
    with pytest.raises(SuanliError, match="line 2"):
        load_philly(path)


def test_unknown_reference_chip_is_refused():
    with pytest.raises(SuanliError) as err:
        load_philly(PHILLY, reference_accelerator="P40X")
    assert err.value.field == "reference_accelerator"


def test_arrivals_do_not_depend_on_the_local_time_zone(tmp_path, monkeypatch):
    import time

    path = tmp_path / "p.csv"
    # US daylight saving ended at 2017-11-05 02:00 local time; wall-clock gap is 2 h.
    path.write_text(
        HEADER + "2017-11-05 00:30:00,10.0,1,10.0,a\n" + "2017-11-05 02:30:00,10.0,1,10.0,a\n"
    )
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    if hasattr(time, "tzset"):
        time.tzset()
    try:
        assert load_philly(path).jobs[1].arrival_s == 7200.0
    finally:
        monkeypatch.undo()
        if hasattr(time, "tzset"):
            time.tzset()
