"""The agreement report as a picture (matplotlib, the optional ``[plots]`` extra)."""

from __future__ import annotations

from pathlib import Path

from ..plots import _pyplot, _save
from .report import AgreementReport


def report_figure(report: AgreementReport, path: Path) -> Path:
    """Agreement figures against their thresholds, latency p50 and size of both models, the verdict on top."""
    plt = _pyplot()
    fig, (ax_a, ax_l, ax_s) = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [2, 1, 1]})
    t = report.thresholds
    bars: list[tuple[str, float, float]] = []  # name, value, threshold
    for label, a in report.labels.items():
        bars += [(f"{label}\nprecision", a.precision or 0.0, t.min_precision),
                 (f"{label}\nrecall", a.recall or 0.0, t.min_recall),
                 (f"{label}\nmean IoU", a.mean_iou or 0.0, t.min_mean_iou),
                 (f"{label}\n1-|Δscore|", 1 - abs(a.score_delta or 0.0), 1 - t.max_score_delta)]
    if report.top1_agreement is not None:
        bars.append(("top-1", report.top1_agreement, t.min_top1))
    if report.mask_iou is not None:
        bars.append(("mask IoU", report.mask_iou, t.min_mask_iou))
    names = [b[0] for b in bars]
    colours = ["tab:green" if v >= th else "tab:red" for _, v, th in bars]
    ax_a.bar(names, [b[1] for b in bars], color=colours)
    for i, (_, _, th) in enumerate(bars):
        ax_a.hlines(th, i - 0.4, i + 0.4, colors="black", linestyles="dashed")
    ax_a.set_ylim(0, 1.05)
    ax_a.set_title(f"agreement on {report.heldout_frames} held-out frames (IoU ≥ {report.iou})", fontsize=9)
    ax_a.tick_params(axis="x", labelsize=7)
    sides = ["original", report.target]
    ax_l.bar(sides, [report.original.latency_ms_p50 or 0, report.optimized.latency_ms_p50 or 0],
             color=["tab:grey", "tab:blue"])
    ax_l.set_title("latency p50 on this host (ms)", fontsize=9)
    ax_s.bar(sides, [report.original.size_bytes / 1e6, report.optimized.size_bytes / 1e6],
             color=["tab:grey", "tab:blue"])
    ax_s.set_title("model file (MB)", fontsize=9)
    for ax in (ax_l, ax_s):
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"{report.target}: {report.verdict}" + (f" ({'; '.join(report.failures)[:120]})"
                                                         if report.failures else ""), fontsize=10)
    return _save(fig, plt, path)
