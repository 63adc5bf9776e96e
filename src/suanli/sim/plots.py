"""PNG plots of simulation results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from suanli.sim.metrics import SimResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def plot_jct_cdf(results: list[SimResult], path: str | Path, window=None) -> Path:
    """One CDF of job completion time (hours) per policy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        jobs = r.select(*window) if window else r.jobs
        jct = np.sort([j.jct_s for j in jobs if j.jct_s is not None]) / 3600.0
        if len(jct):
            frac = np.arange(1, len(jct) + 1) / len(jct)
            ax.plot(jct, frac, label=r.policy, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (h)")
    ax.set_ylabel("fraction of jobs")
    ax.set_title("JCT CDF")
    return _save(plt, fig, ax, path, legend=True)


def plot_utilization(result: SimResult, path: str | Path) -> Path:
    """Fraction of each pool's chips in use over time."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if result.timeline_t:
        t = np.asarray(result.timeline_t) / 3600.0
        used = np.asarray(result.timeline_used, dtype=float)
        cap = np.maximum(np.asarray(result.capacity, dtype=float), 1.0)
        share = used / cap[None, :]
        for k, pid in enumerate(result.pool_ids):
            ax.plot(t, share[:, k], drawstyle="steps-post", label=pid, linewidth=0.8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("chips in use (fraction)")
    ax.set_title(f"Utilization over time: {result.policy}")
    return _save(plt, fig, ax, path, legend=len(result.pool_ids) <= 12, legend_fontsize=7)


def plot_queue(results: list[SimResult], path: str | Path) -> Path:
    """Jobs waiting for chips over time, one line per policy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in results:
        if r.timeline_t:
            ax.plot(np.asarray(r.timeline_t) / 3600.0, r.timeline_waiting,
                    drawstyle="steps-post", label=r.policy, linewidth=0.8)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("jobs waiting")
    ax.set_title("Queue length over time")
    return _save(plt, fig, ax, path, legend=True)


def _save(plt, fig, ax, path: str | Path, *, legend: bool,
          legend_fontsize: float | None = None) -> Path:
    """The finish every plot shares: grid, legend, tight layout, PNG, figure closed."""
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=legend_fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_plots(results: list[SimResult], out_dir: str | Path, window=None) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_jct_cdf(results, out / "jct_cdf.png", window),
        plot_queue(results, out / "queue.png"),
    ]
    for r in results:
        paths.append(plot_utilization(r, out / f"utilization_{_safe(r.policy)}.png"))
    return paths
