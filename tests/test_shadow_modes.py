"""The shadow's copy keeps the owner's mode bits of the user's files (an executable script
stays executable: ``./scripts/test`` runs in the copy) and never has a group or other bit (the
copy is private), on every path that writes it: the first build (threaded or not), a refresh
by stamps (a ``chmod +x`` changes no stamp) and by path, a SQLite snapshot, an unsaved buffer
pushed in, a check's edit and its restore, and a copy-on-write clone on a reflink filesystem.
Real files, real ``chmod``, a real run of the copied script."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from test_shadow_reflink import reflink_fs

from app.services.shadow import PARALLEL_COPIES, CliChecker, CloneMethod, ShadowWorkspace
from forecode_core.workspace.shadow_plan import Kind, Source, copy_mode

__all__ = ["reflink_fs"]  # the fixture, used below

SCRIPT = "#!/bin/sh\necho ran-in-copy\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _shadow(root: Path, base: Path) -> ShadowWorkspace:
    return ShadowWorkspace(root, base=base, checker=CliChecker(), scan_every_s=None)


def _workspace(root: Path, extra: int = 0) -> None:
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "test").write_text(SCRIPT)
    os.chmod(root / "scripts" / "test", 0o755)
    (root / "scripts" / "only_me").write_text(SCRIPT)
    os.chmod(root / "scripts" / "only_me", 0o700)
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    os.chmod(root / "pkg" / "mod.py", 0o664)
    (root / "pkg" / "readonly.py").write_text("Y = 1\n")
    os.chmod(root / "pkg" / "readonly.py", 0o444)
    for k in range(extra):
        (root / "pkg" / f"m{k}.py").write_text(f"V = {k}\n")
    with sqlite3.connect(root / "app.db") as db:
        db.execute("CREATE TABLE t (v)")
    db.close()
    os.chmod(root / "app.db", 0o664)


def _assert_private(tree: Path) -> None:
    for folder, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))


@pytest.mark.parametrize(
    ("st_mode", "want"),
    [
        (0o100755, 0o700),
        (0o100700, 0o700),
        (0o100644, 0o600),
        (0o100444, 0o600),  # read and write for the copy's refreshes
        (0o100664, 0o600),
        (0o100711, 0o700),
        (0o100645, 0o600),  # another's execute bit is not the owner's
        (0o104755, 0o700),  # never a set-id bit
    ],
)
def test_copy_mode_keeps_the_owners_bits_only(st_mode: int, want: int) -> None:
    assert copy_mode(st_mode) == want


def test_a_mode_change_alone_makes_a_source_differ() -> None:
    old = Source(Kind.FILE, 10, 5, mode=0o600)
    assert not Source(Kind.FILE, 10, 5, mode=0o700).same_as(old)
    assert Source(Kind.FILE, 10, 5, mode=0o600).same_as(old)
    assert Source(Kind.FILE, 10, 5).same_as(old)  # unknown: the stamps decide


@pytest.mark.parametrize("extra", [0, PARALLEL_COPIES])
def test_the_first_build_keeps_executable_bits_and_stays_private(
    tmp_path: Path, extra: int
) -> None:
    root = tmp_path / "ws"
    _workspace(root, extra)
    shadow = _shadow(root, tmp_path / "shadow")
    try:
        shadow.sync()
        tree = shadow.tree
        assert _mode(tree / "scripts" / "test") == 0o700
        assert _mode(tree / "scripts" / "only_me") == 0o700
        assert _mode(tree / "pkg" / "mod.py") == 0o600
        assert _mode(tree / "pkg" / "readonly.py") == 0o600
        assert _mode(tree / "app.db") == 0o600  # the snapshot too
        _assert_private(tree)
        done = subprocess.run(
            ["./scripts/test"], cwd=tree, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0 and done.stdout == "ran-in-copy\n", done.stderr
        assert shadow.sync() == []  # in step, modes included
    finally:
        shadow.close()


def test_a_chmod_is_carried_by_a_refresh_by_stamps_and_by_path(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _workspace(root)
    shadow = _shadow(root, tmp_path / "shadow")
    try:
        shadow.sync()
        os.chmod(root / "pkg" / "mod.py", 0o775)  # no stamp changes
        assert [a.rel for a in shadow.sync()] == ["pkg/mod.py"]
        assert _mode(shadow.tree / "pkg" / "mod.py") == 0o700
        os.chmod(root / "scripts" / "test", 0o644)
        assert [a.rel for a in shadow.sync_paths(["scripts/test"])] == ["scripts/test"]
        assert _mode(shadow.tree / "scripts" / "test") == 0o600
        (root / "scripts" / "new").write_text(SCRIPT)
        os.chmod(root / "scripts" / "new", 0o755)
        shadow.sync_paths(["scripts/new"])
        assert _mode(shadow.tree / "scripts" / "new") == 0o700
        _assert_private(shadow.tree)
    finally:
        shadow.close()


def test_a_copy_made_before_keeps_no_wrong_bits_after_a_cold_start(tmp_path: Path) -> None:
    """A copy an older version made (0600 scripts, 0644 snapshots) is put right by the next
    start's sync."""
    root = tmp_path / "ws"
    _workspace(root)
    shadow = _shadow(root, tmp_path / "shadow")
    try:
        shadow.sync()
        tree = shadow.tree
    finally:
        shadow.close()
    os.chmod(tree / "scripts" / "test", 0o600)
    os.chmod(tree / "app.db", 0o644)
    again = _shadow(root, tmp_path / "shadow")
    try:
        assert {a.rel for a in again.sync()} == {"scripts/test", "app.db"}
        assert _mode(tree / "scripts" / "test") == 0o700
        assert _mode(tree / "app.db") == 0o600
    finally:
        again.close()


def test_an_unsaved_buffer_and_a_check_keep_the_files_mode(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _workspace(root)
    shadow = _shadow(root, tmp_path / "shadow")
    try:
        shadow.sync()
        shadow.push_buffer("scripts/test", SCRIPT + "echo unsaved\n").result(timeout=60)
        copy = shadow.tree / "scripts" / "test"
        assert copy.read_text().endswith("echo unsaved\n")
        assert _mode(copy) == 0o700
        shadow.push_buffer("pkg/brand_new.py", "Z = 1\n").result(timeout=60)
        assert _mode(shadow.tree / "pkg" / "brand_new.py") == 0o600
        shadow.check({"pkg/mod.py": "X = 2\n", "scripts/test": SCRIPT + "echo edited\n"})
        assert copy.read_text().endswith("echo unsaved\n")  # restored after the check
        assert _mode(copy) == 0o700
        _assert_private(shadow.tree)
    finally:
        shadow.close()


def test_a_clone_keeps_the_executable_bit_and_stays_private(reflink_fs: Path) -> None:
    root = reflink_fs / "ws"
    _workspace(root)
    shadow = ShadowWorkspace(root, base=reflink_fs / "data" / "shadow", scan_every_s=None)
    try:
        shadow.sync()
        assert shadow.clone_method is CloneMethod.FICLONE
        assert _mode(shadow.tree / "scripts" / "test") == 0o700
        assert _mode(shadow.tree / "pkg" / "mod.py") == 0o600
        _assert_private(shadow.tree)
    finally:
        shadow.close()
