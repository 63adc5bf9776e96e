"""The accelerator catalog: chip specs with sources, forgiving name lookup, user overrides."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from suanli.errors import SpecError, UnknownNameError, format_validation_error

Topology = Literal["switch", "mesh", "pcie"]


class Accelerator(BaseModel):
    """One chip model. Bandwidths are per chip; scale-up is unidirectional GB/s."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str
    vendor: str
    aliases: tuple[str, ...] = ()
    bf16_tflops: float = Field(gt=0)
    fp8_tflops: float | None = Field(default=None, gt=0)
    memory_gb: float = Field(gt=0)
    memory_bw_tbs: float = Field(gt=0)
    scaleup_bw_gbs: float = Field(gt=0)
    scaleup_topology: Topology
    chips_per_node: int = Field(ge=1)
    scaleout_gbps: float = Field(default=100.0, gt=0)
    tdp_w: float = Field(gt=0)
    export_note: str = ""
    notes: str = ""
    sources: str = ""

    def peer_bw_gbs(self, group_size: int) -> float:
        """Unidirectional GB/s one chip can push to its peers in a group of `group_size`.

        A switch gives every chip its full link whatever the group; a full mesh splits the
        chip's links over its 7 peers, so a group of k chips uses only (k-1)/(n-1) of them.
        PCIe is a shared tree, modelled like a switch at its (low) link rate.
        """
        if group_size <= 1:
            return float("inf")
        if self.scaleup_topology == "mesh":
            peers = max(self.chips_per_node - 1, 1)
            return self.scaleup_bw_gbs * min(group_size - 1, peers) / peers
        return self.scaleup_bw_gbs

    def peak_tflops(self, precision: str) -> float:
        """Dense peak for a precision; FP8 falls back to BF16 on chips without FP8 units."""
        if precision == "fp8" and self.fp8_tflops:
            return self.fp8_tflops
        return self.bf16_tflops


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accelerators: list[Accelerator]


_VENDOR_WORDS = ("nvidia", "huawei", "amd", "cambricon", "instinct", "geforce", "tesla")
_FORM_WORDS = ("sxm5", "sxm4", "sxm2", "sxm", "pcie", "oam", "hgx")


def normalize_name(name: str) -> str:
    """Lower-case alphanumerics only: 'NVIDIA H800 80GB' -> 'nvidiah80080gb'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _name_keys(name: str) -> set[str]:
    """Keys a name may be looked up by: as written, without vendor, form factor, memory size."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    keys = {"".join(words)}
    core = [w for w in words if w not in _VENDOR_WORDS and w not in _FORM_WORDS]
    keys.add("".join(core))
    no_mem = [w for w in core if not re.fullmatch(r"\d+gb", w)]
    if no_mem:
        keys.add("".join(no_mem))
    if core and core[0] == "ascend":
        keys.add("".join(core[1:]))
    return {k for k in keys if k}


class Catalog:
    """A set of accelerators with lookup by any of their names."""

    def __init__(self, accelerators: Iterable[Accelerator]) -> None:
        self._by_id: dict[str, Accelerator] = {}
        for acc in accelerators:
            self._by_id[acc.id] = acc
        self._index: dict[str, str] = {}
        # Ids win over aliases, aliases over derived keys, so "A100" stays the 80GB part.
        for acc in self._by_id.values():
            for alias in (acc.name, *acc.aliases):
                for key in _name_keys(alias):
                    self._index.setdefault(key, acc.id)
        for acc in self._by_id.values():
            for alias in acc.aliases:
                self._index[normalize_name(alias)] = acc.id
        for acc in self._by_id.values():
            self._index[normalize_name(acc.id)] = acc.id

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    @property
    def ids(self) -> list[str]:
        return list(self._by_id)

    def find(self, name: str) -> Accelerator | None:
        for key in (normalize_name(name), *sorted(_name_keys(name), key=len, reverse=True)):
            if key in self._index:
                return self._by_id[self._index[key]]
        return None

    def get(self, name: str, *, field: str = "accelerator") -> Accelerator:
        """Resolve a forgiving name; unknown names raise with the closest known ones."""
        acc = self.find(name)
        if acc is None:
            known = self.ids + [a.name for a in self]
            raise UnknownNameError("accelerator", name, known, field=field)
        return acc

    def with_overrides(self, entries: Iterable[dict]) -> Catalog:
        """A new catalog where user entries add chips or override fields of known ones."""
        merged = {acc.id: acc.model_dump() for acc in self}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "id" not in entry:
                raise SpecError(
                    f"accelerators.{i}: each entry needs an 'id'", field=f"accelerators.{i}.id"
                )
            existing = self.find(str(entry["id"]))
            base = merged.get(existing.id) if existing else {}
            key = existing.id if existing else str(entry["id"])
            data = {**(base or {}), **entry, "id": key}
            try:
                merged[key] = Accelerator.model_validate(data).model_dump()
            except ValidationError as exc:
                raise format_validation_error(exc, f"accelerators.{i}") from None
        return Catalog(Accelerator.model_validate(d) for d in merged.values())


def _parse_catalog(text: str, source: str) -> list[Accelerator]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}", field="<file>") from None
    try:
        return _CatalogFile.model_validate(raw).accelerators
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None


@cache
def builtin_catalog() -> Catalog:
    text = resources.files("suanli.data").joinpath("accelerators.yaml").read_text("utf-8")
    return Catalog(_parse_catalog(text, "accelerators.yaml"))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The built-in catalog, with a user YAML file's entries added or overriding (optional)."""
    base = builtin_catalog()
    if path is None:
        return base
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text("utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read catalog file {p}: {exc.strerror}", field="catalog") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML: {exc}", field="<file>") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("accelerators"), list):
        raise SpecError(f"{p}: expected a mapping with a list 'accelerators'", field="accelerators")
    return base.with_overrides(raw["accelerators"])
