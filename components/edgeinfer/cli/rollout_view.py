"""What `edgeinfer aws rollout` and `edgeinfer azure rollout` print: the same ring table on both clouds."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ..cloud.rollout import engine
from ..cloud.rollout.plan import RolloutPlan
from .common import console

COLOUR = {"pending": "dim", "deploying": "yellow", "soaking": "cyan", "passed": "green", "failing": "red",
          "aborted": "red"}


def show(st: engine.RolloutStatus, as_json: bool = False) -> None:
    if as_json:
        typer.echo(json.dumps({"rollout": st.plan.name, "outcome": st.outcome, "actions": st.actions, "rings": [
            {**v.progress.as_dict(), "state": v.state, "why": v.why} for v in st.rings]}, indent=2))
        return
    for a in st.actions:
        console.print(f"[bold]{escape(a)}[/]", soft_wrap=True)
    t = Table(title=escape(f"rollout {st.plan.name}: {st.plan.model} {st.plan.model_version} ({st.outcome})"))
    for col in ("ring", "state", "targeted", "succeeded", "failed", "rolled back", "in progress", "why"):
        t.add_column(col, justify="right" if col in ("targeted", "succeeded", "failed", "rolled back",
                                                    "in progress") else "left")
    for v in st.rings:
        p = v.progress
        why = v.why + ("".join(f"; {k}: {n}" for k, n in p.reasons.items()) if p.reasons and v.state != "passed"
                       else "")
        t.add_row(escape(v.ring.name), f"[{COLOUR[v.state]}]{v.state}[/]", *(str(x) for x in (
            p.targeted, p.succeeded, p.failed, p.rolled_back, p.in_progress)), escape(why))
    console.print(t)


def step(driver: engine.RolloutDriver, plan: RolloutPlan, start: bool, watch_s: float, poll_s: float,
         as_json: bool = False) -> None:
    """One advance, or (``watch_s`` > 0) advance every ``poll_s`` with a live line until done, aborted or the
    time is up; the table at the end. Exit 1 when the rollout is aborted."""
    if watch_s > 0:
        with console.status("rollout") as spinner:
            def live(st: engine.RolloutStatus) -> None:
                spinner.update(escape(", ".join(f"{v.ring.name} {v.state}" for v in st.rings)))
                for a in st.actions:
                    console.print(escape(a), soft_wrap=True)

            st = engine.run(driver, plan, watch_s, poll_s, on_step=live, start=start)
        st.actions = []
    else:
        st = engine.advance(driver, plan, start=start)
    show(st, as_json)
    if st.outcome == "aborted":
        raise typer.Exit(1)


def device_table(rows: list[Any], columns: tuple[str, ...], token: str | None) -> None:
    t = Table(*columns)
    for r in rows:
        t.add_row(*(escape(str(x)) if x is not None else "-" for x in r))
    console.print(t)
    if token:
        console.print(f"more: --page-token {escape(token)}", soft_wrap=True, highlight=False)
