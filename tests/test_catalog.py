"""The accelerator catalog: coverage, forgiving names, overrides, clear errors."""

from __future__ import annotations

import pytest

from suanli.catalog import builtin_catalog, load_catalog
from suanli.errors import SpecError, UnknownNameError

REQUIRED = ["V100", "A100-40GB", "A100", "A800", "H100", "H800", "H20", "L20", "L40S", "RTX4090",
            "H200", "B200", "910B", "910C", "MI250X", "MI300X", "MI325X", "MLU370"]


def test_catalog_has_at_least_twenty_chips_including_the_required_ones():
    cat = builtin_catalog()
    assert len(cat) >= 20
    for chip in REQUIRED:
        assert cat.get(chip).id == chip


@pytest.mark.parametrize(
    ("name", "expected"),
    [("H800", "H800"), ("h800", "H800"), ("NVIDIA H800 80GB", "H800"), ("910B", "910B"),
     ("Ascend910B", "910B"), ("Ascend 910B", "910B"), ("A100 40GB", "A100-40GB"),
     ("a100", "A100"), ("RTX 4090", "RTX4090"), ("Instinct MI300X", "MI300X")],
)
def test_names_are_forgiving(name, expected):
    assert builtin_catalog().get(name).id == expected


def test_unknown_name_lists_closest_known():
    with pytest.raises(UnknownNameError) as err:
        builtin_catalog().get("H900")
    assert "H800" in err.value.message and err.value.field == "accelerator"


def test_every_entry_cites_its_sources():
    assert all(acc.sources for acc in builtin_catalog())


def test_export_variants_differ_only_in_links():
    cat = builtin_catalog()
    h100, h800 = cat.get("H100"), cat.get("H800")
    assert h100.bf16_tflops == h800.bf16_tflops and h100.memory_bw_tbs == h800.memory_bw_tbs
    assert h800.scaleup_bw_gbs < h100.scaleup_bw_gbs


def test_full_mesh_gives_a_small_group_a_fraction_of_the_link():
    mi300x = builtin_catalog().get("MI300X")
    assert mi300x.peer_bw_gbs(2) == pytest.approx(mi300x.scaleup_bw_gbs / 7)
    assert mi300x.peer_bw_gbs(8) == pytest.approx(mi300x.scaleup_bw_gbs)
    h100 = builtin_catalog().get("H100")
    assert h100.peer_bw_gbs(2) == h100.peer_bw_gbs(8)


def test_user_file_adds_and_overrides(tmp_path):
    f = tmp_path / "chips.yaml"
    f.write_text(
        "accelerators:\n"
        "  - {id: h800, scaleup_bw_gbs: 150}\n"
        "  - {id: X1, name: Example X1, vendor: Acme, bf16_tflops: 100, memory_gb: 32,\n"
        "     memory_bw_tbs: 1.0, scaleup_bw_gbs: 50, scaleup_topology: pcie, chips_per_node: 4,\n"
        "     tdp_w: 200}\n"
    )
    cat = load_catalog(f)
    assert cat.get("H800").scaleup_bw_gbs == 150
    assert cat.get("H800").bf16_tflops == 989
    assert cat.get("x1").vendor == "Acme"


def test_bad_user_entry_names_the_field(tmp_path):
    f = tmp_path / "chips.yaml"
    f.write_text("accelerators:\n  - {id: H800, memory_gb: -5}\n")
    with pytest.raises(SpecError) as err:
        load_catalog(f)
    assert "memory_gb" in err.value.message and "-5" in err.value.message
