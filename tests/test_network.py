"""Network files: the built-in east-west network and validation of user networks."""

from __future__ import annotations

import pytest
import yaml

from suanli.errors import SpecError, UnknownNameError
from suanli.network import load_network

HUBS = {"beijing-tianjin-hebei", "yangtze-river-delta", "greater-bay-area", "chengdu-chongqing",
        "inner-mongolia", "guizhou", "gansu", "ningxia"}
CLUSTERS = {"zhangjiakou", "wuhu", "yrd-demo-zone", "shaoguan", "tianfu", "chongqing",
            "horinger", "guian", "qingyang", "zhongwei"}


def test_east_west_has_eight_hubs_and_ten_clusters_and_says_it_is_illustrative():
    net = load_network("east-west")
    assert net.regions == HUBS
    assert {c.id for c in net.centers} == CLUSTERS
    assert net.illustrative and "illustrative" in net.description.lower()
    assert net.currency == "CNY"


def test_west_power_is_cheaper_than_east():
    net = load_network("east-west")
    east = [c.electricity_price_per_kwh for c in net.centers
            if c.region in {"beijing-tianjin-hebei", "yangtze-river-delta", "greater-bay-area"}]
    west = [c.electricity_price_per_kwh for c in net.centers
            if c.region in {"inner-mongolia", "guizhou", "gansu", "ningxia"}]
    assert max(west) < min(east)


def test_pools_resolve_to_catalog_ids_with_chips_per_node():
    net = load_network("east-west")
    accs = {p.accelerator for _, p in net.pools()}
    assert {"A100", "A800", "H800", "H20", "L20", "910B", "RTX4090"} <= accs
    assert all(p.chips_per_node == 8 for _, p in net.pools())


def _write(tmp_path, data):
    f = tmp_path / "net.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def _net(**over):
    data = {"name": "t", "centers": [{"id": "c1", "name": "C1", "region": "r1", "lat": 1,
                                      "lon": 2, "electricity_price_per_kwh": 0.5,
                                      "pools": [{"id": "p", "accelerator": "H100", "nodes": 1,
                                                 "price_per_chip_hour": 10}]}]}
    data.update(over)
    return data


def test_unknown_accelerator_in_a_pool_names_the_path(tmp_path):
    data = _net()
    data["centers"][0]["pools"][0]["accelerator"] = "H900"
    with pytest.raises(UnknownNameError) as err:
        load_network(_write(tmp_path, data))
    assert err.value.field == "centers.0.pools.0.accelerator"


def test_negative_price_and_unknown_link_region_are_named(tmp_path):
    data = _net()
    data["centers"][0]["pools"][0]["price_per_chip_hour"] = -1
    with pytest.raises(SpecError, match=r"centers\.0\.pools\.0\.price_per_chip_hour"):
        load_network(_write(tmp_path, data))
    with pytest.raises(SpecError, match=r"links\.0\.b: unknown region 'mars'"):
        load_network(_write(tmp_path, _net(links=[{"a": "r1", "b": "mars",
                                                    "bandwidth_gbps": 10}])))


def test_unknown_builtin_name():
    with pytest.raises(UnknownNameError):
        load_network("east-wset")
