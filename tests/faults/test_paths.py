"""Unwritable output/state directories are a one-line ConfigError naming the setting, the path and
the cause, on real file systems: under a regular file, immutable (permission), a read-only mount,
a full tmpfs (and it recovers when space returns)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgeinfer.core.errors import ConfigError
from edgeinfer.core.paths import PROBE_PREFIX, ensure_dir, writable_problem

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def refused(path: Path, what: str) -> str:
    with pytest.raises(ConfigError) as err:
        ensure_dir(path, what)
    text = str(err.value)
    assert "\n" not in text and what in text and str(path) in text and " -> " in text, text
    return text


def no_probe_left(d: Path) -> bool:
    return not any(p.name.startswith(PROBE_PREFIX) for p in d.iterdir())


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True, timeout=30)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=False, timeout=30)


def test_creates_parents_and_leaves_no_probe(tmp_path: Path) -> None:
    d = ensure_dir(tmp_path / "a" / "b" / "out", "output.dir")
    assert d.is_dir() and list(d.iterdir()) == []
    (d / "results.jsonl").write_text("{}\n")
    assert ensure_dir(str(d), "output.dir") == d and no_probe_left(d)  # an existing folder is fine, kept as is
    assert writable_problem(d, "output.dir") is None and writable_problem(tmp_path / "new" / "x") is None
    assert not (tmp_path / "new").exists(), "validation must not create directories"


def test_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "state" / "edgeinfer"
    text = refused(target, "state_dir")
    assert f"is under a regular file {blocker}" in text and f"move {blocker} away" in text
    assert writable_problem(target, "state_dir") == text
    assert blocker.read_text() == "x"


def test_a_regular_file_itself(tmp_path: Path) -> None:
    f = tmp_path / "out"
    f.write_text("x")
    text = refused(f, "output.dir")
    assert "is a regular file, not a directory" in text and writable_problem(f, "output.dir") == text


def test_a_link_to_a_file_on_the_way(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    assert "is under a regular file" in refused(tmp_path / "link" / "out", "output.dir")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None,
                    reason="an immutable directory needs root and chattr (root ignores chmod 0500)")
def test_permission_denied_on_an_immutable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True, timeout=30).returncode != 0:
        pytest.skip(f"this file system does not support chattr +i ({tmp_path})")
    try:
        assert "permission denied" in refused(locked, "output.dir")
        assert "permission denied" in refused(locked / "sub", "output.dir")
        assert "permission denied" in (writable_problem(locked, "output.dir") or "")
        assert list(locked.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True, timeout=30)
    assert ensure_dir(locked / "sub", "output.dir").is_dir()


@ROOT_ONLY
def test_read_only_file_system(mount_tmpfs: Callable[[str, str], Path]) -> None:
    ro = mount_tmpfs("ro", "ro,size=1m")
    for target in (ro, ro / "state"):
        text = refused(target, "state_dir")
        assert "read-only file system" in text and "writable file system" in text
        assert "read-only file system" in (writable_problem(target, "state_dir") or "")


@ROOT_ONLY
def test_full_disk_then_space_returns(mount_tmpfs: Callable[[str, str], Path]) -> None:
    disk = mount_tmpfs("full", "size=1m")
    out = disk / "out"
    out.mkdir()
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 65536)
    for target in (out, disk / "new" / "dir"):
        text = refused(target, "output.dir")
        assert "no space left" in text and "free space" in text
    assert "no space left" in (writable_problem(out, "output.dir") or "")
    assert "no space left" in (writable_problem(disk / "missing", "output.dir") or "")
    assert no_probe_left(out)
    filler.unlink()
    assert ensure_dir(out, "output.dir") == out and writable_problem(disk / "missing", "output.dir") is None
