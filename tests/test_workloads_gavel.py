"""Gavel traces and throughput tables, checked against the files in tests/fixtures/gavel."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.errors import SuanliError
from suanli.workloads import (
    gavel_reference_duration_s,
    load_gavel_throughputs,
    load_gavel_trace,
)

GAVEL = Path(__file__).parent / "fixtures" / "gavel"
THROUGHPUTS = GAVEL / "simulation_throughputs_trimmed.json"


@pytest.fixture(scope="module")
def table():
    return load_gavel_throughputs(THROUGHPUTS)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("gen_100jobs_lam1200_seed0_single.trace", 100),
        ("gen_100jobs_lam1200_seed0_multi.trace", 100),
        ("max_min_fairness.trace", 96),
        ("minimize_makespan.trace", 100),
    ],
)
def test_trace_has_one_job_per_line_with_ids_in_file_order(name, count):
    w = load_gavel_trace(GAVEL / name)
    assert len(w.jobs) == count
    assert [j.job_id for j in w.jobs] == list(range(count))
    arrivals = [j.arrival_s for j in w.jobs]
    assert arrivals == sorted(arrivals)
    assert w.metadata["format"] == "gavel"


def test_first_and_last_jobs_match_the_file():
    w = load_gavel_trace(GAVEL / "max_min_fairness.trace")
    first, second, last = w.jobs[0], w.jobs[1], w.jobs[-1]
    assert first.job_type == "ResNet-18 (batch size 128)"
    assert first.total_steps == 925982
    assert first.num_chips == 4
    assert first.arrival_s == 0
    assert first.priority == 1.0
    assert first.deadline_s is None  # SLO -1 means none
    assert first.extra["command"] == "python3 main.py --data_dir=%s/cifar10 --batch_size 128"
    assert first.extra["working_dir"] == "image_classification/cifar10"
    assert first.extra["num_steps_arg"] == "--num_steps"
    assert second.job_type == "Transformer (batch size 128)" and second.num_chips == 2
    assert last.job_type == "LM (batch size 40)"
    assert last.total_steps == 297215
    assert last.arrival_s == 46317


def test_single_gpu_trace_is_all_one_chip_and_multi_has_larger_jobs():
    single = load_gavel_trace(GAVEL / "gen_100jobs_lam1200_seed0_single.trace")
    multi = load_gavel_trace(GAVEL / "gen_100jobs_lam1200_seed0_multi.trace")
    assert {j.num_chips for j in single.jobs} == {1}
    assert {j.num_chips for j in multi.jobs} == {1, 2, 4}
    assert single.jobs[-1].arrival_s == 120667


def test_throughputs_resolve_worker_types_to_catalog_ids(table):
    assert table.accelerators == ["K80", "P100", "V100"]
    assert table.get("ResNet-18 (batch size 128)", "V100", 1) == 17.994906225052176
    assert table.get("LM (batch size 40)", "P100", 1) == 35.76638325549232
    assert table.get("A3C", "V100", 1) == 7.175767179667988
    assert table.get("A3C", "V100", 8) is None  # A3C is not distributed


def test_zero_throughput_is_kept_as_does_not_run(table):
    assert table.get("ResNet-50 (batch size 128)", "K80", 2) == 0.0


def test_unconsolidated_throughputs_are_separate(table):
    key = ("Transformer (batch size 128)", "V100", 4)
    assert table.get(*key) == 14.17451716526748
    assert table.get_unconsolidated(*key) == 7.783568157137881


def test_colocated_pairs_give_both_jobs_rates(table):
    lm_with_resnet = table.get_colocated(
        "LM (batch size 40)", "P100", 1, "ResNet-18 (batch size 128)", 1
    )
    assert lm_with_resnet == (15.443792018995204, 8.215647282099425)
    resnet_with_lm = table.get_colocated(
        "ResNet-18 (batch size 128)", "P100", 1, "LM (batch size 40)", 1
    )
    assert resnet_with_lm == (8.215647282099425, 15.443792018995204)
    assert table.get_colocated("A3C", "P100", 1, "LM (batch size 40)", 1) is None


def test_every_trace_job_type_has_a_v100_throughput(table):
    for trace in GAVEL.glob("*.trace"):
        for job in load_gavel_trace(trace).jobs:
            assert table.get(job.job_type, "V100", job.num_chips), (trace.name, job.job_type)


def test_trace_with_table_attaches_it_and_times_jobs_on_v100(table):
    w = load_gavel_trace(GAVEL / "max_min_fairness.trace", throughputs=THROUGHPUTS)
    assert w.throughputs is not None
    job = w.jobs[-1]
    assert gavel_reference_duration_s(job, w.throughputs) == pytest.approx(
        297215 / table.get("LM (batch size 40)", "V100", 1)
    )


def test_positive_slo_becomes_a_deadline_of_slo_times_v100_duration(tmp_path, table):
    line = (GAVEL / "max_min_fairness.trace").read_text().splitlines()[0].split("\t")
    line[8] = "2.0"
    path = tmp_path / "slo.trace"
    path.write_text("\t".join(line) + "\n")
    job = load_gavel_trace(path, throughputs=table).jobs[0]
    rate = table.get("ResNet-18 (batch size 128)", "V100", 4)
    assert job.deadline_s == pytest.approx(2.0 * 925982 / rate)


def _write_with(tmp_path, column: int, value: str) -> Path:
    lines = (GAVEL / "minimize_makespan.trace").read_text().splitlines()[:5]
    cells = lines[2].split("\t")
    cells[column] = value
    lines[2] = "\t".join(cells)
    path = tmp_path / "bad.trace"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        (6, "0", "scale_factor"),
        (6, "-2", "scale_factor"),
        (6, "four", "scale_factor"),
        (5, "many", "total_steps"),
        (9, "soon", "arrival_time"),
        (9, "-5", "arrival_time"),
    ],
)
def test_bad_cells_name_the_column_and_line(tmp_path, column, value, field):
    with pytest.raises(SuanliError) as err:
        load_gavel_trace(_write_with(tmp_path, column, value))
    assert err.value.field == field
    assert err.value.line == 3
    assert "line 3" in str(err.value) and field in str(err.value)


def test_wrong_column_count_is_reported(tmp_path):
    path = tmp_path / "short.trace"
    path.write_text("ResNet-18 (batch size 128)\tpython3 main.py\t1\t100\t1\n")
    with pytest.raises(SuanliError, match="line 1.*10 tab-separated columns"):
        load_gavel_trace(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SuanliError, match="cannot read Gavel trace"):
        load_gavel_trace(tmp_path / "nope.trace")


def test_malformed_throughput_json_is_reported(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text('{"v100": {"ResNet-18, 1": {"null": 3.0}}}')
    with pytest.raises(SuanliError) as err:
        load_gavel_throughputs(bad)
    assert "v100.ResNet-18, 1" in str(err.value)
    bad.write_text('{"v100": {"(\'A3C\', 1)": {"null": -1}}}')
    with pytest.raises(SuanliError, match="non-negative"):
        load_gavel_throughputs(bad)
    bad.write_text('{"tpu9": {"(\'A3C\', 1)": {"null": 1}}}')
    with pytest.raises(SuanliError, match="tpu9"):
        load_gavel_throughputs(bad)
    bad.write_text("{not json")
    with pytest.raises(SuanliError, match="not valid JSON"):
        load_gavel_throughputs(bad)
