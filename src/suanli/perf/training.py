"""Training and fine-tuning: time per step from compute, pipeline bubble and communication.

Every function here is elementwise NumPy over broadcastable arrays, so the same code evaluates
one configuration (estimate) or every chip x layout x data-parallel degree at once (the grid).
No transcendental functions: results are bit-identical whatever the array shape.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from suanli.jobs import JobSpec, TrainWork
from suanli.perf.chips import ChipArrays, peer_bw
from suanli.perf.efficiency import Efficiency

# Mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, arXiv 1910.02054): BF16 weights (2),
# BF16 gradients (2), FP32 master weights + momentum + variance (12) bytes per parameter.
WEIGHT_BYTES = 2.0
GRAD_BYTES = 2.0
OPTIMIZER_BYTES = 12.0
# Activations per token per layer, BF16, with sequence parallelism (divided by tp) and
# selective recomputation of attention scores (Korthikanti et al. 2022, arXiv 2205.05198:
# 34·s·h for GPT with dropout). Counted for the model's own shape: norm inputs and
# QKV/output-projection inputs 12·h, K and V 4·kv_dim, the MLP's gate/up/activation 6·ffn per
# routed expert. Full recomputation keeps only each layer's 2·h input.
ACT_BYTES_CHECKPOINT = 2.0
LOGIT_BYTES = 4.0  # FP32 logits of the last stage
# The optimizer step is memory-bound and follows the last gradient reduction, so it does not
# overlap compute: mixed-precision Adam reads FP32 master weights, momentum, variance (12) and
# the BF16 gradient (2), and writes the three FP32 states and the BF16 weights (14) per
# parameter it owns (ZeRO-1 and above: its 1/dp shard).
OPTIMIZER_STEP_BYTES = 28.0
DEFAULT_PRETRAIN_BATCH_TOKENS = 4 * 1024 * 1024  # Llama 2/3 pre-training (arXiv 2307.09288)
DEFAULT_FINETUNE_BATCH_SEQS = 64
TP_OPTIONS = (1, 2, 4, 8)  # tensor parallelism stays inside a node and at most 8 wide
PP_OPTIONS = (1, 2, 4, 8, 16, 32, 64)
LORA_MATRICES_PER_LAYER = 7  # q, k, v, o, gate, up, down


def pick(cond, yes, no):
    """np.where, without building a full array when the condition is one scalar."""
    if np.ndim(cond) == 0:
        return yes if bool(cond) else no
    return np.where(cond, yes, no)


def _pow2_floor(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


@dataclass(frozen=True)
class TrainingKernel:
    """Constants of one training/fine-tuning job, and its elementwise time/memory model."""

    eff: Efficiency
    lora: bool
    recompute: bool
    tokens: float
    seq_len: int
    batch_seqs: int
    layers: int
    hidden: int
    heads: int
    vocab: int
    gemm_dim: float
    p_shared: float
    p_expert: float
    experts_per_token: int
    ep_cap: int
    adapters: float
    act_bytes_per_token_layer: float
    hw_flops_selective: float
    hw_flops_full: float
    model_flops_per_token: float
    moe_factor: float

    kind_label = "training"
    fast_path = True  # implements kernel.FastKernel

    @classmethod
    def from_job(cls, job: JobSpec, eff: Efficiency) -> TrainingKernel:
        work = job.work
        assert isinstance(work, TrainWork) and job.model is not None
        m = job.model
        s = work.seq_len
        lora = job.kind == "finetune" and work.lora_rank is not None
        if work.global_batch_seqs is not None:
            batch_seqs = work.global_batch_seqs
        elif work.global_batch_tokens is not None:
            batch_seqs = max(1, int(work.global_batch_tokens // s))
        elif job.kind == "finetune":
            batch_seqs = DEFAULT_FINETUNE_BATCH_SEQS
        else:  # the model's published batch (models.yaml), else Llama 2's 4M tokens
            batch_seqs = max(1, int((m.global_batch_tokens or DEFAULT_PRETRAIN_BATCH_TOKENS)
                                    // s))
        ffn = m.ffn or 4 * m.hidden
        if m.is_moe:
            keep = m.experts_per_token / m.experts
            p_expert = (m.params - m.active_params) / (1.0 - keep) if keep < 1 else 0.0
            p_expert = min(p_expert, m.params)
        else:
            p_expert = 0.0
        adapters = 0.0
        if lora:
            r = work.lora_rank or 0
            adapters = m.layers * r * (4 * 2 * m.hidden + 3 * (m.hidden + ffn))
        # Model FLOPs per token: 6·N (forward 2N, backward 4N) plus causal attention
        # 6·L·s·h (12·L·s·h halved by the causal mask). LoRA skips the weight gradients:
        # forward 2N + input gradients 2N. Full recomputation runs the forward twice.
        base = 4.0 if lora else 6.0
        attn = base * m.layers * s * m.hidden
        model_flops = base * m.active_params + attn
        rerun = 2.0 * m.active_params + 2.0 / base * attn
        kv_dim = (m.kv_heads or m.heads) * m.head_dim
        routed = m.experts_per_token + (1 if m.is_moe else 0)  # + a shared expert
        act = 12.0 * m.hidden + 4.0 * kv_dim + 6.0 * ffn * routed
        return cls(
            eff=eff, lora=lora, recompute=work.recompute, tokens=work.tokens, seq_len=s,
            batch_seqs=batch_seqs, layers=m.layers, hidden=m.hidden, heads=m.heads,
            vocab=m.vocab, gemm_dim=float(min(m.hidden, ffn) if m.is_moe else m.hidden),
            p_shared=m.params - p_expert, p_expert=p_expert,
            experts_per_token=m.experts_per_token,
            ep_cap=_pow2_floor(m.experts) if m.is_moe else 1, adapters=adapters,
            act_bytes_per_token_layer=act,
            hw_flops_selective=model_flops, hw_flops_full=model_flops + rerun,
            model_flops_per_token=model_flops,
            moe_factor=eff.moe if m.is_moe else 1.0,
        )

    @property
    def is_moe(self) -> bool:
        return self.p_expert > 0

    @property
    def max_dp(self) -> int:
        """Data parallelism beyond one sequence per replica per step does not help."""
        return self.batch_seqs

    def layouts(self) -> list[tuple[int, int]]:
        tps = [t for t in TP_OPTIONS if t <= self.heads and self.heads % t == 0]
        pps = [p for p in PP_OPTIONS if p <= self.layers]
        return [(t, p) for t in tps for p in pps]

    def variants(self) -> list[int]:
        """Bit 0 = ZeRO-3, bit 1 = experts spread widest, bit 2 = full recomputation (always
        on when the job asks for it). The first is the primary: never slower where it fits."""
        base = [0, 1, 2, 3] if self.is_moe else [0, 1]
        if self.recompute:
            return [v | 4 for v in base]
        return base + [v | 4 for v in base]

    def valid(self, c: ChipArrays, tp: np.ndarray) -> np.ndarray:
        return tp <= c.chips_per_node

    def expert_parallel(self, c, tp, dp, var):
        if not self.is_moe:
            return np.ones_like(dp)
        local = np.maximum(c.chips_per_node // tp, 1)
        local_pow2 = np.left_shift(1, np.frexp(local.astype(np.float64))[1] - 1)
        ep_max = np.minimum(dp & -dp, self.ep_cap)
        ep_node = np.minimum(ep_max, local_pow2)
        return pick((var >> 1) & 1 == 1, ep_max, ep_node)

    def memory(self, c, tp, pp, dp, ep, stage, full):
        """Per-chip bytes: weights, gradients, optimizer, activations (ZeRO `stage` 0-3)."""
        shard = tp * pp
        w_dense = self.p_shared / shard
        w_exp = self.p_expert / (shard * ep)
        sharded = w_dense / dp + w_exp / (dp / ep)
        whole = w_dense + w_exp
        weights = WEIGHT_BYTES * pick(stage >= 3, sharded, whole)
        if self.lora:
            adapters = self.adapters / shard
            grads = GRAD_BYTES * adapters + 0.0 * dp
            optim = OPTIMIZER_BYTES * adapters + 0.0 * dp
        else:
            grads = GRAD_BYTES * pick(stage >= 2, sharded, whole)
            optim = OPTIMIZER_BYTES * pick(stage >= 1, sharded, whole)
        s, h = self.seq_len, self.hidden
        micro = self.batch_seqs / dp
        inflight_layers = np.minimum(micro, pp) * (self.layers / pp)
        layer = self.act_bytes_per_token_layer * s / tp
        acts = pick(full, inflight_layers * (ACT_BYTES_CHECKPOINT * s * h / tp) + layer,
                        inflight_layers * layer)
        acts = acts + LOGIT_BYTES * s * self.vocab / tp
        return weights, grads, optim, acts

    def memory_total(self, c, tp, pp, var, dp) -> np.ndarray:
        """Bytes per chip of one variant; of the chip it reads only chips_per_node."""
        ep = self.expert_parallel(c, tp, dp, var)
        w, g, o, a = self.memory(c, tp, pp, dp, ep, pick((var & 1) == 1, 3, 2),
                                 (var & 4) == 4)
        return w + g + o + a

    def fits(self, c, tp, pp, var, dp) -> np.ndarray:
        """Memory check alone (cheaper than evaluate) for one variant."""
        return self.memory_total(c, tp, pp, var, dp) <= c.mem_bytes

    def _compute_rows(self, c, tp, pp, full):
        """Count-independent compute terms: GEMM factor, FLOP rate, compute seconds per step
        for one replica (before dividing by dp), virtual stages and bubble seconds."""
        e = self.eff
        shard = tp * pp
        batch_tokens = float(self.batch_seqs * self.seq_len)
        x = self.gemm_dim / tp
        gemm = x / (x + e.gemm_half_width * c.ridge_ratio)
        flops_rate = c.sustained_flops * gemm * self.moe_factor
        hw_flops = pick(full, self.hw_flops_full, self.hw_flops_selective)
        comp_row = hw_flops * batch_tokens / shard / flops_rate
        virtual = np.minimum(np.maximum(self.layers // pp, 1), e.max_virtual_stages)
        t_bubble = comp_row * (pp - 1) / (self.batch_seqs * virtual)
        return gemm, flops_rate, comp_row, virtual, t_bubble

    def optimizer_row(self, c, shard):
        """Seconds of the optimizer step on one chip before dividing by dp: the parameters
        it updates (adapters only for LoRA) after tensor/pipeline sharding, over HBM."""
        owned = self.adapters if self.lora else self.p_shared + self.p_expert
        return OPTIMIZER_STEP_BYTES * owned / shard / c.mem_bw

    def duration_lower_bound(self, c, tp, pp, var, dp):
        """steps x (compute + bubble): never above `evaluate`'s duration, because the link and
        network terms added to it there are >= 0 and rounding is monotone. The search uses it
        to skip variants that cannot win (search._search)."""
        return self.lower_bound_at(*self.lower_bound_rows(c, tp, pp, var), dp)

    def lower_bound_rows(self, c, tp, pp, var):
        """The count-independent part of `duration_lower_bound`: (compute seconds per step
        of one replica, bubble seconds), per chip and layout."""
        _, _, comp_row, _, t_bubble = self._compute_rows(c, tp, pp, (var & 4) == 4)
        return comp_row, t_bubble

    def lower_bound_at(self, comp_row, t_bubble, dp):
        """`duration_lower_bound` from its rows, at data-parallel degree dp."""
        steps = self.tokens / float(self.batch_seqs * self.seq_len)
        return steps * (comp_row / dp + t_bubble)

    def lower_bound_is_safe(self) -> bool:
        """The link and network terms are >= 0 for non-negative efficiency factors."""
        e = self.eff
        return min(e.collective_latency_s, e.network_latency_s, e.tp_exposed, e.scaleup,
                   e.scaleout) >= 0.0

    def evaluate(self, c, tp, pp, var, dp, lean: bool = False,
                 duration_only: bool = False) -> dict[str, np.ndarray]:
        """Every quantity of the time model for broadcastable (chip, tp, pp, variant, dp).

        `lean` leaves out the memory breakdown; `duration_only` returns just duration_s and
        fits (what the layout search compares)."""
        e = self.eff
        z3 = (var & 1) == 1
        full = (var & 4) == 4
        ep = self.expert_parallel(c, tp, dp, var)
        stage = pick(z3, 3, 2)
        weights, grads, optim, acts = self.memory(c, tp, pp, dp, ep, stage, full)
        total = weights + grads + optim + acts
        fits = total <= c.mem_bytes

        s, h, L = self.seq_len, self.hidden, self.layers
        shard = tp * pp
        batch_tokens = float(self.batch_seqs * s)
        gemm, flops_rate, comp_row, virtual, t_bubble = self._compute_rows(c, tp, pp, full)
        t_comp = comp_row / dp

        # Tensor parallel: 4 all-reduce-equivalents per layer per micro-batch (2 forward,
        # 2 backward; all-gather + reduce-scatter with sequence parallelism), 6 with full
        # recomputation, each moving 2(t-1)/t of the s·h BF16 activations.
        n_coll = pick(full, 6.0, 4.0)
        tp_bw = peer_bw(c.up_bw, c.mesh, c.chips_per_node, tp)
        coll_bytes = 2.0 * (tp - 1) / tp * s * h * 2.0
        t_coll = np.where(tp > 1, e.collective_latency_s + coll_bytes / tp_bw, 0.0)
        tp_row = self.batch_seqs * (L / pp) * n_coll * t_coll * e.tp_exposed
        t_tp = tp_row / dp

        # Pipeline: activations cross each stage boundary forward and backward per micro-batch
        # and virtual chunk, over the scale-out network.
        p2p = np.where(pp > 1, e.network_latency_s + s * h * 2.0 / tp / c.out_bw, 0.0)
        t_pp = self.batch_seqs * 2.0 * virtual * p2p / dp

        # Data parallel: hierarchical all-reduce of BF16 gradients (inside the node over the
        # scale-up link, then across nodes over the NIC). ZeRO-3 also all-gathers weights for
        # every micro-batch's forward and backward.
        local = np.maximum(c.chips_per_node // tp, 1)
        grad_dense = GRAD_BYTES * (self.adapters if self.lora else self.p_shared) / shard
        up_d, out_d = self._allreduce(c, grad_dense, dp, local)
        if self.is_moe and not self.lora:
            grad_exp = GRAD_BYTES * self.p_expert / (shard * ep)
            up_e, out_e = self._allreduce(c, grad_exp, dp / ep, local)
            up_d, out_d = up_d + up_e, out_d + out_e
        zero3 = pick(z3, 0.5 + self.batch_seqs / dp, 1.0)
        if self.lora:  # frozen weights: ZeRO-3 gathers them, gradients are adapters only
            w_up, w_out = self._allreduce(c, WEIGHT_BYTES * self.p_shared / shard, dp, local)
            up_d = up_d + pick(z3, w_up * self.batch_seqs / dp, 0.0)
            out_d = out_d + pick(z3, w_out * self.batch_seqs / dp, 0.0)
            zero3 = 1.0
        if isinstance(zero3, float) and zero3 == 1.0:  # x * 1.0 == x exactly: skip it
            t_dp_up, t_dp_out = up_d, out_d
        else:
            t_dp_up, t_dp_out = up_d * zero3, out_d * zero3
        t_dp = t_dp_up + t_dp_out
        dp_exposed = np.maximum(t_dp - e.dp_overlap * t_comp, 0.0)
        dp_up_share = np.where(t_dp > 0, t_dp_up / np.where(t_dp > 0, t_dp, 1.0), 0.0)

        # Expert parallel: dispatch + combine all-to-all, forward and backward, of k copies
        # of each token's hidden state, over the link when the expert group fits in a node.
        if self.is_moe:
            token_layers = batch_tokens / dp * (L / pp) / tp
            a2a_bytes = token_layers * 4.0 * self.experts_per_token * h * 2.0 * (ep - 1) / ep
            intra = ep <= local
            ep_bw = np.where(intra, peer_bw(c.up_bw, c.mesh, c.chips_per_node, ep), c.out_bw)
            t_ep = a2a_bytes / ep_bw
            ep_exposed = np.maximum(t_ep - e.ep_overlap * t_comp, 0.0)
            ep_up = np.where(intra, ep_exposed, 0.0)
            ep_out = ep_exposed - ep_up
        else:
            ep_up = ep_out = 0.0  # adding a scalar zero equals adding an array of zeros

        link = t_tp + dp_exposed * dp_up_share + ep_up
        network = t_pp + dp_exposed * (1.0 - dp_up_share) + ep_out
        t_opt = self.optimizer_row(c, shard) / dp
        compute = t_comp + t_bubble
        t_step = compute + link + network + t_opt
        steps = self.tokens / batch_tokens
        duration = np.where(fits, steps * t_step, np.inf)
        if duration_only:
            return {"duration_s": duration, "fits": fits}
        out = {"duration_s": duration, "fits": fits, "t_compute": t_comp,
               "t_bubble": t_bubble, "t_link": link, "t_network": network, "t_memory": t_opt,
               "mem_busy": 0.0}
        if lean:
            out["busy"] = t_comp / t_step
            return out
        out.update({
            "ep": ep, "stage": stage, "weights": weights, "gradients": grads,
            "optimizer": optim, "activations": acts, "kv_cache": 0.0, "total": total,
            "t_step": t_step, "gemm": gemm, "busy": t_comp / t_step,
            "flops_rate": flops_rate, "full_recompute": full,
        })
        return out

    def duration_rows(self, c, tp, pp, var: int) -> dict[str, np.ndarray]:
        """The terms of `duration` that do not depend on the data-parallel degree (so not on
        the counts asked for), per chip and layout, for one scalar variant: compute and bubble
        seconds per step of one replica, tensor- and pipeline-parallel seconds before dividing
        by dp, and the gradient (and, for LoRA with ZeRO-3, weight) all-reduce seconds per
        unit of ring/node traffic. Elementwise, so a caller may compute them once per layout
        and gather them to every (layout, dp) slot: the values are the same."""
        e = self.eff
        z3 = (var & 1) == 1
        full = (var & 4) == 4
        s, h, L = self.seq_len, self.hidden, self.layers
        shard = tp * pp
        _, _, comp_row, virtual, t_bubble = self._compute_rows(c, tp, pp, full)
        n_coll = 6.0 if full else 4.0
        tp_bw = peer_bw(c.up_bw, c.mesh, c.chips_per_node, tp)
        coll_bytes = 2.0 * (tp - 1) / tp * s * h * 2.0
        t_coll = np.where(tp > 1, e.collective_latency_s + coll_bytes / tp_bw, 0.0)
        tp_row = self.batch_seqs * (L / pp) * n_coll * t_coll * e.tp_exposed
        p2p = np.where(pp > 1, e.network_latency_s + s * h * 2.0 / tp / c.out_bw, 0.0)
        grad_dense = GRAD_BYTES * (self.adapters if self.lora else self.p_shared) / shard
        out = {"comp_row": comp_row, "t_bubble": t_bubble, "tp_row": tp_row,
               "opt_row": self.optimizer_row(c, shard),
               "pp_row": self.batch_seqs * 2.0 * virtual * p2p,
               "g_up": 2.0 * grad_dense / c.up_bw, "g_out": 2.0 * grad_dense / c.out_bw}
        if self.lora and z3:
            w_bytes = WEIGHT_BYTES * self.p_shared / shard
            out.update(w_up=2.0 * w_bytes / c.up_bw, w_out=2.0 * w_bytes / c.out_bw)
        return out

    def duration(self, c, tp, pp, var: int, dp, nodes=None, out=None, fit: bool = False,
                 parts: dict | None = None, rows: dict | None = None):
        """(duration_s, fits) of `evaluate(..., duration_only=True)` for one scalar variant,
        computed with less memory traffic: what depends on the chip only through its node
        (chips_per_node, mesh) is computed once per distinct node kind and gathered, and the
        full-size intermediates live in reused scratch buffers (fresh arrays of this size
        cost page faults). The elementwise operations and their order are those of
        `evaluate`, so the values are bit-identical.

        `nodes` = (node columns with chips_per_node and mesh of shape [U, 1, 1], index [A] of
        each chip's node kind), for chip columns of shape [A, 1, 1]; None computes the node
        terms per entry (chip columns gathered per entry). `out` receives the duration.
        `fit` says the caller has checked that every entry fits (`fits`): memory is skipped.
        `parts`, a dict, receives the time terms of `evaluate(..., lean=True)`. `rows`, if
        given, are `duration_rows(c, tp, pp, var)` broadcast to this call's entries."""
        e = self.eff
        z3 = (var & 1) == 1
        full = (var & 4) == 4
        if nodes is None:
            cn, kinds = c, None
        else:
            cn, kinds = nodes
        n_kinds = np.shape(cn.chips_per_node)[0]
        shape = np.broadcast_shapes(np.shape(c.mem_bytes), np.shape(tp), np.shape(pp),
                                    np.shape(dp))
        scratch = _Scratch(shape)

        def per_chip(x, i):  # node-kind rows gathered to chips, into scratch buffer i
            if kinds is None or np.ndim(x) < 1 or np.shape(x)[0] != n_kinds:
                return x
            if x.dtype != np.float64:
                return x[kinds]
            return np.take(x, kinds, axis=0, out=scratch[i])

        ep = self.expert_parallel(cn, tp, dp, var)
        if fit:
            fits = np.ones(shape, dtype=bool)
        else:
            weights, grads, optim, acts = self.memory(cn, tp, pp, dp, ep, 3 if z3 else 2,
                                                      full)
            fits = per_chip(weights + grads + optim + acts, 0) <= c.mem_bytes

        s, h, L = self.seq_len, self.hidden, self.layers
        shard = tp * pp
        batch_tokens = float(self.batch_seqs * s)
        r = rows if rows is not None else self.duration_rows(c, tp, pp, var)
        t_bubble = r["t_bubble"]
        t_comp = np.divide(r["comp_row"], dp, out=scratch[0])
        link = np.divide(r["tp_row"], dp, out=scratch[1])  # t_tp; the link terms are added
        network = np.divide(r["pp_row"], dp, out=scratch[2])  # t_pp

        local = np.maximum(cn.chips_per_node // tp, 1)
        ring_n, frac_n = self._ring_terms(cn, dp, local)
        ring, node_frac = per_chip(ring_n, 3), per_chip(frac_n, 4)
        if self.lora and z3:
            w_up = np.multiply(r["w_up"], ring, out=scratch[5])
            w_out = np.multiply(r["w_out"], node_frac, out=scratch[6])
        up_d = np.multiply(r["g_up"], ring, out=scratch[3])
        out_d = np.multiply(r["g_out"], node_frac, out=scratch[4])
        if self.is_moe and not self.lora:
            grad_exp = per_chip(2.0 * (GRAD_BYTES * self.p_expert / (shard * ep)), 5)
            ring_e, frac_e = self._ring_terms(cn, dp / ep, local)
            up_e = np.divide(grad_exp, c.up_bw, out=scratch[6])
            up_d += np.multiply(up_e, per_chip(ring_e, 7), out=up_e)
            out_e = np.divide(grad_exp, c.out_bw, out=scratch[5])
            out_d += np.multiply(out_e, per_chip(frac_e, 7), out=out_e)
        if self.lora:
            if z3:
                np.multiply(w_up, self.batch_seqs, out=w_up)
                up_d += np.divide(w_up, dp, out=w_up)
                np.multiply(w_out, self.batch_seqs, out=w_out)
                out_d += np.divide(w_out, dp, out=w_out)
        elif z3:
            zero3 = 0.5 + self.batch_seqs / dp
            up_d *= zero3
            out_d *= zero3
        t_dp_up = up_d
        t_dp = np.add(up_d, out_d, out=scratch[5])
        dp_exposed = np.multiply(e.dp_overlap, t_comp, out=scratch[6])
        np.subtract(t_dp, dp_exposed, out=dp_exposed)
        np.maximum(dp_exposed, 0.0, out=dp_exposed)
        positive = t_dp > 0
        share = np.divide(t_dp_up, t_dp, out=scratch[7], where=positive)
        np.copyto(share, 0.0, where=~positive)

        if self.is_moe:  # scratch 3 and 4 (the gradient terms) are free again
            token_layers = batch_tokens / dp * (L / pp) / tp
            a2a_bytes = per_chip(token_layers * 4.0 * self.experts_per_token * h * 2.0
                                 * (ep - 1) / ep, 3)
            intra = per_chip(ep <= local, None)
            peers = np.maximum(cn.chips_per_node - 1, 1)
            frac = per_chip(np.minimum(np.maximum(ep - 1, 1), peers) / peers, 4)
            if kinds is None:
                a2a_bytes = np.broadcast_to(a2a_bytes, shape)
                frac = np.array(np.broadcast_to(frac, shape))
            ep_bw = np.multiply(c.up_bw, frac, out=frac)  # a mesh splits the link
            np.copyto(ep_bw, np.broadcast_to(c.up_bw, shape), where=~np.asarray(c.mesh))
            np.copyto(ep_bw, np.broadcast_to(c.out_bw, shape), where=~intra)
            t_ep = np.divide(a2a_bytes, ep_bw, out=ep_bw)
            ep_exposed = np.multiply(e.ep_overlap, t_comp, out=scratch[3])
            np.subtract(t_ep, ep_exposed, out=ep_exposed)
            np.maximum(ep_exposed, 0.0, out=ep_exposed)
            ep_up = np.multiply(ep_exposed, 1.0, out=t_ep)
            np.copyto(ep_up, 0.0, where=~intra)
            ep_out = np.subtract(ep_exposed, ep_up, out=ep_exposed)

        tmp = np.multiply(dp_exposed, share, out=t_dp)
        link += tmp
        np.subtract(1.0, share, out=share)
        np.multiply(dp_exposed, share, out=share)
        network += share
        if self.is_moe:
            link += ep_up
            network += ep_out
        t_opt = np.divide(r["opt_row"], dp, out=scratch[5])  # t_dp's buffer is free again
        if parts is not None:  # the terms `evaluate(..., lean=True)` reports, as copies
            parts.update(t_compute=t_comp.copy(), t_bubble=t_bubble, t_link=link.copy(),
                         t_network=network.copy(), t_memory=t_opt.copy())
        compute = np.add(t_comp, t_bubble, out=t_comp)
        compute += link
        compute += network
        compute += t_opt
        if parts is not None:
            parts["busy"] = parts["t_compute"] / compute  # compute is t_step here
        steps = self.tokens / batch_tokens
        duration = np.multiply(steps, compute, out=out if out is not None else np.empty(shape))
        if not fit:
            np.copyto(duration, np.inf, where=~fits)
        return duration, fits

    def lean_terms(self, c, tp, pp, var, dp) -> dict[str, np.ndarray]:
        """The time terms of `evaluate(..., lean=True)` for entries that fit (the layouts the
        search chose), per entry with per-entry variants: `duration` once per variant."""
        var = np.asarray(var)
        out = {k: np.empty(var.shape) for k in ("t_compute", "t_bubble", "t_link",
                                                "t_network", "t_memory", "busy")}
        for v in np.unique(var):
            at = np.nonzero(var == v)[0]
            sub = SimpleNamespace(**{f: x[at] for f, x in c.__dict__.items()})
            parts: dict[str, np.ndarray] = {}
            self.duration(sub, tp[at], pp[at], np.int64(v), dp[at], fit=True, parts=parts)
            for k, x in out.items():
                x[at] = parts[k]
        out.update(mem_busy=0.0)
        return out

    @staticmethod
    def _ring_terms(c, group, local):
        """The factors of `_allreduce` that depend on the chip only through its node: ring
        (link traffic per byte, before 2·bytes/link) and nodes (network traffic per byte)."""
        k = np.minimum(group, local)
        peers = np.maximum(c.chips_per_node - 1, 1)
        ring = np.where(c.mesh, np.where(k > 1, peers, 0.0), k - 1.0) / k
        nodes = np.ceil(group / k)
        return ring, (nodes - 1.0) / (nodes * k)

    @staticmethod
    def _allreduce(c, grad_bytes, group, local):
        """(link seconds, network seconds) of a hierarchical all-reduce over `group` chips:
        a ring over the k chips of the group inside a node (a full mesh gives the pair
        traffic (k-1)/(n-1) of the links, Accelerator.peer_bw_gbs), then across nodes."""
        k = np.minimum(group, local)
        peers = np.maximum(c.chips_per_node - 1, 1)
        ring = np.where(c.mesh, np.where(k > 1, peers, 0.0), k - 1.0) / k
        up = (2.0 * grad_bytes / c.up_bw) * ring
        nodes = np.ceil(group / k)
        out = (2.0 * grad_bytes / c.out_bw) * ((nodes - 1.0) / (nodes * k))
        return up, out

    def tokens_per_s(self, duration):
        return self.tokens / duration

    def model_flops(self) -> float:
        return self.model_flops_per_token * self.tokens


class _Scratch:
    """Reused float64 buffers of one shape, per thread: full-size intermediates of
    `TrainingKernel.duration` write into these instead of fresh arrays. Never returned."""

    _local = threading.local()

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape
        self.size = math.prod(shape)
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        self.pool = pool

    def __getitem__(self, i: int) -> np.ndarray:
        buf = self.pool.get(i)
        if buf is None or buf.size < self.size:
            buf = np.empty(self.size)
            if self.size <= 1 << 21:  # larger ones are not kept (16 MiB of float64)
                self.pool[i] = buf
        return buf[:self.size].reshape(self.shape)
