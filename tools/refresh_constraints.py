"""Print constraints.txt: the exact versions installed now of everything suanli[dev,ray,postgres]
pulls in. Refresh on purpose (after a green run on the newest versions):
`python tools/refresh_constraints.py > constraints.txt`."""

from __future__ import annotations

import importlib.metadata as md
import re

from packaging.requirements import Requirement

HEADER = """\
# Tested versions: `pip install -e '.[dev,ray]' -c constraints.txt` (README, .ci/run).
# Refreshed on purpose: `python tools/refresh_constraints.py > constraints.txt`, then run
# the suite; CI also tries the newest versions (`.ci/run`, SUANLI_CI_NEWEST=1)."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(name: str, extras: tuple[str, ...], seen: dict[str, str]) -> None:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return
    key = _norm(name)
    first = key not in seen
    seen[key] = dist.version
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            continue
        if first or req.extras:
            closure(req.name, tuple(req.extras), seen)


def main() -> None:
    seen: dict[str, str] = {}
    closure("suanli", ("dev", "ray", "postgres"), seen)
    seen.pop("suanli", None)
    print(HEADER)
    for name in sorted(seen):
        print(f"{name}=={seen[name]}")


if __name__ == "__main__":
    main()
