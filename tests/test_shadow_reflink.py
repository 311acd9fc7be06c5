"""Copy-on-write clones in the shadow workspace (issue 16), on a real reflink filesystem: an XFS
made with ``-m reflink=1`` (or a btrfs) on a loop file in the test's temporary folder and
mounted there, the workspace and the shadow both on it (a clone cannot cross filesystems).
The shadow's first build must clone (``clone_method`` ficlone, the copies' extents shared with
the user's, read by ``filefrag``), a database is never cloned, and writing to a clone leaves
the user's bytes unchanged (sha256).

Skipped only when such a filesystem cannot be made here (no ``mkfs.xfs``/``mkfs.btrfs``, not
root, or the kernel refuses the loop mount), with the reason; ``.ci/run`` installs xfsprogs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.services.shadow import CloneMethod, ShadowWorkspace

MKFS = (
    ("mkfs.xfs", ["-q", "-f", "-m", "reflink=1"]),
    ("mkfs.btrfs", ["-q", "-f"]),
)


def _run(cmd: list[str]) -> str:
    """'' when ``cmd`` succeeded, else why not."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{cmd[0]}: {exc}"
    return "" if done.returncode == 0 else f"{' '.join(cmd)}: {done.stderr.strip()[:300]}"


@pytest.fixture
def reflink_fs(tmp_path: Path) -> Iterator[Path]:
    """A mounted reflink-capable filesystem, or a skip that says why none can be made."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a loop filesystem needs root to mount")
    image, mount = tmp_path / "fs.img", tmp_path / "mnt"
    mount.mkdir()
    reasons: list[str] = []
    for tool, args in MKFS:
        exe = shutil.which(tool)
        if exe is None:
            reasons.append(f"{tool} is not installed")
            continue
        with open(image, "wb") as f:
            f.truncate(320 << 20)  # sparse; XFS needs 300 MiB
        why = _run([exe, *args, str(image)]) or _run(
            ["mount", "-o", "loop", str(image), str(mount)]
        )
        if not why:
            break
        reasons.append(why)
    else:
        pytest.skip("no reflink filesystem can be made here: " + "; ".join(reasons))
    try:
        yield mount
    finally:
        if _run(["umount", str(mount)]):
            _run(["umount", "-l", str(mount)])
        image.unlink(missing_ok=True)


def shared(path: Path) -> bool:
    """Whether ``path``'s extents are shared with another file (a clone), by ``filefrag``."""
    out = subprocess.run(
        ["filefrag", "-v", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return "shared" in out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_first_build_clones_and_a_write_to_a_clone_leaves_the_users_bytes(
    reflink_fs: Path,
) -> None:
    ws = reflink_fs / "ws"
    (ws / "pkg").mkdir(parents=True)
    big = "".join(f"def f{k}(x: int) -> int:\n    return x + {k}\n\n\n" for k in range(2000))
    (ws / "pkg" / "big.py").write_text(big)  # ~80 KiB: several blocks to share
    (ws / "pkg" / "small.py").write_text("X = 1\n" * 1000)
    with sqlite3.connect(ws / "app.db") as db:
        db.execute("CREATE TABLE t (v)")
        db.execute("INSERT INTO t VALUES ('user')")
    db.close()
    os.sync()
    before = {rel: sha(ws / rel) for rel in ("pkg/big.py", "pkg/small.py", "app.db")}
    shadow = ShadowWorkspace(ws, base=reflink_fs / "data" / "shadow", scan_every_s=None)
    try:
        shadow.sync()
        assert shadow.clone_method is CloneMethod.FICLONE
        copy = shadow.tree / "pkg" / "big.py"
        assert (
            copy.read_text() == big and copy.stat().st_ino != (ws / "pkg" / "big.py").stat().st_ino
        )
        assert shared(copy) and shared(ws / "pkg" / "big.py")  # cloned, not copied
        assert shared(shadow.tree / "pkg" / "small.py")
        assert not shared(shadow.tree / "app.db")  # a database is snapshotted, never cloned
        # writing into the clones: copy on write, the user's bytes never change
        with open(copy, "r+b") as f:
            f.seek(4096)
            f.write(b"# written in the shadow\n" * 100)
        (shadow.tree / "pkg" / "small.py").write_text("X = 2\n")
        with sqlite3.connect(shadow.tree / "app.db") as db:
            db.execute("INSERT INTO t VALUES ('shadow')")
        db.close()
        os.sync()
        assert {rel: sha(ws / rel) for rel in before} == before
        assert (ws / "pkg" / "big.py").read_text() == big
        assert not shared(copy.with_name("small.py"))  # its own blocks now
    finally:
        shadow.close()
