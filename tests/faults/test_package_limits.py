"""Model package zips that are hostile or broken are refused before anything is unpacked (zip bombs, lying
central directories, zip-slip, too many members, a bad manifest), real model zips still load, and the cache
of unpacked packages stays bounded."""

from __future__ import annotations

import os
import shutil
import struct
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from edgeinfer.core.errors import ModelError
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.modelpkg.package import KEEP_UNPACKED, prune_unpacked
from edgeinfer.core.modelpkg.unzip import MAX_RATIO, plan_zip
from tests.azure.packages import package_zip

from .test_delivery_faults import Mount, tmpfs

__all__ = ["tmpfs"]
MiB = 1024**2


def write_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def demo_members(src: Path, version: str = "1.0.0") -> dict[str, bytes]:
    """The real demo package's members, manifest version changed."""
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["version"] = version
    out = {"manifest.yaml": yaml.safe_dump(manifest, sort_keys=False).encode()}
    out.update({e["path"]: (src / e["path"]).read_bytes() for e in manifest["files"]})
    return out


def nothing_unpacked(cache: Path) -> bool:
    packages = cache / "packages"
    return not packages.exists() or not any(packages.iterdir())


def understate(zip_path: Path, member: str, size: int) -> None:
    """Make the central directory say ``member`` unpacks to ``size`` bytes (a lying directory)."""
    data = bytearray(zip_path.read_bytes())
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        (name_len,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46:at + 46 + name_len] == member.encode():
            struct.pack_into("<I", data, at + 24, size)
            zip_path.write_bytes(bytes(data))
            return
        at += 4
    raise AssertionError(f"{member} not in {zip_path}")


def test_a_real_model_zip_loads_and_compresses_as_weights_do(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    for src in demo_pkgs:  # ONNX and TFLite
        z = tmp_path / f"{src.name}.zip"
        z.write_bytes(package_zip(src, "2.0.0"))
        with zipfile.ZipFile(z) as zf:
            ratios = [i.file_size / i.compress_size for i in zf.infolist() if i.file_size > MiB]
        assert ratios and max(ratios) < 3 < MAX_RATIO, ratios  # measured: onnx 1.7x, tflite 1.1x
        pkg = load_package(z, cache=tmp_path / "cache")
        assert pkg.manifest.version == "2.0.0" and pkg.model_path.is_file()


def test_a_zip_bomb_is_refused_before_unpacking(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    members = demo_members(demo_pkgs[0])
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        with zf.open("weights.bin", "w") as f:  # 256 MiB of zeros: about 250 KiB deflated
            for _ in range(256):
                f.write(bytes(MiB))
    assert z.stat().st_size < 4 * MiB
    cache = tmp_path / "cache"
    t0 = time.monotonic()
    with pytest.raises(ModelError) as err:
        load_package(z, cache=cache)
    msg = str(err.value)
    assert "\n" not in msg and "'weights.bin' inflates" in msg and "over the 100x limit" in msg and " -> " in msg
    assert nothing_unpacked(cache) and time.monotonic() - t0 < 2.0, "nothing was inflated"


def test_many_small_bombs_are_refused_as_a_whole(tmp_path: Path) -> None:
    members = {"manifest.yaml": b"name: x\n", **{f"part{i}.bin": bytes(900 * 1024) for i in range(20)}}
    with pytest.raises(ModelError, match=r"inflates .*x in all"):  # each under the 1 MiB floor, 18 MiB together
        load_package(write_zip(tmp_path / "b.zip", members), cache=tmp_path / "cache")
    assert nothing_unpacked(tmp_path / "cache")


def test_the_total_size_cap(tmp_path: Path) -> None:
    z = write_zip(tmp_path / "big.zip", {"manifest.yaml": b"x", "w.bin": os.urandom(3 * MiB)})
    with zipfile.ZipFile(z) as zf, pytest.raises(ModelError, match="over the 1048576-byte limit"):
        plan_zip(zf, z.name, max_bytes=MiB)


def test_a_lying_central_directory_is_caught_while_unpacking(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    members = demo_members(demo_pkgs[0])
    members["extra.bin"] = bytes(64 * MiB)  # not in the manifest; its directory entry will say 1000 bytes
    z = write_zip(tmp_path / "liar.zip", members)
    understate(z, "extra.bin", 1000)
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("extra.bin").file_size == 1000, "the directory lies: the checks before unpacking pass"
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match=r"'extra\.bin' is corrupt"):
        load_package(z, cache=cache)
    assert nothing_unpacked(cache), "the half-unpacked folder is removed"


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt", "..\\escape.txt",
                                  "pkg/../../escape.txt"])
def test_zip_slip_is_refused(name: str, tmp_path: Path) -> None:
    cache = tmp_path / "deep" / "cache"
    z = write_zip(tmp_path / "slip.zip", {"manifest.yaml": b"x", name: b"owned"})
    with pytest.raises(ModelError, match="unsafe path"):
        load_package(z, cache=cache)
    assert nothing_unpacked(cache) and not list(tmp_path.rglob("escape.txt"))


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    members = {"manifest.yaml": b"x", **{f"f{i}": b"" for i in range(1001)}}
    with pytest.raises(ModelError, match="1002 members, more than the 1000"):
        load_package(write_zip(tmp_path / "many.zip", members, zipfile.ZIP_STORED), cache=tmp_path / "cache")


def test_the_manifest_is_checked_before_unpacking(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    members = demo_members(demo_pkgs[0])
    bad = {**members, "manifest.yaml": members["manifest.yaml"].replace(b"version: 1.0.0", b"version: one")}
    with pytest.raises(ModelError, match=r"invalid manifest bad.zip:manifest.yaml: version"):
        load_package(write_zip(tmp_path / "bad.zip", bad), cache=cache)
    lacking = {k: v for k, v in members.items() if k != "model.onnx"}
    with pytest.raises(ModelError, match=r"lacks model\.onnx, which its manifest lists"):
        load_package(write_zip(tmp_path / "lacking.zip", lacking), cache=cache)
    truncated = {**members, "model.onnx": members["model.onnx"][:-10]}
    with pytest.raises(ModelError, match=r"model\.onnx is .* bytes, its manifest says"):
        load_package(write_zip(tmp_path / "short.zip", truncated), cache=cache)
    assert nothing_unpacked(cache)


def test_a_full_disk_refuses_the_unpack_with_nothing_written(tmpfs: Mount, demo_pkgs: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    mnt = tmpfs("1m")
    z = tmp_path / "pkg.zip"
    z.write_bytes(package_zip(demo_pkgs[0], "1.0.0"))
    with pytest.raises(ModelError, match=r"bytes to unpack .* free under") as err:
        load_package(z, cache=mnt)
    assert "\n" not in str(err.value) and shutil.disk_usage(mnt).used < 64 * 1024 and nothing_unpacked(mnt)


def test_the_unpack_cache_stays_bounded(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    cache, packages = tmp_path / "cache", tmp_path / "cache" / "packages"
    zips = []
    for i in range(8):
        z = tmp_path / f"v{i}.zip"
        z.write_bytes(package_zip(demo_pkgs[0], f"1.0.{i}"))
        zips.append(z)
    roots = [load_package(z, cache=cache).root for z in zips[:6]]
    assert all(r.is_dir() for r in roots), "folders used in the last minutes are never pruned (another load)"

    def age(root: Path, hours_ago: float) -> None:  # the time that passes on a device between deliveries
        t = time.time() - hours_ago * 3600
        os.utime(root, (t, t))

    for i, r in enumerate(roots):
        age(r, 10 - i)  # v0 used longest ago
    age(load_package(zips[1], cache=cache).root, 1)  # v1 used again, more recently than v2..v5
    age(roots[1], 1)
    newest = load_package(zips[6], cache=cache).root
    kept = sorted(p.name for p in packages.iterdir())
    assert len(kept) == KEEP_UNPACKED == 4
    assert set(kept) == {newest.name, roots[1].name, roots[5].name, roots[4].name}, "the most recently used stay"
    assert not roots[0].exists() and not roots[2].exists()
    assert load_package(zips[0], cache=cache).manifest.version == "1.0.0", "a pruned one unpacks again"

    only = load_package(zips[7], cache=cache, keep_unpacked=0).root
    assert only.is_dir() and (only / "model.onnx").is_file(), "never the one being loaded"
    for p in packages.iterdir():
        age(p, 2)
    prune_unpacked(packages, keep=0, protect=[only])
    assert [p.name for p in packages.iterdir()] == [only.name]
