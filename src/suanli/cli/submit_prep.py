"""What `suanli submit` sends: the job file, its `workdir:` packed and attached, and the
command line's `--env K=V` over the file's `env:`/`envs:`."""

from __future__ import annotations

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


def prepare_submission(job_file: Path, text: str, env: dict[str, str]
                       ) -> tuple[dict[str, Any] | None, workdir.PackedWorkdir | None]:
    """(mapping to send as JSON, packed code) when the file ships code or the command line
    sets env; (None, None) when the YAML text can go as it is."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{job_file}: not valid YAML: {exc}", field="<file>") from None
    if not isinstance(data, dict) or (not env and data.get("workdir") is None):
        return None, None
    packed = None
    if data.get("workdir") is not None:
        if not isinstance(data["workdir"], str):
            raise SpecError(f"workdir: a directory path (got {data['workdir']!r})",
                            field="workdir", value=data["workdir"])
        packed = workdir.pack((job_file.parent / data["workdir"]).resolve())
        data["workdir"] = packed.digest
        data["workdir_archive"] = packed.to_base64()
    if env:
        key = "envs" if "envs" in data else "env"
        base = data.get(key) or {}
        if not isinstance(base, dict):
            raise SpecError(f"{key}: a mapping of names to values", field=key)
        data[key] = {**base, **env}
    return data, packed
