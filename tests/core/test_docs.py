"""Generated docs stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from edgeinfer.core.configdoc import render

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run `edgeinfer config docs > docs/configuration.md`"


def test_readme_names_exactly_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in ci.splitlines() if line and not line.startswith("#") and "set -" not in line
            and not line.startswith("cd ")] == ["make test"]
