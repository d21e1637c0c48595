"""Pictures people would rather look at than numbers: latency distributions (matplotlib, optional)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EdgeInferError
from .plugins import install_hint
from .stats import STAGES

if TYPE_CHECKING:
    from .benchmark import BenchResult


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise EdgeInferError("plots need matplotlib", install_hint("matplotlib")) from exc
    return plt


def _save(fig: Any, plt: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_cdf(series: dict[str, Sequence[float]], path: Path, title: str) -> Path:
    """Cumulative distributions of latencies (ms, log scale), one line per named series, p50/p99 in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in series.items():
        xs = np.sort(np.asarray(values, dtype=float))
        if not len(xs):
            continue
        ys = np.arange(1, len(xs) + 1) / len(xs)
        p50, p99 = np.percentile(xs, [50, 99])
        ax.step(xs, ys, where="post", label=f"{name} (p50 {p50:.2f}, p99 {p99:.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of events")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, plt, path)


def latency_plot(result: BenchResult, path: Path) -> Path:
    plt = _pyplot()
    rep = result.report()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.hist(result.bare_ms, bins=40, alpha=0.6, label=f"bare runtime (p50 {rep['bare_p50_ms']:.2f} ms)")
    ax1.hist(result.edgeinfer_ms, bins=40, alpha=0.6, label=f"edgeinfer (p50 {rep['edgeinfer_p50_ms']:.2f} ms)")
    ax1.set_xlabel("inference latency per frame (ms)")
    ax1.set_ylabel("frames")
    ax1.set_title(f"overhead ratio {rep['overhead_ratio']:.3f}")
    ax1.legend()
    stages = rep["pipelined_stages_ms"]
    names = [s for s in STAGES if s in stages]
    ax2.bar(names, [stages[s] for s in names], color="#4c72b0")
    ax2.set_ylabel("p50 ms (pipelined)")
    ax2.set_title(f"{rep['throughput_fps']:.0f} fps of {rep['bound_fps']:.0f} bound "
                  f"(efficiency {rep['efficiency']:.2f})")
    fig.suptitle(f"{rep['model']} — {rep['backend']}", fontsize=9)
    return _save(fig, plt, path)
