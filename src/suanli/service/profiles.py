"""Client credentials kept like other CLIs keep them: named profiles (service URL + token) in
`$XDG_CONFIG_HOME/suanli/config.toml` (or `~/.config/suanli/config.toml`), mode 0600, one of
them current. `suanli login` writes it; every client command reads it; SUANLI_URL,
SUANLI_TOKEN and SUANLI_PROFILE override it."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from suanli.errors import SuanliError


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    token: str | None


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return Path(base).expanduser() / "suanli"


def config_file() -> Path:
    return config_dir() / "config.toml"


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SuanliError(f"cannot read {path}: {exc}", field="config", value=str(path)) from None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_secret_toml(path: Path, tables: dict[str, dict[str, str]],
                      top: dict[str, str] | None = None) -> None:
    """Write a small TOML file readable by its owner only (0600 from the first byte)."""
    lines = [f"{k} = {_quote(v)}" for k, v in (top or {}).items()]
    for name, values in tables.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {_quote(v)}" for k, v in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).lstrip("\n") + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_profile(name: str | None = None) -> Profile | None:
    """The named profile, else $SUANLI_PROFILE, else the current one; None if there is none."""
    cfg = _read(config_file())
    profiles = cfg.get("profiles", {})
    name = name or os.environ.get("SUANLI_PROFILE") or cfg.get("current")
    if not name:
        return None
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none (run `suanli login`)"
        raise SuanliError(f"no profile {name!r} in {config_file()}; known: {known}",
                          field="profile", value=name)
    p = profiles[name]
    return Profile(name=name, url=str(p.get("url", "")), token=p.get("token"))


def save_profile(profile: Profile, make_current: bool = True) -> Path:
    cfg = _read(config_file())
    profiles = {k: dict(v) for k, v in cfg.get("profiles", {}).items()}
    profiles[profile.name] = {"url": profile.url, **({"token": profile.token}
                                                     if profile.token else {})}
    current = profile.name if make_current else cfg.get("current", profile.name)
    write_secret_toml(config_file(), {f"profiles.{_bare(k)}": v for k, v in profiles.items()},
                      top={"current": current})
    return config_file()


def _bare(name: str) -> str:
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise SuanliError(f"a profile name is letters, digits, '-' and '_' (got {name!r})",
                          field="profile", value=name)
    return name


def read_credentials(path: Path) -> Profile:
    """The admin credentials `suanli up` wrote (url + token)."""
    data = _read(path)
    if not data:
        raise SuanliError(f"no credentials file at {path} (`suanli up` writes it at first "
                          "start and prints where)", field="credentials", value=str(path))
    if "url" not in data or "token" not in data:
        raise SuanliError(f"{path} has no url and token", field="credentials", value=str(path))
    return Profile(name="admin", url=str(data["url"]), token=str(data["token"]))
