"""What `suanli submit` sends: the job file, its `workdir:` packed and attached, and the
command line's `--env K=V` over the file's `env:`/`envs:`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suanli.errors import SpecError
from suanli.jobs import workdir


def parse_env_overrides(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--env wants KEY=VALUE (got {item!r})", field="env", value=item)
        out[key.strip()] = value
    return out


@dataclass(frozen=True)
class Overrides:
    """What the command line changes in the job file (like `sky launch --gpus H800:8`)."""

    env: dict[str, str] = field(default_factory=dict)
    accelerators: tuple[str, ...] = ()
    count: int | None = None

    def __bool__(self) -> bool:
        return bool(self.env or self.accelerators or self.count is not None)


def parse_accelerators(text: str | None) -> tuple[tuple[str, ...], int | None]:
    """'H800:8' -> (('H800',), 8); 'H100,H800' -> (('H100', 'H800'), None)."""
    if not text:
        return (), None
    names, counts = [], set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, n = part.partition(":")
        if sep:
            if not n.isdigit() or int(n) < 1:
                raise SpecError(f"--accelerators wants NAME[:COUNT],... (got {part!r})",
                                field="accelerators", value=text)
            counts.add(int(n))
        names.append(name)
    if len(counts) > 1:
        raise SpecError(f"--accelerators: one count for all chips (got {text!r})",
                        field="accelerators", value=text)
    return tuple(names), (counts.pop() if counts else None)


def prepare_submission(job_file: Path, text: str, over: Overrides
                       ) -> tuple[dict[str, Any] | None, workdir.PackedWorkdir | None]:
    """(mapping to send as JSON, packed code) when the file ships code or the command line
    changes it; (None, None) when the YAML text can go as it is."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{job_file}: not valid YAML: {exc}", field="<file>") from None
    if not isinstance(data, dict) or (not over and data.get("workdir") is None):
        return None, None
    if over.accelerators or over.count is not None:
        res = dict(data.get("resources") or {})
        if over.accelerators:
            res["accelerators"] = list(over.accelerators)
        if over.count is not None:
            res["count"] = over.count
        data["resources"] = res
    packed = None
    if data.get("workdir") is not None:
        if not isinstance(data["workdir"], str):
            raise SpecError(f"workdir: a directory path (got {data['workdir']!r})",
                            field="workdir", value=data["workdir"])
        packed = workdir.pack((job_file.parent / data["workdir"]).resolve())
        data["workdir"] = packed.digest
        data["workdir_archive"] = packed.to_base64()
    if over.env:
        key = "envs" if "envs" in data else "env"
        base = data.get(key) or {}
        if not isinstance(base, dict):
            raise SpecError(f"{key}: a mapping of names to values", field=key)
        data[key] = {**base, **over.env}
    return data, packed
