"""Job files: the contract shape parses; every kind of bad input names its field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli.errors import SpecError, UnknownNameError
from suanli.jobs import load_job, parse_job, resolve_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _job(**over):
    base = {"name": "j", "kind": "train", "model": "llama-3-8b", "work": {"tokens": 1e9}}
    base.update(over)
    return base


def test_contract_example_parses():
    job = load_job(EXAMPLES / "llama2-70b-lora.yaml")
    assert job.kind == "finetune" and job.model.id == "llama-2-70b"
    assert job.work.lora_rank == 16 and job.work.seq_len == 8192
    assert job.resources.accelerators == ("H100", "H800", "910B") and job.min_count == 8
    assert job.dataset.location == "yangtze-river-delta"


def test_count_range_and_explicit_architecture():
    job = parse_job(_job(model={"params_b": 1.3, "layers": 24, "hidden": 2048, "heads": 16},
                         resources={"count": {"min": 8, "max": 512}}))
    assert (job.min_count, job.max_count) == (8, 512)
    assert job.model.params == pytest.approx(1.3e9)


def test_presets_include_moe_active_parameters():
    ds = resolve_model("DeepSeek-V3")
    assert ds.params_b == 671 and ds.active_params_b == 37 and ds.is_moe
    for name in ["Llama-2-7B", "llama-2-70b", "Llama-3-8B", "llama-3-70b", "Llama-3.1-405B",
                 "Qwen2-7B", "qwen2-72b", "Mixtral-8x7B", "GPT-3-175B"]:
        assert resolve_model(name).params_b > 1


@pytest.mark.parametrize(
    ("over", "field", "value"),
    [
        ({"resources": {"count": -2}}, "resources.count", "-2"),
        ({"resources": {"count": {"min": 8, "max": 4}}}, "resources.count", "max (4)"),
        ({"work": {"tokens": -1}}, "work.tokens", "-1"),
        ({"kind": "trian"}, "kind", "trian"),
        ({"precision": "fp4"}, "precision", "fp4"),
        ({"deadline_s": 0}, "deadline_s", "0"),
        ({"colour": "red"}, "colour", "red"),
        ({"kind": "inference", "work": {"input_tokens": 10}}, "work", "requests"),
    ],
)
def test_bad_fields_are_named_with_their_value(over, field, value):
    with pytest.raises(SpecError) as err:
        parse_job(_job(**over))
    assert field in err.value.message and value in err.value.message


def test_unknown_model_lists_closest_presets():
    with pytest.raises(UnknownNameError) as err:
        parse_job(_job(model="llama-9-8b"))
    assert "llama" in err.value.message


def test_malformed_yaml_is_a_clear_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: [unclosed\nkind: train\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_job(f)
    with pytest.raises(SpecError, match="cannot read"):
        load_job(tmp_path / "missing.yaml")
    f.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_job(f)
