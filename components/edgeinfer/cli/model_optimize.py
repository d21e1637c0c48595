"""`edgeinfer model optimize PKG --to TARGET ...`: the package path of the optimize command (a report decides)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from ..core.errors import EdgeInferError
from ..core.optimize.job import OptimizeOptions, OptimizeOutcome
from ..core.optimize.report import AgreementReport
from .common import console, task_progress


class RejectedError(EdgeInferError):
    """The optimised package missed its agreement thresholds (it is written, marked rejected)."""

    exit_code = 1


def run_optimize(package: Path, out: Path, options: OptimizeOptions, signer: Any, as_json: bool) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..core.optimize.job import optimize_package

    def sign(folder: Path) -> None:
        from ..core.modelpkg.signing import sign_package

        sign_package(folder, signer)

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=as_json) as prog:
        task = prog.add_task(f"optimising to {options.target}", total=None)
        outcome = optimize_package(package, out, options, task_progress(prog, task),
                                   sign if signer is not None else None)
    if as_json:
        console.print_json(json.dumps({"package": str(outcome.package), **outcome.report.model_dump(mode="json")}))
    else:
        _show(outcome, signer)
    report = outcome.report
    if report.verdict == "rejected":
        raise RejectedError(f"{options.target} of {package} missed its agreement thresholds: "
                            f"{'; '.join(report.failures)} (written to {outcome.package}, marked rejected)",
                            "calibrate on frames like the camera's (--calibration), try another target, or pass "
                            "--accept-below to accept it")


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _show(outcome: OptimizeOutcome, signer: Any) -> None:
    r: AgreementReport = outcome.report
    t = Table(title=f"{escape(r.target)}: agreement on {r.heldout_frames} held-out frames "
              f"(calibrated on {r.calibration_frames})")
    for col in ("label", "original", "optimised", "matched", "precision", "recall", "mean IoU", "Δ score"):
        t.add_column(col, justify="left" if col == "label" else "right")
    for label, a in r.labels.items():
        t.add_row(escape(label), str(a.original), str(a.optimized), str(a.matched), _fmt(a.precision),
                  _fmt(a.recall), _fmt(a.mean_iou), _fmt(a.score_delta, "+.3f"))
    if r.labels:
        console.print(t)
    if r.top1_agreement is not None:
        console.print(f"top-1 agreement {_fmt(r.top1_agreement)}")
    if r.mask_iou is not None:
        console.print(f"mask IoU {_fmt(r.mask_iou)}")
    o, p = r.original, r.optimized
    console.print(f"size {o.size_bytes:,} -> {p.size_bytes:,} bytes (x{r.size_ratio:.2f}); latency p50 on this host "
                  f"{_fmt(o.latency_ms_p50, '.2f')} -> {_fmt(p.latency_ms_p50, '.2f')} ms "
                  f"(speed-up x{_fmt(r.speedup, '.2f')})", highlight=False)
    colour = {"accepted": "green", "rejected": "red"}.get(r.verdict, "yellow")
    why = f": {escape('; '.join(r.failures))}" if r.failures else ""
    console.print(f"[{colour}]{r.verdict}[/]{why}", soft_wrap=True)
    signed = " (signed)" if signer is not None else ""
    picture = f", picture {escape(str(outcome.picture))}" if outcome.picture else ""
    console.print(f"package written to [bold]{escape(str(outcome.package))}[/]{signed}; report "
                  f"{escape(str(outcome.package / 'agreement.json'))}{picture}", soft_wrap=True, highlight=False)
