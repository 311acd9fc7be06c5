"""The shadow's first build copies (``app.services.shadow``): many files go through the copy
threads, a file bigger than one read goes through ``copy_file_range`` (or the read/write
fallback when the kernel refuses it), each copy byte-identical with the source's mtime, a file
of its own (never a link to the user's), and never written through a link in its place."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from app.services import shadow as sh
from app.services.shadow import PARALLEL_COPIES, CliChecker, ShadowWorkspace


def _tree(root: Path, files: int) -> dict[str, bytes]:
    made: dict[str, bytes] = {}
    for k in range(files):
        rel = f"pkg{k % 7}/sub{k % 3}/mod_{k}.py"
        data = f"VALUE_{k} = {k}\n".encode() * (k % 5 + 1)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        made[rel] = data
    big = os.urandom(3 * sh.CHUNK + 12345)  # more than one read: the rest by range copy
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(big)
    made["data/big.bin"] = big
    return made


def _check_copy(shadow: ShadowWorkspace, root: Path, made: dict[str, bytes]) -> None:
    for rel, data in made.items():
        copy = shadow.tree / rel
        assert copy.read_bytes() == data, rel
        assert not copy.is_symlink()
        st, src = copy.stat(), (root / rel).stat()
        assert st.st_ino != src.st_ino  # a file of its own, never a hard link
        assert st.st_mtime_ns == src.st_mtime_ns


def test_a_first_build_of_many_files_copies_each_file_exactly(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    made = _tree(root, PARALLEL_COPIES * 3)
    shadow = ShadowWorkspace(
        root, base=tmp_path / "shadow", checker=CliChecker(), scan_every_s=None
    )
    try:
        actions = shadow.sync()
        assert len(actions) == len(made) >= PARALLEL_COPIES  # the threaded path
        _check_copy(shadow, root, made)
        assert shadow.sync() == []  # in step: nothing to do again
    finally:
        shadow.close()


@pytest.mark.parametrize("refusal", [errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP])
def test_a_refused_range_copy_falls_back_to_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    tried: list[int] = []

    def refuse(*_args: object) -> int:
        tried.append(refusal)
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    made = _tree(root, 5)
    shadow = ShadowWorkspace(
        root, base=tmp_path / "shadow", checker=CliChecker(), scan_every_s=None
    )
    try:
        shadow.sync()
        _check_copy(shadow, root, made)
        assert tried  # the big file asked for a range copy first
    finally:
        shadow.close()


def test_a_link_in_the_copys_place_is_replaced_not_written_through(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    made = _tree(root, PARALLEL_COPIES)
    victim = tmp_path / "user-file.txt"
    victim.write_bytes(b"the user's own\n")
    shadow = ShadowWorkspace(
        root, base=tmp_path / "shadow", checker=CliChecker(), scan_every_s=None
    )
    try:
        rel = "data/big.bin"
        (shadow.tree / "data").mkdir(parents=True)
        (shadow.tree / rel).symlink_to(victim)
        shadow.sync()
        assert victim.read_bytes() == b"the user's own\n"
        _check_copy(shadow, root, made)
    finally:
        shadow.close()
