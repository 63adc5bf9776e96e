"""Staging a dataset for a local job: a real copy of a registered dataset directory into the
center's data directory, with progress, done at most once per center.

The copy goes to `<dst>.partial` and is renamed into place when complete, so a center's copy
either exists whole or not at all; a second job staging the same dataset there finds it and
copies nothing.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

PROGRESS_STEPS = 4  # progress reports per copy (25%, 50%, ...)


def dataset_dir(root_dir: Path, center: str, name: str) -> Path:
    """Where a center keeps its copy of a dataset."""
    return root_dir / "centers" / center / "datasets" / name


def copy_dataset(src: Path, dst: Path, progress: Callable[[str], None],
                 cancelled: Callable[[], bool] = lambda: False) -> bool:
    """Copy the directory `src` to `dst` unless it is there; returns True when `dst` holds it.

    `progress` hears a sentence every quarter of the bytes; `cancelled` is asked between files
    (a job stopped while its data moves leaves no partial copy behind)."""
    if dst.is_dir():
        progress(f"dataset already at {dst}: nothing to move")
        return True
    if not src.is_dir():
        progress(f"dataset directory {src} does not exist")
        return False
    files = sorted(p for p in src.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files) or 1
    partial = dst.with_name(f"{dst.name}.partial-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    done = 0
    step = 1
    for f in files:
        if cancelled():
            shutil.rmtree(partial, ignore_errors=True)
            return False
        target = partial / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
        done += f.stat().st_size
        while step <= PROGRESS_STEPS and done * PROGRESS_STEPS >= step * total:
            progress(f"staging {src.name}: {100 * step // PROGRESS_STEPS}% "
                     f"({done / 1e6:.1f} of {total / 1e6:.1f} MB)")
            step += 1
    try:
        os.replace(partial, dst)
    except OSError:  # another job's copy landed first: keep that one
        shutil.rmtree(partial, ignore_errors=True)
        return dst.is_dir()
    return True
