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


def _yaml_block(doc: str, marker: str) -> dict:
    import re

    import yaml

    text = (ROOT / "docs" / doc).read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if marker in b)
    return yaml.safe_load(block)


def test_the_documented_local_settings_and_rules_validate() -> None:
    from edgeinfer.core import config as cfgmod

    local = _yaml_block("security.md", "/etc/edgeinfer/local.yaml")
    cfg = cfgmod.validate(local, "docs/security.md")
    assert "door_light" in cfg.hooks and cfg.trust.keys and cfg.remote.webhook_hosts
    rules = _yaml_block("telemetry.md", "person_at_door")
    cfg = cfgmod.validate(rules, "docs/telemetry.md")
    assert [a.type for a in cfg.rules[0].actions] == ["alert", "local_topic", "command", "webhook"]


def test_files_the_makefile_and_pyproject_name_exist() -> None:
    import re

    named = {m for f in ("Makefile", "pyproject.toml", "README.md")
             for m in re.findall(r"\b((?:scripts|docs)/[\w./-]+\.(?:py|sh|md))", (ROOT / f).read_text())}
    assert named, "the scan finds the references"
    assert not [n for n in sorted(named) if not (ROOT / n).is_file()]
