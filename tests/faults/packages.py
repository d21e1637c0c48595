"""Broken model packages made from the real demo package: each one passes its sha256 check and fails later."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def edited_package(src: Path, dest: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of package ``src`` whose manifest ``edit`` changed (the model bytes and their sha256 stay right)."""
    shutil.copytree(src, dest)
    manifest = yaml.safe_load((dest / "manifest.yaml").read_text())
    edit(manifest)
    (dest / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return dest


def wrong_strides(m: dict[str, Any]) -> None:
    """Anchors for stride 8 on a model that has stride-4 outputs: the box count disagrees."""
    m["decoder"]["strides"] = [8]
    m["version"] = "9.0.0-strides"


def missing_output(m: dict[str, Any]) -> None:
    m["decoder"]["scores_output"] = "no_such_output"
    m["outputs"] = []
    m["version"] = "9.0.0-output"


def wrong_dtype(m: dict[str, Any]) -> None:
    """The manifest says uint8 input; the model takes float32."""
    m["input"]["dtype"] = "uint8"
    m["version"] = "9.0.0-dtype"
