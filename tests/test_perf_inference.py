"""Inference physics: decode follows HBM bandwidth, KV cache and latency bound the batch."""

from __future__ import annotations

import pytest

from suanli.catalog import builtin_catalog
from suanli.jobs import parse_job
from suanli.perf import estimate


def _infer(model="llama-2-7b", kind="batch_inference", **work):
    base = {"requests": 1, "input_tokens": 1, "output_tokens": 512}
    base.update(work)
    return parse_job({"name": "i", "kind": kind, "model": model, "work": base})


def test_single_stream_decode_tokens_per_s_follows_hbm_bandwidth():
    job = _infer()
    cat = builtin_catalog()
    for a, b in [("H100", "A100"), ("H20", "A100"), ("MI300X", "H100")]:
        ea, eb = estimate(job, a, 1), estimate(job, b, 1)
        assert ea.bound == eb.bound == "memory_bandwidth"
        bw = cat.get(a).memory_bw_tbs / cat.get(b).memory_bw_tbs
        assert ea.tokens_per_s / eb.tokens_per_s == pytest.approx(bw, rel=0.05)


def test_decode_on_one_chip_is_the_same_on_h800_and_h100():
    job = _infer()
    a, b = estimate(job, "H100", 1), estimate(job, "H800", 1)
    assert a.tokens_per_s == b.tokens_per_s and a.time_per_output_token_s == \
        b.time_per_output_token_s


def test_h20_wins_or_ties_decode_but_loses_prefill_heavy_work():
    decode = _infer()
    assert estimate(decode, "H20", 1).tokens_per_s >= estimate(decode, "H100", 1).tokens_per_s
    prefill = _infer(requests=1e5, input_tokens=4096, output_tokens=16)
    assert estimate(prefill, "H20", 8).duration_s > 3 * estimate(prefill, "H100", 8).duration_s


def test_inference_reports_latency_and_kv_cache_bounds_the_batch():
    job = _infer(requests=1e6, input_tokens=2048, output_tokens=512)
    est = estimate(job, "A100", 1)
    assert est.fits and est.ttft_s > 0 and est.time_per_output_token_s > 0
    assert est.memory.kv_cache_gb > 0
    assert est.memory.total_gb <= est.memory.capacity_gb
    # Llama 2 7B (MHA) keeps 0.5 MB of KV per token: 2,560 tokens x 0.52 MB x batch fits 72 GB
    per_request_gb = 2560 * 32 * 2 * 4096 * 2 / 1e9
    assert est.memory.kv_cache_gb + per_request_gb > est.memory.capacity_gb - \
        est.memory.weights_gb
    assert any("KV-cache capacity" in line for line in est.explanation)


def test_latency_target_limits_the_batch_and_can_make_it_infeasible():
    free = estimate(_infer(requests=1e6), "H100", 1)
    tight = estimate(_infer(requests=1e6, latency_target_ms=12), "H100", 1)
    assert tight.fits and tight.time_per_output_token_s <= 0.012 + 1e-9
    assert tight.tokens_per_s < free.tokens_per_s
    impossible = estimate(_infer(requests=1e6, latency_target_ms=1), "H100", 1)
    assert not impossible.fits and "latency target" in impossible.reason


def test_70b_inference_needs_more_than_one_80gb_chip():
    job = _infer(model="llama-3-70b", requests=1e4)
    one = estimate(job, "H100", 1)
    assert not one.fits and "141.1 GB" in one.reason
    two = estimate(job, "H100", 2)
    assert two.fits and two.parallelism.tp * two.parallelism.pp == 2


def test_serving_window_sets_duration_when_capacity_covers_the_rate():
    job = _infer(kind="inference", requests=None, rate_per_s=1.0, window_s=3600,
                 input_tokens=512, output_tokens=128)
    est = estimate(job, "H100", 1)
    assert est.duration_s == pytest.approx(3600)
    assert est.tokens_per_s == pytest.approx(128.0)


def test_memory_fits_at_the_right_boundary():
    base = builtin_catalog()
    weights_gb = 6.74 * 2  # llama-2-7b BF16
    # one request of 1 + 512 tokens, in whole 16-token pages: 528 tokens of KV cache
    kv_gb = 528 * 32 * 2 * 4096 * 2 / 1e9
    # activation workspace: 2,048 prefill tokens x (4 x hidden + 3 x ffn) x 2 bytes
    acts_gb = 2048 * (4 * 4096 + 3 * 11008) * 2 / 1e9
    need = (weights_gb + acts_gb + kv_gb) / 0.9  # usable = 90% of physical
    job = _infer()
    for mem, fits in [(need * 1.001, True), (need * 0.999, False)]:
        cat = base.with_overrides([{"id": "TESTCHIP", "name": "Test", "vendor": "x",
                                    "bf16_tflops": 100, "memory_gb": mem,
                                    "memory_bw_tbs": 1.0, "scaleup_bw_gbs": 100,
                                    "scaleup_topology": "switch", "chips_per_node": 8,
                                    "tdp_w": 300}])
        assert estimate(job, "TESTCHIP", 1, catalog=cat).fits is fits
