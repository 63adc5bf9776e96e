"""Fit the model's efficiencies to measured throughputs (scipy least squares, log errors).

Fitted: each measured chip's sustained compute efficiency, and the global memory-bandwidth,
scale-up-link and scale-out-network efficiencies. A weak prior pulls every factor towards its
default, so parameters the measurements do not constrain stay where they were.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from suanli.catalog import Catalog, builtin_catalog
from suanli.errors import SpecError
from suanli.jobs import JobSpec, load_job, parse_job
from suanli.perf.efficiency import DEFAULT_EFFICIENCY, Efficiency
from suanli.perf.estimate import estimate, throughput_at_layout

PRIOR_WEIGHT = 0.1
GLOBAL_FACTORS = ("memory_bw", "scaleup", "scaleout")


@dataclass(frozen=True)
class CalibrationPoint:
    job: JobSpec
    accelerator: str
    count: int
    tokens_per_s: float
    label: str
    layout: tuple[int, int] | None = None  # (tp, pp) as run, when the measurement gives it


@dataclass(frozen=True)
class CalibrationResult:
    efficiency: Efficiency
    overrides: dict[str, Any]
    rms_log_error_before: float
    rms_log_error_after: float
    rows: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {
            "efficiency": self.overrides,
            "fit": {"measurements": len(self.rows),
                    "rms_log_error_before": self.rms_log_error_before,
                    "rms_log_error_after": self.rms_log_error_after,
                    "rows": list(self.rows)},
        }


def _job_from_entry(entry: dict, i: int, base_dir: Path | None) -> JobSpec:
    where = f"measurements.{i}"
    job = entry.get("job")
    if isinstance(job, str):
        path = Path(job) if base_dir is None or Path(job).is_absolute() else base_dir / job
        return load_job(path)
    if isinstance(job, dict):
        return parse_job(job, where + ".job")
    if "model" not in entry:
        raise SpecError(f"{where}: give 'job' (a file or mapping) or 'model'",
                        field=f"{where}.model", value=None)
    kind = entry.get("kind", "train")
    if kind in ("train", "finetune"):
        work = {"tokens": 1e9, "seq_len": int(entry.get("seq_len", 4096))}
        for key in ("global_batch_tokens", "global_batch_seqs", "lora_rank", "recompute"):
            if key in entry:
                work[key] = entry[key]
    else:
        work = {"requests": float(entry.get("requests", 1e4)),
                "input_tokens": int(entry.get("input_tokens", 512)),
                "output_tokens": int(entry.get("output_tokens", 256))}
        if "latency_target_ms" in entry:
            work["latency_target_ms"] = entry["latency_target_ms"]
    data = {"name": entry.get("name", f"m{i}"), "kind": kind, "model": entry["model"],
            "precision": entry.get("precision", "bf16"), "work": work}
    return parse_job(data, where)


def parse_measurements(raw: Any, *, base_dir: Path | None = None,
                       catalog: Catalog | None = None) -> list[CalibrationPoint]:
    """Validate a list (or {'measurements': [...]}) of measured throughputs."""
    cat = catalog or builtin_catalog()
    if isinstance(raw, dict):
        raw = raw.get("measurements")
    if not isinstance(raw, list) or not raw:
        raise SpecError("measurements: expected a non-empty list", field="measurements",
                        value=None)
    points = []
    for i, entry in enumerate(raw):
        where = f"measurements.{i}"
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: each measurement is a mapping", field=where, value=entry)
        job = _job_from_entry(entry, i, base_dir)
        acc = cat.get(str(entry.get("accelerator", "")), field=f"{where}.accelerator")
        try:
            count = int(entry.get("count", 1))
        except (TypeError, ValueError):
            raise SpecError(f"{where}.count: must be a positive integer",
                            field=f"{where}.count", value=entry.get("count")) from None
        if count < 1:
            raise SpecError(f"{where}.count: must be at least 1", field=f"{where}.count",
                            value=count)
        tps = entry.get("tokens_per_s")
        try:
            tps = float(tps) if tps not in (None, "") else None
        except (TypeError, ValueError):
            raise SpecError(f"{where}.tokens_per_s: not a number", field=f"{where}.tokens_per_s",
                            value=tps) from None
        if tps is None or not tps > 0:
            raise SpecError(f"{where}.tokens_per_s: give a positive measured tokens/s",
                            field=f"{where}.tokens_per_s", value=tps)
        label = entry.get("name") or f"{job.model.id if job.model else job.name}@{count}x{acc.id}"
        points.append(CalibrationPoint(job, acc.id, count, tps, str(label),
                                       _layout(entry, where, count)))
    return points


def _layout(entry: dict, where: str, count: int) -> tuple[int, int] | None:
    """The optional tensor x pipeline layout the measurement ran at (`tp`, `pp`)."""
    if "tp" not in entry and "pp" not in entry:
        return None
    try:
        tp, pp = int(entry.get("tp", 1)), int(entry.get("pp", 1))
    except (TypeError, ValueError):
        raise SpecError(f"{where}: tp and pp must be positive integers", field=f"{where}.tp",
                        value=entry.get("tp")) from None
    if tp < 1 or pp < 1 or tp * pp > count:
        raise SpecError(f"{where}: tp x pp must be between 1 and count ({count})",
                        field=f"{where}.tp", value={"tp": tp, "pp": pp})
    return tp, pp


def load_measurements(path: str | Path, catalog: Catalog | None = None) -> list[CalibrationPoint]:
    """A YAML file ({'measurements': [...]}) or a CSV file with the same columns."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read measurements file {p}: {exc.strerror}",
                        field="measurements", value=str(p)) from None
    if p.suffix.lower() == ".csv":
        rows = [{k: v for k, v in row.items() if v not in (None, "")}
                for row in csv.DictReader(text.splitlines())]
        for row in rows:
            for key in ("seq_len", "input_tokens", "output_tokens", "lora_rank", "tp", "pp",
                        "global_batch_seqs"):
                if key in row:
                    row[key] = int(float(row[key]))
        raw: Any = rows
    else:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError(f"{p}: not valid YAML: {exc}", field="<file>") from None
    return parse_measurements(raw, base_dir=p.parent, catalog=catalog)


def _apply(base: Efficiency, chips: list[str], x: np.ndarray) -> tuple[Efficiency, dict]:
    compute = {c: float(min(0.98, base.compute_for(c) * math.exp(v)))
               for c, v in zip(chips, x[: len(chips)], strict=True)}
    overrides: dict[str, Any] = {"compute": compute}
    for name, v in zip(GLOBAL_FACTORS, x[len(chips):], strict=True):
        overrides[name] = float(min(0.98, getattr(base, name) * math.exp(v)))
    return base.with_overrides(overrides), overrides


def _predict(points: list[CalibrationPoint], eff: Efficiency, catalog) -> np.ndarray:
    out = []
    for p in points:
        if p.layout is not None:  # the layout it ran at, not the one the search picks
            out.append(throughput_at_layout(p.job, p.accelerator, p.count, *p.layout,
                                            catalog=catalog, efficiency=eff)[0])
            continue
        e = estimate(p.job, p.accelerator, p.count, catalog=catalog, efficiency=eff)
        out.append(e.tokens_per_s if e.fits else 0.0)
    return np.array(out)


def calibrate(measurements: list[CalibrationPoint] | str | Path, *,
              base: Efficiency | None = None,
              catalog: Catalog | None = None) -> CalibrationResult:
    """Fitted efficiency parameters minimising the log error of predicted tokens/s."""
    points = (load_measurements(measurements, catalog)
              if isinstance(measurements, str | Path) else list(measurements))
    base = base or DEFAULT_EFFICIENCY
    chips = sorted({p.accelerator for p in points})
    measured = np.array([p.tokens_per_s for p in points])
    before = _predict(points, base, catalog)
    if not (before > 0).all():
        bad = points[int(np.argmin(before > 0))]
        raise SpecError(f"measurement {bad.label}: the job does not fit on {bad.count} x "
                        f"{bad.accelerator} in the model, so it cannot be calibrated",
                        field="measurements", value=bad.label)
    n_par = len(chips) + len(GLOBAL_FACTORS)
    lo = np.array([math.log(0.05 / base.compute_for(c)) for c in chips]
                  + [math.log(0.05 / getattr(base, g)) for g in GLOBAL_FACTORS])
    hi = np.array([math.log(0.98 / base.compute_for(c)) for c in chips]
                  + [math.log(0.98 / getattr(base, g)) for g in GLOBAL_FACTORS])
    hi = np.maximum(hi, 1e-6)

    def residuals(x: np.ndarray) -> np.ndarray:
        eff, _ = _apply(base, chips, x)
        pred = _predict(points, eff, catalog)
        err = np.log(np.maximum(pred, 1e-30) / measured)
        return np.concatenate([err, PRIOR_WEIGHT * x])

    from scipy.optimize import least_squares  # imported here: scipy costs ~30 MB to load

    fit = least_squares(residuals, np.zeros(n_par), bounds=(lo, hi), diff_step=1e-3,
                        x_scale=1.0, max_nfev=60)
    eff, overrides = _apply(base, chips, fit.x)
    after = _predict(points, eff, catalog)
    rows = tuple(
        {"measurement": p.label, "accelerator": p.accelerator, "count": p.count,
         "measured_tokens_per_s": p.tokens_per_s, "before_tokens_per_s": float(b),
         "after_tokens_per_s": float(a)}
        for p, b, a in zip(points, before, after, strict=True))

    def rms(pred: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.log(np.maximum(pred, 1e-30) / measured) ** 2)))

    return CalibrationResult(eff, overrides, rms(before), rms(after), rows)


def write_calibration(result: CalibrationResult, path: str | Path) -> None:
    text = "# suanli calibration: pass back with --calibration FILE\n" + yaml.safe_dump(
        result.to_dict(), sort_keys=False)
    Path(path).write_text(text, "utf-8")
