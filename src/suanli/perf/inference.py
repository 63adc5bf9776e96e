"""Inference: prefill is compute-bound, decode reads the weights and KV cache every step.

A replica is tp x pp chips; `dp` replicas serve in parallel. Inside a replica, pp micro-batches
of `b` sequences are in flight (one per stage). KV-cache capacity, the decode batch cap and the
latency target bound `b`. Elementwise NumPy without transcendental functions (see training.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suanli.jobs import InferenceWork, JobSpec
from suanli.perf.chips import ChipArrays, peer_bw
from suanli.perf.efficiency import Efficiency

TP_OPTIONS = (1, 2, 4, 8)
PP_OPTIONS = (1, 2, 4, 8, 16)
DECODE_BOUND_POWER = 0.6  # memory-bound decode draws less than dense compute (Patel 2024)
# Tokens one forward pass processes at most (vLLM's chunked-prefill budget,
# max_num_batched_tokens, 2,048 by default for serving): the engine reserves activation
# memory for that many tokens before it sizes the KV cache.
PREFILL_CHUNK_TOKENS = 2048
ACT_BYTES = 2.0  # activations stay 16-bit even with FP8 weights


@dataclass(frozen=True)
class InferenceKernel:
    eff: Efficiency
    requests: float
    serving_window_s: float | None
    input_tokens: int
    output_tokens: int
    latency_target_s: float | None
    layers: int
    hidden: int
    heads: int
    kv_shard_cap: int
    weight_bytes: float
    shared_weight_bytes: float
    expert_weight_bytes: float
    expert_touch_per_seq: float
    kv_bytes_per_request: float
    kv_read_bytes_per_seq: float
    act_bytes_per_token: float  # live activations of one token in a layer's forward pass
    active_params: float
    gemm_dim: float
    moe_factor: float

    kind_label = "inference"
    fast_path = False  # kernel.Kernel only: the search uses evaluate

    @classmethod
    def from_job(cls, job: JobSpec, eff: Efficiency) -> InferenceKernel:
        work = job.work
        assert isinstance(work, InferenceWork) and job.model is not None
        m = job.model
        wb = 1.0 if job.precision == "fp8" else 2.0  # FP8 weights and KV cache, else 16-bit
        if m.is_moe:
            keep = m.experts_per_token / m.experts
            p_exp = min((m.params - m.active_params) / (1.0 - keep), m.params)
            touch = keep  # fraction of experts one sequence's token touches
        else:
            p_exp, touch = 0.0, 0.0
        block = max(int(eff.kv_block_tokens), 1)  # paged allocation: whole blocks
        ctx_peak = -(-(work.input_tokens + work.output_tokens) // block) * block
        ctx_mean = work.input_tokens + work.output_tokens / 2.0
        mla = m.kv_dim_per_layer is not None
        window = work.window_s if work.rate_per_s is not None else None
        return cls(
            eff=eff, requests=work.total_requests, serving_window_s=window,
            input_tokens=work.input_tokens, output_tokens=work.output_tokens,
            latency_target_s=(work.latency_target_ms / 1e3 if work.latency_target_ms else None),
            layers=m.layers, hidden=m.hidden, heads=m.heads,
            kv_shard_cap=1 if mla else (m.kv_heads or m.heads),
            weight_bytes=m.params * wb, shared_weight_bytes=(m.params - p_exp) * wb,
            expert_weight_bytes=p_exp * wb, expert_touch_per_seq=touch,
            kv_bytes_per_request=ctx_peak * m.kv_elements_per_token * wb,
            kv_read_bytes_per_seq=ctx_mean * m.kv_elements_per_token * wb,
            # a layer's input, QKV, attention output (~4h) and MLP gate, up, activation
            # (3·ffn per routed expert), before tensor parallelism splits them
            act_bytes_per_token=ACT_BYTES * (4.0 * m.hidden + 3.0 * (m.ffn or 4 * m.hidden)
                                             * (m.experts_per_token if m.is_moe else 1)),
            active_params=m.active_params,
            gemm_dim=float(min(m.hidden, m.ffn or 4 * m.hidden) if m.is_moe else m.hidden),
            moe_factor=eff.moe if m.is_moe else 1.0,
        )

    @property
    def max_dp(self) -> int:
        return max(1, int(np.ceil(self.requests)))

    def layouts(self) -> list[tuple[int, int]]:
        tps = [t for t in TP_OPTIONS if t <= self.heads and self.heads % t == 0]
        pps = [p for p in PP_OPTIONS if p <= self.layers]
        return [(t, p) for t in tps for p in pps]

    def variants(self) -> list[int]:
        return [0]

    def valid(self, c: ChipArrays, tp: np.ndarray) -> np.ndarray:
        return tp <= c.chips_per_node

    def _step_parts(self, c, tp, pp, b, flops_rate):
        """(memory s, compute s, link s, network s) of one stage's decode step for batch b."""
        e = self.eff
        shard = tp * pp
        touched = np.minimum(b * self.expert_touch_per_seq, 1.0)
        w_read = (self.shared_weight_bytes + self.expert_weight_bytes * touched) / shard
        kv_shard = np.minimum(tp, self.kv_shard_cap)
        kv_read = b * self.kv_read_bytes_per_seq / (kv_shard * pp)
        t_mem = (w_read + kv_read) / c.mem_bw
        flops = b * (2.0 * self.active_params + 4.0 * self.layers * self.hidden
                     * (self.input_tokens + self.output_tokens / 2.0)) / shard
        t_cmp = flops / flops_rate
        tp_bw = peer_bw(c.up_bw, c.mesh, c.chips_per_node, tp)
        per_coll = e.collective_latency_s + 2.0 * (tp - 1) / tp * b * self.hidden * 2.0 / tp_bw
        t_link = np.where(tp > 1, 2.0 * (self.layers / pp) * per_coll, 0.0)
        t_net = np.where(pp > 1, e.network_latency_s + b * self.hidden * 2.0 / c.out_bw, 0.0)
        return t_mem, t_cmp, t_link, t_net

    def fits(self, c, tp, pp, var, dp) -> np.ndarray:
        return np.broadcast_to(self.evaluate(c, tp, pp, var, dp)["fits"], np.shape(dp))

    def evaluate(self, c, tp, pp, var, dp, lean: bool = False,
                 duration_only: bool = False) -> dict[str, np.ndarray]:
        """The serving model; `duration_only` returns just duration_s and fits (the search)."""
        e = self.eff
        shard = tp * pp
        x = self.gemm_dim / tp
        gemm = x / (x + e.gemm_half_width * c.ridge_ratio)
        flops_rate = c.sustained_flops * gemm * self.moe_factor
        w_chip = self.weight_bytes / shard
        kv_shard = np.minimum(tp, self.kv_shard_cap)
        kv_req_chip = self.kv_bytes_per_request / kv_shard
        # KV-cache capacity: the HBM left after weights and the activation workspace
        acts = PREFILL_CHUNK_TOKENS * self.act_bytes_per_token / tp
        b_mem = np.floor((c.mem_bytes - w_chip - acts) / kv_req_chip)
        b_req = np.ceil(self.requests / (dp * pp))
        b = np.minimum(np.minimum(b_mem, float(e.decode_batch_cap)), b_req)
        if self.latency_target_s is not None:
            # time_stage(b) is at most max(m0 + m1·b, c1·b) + l0 + l1·b (all experts read).
            # The per-sequence slopes do not depend on dp: evaluate them at b = 1 per layout.
            m_1, c_1, l_1, n_1 = self._step_parts(c, tp, pp, 1.0, flops_rate)
            m_0 = self.weight_bytes / shard / c.mem_bw
            m_1 = m_1 - self.shared_weight_bytes / shard / c.mem_bw \
                - self.expert_weight_bytes * np.minimum(self.expert_touch_per_seq, 1.0) \
                / shard / c.mem_bw
            fixed = np.where(tp > 1, 2.0 * (self.layers / pp) * e.collective_latency_s, 0.0) \
                + np.where(pp > 1, e.network_latency_s, 0.0)
            slope = (l_1 + n_1) - fixed
            budget = self.latency_target_s / pp - fixed
            b_lat = np.minimum((budget - m_0) / (m_1 + slope), budget / (c_1 + slope))
            b = np.minimum(b, np.floor(b_lat))
        else:
            b_lat = np.full_like(b, np.inf)
        fits_mem = b_mem >= 1
        fits = (b >= 1) & fits_mem
        b = np.maximum(b, 1.0)
        t_mem, t_cmp, t_link, t_net = self._step_parts(c, tp, pp, b, flops_rate)
        t_stage = np.maximum(t_mem, t_cmp) + t_link + t_net

        n_in = self.input_tokens
        pf_flops = 2.0 * self.active_params * n_in + 2.0 * self.layers * n_in * n_in * self.hidden
        t_pf_thr = pf_flops / shard / flops_rate  # replica time per request, pipelined
        out = self.output_tokens
        per_req = t_pf_thr + out * t_stage / b
        capacity_rps = dp / per_req
        busy_s = self.requests / capacity_rps
        if self.serving_window_s is not None:
            duration = np.maximum(self.serving_window_s, busy_s)
        else:
            duration = busy_s
        duration = np.where(fits, duration, np.inf)
        if duration_only:
            return {"duration_s": duration, "fits": fits}
        tpot = pp * t_stage
        tp_bw = peer_bw(c.up_bw, c.mesh, c.chips_per_node, tp)
        pf_link = np.where(tp > 1, 2.0 * self.layers * (
            e.collective_latency_s + 2.0 * (tp - 1) / tp * n_in * self.hidden * 2.0 / tp_bw), 0.0)
        ttft = np.maximum(pf_flops / tp / flops_rate, self.weight_bytes / tp / c.mem_bw) \
            + pf_link + (pp - 1) * np.where(pp > 1, e.network_latency_s, 0.0)

        dec_mem = np.where(t_mem >= t_cmp, t_mem, 0.0) * out / b
        dec_cmp = np.where(t_mem >= t_cmp, 0.0, t_cmp) * out / b
        load = busy_s / np.where(np.isfinite(duration), duration, busy_s)
        return {
            "duration_s": duration, "fits": fits, "fits_mem": fits_mem, "ep": 1 + 0 * dp,
            "stage": 0 * dp, "batch": b, "b_mem": b_mem, "b_lat": b_lat,
            "weights": w_chip + 0.0 * b, "gradients": 0.0 * b, "optimizer": 0.0 * b,
            "activations": acts + 0.0 * b, "kv_cache": b * kv_req_chip,
            "total": w_chip + acts + b * kv_req_chip,
            "t_compute": t_pf_thr + dec_cmp, "t_memory": dec_mem, "t_bubble": 0.0 * b,
            "t_link": t_link * out / b, "t_network": t_net * out / b,
            "t_step": per_req, "gemm": gemm, "ttft": ttft, "tpot": tpot,
            "busy": load * (t_pf_thr + dec_cmp) / per_req,
            "mem_busy": load * dec_mem / per_req,
            "flops_rate": flops_rate, "capacity_rps": capacity_rps,
        }

    def tokens_per_s(self, duration):
        return self.requests * self.output_tokens / duration

    def model_flops(self) -> float:
        n_in, n_out = self.input_tokens, self.output_tokens
        return self.requests * 2.0 * self.active_params * (n_in + n_out)
