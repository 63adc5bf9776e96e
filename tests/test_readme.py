"""The README is executed: every ```bash block after the two set-up commands runs as written,
in a fresh directory (the repository's examples and fixtures linked in), with a fresh home and
config directory and its own port, so a README that drifts from the code fails CI. A block
right after `<!-- readme-test: skip (why) -->` is left out, and says why."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = "<!-- readme-test: skip"
BLOCK = re.compile(r"(<!-- readme-test: skip[^\n]*-->\n)?```bash\n(.*?)```", re.S)


def readme_blocks() -> list[str]:
    """The bash blocks to run: all but the first (the two set-up commands) and skipped ones."""
    blocks = BLOCK.findall(README.read_text("utf-8"))
    return [body for skip, body in blocks[1:] if not skip]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_names_only_files_that_ship():
    text = README.read_text("utf-8")
    for block in readme_blocks():
        for path in re.findall(r"(?:examples|tests/fixtures)/[\w./-]+", block):
            assert (ROOT / path.rstrip(".")).exists(), path
    assert "SUANLI_TOKEN=..." not in text  # no step asks to paste a token


def test_every_readme_command_block_runs_as_written(tmp_path):
    from suanli.backends.sandbox import find_sandbox

    why = find_sandbox()
    if isinstance(why, str):  # .ci/run installs bubblewrap; a bare machine may lack it
        pytest.skip(f"the README's `suanli up --backend local` needs a job sandbox: {why}")
    work, home, bin_dir = tmp_path / "work", tmp_path / "home", tmp_path / "bin"
    for d in (work, home, bin_dir):
        d.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "tests").symlink_to(ROOT / "tests")
    shim = bin_dir / "suanli"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m suanli.cli.main "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SUANLI_") and k != "XDG_CONFIG_HOME"}
    env.update(HOME=str(home), PATH=f"{bin_dir}:{env['PATH']}", SUANLI_PORT=str(_free_port()),
               PYTHONPATH=str(ROOT / "src"), COLUMNS="80")
    script = "set -euo pipefail\n" + "\n".join(readme_blocks())
    out_file, err_file = tmp_path / "stdout", tmp_path / "stderr"
    with out_file.open("w") as out_f, err_file.open("w") as err_f:
        # files, not pipes: the `suanli up &` the README starts keeps its output open
        proc = subprocess.Popen(["bash", "-c", script], cwd=work, env=env, text=True,
                                stdout=out_f, stderr=err_f, start_new_session=True)
        try:
            proc.wait(timeout=240)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # ends the service the README started
            except ProcessLookupError:
                pass
    out, err = out_file.read_text(), err_file.read_text()
    assert proc.returncode == 0, f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
    assert "epoch 3/3" in out and "attempt 1 succeeded" in out
    assert (work / "admin-credentials.toml").stat().st_mode & 0o777 == 0o600
    assert (home / ".config" / "suanli" / "config.toml").stat().st_mode & 0o777 == 0o600
