"""The job file: the user's main input, validated with errors that name the field path."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from suanli.errors import SpecError, format_validation_error
from suanli.jobs.models import ModelArch, resolve_model

JobKind = Literal["train", "finetune", "inference", "batch_inference", "generic"]
Precision = Literal["bf16", "fp16", "fp8"]

# NaN and infinities are refused in every float field: they do not survive a JSON round trip
# (what is stored must load again) and poison every estimate they touch.
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
INT32_MAX = 2**31 - 1  # the range of an integer column on PostgreSQL
MAX_CHIPS = 1_000_000  # more chips than any network holds; keeps gang arithmetic in range
# Upper bounds on the work's magnitudes, far past any real job, so that every estimate stays a
# finite number that fits a money column (1e300 tokens would price at infinity).
MAX_SECONDS = 1e9  # about 32 years


class TrainWork(BaseModel):
    """Train/finetune work: tokens processed at a sequence length."""

    model_config = _STRICT
    tokens: float = Field(gt=0, le=1e18, description="tokens processed over the whole job")
    seq_len: int = Field(default=4096, ge=1, le=INT32_MAX)
    global_batch_tokens: float | None = Field(default=None, gt=0, le=1e12)
    global_batch_seqs: int | None = Field(
        default=None, ge=1, le=INT32_MAX,
        description="sequences per step; default: the model's published batch"
    )
    lora_rank: int | None = Field(default=None, ge=1, le=INT32_MAX,
                                  description="finetune only; None = full")
    recompute: bool = Field(default=False, description="full activation recomputation (8ND)")


class InferenceWork(BaseModel):
    """Serving or batch inference: a count of requests (or a rate over a window)."""

    model_config = _STRICT
    requests: float | None = Field(default=None, gt=0, le=1e15)
    rate_per_s: float | None = Field(default=None, gt=0, le=1e9)
    window_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS,
                                   description="serving window for a rate")
    input_tokens: int = Field(default=512, ge=1, le=INT32_MAX)
    output_tokens: int = Field(default=256, ge=1, le=INT32_MAX)
    latency_target_ms: float | None = Field(
        default=None, gt=0, le=1e9, description="target time per output token (decode step)"
    )

    @model_validator(mode="after")
    def _needs_volume(self) -> InferenceWork:
        if self.requests is None and self.rate_per_s is None:
            raise ValueError("give 'requests' or 'rate_per_s' (with 'window_s')")
        if self.rate_per_s is not None and self.requests is None and self.window_s is None:
            raise ValueError("a 'rate_per_s' needs a 'window_s' (how long to serve)")
        return self

    @property
    def total_requests(self) -> float:
        if self.requests is not None:
            return self.requests
        assert self.rate_per_s is not None and self.window_s is not None
        return self.rate_per_s * self.window_s


class GenericWork(BaseModel):
    """Opaque work measured on a reference chip; the model scales it to others."""

    model_config = _STRICT
    reference_accelerator: str
    reference_count: int = Field(default=1, ge=1, le=MAX_CHIPS)
    duration_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    steps: float | None = Field(default=None, gt=0, le=1e18)
    steps_per_s: float | None = Field(default=None, gt=0, le=1e12)
    bound: Literal["compute", "memory"] = "compute"

    @model_validator(mode="after")
    def _needs_measure(self) -> GenericWork:
        if self.duration_s is None and (self.steps is None or self.steps_per_s is None):
            raise ValueError("give 'duration_s', or 'steps' and 'steps_per_s'")
        return self

    @property
    def reference_duration_s(self) -> float:
        if self.duration_s is not None:
            return self.duration_s
        assert self.steps is not None and self.steps_per_s is not None
        return self.steps / self.steps_per_s


class CountRange(BaseModel):
    model_config = _STRICT
    min: int = Field(ge=1, le=MAX_CHIPS)
    max: int = Field(ge=1, le=MAX_CHIPS)

    @model_validator(mode="after")
    def _ordered(self) -> CountRange:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Resources(BaseModel):
    model_config = _STRICT
    accelerators: tuple[str, ...] = Field(default=(), description="allowed, any of; [] = any")
    prefer_order: bool = Field(default=False, description="accelerators is a preference list")
    count: int | CountRange = 1
    spot: bool = False

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, v: Any) -> Any:
        if isinstance(v, str):  # YAML reads `1e9` as a string: take a whole number written so
            try:
                as_float = float(v)
            except ValueError:
                as_float = math.nan
            if not as_float.is_integer():
                raise ValueError("count must be a positive integer or {min, max}")
            v = int(as_float)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int | dict | CountRange):
            raise ValueError("count must be a positive integer or {min, max}")
        if isinstance(v, int) and v < 1:
            raise ValueError("count must be at least 1")
        if isinstance(v, int) and v > MAX_CHIPS:
            raise ValueError(f"count must be at most {MAX_CHIPS}")
        return v

    @field_validator("accelerators", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @property
    def min_count(self) -> int:
        return self.count if isinstance(self.count, int) else self.count.min

    @property
    def max_count(self) -> int:
        return self.count if isinstance(self.count, int) else self.count.max


class DatasetRef(BaseModel):
    model_config = _STRICT
    name: str
    size_gb: float | None = Field(default=None, ge=0, le=1e9)
    location: str | None = Field(default=None, description="region or center id")


class Measurement(BaseModel):
    """A measured throughput that overrides the model for that chip and count."""

    model_config = _STRICT
    accelerator: str
    count: int = Field(ge=1, le=MAX_CHIPS)
    tokens_per_s: float | None = Field(default=None, gt=0, le=1e15)
    duration_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS)

    @model_validator(mode="after")
    def _one(self) -> Measurement:
        if self.tokens_per_s is None and self.duration_s is None:
            raise ValueError("give 'tokens_per_s' or 'duration_s'")
        return self


WORK_SHAPES: dict[str, type[BaseModel]] = {
    "train": TrainWork,
    "finetune": TrainWork,
    "inference": InferenceWork,
    "batch_inference": InferenceWork,
    "generic": GenericWork,
}


class JobSpec(BaseModel):
    """What a user submits. The shape is a contract shared by CLI, planner and service."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200)
    kind: JobKind
    model: ModelArch | None = None
    precision: Precision = "bf16"
    work: TrainWork | InferenceWork | GenericWork
    resources: Resources = Resources()
    dataset: DatasetRef | None = None
    deadline_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    budget: float | None = Field(default=None, gt=0, le=1e12)
    objective: Literal["cost", "time", "mix"] = Field(
        default="cost", description="what the broker minimises where it places the job")
    priority: int = Field(default=0, ge=-INT32_MAX, le=INT32_MAX)
    tenant: str | None = None
    regions: tuple[str, ...] = Field(default=(), description="allowed regions; [] = any")
    checkpoint_interval_s: float = Field(default=3600.0, gt=0, le=MAX_SECONDS)
    checkpoint_restore_s: float = Field(default=60.0, ge=0, le=MAX_SECONDS)
    # Retries are for infrastructure (a node, pool or center lost, a start that failed): a
    # job's own non-zero exit fails it at once, unless its code is listed here.
    max_retries: int = Field(default=3, ge=0, le=1000)  # stored in an integer column
    retry_on_exit_codes: tuple[int, ...] = Field(default=(), max_length=256)
    measured: tuple[Measurement, ...] = ()
    setup: str | None = None
    run: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # The job file: a directory (relative to the file) the CLI packs and uploads; as stored:
    # "sha256:<hex>" of that archive (jobs/workdir.py), unpacked into the job's work directory.
    workdir: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="before")
    @classmethod
    def _envs_alias(cls, data: Any) -> Any:
        """`envs:` (as in SkyPilot task files) is another name for `env:`."""
        if isinstance(data, dict) and "envs" in data:
            if "env" in data:
                raise ValueError("give 'env' or 'envs', not both")
            data = {k: v for k, v in data.items() if k != "envs"} | {"env": data["envs"]}
        return data

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, v: Any) -> Any:
        if isinstance(v, str):
            return resolve_model(v)
        return v

    @model_validator(mode="before")
    @classmethod
    def _pick_work(cls, data: Any) -> Any:
        """Validate `work` against the model its `kind` calls for, so errors say work.<field>."""
        if not isinstance(data, dict):
            return data
        kind, work = data.get("kind"), data.get("work")
        if kind in WORK_SHAPES and isinstance(work, dict):
            data = {**data, "work": WORK_SHAPES[kind].model_validate(work)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.kind != "generic" and self.model is None:
            raise ValueError(f"kind {self.kind!r} needs a 'model' (a preset name or a mapping)")
        if isinstance(self.work, TrainWork) and self.work.lora_rank and self.kind != "finetune":
            raise ValueError("work.lora_rank is for kind 'finetune' only")
        return self

    @property
    def min_count(self) -> int:
        return self.resources.min_count

    @property
    def max_count(self) -> int:
        return self.resources.max_count


def parse_job(data: Any, source: str = "job") -> JobSpec:
    """Validate a mapping (from YAML or JSON); raise SpecError naming every bad field."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a job must be a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in WORK_SHAPES:
        known = ", ".join(WORK_SHAPES)
        raise SpecError(f"{source}: kind: must be one of {known} (got {kind!r})", field="kind",
                        value=kind)
    shape = WORK_SHAPES[kind]
    if isinstance(data.get("work"), dict):
        try:
            shape.model_validate(data["work"])
        except ValidationError as exc:
            raise format_validation_error(exc, source, prefix="work") from None
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None


def stored_spec_json(spec: JobSpec) -> str:
    """The spec as the service stores it, checked to load again: a job admitted is a job the
    scheduler can read back, never one that fails on every restart."""
    text = spec.model_dump_json(exclude_defaults=True)
    try:
        JobSpec.model_validate_json(text)
    except ValidationError as exc:
        raise format_validation_error(exc, "job (as it would be stored)") from None
    return text


def load_job(path: str | Path) -> JobSpec:
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read job file {p}: {exc.strerror}", field="job") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML: {exc}", field="<file>") from None
    return parse_job(data, str(p))
