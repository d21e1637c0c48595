"""`edgeinfer run --source ID=URI --source ...`: several streams through one model, as a user runs them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import pytest
import yaml

from ..conftest import run_cli
from .colour_model import LABELS, frame, make_colour_model


@pytest.fixture(scope="module")
def colour_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_model(tmp_path_factory.mktemp("colour"))


@pytest.mark.parametrize("n", [2, 4, 8])
def test_every_frame_of_every_stream_is_accounted_for(colour_pkg: Path, tmp_path: Path, n: int) -> None:
    args, expected = [], {}
    for i in range(n):
        colour, count = LABELS[i % 3], 3 + 2 * i
        folder = tmp_path / f"cam{i}"
        folder.mkdir()
        for k in range(count):
            cv2.imwrite(str(folder / f"{k:03d}.png"), frame(colour))
        args += ["--source", f"cam{i}={folder}"]
        expected[f"cam{i}"] = (colour, count)
    res = run_cli("run", "--model", str(colour_pkg), *args, "--out", str(tmp_path / "out"), "-q",
                  env={"COLUMNS": "200", "EDGEINFER_STATE_DIR": str(tmp_path / "state")})
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert Counter(x["stream"] for x in lines) == {sid: c for sid, (_, c) in expected.items()}
    for x in lines:  # each result is its own stream's frame: the colour model names the colour it saw
        assert x["classes"][0]["label"] == expected[x["stream"]][0]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {sid: st["frames"] for sid, st in summary["streams"].items()} == {s: c for s, (_, c) in expected.items()}
    assert summary["frames"] == sum(c for _, c in expected.values())
    for sid in expected:  # the run table has a row per stream
        assert f"│ {sid} " in res.stdout
    annotated = {p.name.split("-", 1)[0] for p in (tmp_path / "out" / "annotated").iterdir()}
    assert annotated == set(expected)  # annotated frames named by stream: no stream overwrites another's


def test_a_stream_that_cannot_open_at_start_is_named(colour_pkg: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ok"
    folder.mkdir()
    for k in range(4):
        cv2.imwrite(str(folder / f"{k}.png"), frame("green"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # an .mp4 that no decoder opens
    res = run_cli("run", "--model", str(colour_pkg), "--source", f"ok={folder}", "--source", f"bad={broken}",
                  "--out", str(tmp_path / "out"), "-q", env={"COLUMNS": "200",
                                                            "EDGEINFER_STATE_DIR": str(tmp_path / "state")})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "stream bad: cannot open source" in res.stderr  # refused at start, one line naming the stream


def test_source_flags_replace_the_files_streams(colour_pkg: Path, tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"sources": [{"id": "x", "uri": "synthetic:64x64:3"}],
                                                       "source": {"fps": 500}}))
    res = run_cli("run", "--config", str(tmp_path / "cfg.yaml"), "--model", str(colour_pkg), "--source",
                  "synthetic:64x64:2", "--out", str(tmp_path / "one"), "-q",
                  env={"EDGEINFER_STATE_DIR": str(tmp_path / "state")})
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["frames"] == 2 and "streams" not in summary  # one --source: the shorthand, the file's fps kept
    res = run_cli("run", "--config", str(tmp_path / "cfg.yaml"), "--model", str(colour_pkg), "--source",
                  "y=synthetic:64x64:2", "--source", "z=synthetic:64x64:1", "--out", str(tmp_path / "two"), "-q",
                  env={"EDGEINFER_STATE_DIR": str(tmp_path / "state")})
    assert res.returncode == 0, res.stderr
    assert list(json.loads((tmp_path / "two" / "summary.json").read_text())["streams"]) == ["y", "z"]
