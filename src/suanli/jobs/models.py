"""Model architectures: presets by name, or explicit parameters in a job file."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from suanli.catalog import normalize_name
from suanli.errors import UnknownNameError


class ModelArch(BaseModel):
    """A transformer's shape: enough to count FLOP, bytes of weights and KV cache."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = "custom"
    params_b: float = Field(gt=0, le=1e9, description="total parameters, billions")
    active_params_b: float | None = Field(default=None, gt=0, le=1e9,
                                           description="MoE: per token")
    layers: int = Field(ge=1, le=2**31 - 1)
    hidden: int = Field(ge=1, le=2**31 - 1)
    heads: int = Field(ge=1, le=2**31 - 1)
    kv_heads: int | None = Field(default=None, ge=1)
    ffn: int | None = Field(default=None, ge=1)
    vocab: int = Field(default=32000, ge=1)
    experts: int = Field(default=1, ge=1)
    experts_per_token: int = Field(default=1, ge=1)
    kv_dim_per_layer: int | None = Field(default=None, ge=1)
    global_batch_tokens: float | None = Field(
        default=None, gt=0, description="tokens per training step in the model's paper"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelArch:
        if self.active_params_b is not None and self.active_params_b > self.params_b:
            raise ValueError(
                f"active_params_b ({self.active_params_b}) exceeds params_b ({self.params_b})"
            )
        if self.experts_per_token > self.experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) exceeds experts ({self.experts})"
            )
        return self

    @property
    def params(self) -> float:
        return self.params_b * 1e9

    @property
    def active_params(self) -> float:
        return (self.active_params_b or self.params_b) * 1e9

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements stored per token across all layers."""
        per_layer = self.kv_dim_per_layer or 2 * (self.kv_heads or self.heads) * self.head_dim
        return per_layer * self.layers


class _ModelsFile(BaseModel):
    models: list[ModelArch]


@cache
def builtin_models() -> dict[str, ModelArch]:
    text = resources.files("suanli.data").joinpath("models.yaml").read_text("utf-8")
    return {m.id: m for m in _ModelsFile.model_validate(yaml.safe_load(text)).models}


def resolve_model(name: str, *, field: str = "model") -> ModelArch:
    """A preset by forgiving name: 'Llama-2-70B', 'llama2_70b' and 'llama-2-70b' all match."""
    presets = builtin_models()
    wanted = normalize_name(name)
    for key, arch in presets.items():
        if normalize_name(key) == wanted:
            return arch
    raise UnknownNameError("model preset", name, list(presets), field=field)
