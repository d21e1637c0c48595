"""Shared test fixtures. Area-specific fixtures live in each folder's conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own state dir; the model cache stays shared (set by the test command)."""
    monkeypatch.setenv("EDGEINFER_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    os.environ.setdefault("EDGEINFER_CACHE_DIR", str(ROOT / ".cache"))
