"""Generic CSV/Parquet job tables read through a field -> column mapping."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from suanli.errors import SuanliError
from suanli.workloads import load_philly, load_table

FIXTURES = Path(__file__).parent / "fixtures"
PHILLY = FIXTURES / "philly" / "philly_first500.csv"
OPENB = FIXTURES / "alibaba" / "openb_pod_list_first500.csv"
PHILLY_MAPPING = {
    "arrival_s": "timestamp", "duration_s": "duration", "num_chips": "num_gpus",
    "tenant": "cluster",
}


def test_philly_through_a_mapping_matches_the_philly_loader():
    table = load_table(PHILLY, PHILLY_MAPPING, time_format="%Y-%m-%d %H:%M:%S",
                       reference_accelerator="P100")
    philly = load_philly(PHILLY)
    assert len(table.jobs) == 500
    for a, b in zip(table.jobs, philly.jobs, strict=True):
        assert (a.job_id, a.arrival_s, a.duration_s, a.num_chips, a.tenant) == (
            b.job_id, b.arrival_s, b.duration_s, b.num_chips, b.tenant
        )
        assert a.reference_accelerator == "P100"
    assert table.metadata["start_time"] == "2017-09-28 16:59:54"


def test_iso_time_format_is_accepted():
    w = load_table(PHILLY, PHILLY_MAPPING, time_format="iso")
    assert w.jobs[0].arrival_s == 0.0 and w.jobs[-1].arrival_s > 0


def test_numeric_arrivals_are_kept_as_seconds(tmp_path):
    mapping = {"arrival_s": "creation_time", "duration_s": "deletion_time",
               "num_chips": "num_gpu", "job_type": "qos"}
    rows = OPENB.read_text().splitlines()
    gpu_rows = [rows[0]] + [r for r in rows[1:] if r.split(",")[3] != "0"]
    path = tmp_path / "pods.csv"
    path.write_text("\n".join(gpu_rows) + "\n")
    w = load_table(path, mapping)
    assert w.jobs[0].arrival_s == 0.0
    assert w.jobs[0].duration_s == 12537496.0
    assert w.jobs[0].job_type == "LS"
    assert w.jobs[-1].arrival_s == 10212039.0


def test_optional_fields_are_parsed(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text(
        "t,d,n,kind,who,prio,due,chips\n"
        "5,100,2,bert,alice,2.5,3600,A100|h800\n"
        "0,50,1,gpt,bob,,,\n"
    )
    mapping = {"arrival_s": "t", "duration_s": "d", "num_chips": "n", "job_type": "kind",
               "tenant": "who", "priority": "prio", "deadline_s": "due",
               "allowed_accelerators": "chips"}
    w = load_table(path, mapping)
    first, second = w.jobs
    assert (first.job_id, first.job_type, first.arrival_s) == (0, "gpt", 0.0)
    assert first.priority == 1.0 and first.deadline_s is None
    assert second.allowed_accelerators == ("A100", "H800")
    assert (second.tenant, second.priority, second.deadline_s) == ("alice", 2.5, 3600.0)


def test_quoted_csv_is_read_with_the_csv_module(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('t,d,n,kind\n0,10,1,"ResNet-18, batch 64"\n')
    w = load_table(path, {"arrival_s": "t", "duration_s": "d", "num_chips": "n",
                          "job_type": "kind"})
    assert w.jobs[0].job_type == "ResNet-18, batch 64"


def test_missing_column_names_the_column_and_field(tmp_path):
    with pytest.raises(SuanliError) as err:
        load_table(PHILLY, {**PHILLY_MAPPING, "num_chips": "gpus"})
    assert err.value.field == "gpus"
    assert "missing column 'gpus' (for num_chips)" in str(err.value)


def test_mapping_must_name_required_fields_and_known_fields():
    with pytest.raises(SuanliError) as err:
        load_table(PHILLY, {"arrival_s": "timestamp", "duration_s": "duration"})
    assert err.value.field == "mapping.num_chips"
    with pytest.raises(SuanliError) as err:
        load_table(PHILLY, {**PHILLY_MAPPING, "colour": "cluster"})
    assert err.value.field == "mapping.colour"


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("0,10,-1", "n"),
        ("0,10,0", "n"),
        ("0,10,two", "n"),
        ("0,ten,1", "d"),
        ("0,-10,1", "d"),
        ("x,10,1", "t"),
        ("-1,10,1", "t"),
    ],
)
def test_bad_values_name_the_column_and_row(tmp_path, row, column):
    path = tmp_path / "jobs.csv"
    path.write_text("t,d,n\n0,5,1\n1,5,1\n" + row + "\n")
    with pytest.raises(SuanliError) as err:
        load_table(path, {"arrival_s": "t", "duration_s": "d", "num_chips": "n"})
    assert err.value.field == column
    assert err.value.line == 4
    assert "line 4" in str(err.value)


def test_bad_date_time_is_reported(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text("t,d,n\n2017-01-01 00:00:00,5,1\n01/02/2017,5,1\n")
    with pytest.raises(SuanliError) as err:
        load_table(path, {"arrival_s": "t", "duration_s": "d", "num_chips": "n"},
                   time_format="%Y-%m-%d %H:%M:%S")
    assert (err.value.field, err.value.line) == ("t", 3)


def test_unknown_accelerator_in_a_cell_is_reported(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text("t,d,n,acc\n0,5,1,warp-drive\n")
    with pytest.raises(SuanliError) as err:
        load_table(path, {"arrival_s": "t", "duration_s": "d", "num_chips": "n",
                          "allowed_accelerators": "acc"})
    assert (err.value.field, err.value.value) == ("acc", "warp-drive")


def test_parquet_without_pyarrow_or_pandas_says_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_parquet(name, *args, **kwargs):
        if name.startswith(("pyarrow", "pandas")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_parquet)
    path = tmp_path / "jobs.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(SuanliError, match="pip install pyarrow"):
        load_table(path, {"arrival_s": "t", "duration_s": "d", "num_chips": "n"})


def test_parquet_is_read_when_pyarrow_is_installed(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "jobs.parquet"
    pq.write_table(pa.table({"t": [10.0, 0.0], "d": [5.0, 7.0], "n": [2, 1]}), path)
    w = load_table(path, {"arrival_s": "t", "duration_s": "d", "num_chips": "n"})
    assert [(j.arrival_s, j.duration_s, j.num_chips) for j in w.jobs] == [(0.0, 7.0, 1),
                                                                          (10.0, 5.0, 2)]
