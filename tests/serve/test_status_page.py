"""The status page in a real headless Chromium (Debian's `chromium`): it loads, the annotated frame arrives and
is refreshed, the figures update from one look to the next, and a label carrying markup (a model package is
remote input) shows as text, not as an element. A screenshot is taken; with EDGEINFER_SCREENSHOT_DIR set it is
written there (how docs/img/status-page.png is made)."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.serve.config import ServeConfig
from edgeinfer.core.serve.recorder import Recorder
from edgeinfer.core.serve.server import StatusServer
from edgeinfer.core.session import RunSession

from .conftest import until

LABEL = '<img src=x onerror="document.title=1">face'


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh test installs it as root: "
                    "apt-get install chromium)")
    return exe


def _browse(url: str, *extra: str, budget_ms: int = 6000) -> str:
    """Chromium as a person's browser, headless: the page runs its script for ``budget_ms`` of virtual time."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--disable-dev-shm-usage", f"--virtual-time-budget={budget_ms}", *extra, url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.fixture
def page(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], tmp_path: Path) -> Iterator[Any]:
    """A run over the demo clip (looping, paced) with a model whose label carries markup, and a rule; served."""
    pkg = tmp_path / "pkg"
    shutil.copytree(demo_pkgs[0], pkg)
    manifest = yaml.safe_load((pkg / "manifest.yaml").read_text())
    manifest["labels"] = [LABEL]
    (pkg / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    cfg = EdgeInferConfig(model={"path": str(pkg)}, source={"uri": str(demo_media[1]), "loop": True, "fps": 15},
                          rules=[{"name": "face-seen", "when": {"min_score": 0.5}, "over": {"frames": 1},
                                  "cooldown_s": 2}])
    rec = Recorder()
    session = RunSession(cfg, extra_sinks=[rec])
    rec.telemetry = lambda: session.telemetry
    server = StatusServer(ServeConfig(listen="127.0.0.1:0", frame_interval_s=0.5), lambda: session, rec)
    server.start()
    session.start()
    assert until(lambda: session.stats().get("frames", 0) >= 5)
    yield server.url, session
    session.stop(0)
    server.stop()


def _attr(dom: str, element_id: str, name: str) -> str | None:
    tag = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', dom)
    m = re.search(rf'\b{name}="([^"]*)"', tag.group(0)) if tag else None
    return m.group(1) if m else None


def _text(dom: str, element_id: str) -> str:
    m = re.search(rf'\bid="{element_id}"[^>]*>([^<]*)<', dom)
    assert m, f"no #{element_id} in the page"
    return html.unescape(m.group(1))


def test_the_page_shows_the_frame_and_updating_figures(page: Any, tmp_path: Path) -> None:
    url, session = page
    first = _browse(url + "/", "--dump-dom")
    assert "<title>edgeinfer status</title>" in first
    assert int(re.search(r'<body[^>]*data-updates="(\d+)"', first).group(1)) >= 2, "the figures were not polled"
    assert int(_attr(first, "frame", "data-loads") or 0) >= 2, "the frame was not refreshed"
    assert int(_attr(first, "frame", "data-width") or 0) > 0
    assert _text(first, "healthz").startswith("alive") and _text(first, "readyz").startswith("ready")
    assert "blazeface-full-range" in _text(first, "model")
    frames_then = int(_text(first, "frames"))
    assert until(lambda: session.stats()["frames"] > frames_then + 5)
    second = _browse(url + "/", "--dump-dom")
    assert int(_text(second, "frames")) > frames_then, "the figures did not move between two looks"
    assert float(_text(second, "fps")) > 0
    # the label is remote input: it is on the page as text, never as an element
    assert html.escape(LABEL, quote=False) in second and "<img src=\"x\"" not in second
    assert 'onerror="document.title=1"' not in second.replace(html.escape(LABEL, quote=False), "")
    assert re.search(r"<title>edgeinfer status</title>", second), "the injected handler ran"
    assert "face-seen" in second, "the alert is listed"
    assert 'id="streams-section" hidden' in second, "one source: no streams table"
    shots = Path(os.environ.get("EDGEINFER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "status-page.png"
    _browse(url + "/", f"--screenshot={shot}", "--window-size=1280,1000", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_the_page_lists_each_stream(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path]) -> None:
    """With sources: the page has a row per stream, its state and frames; with one source: no table (above)."""
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])},
                          sources=[{"id": "gate", "uri": str(demo_media[1]), "loop": True, "fps": 10},
                                   {"id": "yard", "uri": "synthetic:160x120", "fps": 10}])
    rec = Recorder()
    session = RunSession(cfg, extra_sinks=[rec])
    server = StatusServer(ServeConfig(listen="127.0.0.1:0", frame_interval_s=0.5), lambda: session, rec)
    server.start()
    session.start()
    try:
        assert until(lambda: all(st["frames"] >= 3 for st in (session.streams() or {}).values()))
        dom = _browse(server.url + "/", "--dump-dom")
        assert 'id="streams-section" hidden' not in dom
        rows = re.findall(r"<tr><td>(gate|yard)</td><td>([^<]*)</td><td>(\d+)</td>", dom)
        assert {r[0] for r in rows} == {"gate", "yard"} and all(r[1] == "running" and int(r[2]) > 0 for r in rows)
    finally:
        session.stop(0)
        server.stop()
