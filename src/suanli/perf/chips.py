"""Accelerator specs as NumPy columns, so one kernel evaluates every chip at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from suanli.catalog import Accelerator
from suanli.perf.efficiency import Efficiency

A100_RIDGE_FLOP_PER_BYTE = 312e12 / 2.039e12


@dataclass(frozen=True)
class ChipArrays:
    """One entry per accelerator; every field has shape [A] (broadcast by callers)."""

    ids: tuple[str, ...]
    bf16_flops: np.ndarray  # FLOP/s
    peak_flops: np.ndarray  # FLOP/s at the job's precision (MFU denominator)
    sustained_flops: np.ndarray  # FLOP/s the kernel mix reaches on large GEMMs
    ridge_ratio: np.ndarray  # peak FLOP/byte relative to A100's
    mem_bw: np.ndarray  # bytes/s achieved
    mem_bytes: np.ndarray  # usable bytes
    mem_physical_gb: np.ndarray
    up_bw: np.ndarray  # bytes/s achieved, scale-up link per chip, unidirectional
    mesh: np.ndarray  # bool: full-mesh scale-up (pair gets a fraction of the link)
    chips_per_node: np.ndarray  # int
    out_bw: np.ndarray  # bytes/s achieved, scale-out NIC per chip
    tdp_w: np.ndarray
    has_fp8: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str, shape_tail: int) -> np.ndarray:
        """A field reshaped to [A, 1, ..., 1] with `shape_tail` trailing axes."""
        arr = getattr(self, name)
        return arr.reshape((-1,) + (1,) * shape_tail)


def chip_arrays(accelerators: Sequence[Accelerator], precision: str,
                eff: Efficiency) -> ChipArrays:
    accs = list(accelerators)
    bf16 = np.array([a.bf16_tflops * 1e12 for a in accs])
    has_fp8 = np.array([a.fp8_tflops is not None for a in accs])
    use_fp8 = precision == "fp8"
    peak = np.array([a.peak_tflops(precision) * 1e12 for a in accs])
    comp = np.array([eff.compute_for(a.id) for a in accs])
    sustained = bf16 * comp * np.where(use_fp8 & has_fp8, eff.fp8_speedup, 1.0)
    bw_nominal = np.array([a.memory_bw_tbs * 1e12 for a in accs])
    mem_eff = np.array([eff.memory_bw_for(a.id) for a in accs])
    mem_gb = np.array([a.memory_gb for a in accs])
    return ChipArrays(
        ids=tuple(a.id for a in accs),
        bf16_flops=bf16,
        peak_flops=peak,
        sustained_flops=sustained,
        ridge_ratio=(bf16 / bw_nominal) / A100_RIDGE_FLOP_PER_BYTE,
        mem_bw=bw_nominal * mem_eff,
        mem_bytes=mem_gb * 1e9 * (1.0 - eff.runtime_reserve),
        mem_physical_gb=mem_gb,
        up_bw=np.array([a.scaleup_bw_gbs * 1e9 for a in accs]) * eff.scaleup,
        mesh=np.array([a.scaleup_topology == "mesh" for a in accs]),
        chips_per_node=np.array([a.chips_per_node for a in accs], dtype=np.int64),
        out_bw=np.array([a.scaleout_gbps / 8 * 1e9 for a in accs]) * eff.scaleout,
        tdp_w=np.array([a.tdp_w for a in accs]),
        has_fp8=has_fp8,
    )


def peer_bw(up_bw: np.ndarray, mesh: np.ndarray, cpn: np.ndarray,
            group: np.ndarray) -> np.ndarray:
    """Bytes/s one chip pushes to peers in a group (vector form of Accelerator.peer_bw_gbs)."""
    peers = np.maximum(cpn - 1, 1)
    frac = np.minimum(np.maximum(group - 1, 1), peers) / peers
    return np.where(mesh, up_bw * frac, up_bw)
