"""Training physics: memory fits at the right boundaries, links separate H800 from H100."""

from __future__ import annotations

import numpy as np
import pytest

from suanli.catalog import builtin_catalog
from suanli.jobs import parse_job
from suanli.perf import estimate, estimate_grid
from suanli.perf.efficiency import DEFAULT_EFFICIENCY
from suanli.perf.training import TrainingKernel


def _train(model="llama-3-70b", tokens=1e11, **work):
    return parse_job({"name": "t", "kind": "train", "model": model,
                      "work": {"tokens": tokens, **work}})


def test_70b_training_does_not_fit_one_80gb_chip_and_says_why_with_numbers():
    est = estimate(_train(), "H100", 1)
    assert not est.fits and est.duration_s == float("inf") and est.tokens_per_s == 0
    assert est.bound == "memory_capacity"
    # 70.55e9 params x 16 bytes (2 weights + 2 grads + 12 Adam) = 1,129 GB before activations
    assert est.memory.weights_gb + est.memory.gradients_gb + est.memory.optimizer_gb == \
        pytest.approx(70.55 * 16, rel=1e-6)
    assert "1" in est.reason and "GB" in est.reason and "72.0 GB usable" in est.reason
    assert "80 GB" in est.reason


def test_70b_training_fits_once_sharded_over_enough_chips():
    assert not estimate(_train(), "H100", 8).fits  # 1.13 TB of state / 8 > 80 GB
    est = estimate(_train(), "H100", 64)
    assert est.fits and est.memory.total_gb <= est.memory.capacity_gb
    assert est.parallelism.chips == est.chips_used <= 64


def test_zero_stages_cut_per_chip_memory_monotonically():
    kernel = TrainingKernel.from_job(_train(), DEFAULT_EFFICIENCY)
    from suanli.perf.chips import chip_arrays
    c = chip_arrays([builtin_catalog().get("H100")], "bf16", DEFAULT_EFFICIENCY)
    totals = []
    for stage in range(4):
        w, g, o, a = kernel.memory(c, np.array(8), np.array(1), np.array(16), np.array(1),
                                   np.array(stage), False)
        totals.append(float(np.ravel(w + g + o)[0]))
    assert totals[0] > totals[1] > totals[2] > totals[3]
    assert totals[3] == pytest.approx(totals[0] / 16)  # ZeRO-3 shards everything over dp


def test_search_picks_zero3_only_when_memory_needs_it():
    tight = estimate(_train(), "H100", 16)
    assert tight.fits and tight.parallelism.zero_stage == 3
    roomy = estimate(_train(model="llama-3-8b"), "H100", 64)
    assert roomy.fits and roomy.parallelism.zero_stage < 3


def test_h800_slower_than_h100_when_tensor_parallel_crosses_the_capped_link():
    job = _train()
    h100, h800 = estimate(job, "H100", 64), estimate(job, "H800", 64)
    assert h100.parallelism.tp > 1 or h800.parallelism.tp > 1
    assert h800.duration_s > h100.duration_s * 1.02
    assert h800.time_shares.get("scaleup_link", 0) > h100.time_shares.get("scaleup_link", 0)


def test_h800_equals_h100_when_nothing_crosses_the_link():
    tiny = parse_job({"name": "t", "kind": "train", "work": {"tokens": 1e9, "seq_len": 2048},
                      "model": {"params_b": 1.0, "layers": 16, "hidden": 2048, "heads": 16}})
    a, b = estimate(tiny, "H100", 1), estimate(tiny, "H800", 1)
    assert a.fits and a.duration_s == b.duration_s and a.mfu == b.mfu
    a8, b8 = estimate(tiny, "A100", 1), estimate(tiny, "A800", 1)
    assert a8.duration_s == b8.duration_s


def test_h20_loses_badly_on_training():
    job = _train(model="llama-3-8b")
    h100, h20 = estimate(job, "H100", 64), estimate(job, "H20", 64)
    assert h20.duration_s > 4 * h100.duration_s  # 148 vs 989 dense BF16 TFLOPS


def test_moe_compute_follows_active_parameters():
    dense = parse_job({"name": "d", "kind": "train", "work": {"tokens": 1e10},
                       "model": {"params_b": 46.7, "layers": 32, "hidden": 4096, "heads": 32,
                                 "kv_heads": 8, "ffn": 14336}})
    moe = _train(model="mixtral-8x7b", tokens=1e10)
    d, m = estimate(dense, "H100", 64), estimate(moe, "H100", 64)
    assert m.fits and d.fits and m.duration_s < d.duration_s


def test_lora_finetune_is_cheaper_than_full_finetune():
    full = parse_job({"name": "f", "kind": "finetune", "model": "llama-2-70b",
                      "work": {"tokens": 3e7, "seq_len": 4096}})
    lora = parse_job({"name": "l", "kind": "finetune", "model": "llama-2-70b",
                      "work": {"tokens": 3e7, "seq_len": 4096, "lora_rank": 16}})
    f, lo = estimate(full, "H100", 8), estimate(lora, "H100", 8)
    assert lo.fits and not f.fits  # adapters' optimizer states only
    f64, l64 = estimate(full, "H100", 64), estimate(lora, "H100", 64)
    assert l64.duration_s < f64.duration_s
    assert lo.memory.optimizer_gb < 0.01 * 12 * 68.98  # <1% of full Adam states


def test_full_recompute_costs_a_third_more_compute():
    base = _train(model="llama-3-8b", seq_len=4096)
    rec = _train(model="llama-3-8b", seq_len=4096, recompute=True)
    a, b = estimate(base, "H100", 8), estimate(rec, "H100", 8)
    assert b.duration_s > 1.2 * a.duration_s
    assert b.memory.activations_gb < a.memory.activations_gb


def test_duration_never_increases_with_more_chips_and_fit_is_monotone():
    job = _train()
    grid = estimate_grid(job, ["H100", "910B", "A800", "MI300X"], np.arange(1, 513))
    for row, fits in zip(grid.duration_s, grid.fits, strict=True):
        finite = row[np.isfinite(row)]
        assert np.all(np.diff(finite) <= 0)
        first = np.argmax(fits)
        assert fits[first:].all()
    assert np.all(grid.chips_used <= grid.counts[None, :])


def test_mesh_topology_gives_each_pair_a_fraction_of_the_link():
    acc = builtin_catalog().get("910B")
    from suanli.perf.chips import peer_bw
    bw = peer_bw(np.array([acc.scaleup_bw_gbs]), np.array([True]), np.array([8]),
                 np.array([2, 4, 8]))
    expected = [acc.peer_bw_gbs(g) for g in (2, 4, 8)]
    assert np.allclose(bw, expected)


def test_moe_without_active_parameters_explains_with_total_parameters():
    from suanli.jobs import parse_job
    from suanli.perf import estimate

    job = parse_job({"name": "tiny-moe", "kind": "train", "work": {"tokens": 1e6},
                     "model": {"params_b": 1.0, "layers": 2, "hidden": 64, "heads": 2,
                               "experts": 2}})
    assert "1B active" in estimate(job, "H100", 1).explanation[0]
