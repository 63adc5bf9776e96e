"""Generic work: a duration measured on a reference chip, scaled by compute or bandwidth.

Scaling with count: n chips deliver n / (1 + a·log2(min(n, node)) + b·log2(max(n/node, 1)))
reference-chip equivalents: a small loss per doubling inside a node, a larger one per doubling
across nodes. The log2 values come from a table built with Python's math (bit-identical across
array shapes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from suanli.catalog import Accelerator
from suanli.jobs import GenericWork, JobSpec
from suanli.perf.chips import ChipArrays, chip_arrays
from suanli.perf.efficiency import Efficiency


@lru_cache(maxsize=8)
def _log2_table(n: int) -> np.ndarray:
    return np.array([0.0] + [math.log2(i) for i in range(1, n + 1)])


def log2_int(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    top = int(values.max()) if values.size else 1
    size = 1 << max(top, 1).bit_length()
    return _log2_table(size)[values]


@dataclass(frozen=True)
class GenericKernel:
    eff: Efficiency
    reference_duration_s: float
    reference_count: int
    reference_rate: float  # FLOP/s or bytes/s of one reference chip
    reference_node: int
    bound_memory: bool
    work_units: float

    kind_label = "generic"
    fast_path = False  # kernel.Kernel only: the search uses evaluate
    max_dp = 1 << 30

    @classmethod
    def from_job(cls, job: JobSpec, eff: Efficiency, reference: Accelerator) -> GenericKernel:
        work = job.work
        assert isinstance(work, GenericWork)
        ref = chip_arrays([reference], job.precision, eff)
        memory = work.bound == "memory"
        return cls(
            eff=eff, reference_duration_s=work.reference_duration_s,
            reference_count=work.reference_count,
            reference_rate=float((ref.mem_bw if memory else ref.sustained_flops)[0]),
            reference_node=reference.chips_per_node, bound_memory=memory,
            work_units=work.steps if work.steps is not None else work.reference_duration_s,
        )

    def layouts(self) -> list[tuple[int, int]]:
        return [(1, 1)]

    def variants(self) -> list[int]:
        return [0]

    def valid(self, c: ChipArrays, tp: np.ndarray) -> np.ndarray:
        return tp >= 1

    def scaling(self, n, node):
        """Reference-chip equivalents delivered by n chips in nodes of `node` chips."""
        e = self.eff
        n = np.asarray(n)
        inside = np.minimum(n, node)
        across = np.maximum(n // node, 1)
        loss = e.generic_loss_per_doubling_node * log2_int(inside) \
            + e.generic_loss_per_doubling_network * log2_int(across)
        return n / (1.0 + loss)

    def fits(self, c, tp, pp, var, dp) -> np.ndarray:
        return np.broadcast_to(self.evaluate(c, tp, pp, var, dp)["fits"], np.shape(dp))

    def evaluate(self, c, tp, pp, var, dp, lean: bool = False,
                 duration_only: bool = False) -> dict[str, np.ndarray]:
        rate = c.mem_bw if self.bound_memory else c.sustained_flops
        ref_work = self.reference_duration_s * self.reference_rate * float(
            self.scaling(np.array([self.reference_count]), self.reference_node)[0])
        duration = ref_work / (rate * self.scaling(dp, c.chips_per_node))
        if duration_only:
            return {"duration_s": duration, "fits": duration < np.inf}
        zero = 0.0 * duration
        return {
            "duration_s": duration, "fits": duration < np.inf, "ep": 1 + 0 * dp,
            "stage": 0 * dp, "weights": zero, "gradients": zero, "optimizer": zero,
            "activations": zero, "kv_cache": zero, "total": zero,
            "t_compute": zero if self.bound_memory else duration,
            "t_memory": duration if self.bound_memory else zero,
            "t_link": zero, "t_network": zero, "t_bubble": zero, "t_step": duration,
            "busy": zero + (0.0 if self.bound_memory else 1.0),
            "mem_busy": zero + (1.0 if self.bound_memory else 0.0),
            "gemm": zero + 1.0, "flops_rate": zero,
        }

    def tokens_per_s(self, duration):
        return self.work_units / duration

    def model_flops(self) -> float:
        return 0.0
