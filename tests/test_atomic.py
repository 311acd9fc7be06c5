"""Unit tests for forecode_core.store.atomic.atomic_write."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecode_core.store.atomic import TEMP_SUFFIX, atomic_write

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX mode bits and symlinks")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_027() -> Iterator[int]:
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def test_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"old content that is longer than the new one")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"


def test_accepts_str_path_and_empty_data(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"something")
    atomic_write(str(target), b"")
    assert target.read_bytes() == b""


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o600, 0o755, 0o444])
def test_keeps_mode_bits(tmp_path: Path, umask_027: int, mode: int) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    os.chmod(target, mode)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == mode


@posix_only
def test_follows_symlink_and_keeps_the_link(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "file.txt"
    real.write_bytes(b"old")
    os.chmod(real, 0o600)
    link = tmp_path / "link.txt"
    link.symlink_to(os.path.join("real", "file.txt"))  # relative link

    atomic_write(link, b"through the link")

    assert link.is_symlink()
    assert os.readlink(link) == os.path.join("real", "file.txt")
    assert real.read_bytes() == b"through the link"
    assert not real.is_symlink()
    assert _mode(real) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["link.txt", "real"]
    assert os.listdir(real_dir) == ["file.txt"]


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_new_file_gets_the_umask_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "new.txt", b"fresh")
    finally:
        os.umask(old)
    assert (tmp_path / "new.txt").read_bytes() == b"fresh"
    assert _mode(tmp_path / "new.txt") == 0o666 & ~umask


def test_leaves_no_temp_file_after_success(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    for i in range(5):
        atomic_write(target, b"round %d" % i)
    assert os.listdir(tmp_path) == ["f.txt"]
    assert target.read_bytes() == b"round 4"


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device (simulated)")


@pytest.mark.parametrize("function", ["replace", "fsync"])
def test_failure_keeps_original_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str
) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"precious original")
    monkeypatch.setattr(os, function, _fail)
    with pytest.raises(OSError, match="simulated"):
        atomic_write(target, b"new content")
    monkeypatch.undo()
    assert target.read_bytes() == b"precious original"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_failure_creating_a_new_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "replace", _fail)
    with pytest.raises(OSError, match="simulated"):
        atomic_write(tmp_path / "new.txt", b"data")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_temp_file_is_named_after_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: os.PathLike[str]) -> None:
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write(tmp_path / "doc.txt", b"x")
    assert len(seen) == 1
    assert seen[0].startswith(".doc.txt.")
    assert seen[0].endswith(TEMP_SUFFIX)
