"""Crash-safe file replacement.

``atomic_write`` writes to a temporary file in the same folder, flushes it to disk, gives it the
old file's mode bits and renames it over the target. A crash or ``SIGKILL`` at any moment leaves
either the complete old content or the complete new content at ``path``, never a mix; at worst a
stray temporary file (``.NAME.*.forecode-tmp``) remains beside it.

``atomic_replace`` does the same but leaves the two fsyncs to its caller (the editor's save runs
them on a worker thread, so the UI thread never waits on the disk): see its docstring for what
that changes.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "atomic_replace", "atomic_write"]

TEMP_SUFFIX = ".forecode-tmp"


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(src: str, dst: Path) -> None:
    # On Windows a reader holding the target open makes os.replace fail for a moment.
    for attempt in range(5):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file at ``path`` with ``data`` atomically and durably.

    A symbolic link is followed: the file it points to is replaced and the link is kept. The
    file's permission bits (and, where allowed, its owner) are kept; a new file gets the
    default mode under the current umask.
    """
    _, folder = _write_and_replace(path, data, keep_open=False)
    _fsync_dir(folder)


def atomic_replace(path: str | os.PathLike[str], data: bytes) -> Callable[[], None]:
    """Replace the file at ``path`` with ``data`` atomically; return the function that makes it
    durable (fsync of the new file, then of its folder), to be called once, on any thread.

    When this returns, every reader sees the whole new content and a crash or kill of this
    process loses nothing (the content is in the system's cache). What waits for the returned
    function is the disk: a power cut or a system crash before it has run can leave the old
    content, or, on a file system that does not flush a file renamed over another (ext4 with
    its default ``auto_da_alloc`` and btrfs do), an empty file. On Windows, where an open file
    cannot be renamed over, the fsync of the file is made here and the function does nothing.
    """
    if os.name == "nt":
        atomic_write(path, data)
        return lambda: None
    fd, folder = _write_and_replace(path, data, keep_open=True)
    assert fd is not None

    def sync() -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(folder)

    return sync


def _write_and_replace(
    path: str | os.PathLike[str], data: bytes, *, keep_open: bool
) -> tuple[int | None, Path]:
    """Write ``data`` to a temporary file beside ``path``, give it the old file's mode and
    owner, and rename it over ``path``. With ``keep_open`` the file is renamed unsynced and
    its descriptor returned (the caller fsyncs and closes it); else it is fsynced and closed
    before the rename (Windows cannot rename an open file) and None returned."""
    target = Path(os.path.realpath(path))
    folder = target.parent
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            if not keep_open:
                os.fsync(f.fileno())
        if not keep_open:
            os.close(fd)
            fd = -1
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            if hasattr(os, "chown") and (st.st_uid != os.getuid() or st.st_gid != os.getgid()):
                with contextlib.suppress(OSError):
                    os.chown(tmp, st.st_uid, st.st_gid)
        else:
            os.chmod(tmp, _default_mode())
        _replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return (fd if keep_open else None), folder
