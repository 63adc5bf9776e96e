"""The model lands near published large-scale training runs (tolerance +-25%).

Sources (see suanli/perf/efficiency.py): Korthikanti et al. 2022 (arXiv 2205.05198) Table 5,
MFU with sequence parallelism + selective recomputation on A100; Llama 3 (arXiv 2407.21783)
Table 4, BF16 MFU on H100; DeepSeek-V3 (arXiv 2412.19437), 2.788M H800 GPU-hours for 14.8T
tokens. Korthikanti's 22B point (41.5%) is not an anchor: it fixed tp=8 on one node, and the
search here finds a faster layout (tp=2, dp=4) for that model, so the numbers do not compare.
"""

from __future__ import annotations

import pytest

from suanli.jobs import parse_job
from suanli.perf import estimate

TOLERANCE = 0.25


def _gpt(params_b, layers, hidden, heads, seq, batch_seqs):
    return parse_job({"name": "anchor", "kind": "train",
                      "model": {"params_b": params_b, "layers": layers, "hidden": hidden,
                                "heads": heads, "vocab": 51200},
                      "work": {"tokens": 1e11, "seq_len": seq,
                               "global_batch_tokens": batch_seqs * seq}})


@pytest.mark.parametrize(("name", "job", "chip", "count", "published_mfu"), [
    ("GPT 175B, 64 A100", _gpt(174.6, 96, 12288, 96, 2048, 64), "A100", 64, 0.514),
    ("GPT 530B, 280 A100", _gpt(529.6, 105, 20480, 128, 2048, 280), "A100", 280, 0.560),
    ("GPT 1T, 512 A100", _gpt(1008.0, 128, 25600, 160, 2048, 512), "A100", 512, 0.563),
])
def test_megatron_mfu_on_a100(name, job, chip, count, published_mfu):
    est = estimate(job, chip, count)
    assert est.fits, name
    assert est.mfu == pytest.approx(published_mfu, rel=TOLERANCE), name


@pytest.mark.parametrize(("count", "published_mfu"), [(8192, 0.43), (16384, 0.41)])
def test_llama3_405b_mfu_on_h100(count, published_mfu):
    job = parse_job({"name": "llama3-405b", "kind": "train", "model": "llama-3.1-405b",
                     "work": {"tokens": 1e12, "seq_len": 8192,
                              "global_batch_tokens": 16 * 1024 * 1024}})
    est = estimate(job, "H100", count)
    assert est.fits
    assert est.mfu == pytest.approx(published_mfu, rel=TOLERANCE)


def test_deepseek_v3_gpu_hours_on_h800():
    # Implied efficiency: 6 x 37e9 x 14.8e12 / (2.788e6 h x 3600 x 989e12) = 33% of BF16 peak.
    implied = 6 * 37e9 * 14.8e12 / (2.788e6 * 3600 * 989e12)
    assert implied == pytest.approx(0.331, abs=0.005)
    job = parse_job({"name": "deepseek-v3", "kind": "train", "model": "deepseek-v3",
                     "precision": "fp8",
                     "work": {"tokens": 14.8e12, "seq_len": 4096,
                              "global_batch_tokens": 15360 * 4096}})
    est = estimate(job, "H800", 2048)
    assert est.fits
    assert est.gpu_hours == pytest.approx(2.788e6, rel=TOLERANCE)
    bf16_equivalent = 6 * 37e9 * 14.8e12 / (est.gpu_hours * 3600 * 989e12)
    assert bf16_equivalent == pytest.approx(implied, rel=TOLERANCE)
