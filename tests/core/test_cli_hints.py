"""What the CLI prints is the text, not Rich markup: every install hint naming an extra keeps its ``[extra]``."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from edgeinfer.cli.common import print_error
from edgeinfer.core.errors import EdgeInferError

from ..conftest import run_cli

PACKAGE = Path(__file__).resolve().parents[2] / "components" / "edgeinfer"
EXTRA = re.compile(r"edgeinfer\[[a-z0-9,-]+\]")


def hint_strings() -> list[str]:
    """Every string literal (f-string parts too) in the package that names an extra."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and EXTRA.search(node.value):
                found.add(node.value)
    return sorted(found)


HINTS = hint_strings()


def test_the_package_has_hints_to_check() -> None:
    assert len(HINTS) >= 10, HINTS  # the scan itself works


@pytest.mark.parametrize("hint", HINTS)
def test_every_extra_in_a_hint_is_printed(hint: str) -> None:
    out = io.StringIO()
    print_error(EdgeInferError("something is missing", hint), Console(file=out, width=500, color_system=None))
    for extra in EXTRA.findall(hint):
        assert extra in out.getvalue(), out.getvalue()


def test_the_cli_error_line_keeps_brackets(tmp_path: Path) -> None:
    r = run_cli("run", "--model", str(tmp_path / "x[demo].onnx"))
    assert r.returncode != 0
    assert f"error: model package {tmp_path / 'x[demo].onnx'} does not exist" in r.stderr, r.stderr
