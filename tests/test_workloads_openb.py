"""Alibaba openb pods and nodes (tests/fixtures/alibaba: first 500 pods, the whole node list)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from suanli.errors import SuanliError
from suanli.workloads import load_openb, load_openb_nodes, parse_gpu_spec

ALIBABA = Path(__file__).parent / "fixtures" / "alibaba"
PODS = ALIBABA / "openb_pod_list_first500.csv"
NODES = ALIBABA / "openb_node_list_gpu_node.csv"
HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
    "deletion_time,scheduled_time\n"
)


@pytest.fixture(scope="module")
def workload():
    return load_openb(PODS, NODES)


def test_gpu_pods_become_jobs_and_cpu_only_pods_are_counted(workload):
    with PODS.open() as f:
        rows = list(csv.DictReader(f))
    cpu_only = sum(1 for r in rows if r["num_gpu"] == "0")
    assert cpu_only == 39
    assert workload.metadata["skipped_cpu_only"] == cpu_only
    assert len(workload.jobs) == 500 - cpu_only
    assert workload.metadata["unscheduled"] == 31
    assert [j.job_id for j in workload.jobs] == list(range(len(workload.jobs)))
    arrivals = [j.arrival_s for j in workload.jobs]
    assert arrivals == sorted(arrivals)


def test_first_and_last_pods_match_the_file(workload):
    first = workload.jobs[0]
    assert first.extra["name"] == "openb-pod-0000"
    assert (first.arrival_s, first.duration_s, first.num_chips) == (0.0, 12537496.0, 1)
    assert first.extra["qos"] == "LS"
    last = workload.jobs[-1]
    assert last.extra["name"] == "openb-pod-0499"
    assert last.arrival_s == 10212039.0
    assert last.duration_s == 10212189.0 - 10212039.0


def test_fractional_gpu_share_takes_one_chip_and_keeps_the_share(workload):
    pod = next(j for j in workload.jobs if j.extra["name"] == "openb-pod-0001")
    assert pod.num_chips == 1
    assert pod.extra["gpu_milli"] == "460"
    assert pod.duration_s == 12902960 - 427061
    assert workload.metadata["fractional_gpu_jobs"] == sum(
        1 for j in workload.jobs if j.extra["gpu_milli"] != "1000"
    )


def test_multi_gpu_pod_keeps_its_gpu_count(workload):
    pod = next(j for j in workload.jobs if j.extra["name"] == "openb-pod-0017")
    assert pod.num_chips == 8
    assert pod.duration_s == 10769854 - 9437497


def test_unscheduled_pods_run_from_creation_or_are_skipped(workload):
    pending = [j for j in workload.jobs if j.extra["scheduled"] == "0"]
    assert len(pending) == 31 and all(j.extra["pod_phase"] == "Pending" for j in pending)
    strict = load_openb(PODS, include_unscheduled=False)
    assert len(strict.jobs) == len(workload.jobs) - 31
    assert strict.metadata["skipped_unscheduled"] == 31


def test_node_inventory_maps_models_to_catalog_ids():
    cluster = load_openb_nodes(NODES)
    assert cluster == {"G2": 4392, "T4": 842, "V100": 399, "G3": 312, "P100": 265, "A10": 2}
    with NODES.open() as f:
        assert sum(cluster.values()) == sum(int(r["gpu"]) for r in csv.DictReader(f))


def test_node_csv_puts_the_cluster_in_metadata(workload):
    assert workload.metadata["cluster"]["T4"] == 842


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        ("", ()),
        ("V100M16|V100M32", ("V100",)),
        ("T4", ("T4",)),
        ("P100|T4", ("P100", "T4")),
        ("A10|G2", ("A10", "G2")),
        ("G1|G3", ("G1", "G3")),
    ],
)
def test_gpu_spec_maps_to_catalog_ids_and_keeps_internal_names(spec, allowed):
    assert parse_gpu_spec(spec) == allowed


def test_gpu_spec_column_reaches_allowed_accelerators(tmp_path):
    path = tmp_path / "pods.csv"
    path.write_text(HEADER + "p0,1000,1024,1,1000,V100M16|V100M32,LS,Running,0,100,5\n")
    job = load_openb(path).jobs[0]
    assert job.allowed_accelerators == ("V100",)
    assert job.duration_s == 95.0


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("p0,1000,1024,-1,1000,,LS,Running,0,100,0", "num_gpu"),
        ("p0,1000,1024,x,1000,,LS,Running,0,100,0", "num_gpu"),
        ("p0,1000,1024,1,1500,,LS,Running,0,100,0", "gpu_milli"),
        ("p0,1000,1024,1,1000,,LS,Running,soon,100,0", "creation_time"),
        ("p0,1000,1024,1,1000,,LS,Running,0,later,0", "deletion_time"),
    ],
)
def test_bad_cells_name_the_column_and_line(tmp_path, row, field):
    path = tmp_path / "pods.csv"
    path.write_text(HEADER + "ok,1000,1024,1,1000,,LS,Running,0,100,0\n" + row + "\n")
    with pytest.raises(SuanliError) as err:
        load_openb(path)
    assert err.value.field == field
    assert err.value.line == 3


def test_missing_pod_column_is_named(tmp_path):
    path = tmp_path / "pods.csv"
    path.write_text("name,num_gpu,creation_time,deletion_time\np0,1,0,10\n")
    with pytest.raises(SuanliError) as err:
        load_openb(path)
    assert err.value.field == "gpu_milli"


def test_bad_node_rows_are_reported(tmp_path):
    path = tmp_path / "nodes.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,-2,T4\n")
    with pytest.raises(SuanliError) as err:
        load_openb_nodes(path)
    assert (err.value.field, err.value.line) == ("gpu", 2)
    path.write_text("sn,cpu_milli,memory_mib,gpus,model\nn0,1,1,2,T4\n")
    with pytest.raises(SuanliError, match="missing column 'gpu'"):
        load_openb_nodes(path)
