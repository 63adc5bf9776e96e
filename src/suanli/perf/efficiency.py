"""The model's efficiency parameters, with the public facts they were set from.

Every number here is a default a calibration file (`suanli calibrate`) may override. Anchors the
tests check the model against (tests/test_perf_anchors.py):

* Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
  (arXiv 2205.05198), Table 5: GPT 22B/175B/530B/1T on A100 with sequence parallelism and
  selective recomputation reach 41.5/51.4/56.0/56.3% MFU; MFU rises with hidden size per
  tensor-parallel rank (the GEMM-size factor below was fitted to those four points).
* Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using
  Megatron-LM" (arXiv 2104.04473): 1T GPT at 52% of A100 peak (hardware FLOPs, full recompute).
* Dubey et al. 2024, "The Llama 3 Herd of Models" (arXiv 2407.21783), Table 4: Llama 3 405B on
  8,192-16,384 H100, BF16 MFU 38-43% (TP8, PP16, DP64-128, 16M-token batches).
* DeepSeek-AI 2024, "DeepSeek-V3 Technical Report" (arXiv 2412.19437): 2.788M H800 GPU-hours
  for 14.8T tokens (FP8 mixed precision, PP16, EP64, no TP), i.e. ~33% of BF16 peak on 6·N·D.
* Chowdhery et al. 2022, "PaLM" (arXiv 2204.02311): 46.2% MFU for 540B on TPU v4 (context for
  what a well-tuned dense model reaches; no TPU in the catalog).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

import yaml

from suanli.errors import SpecError


def _load_compute_table() -> tuple[dict[str, float], float]:
    """Per-chip sustained compute fractions from data/efficiency.yaml (each with its basis:
    fitted to data/calibration.yaml, anchored, or an assumption), and the default."""
    text = resources.files("suanli.data").joinpath("efficiency.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    return ({str(k): float(v["value"]) for k, v in raw["compute"].items()},
            float(raw["compute_default"]))


# Fraction of dense peak a chip sustains on the training/prefill kernel mix; the values and
# where each comes from are in data/efficiency.yaml (fitted factors live in data, not code).
COMPUTE_EFFICIENCY, DEFAULT_COMPUTE_EFFICIENCY = _load_compute_table()


@dataclass(frozen=True)
class Efficiency:
    """Efficiency factors; all dimensionless unless the name carries a unit."""

    compute: dict[str, float] = field(default_factory=lambda: dict(COMPUTE_EFFICIENCY))
    compute_default: float = DEFAULT_COMPUTE_EFFICIENCY
    # GEMM-size factor x/(x+x0), x = hidden (or expert ffn) per tensor-parallel rank; x0 grows
    # with the chip's ridge point (peak FLOP/byte), referenced to A100's. Fitted to the four
    # Korthikanti points (768->41.5%, 1536->51.4%, 2560->56.0%, 3200->56.3%).
    gemm_half_width: float = 300.0
    # Achieved fraction of nominal HBM bandwidth in decode kernels: ~75-85% (vLLM/TensorRT-LLM
    # decode measurements; Yuan et al. 2024 "LLM Inference Unveiled", arXiv 2402.16363).
    memory_bw: float = 0.80
    memory_bw_by_chip: dict[str, float] = field(default_factory=dict)
    # Achieved bus bandwidth of NCCL/HCCL collectives over the scale-up link: ~80% of nominal
    # (nccl-tests all-reduce busbw ~360-370 GB/s on H100 NVLink 450 GB/s).
    scaleup: float = 0.80
    # Scale-out (InfiniBand/RoCE) collectives: ~85% of line rate on 400G NDR (nccl-tests).
    scaleout: float = 0.85
    collective_latency_s: float = 8e-6  # one small collective over NVLink (nccl-tests)
    network_latency_s: float = 20e-6  # one hop between nodes
    # FP8 end-to-end training speed-up over BF16 on chips with FP8 units: ~1.3-1.5x
    # (NVIDIA NeMo performance summary for Llama/GPT with Transformer Engine).
    fp8_speedup: float = 1.4
    # MoE kernel mix: routing, permutation, grouped GEMMs and load imbalance lose ~30%
    # (MegaBlocks, Gale et al. 2022; DeepSeek-V3 lands at ~33% of BF16 peak even in FP8).
    moe: float = 0.60
    # Tensor-parallel collectives are on the critical path; ~30% hidden by overlap
    # (Megatron-LM/TE communication overlap).
    tp_exposed: float = 0.70
    # Data-parallel gradient reduction overlaps the backward pass (bucketed all-reduce).
    dp_overlap: float = 0.60
    # Expert all-to-all overlaps compute partly (DeepSeek's DualPipe hides it fully).
    ep_overlap: float = 0.50
    max_virtual_stages: int = 4  # interleaved 1F1B chunks per pipeline stage (Megatron)
    runtime_reserve: float = 0.10  # memory kept for CUDA context, allocator, workspaces
    # Power: fraction of TDP when busy / idle (Patel et al. 2024, "Characterizing Power
    # Management Opportunities for LLMs in the Cloud", ASPLOS: training draws near TDP,
    # inference well below it; idle H100 ~ 10-15% of TDP).
    power_busy: float = 0.85
    power_idle: float = 0.15
    # Generic work: efficiency lost per doubling of chips inside a node / across nodes
    # (Sergeev & Del Balso 2018, Horovod: ~88-90% scaling efficiency at 128-512 GPUs).
    generic_loss_per_doubling_node: float = 0.01
    generic_loss_per_doubling_network: float = 0.03
    # Max sequences per decode micro-batch. vLLM's max_num_seqs defaults to 256; offline
    # engines tuned for throughput run larger batches (TensorRT-LLM max_batch_size is set in
    # the thousands for MLPerf offline runs): 1,024 is an assumption between the two, so KV-cache
    # capacity, not this cap, bounds the batch of a 70B model on 80-192 GB chips.
    decode_batch_cap: int = 1024
    kv_block_tokens: int = 16  # paged KV cache: whole blocks of 16 tokens (vLLM block_size)

    def compute_for(self, accelerator_id: str) -> float:
        return self.compute.get(accelerator_id, self.compute_default)

    def memory_bw_for(self, accelerator_id: str) -> float:
        return self.memory_bw_by_chip.get(accelerator_id, self.memory_bw)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, data: dict) -> Efficiency:
        """A copy with the given fields replaced; dict fields merge per chip."""
        known = {f.name for f in fields(self)}
        changes: dict = {}
        for key, value in data.items():
            if key not in known:
                raise SpecError(f"calibration: unknown efficiency field {key!r}",
                                field=f"efficiency.{key}", value=key)
            current = getattr(self, key)
            if isinstance(current, dict):
                if not isinstance(value, dict):
                    raise SpecError(f"calibration: {key} must be a mapping",
                                    field=f"efficiency.{key}", value=value)
                changes[key] = {**current, **{str(k): float(v) for k, v in value.items()}}
            else:
                try:
                    changes[key] = type(current)(value)
                except (TypeError, ValueError):
                    raise SpecError(f"calibration: {key} must be a number",
                                    field=f"efficiency.{key}", value=value) from None
        return replace(self, **changes)


DEFAULT_EFFICIENCY = Efficiency()


def load_calibration(path: str | Path | None) -> Efficiency:
    """Default efficiencies, overridden by a file written by `suanli calibrate` (optional)."""
    if path is None:
        return DEFAULT_EFFICIENCY
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text("utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read calibration file {p}: {exc.strerror}",
                        field="calibration", value=str(p)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML: {exc}", field="calibration") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("efficiency"), dict):
        raise SpecError(f"{p}: expected a mapping with an 'efficiency' mapping",
                        field="efficiency", value=str(p))
    return DEFAULT_EFFICIENCY.with_overrides(raw["efficiency"])
