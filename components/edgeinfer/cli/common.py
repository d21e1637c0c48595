"""Console, logging set-up and config assembly shared by the CLI commands."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.text import Text

from ..core import config as cfgmod
from ..core import redact, remote
from ..core.progress import Progress, no_progress

console = Console(highlight=False)
console_err = Console(stderr=True, highlight=False)


def status_progress(status: Any) -> Progress:
    """A ``Progress`` shown on a Rich status spinner (``console.status(...)``), counts when given."""

    def show(message: str, done: int | None = None, total: int | None = None, /) -> None:
        count = f" ({done}/{total})" if done is not None and total else ""
        status.update(escape(message + count))

    return show


@contextlib.contextmanager
def status(message: str) -> Iterator[Progress]:
    """A ``Progress`` on a Rich status spinner on stderr, or none where stderr is no terminal: Rich draws no
    spinner there (it is transient), so neither its live display nor its refresh thread is started (~8 ms of
    a one-shot run's start)."""
    if not console_err.is_terminal:
        yield no_progress
        return
    with console_err.status(message) as spinner:
        yield status_progress(spinner)


def task_progress(prog: Any, task: Any) -> Progress:
    """A ``Progress`` shown on one task of a Rich progress display."""

    def show(message: str, done: int | None = None, total: int | None = None, /) -> None:
        prog.update(task, description=escape(message), completed=done, total=total)

    return show


def print_error(exc: BaseException, to: Console | None = None) -> None:
    """``error: <problem> -> <fix>`` on stderr, the text as it is: a hint such as ``pip install
    'edgeinfer[demo]'`` is not Rich markup."""
    (to or console_err).print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True, highlight=False)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(message)s", datefmt="%H:%M:%S",
                        handlers=[RichHandler(console=console_err, show_path=False, markup=False)], force=True)
    redact.install()  # no secret (URL password, SAS signature, token) in any log line
    for noisy in ("tflite2onnx", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_config(config_file: str | None, overrides: dict[str, Any], replace: tuple[str, ...] = ()
                 ) -> cfgmod.EdgeInferConfig:
    """defaults <- local settings <- config file <- flags (flags given as a nested dict of the values passed).
    ``replace``: dotted keys the flags replace rather than merge into (``--source`` given several times replaces
    ``sources:`` and ``source.uri`` of the file).

    All of them are the local operator's, so every key may be set (core/remote.py checks only remote input)."""
    data = cfgmod.deep_merge(remote.load_local(), cfgmod.load_file(config_file) if config_file else {})
    for key in replace:
        *path, last = key.split(".")
        section: Any = data
        for step in path:
            section = section.get(step) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(last, None)
    return cfgmod.validate(cfgmod.deep_merge(data, prune(overrides)),
                           f"config {config_file}" if config_file else "options")


def prune(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None leaves (flags not given) and the sections they empty."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = prune(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out
