"""Crash-safe file replacement.

``atomic_write`` writes to a temporary file in the same folder, flushes it to disk, gives it the
old file's mode bits and renames it over the target. A crash or ``SIGKILL`` at any moment leaves
either the complete old content or the complete new content at ``path``, never a mix; at worst a
stray temporary file (``.NAME.*.forecode-tmp``) remains beside it.

The editor's saves call it on their own writer thread (``app.services.saver``), so the UI
thread never waits on the disk.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "atomic_write"]

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


def atomic_write(
    path: str | os.PathLike[str], data: bytes, *, mode: int | None = None
) -> os.stat_result:
    """Replace the file at ``path`` with ``data`` atomically and durably.

    A symbolic link is followed: the file it points to is replaced and the link is kept. The
    file's permission bits (and, where allowed, its owner) are kept; a new file gets the
    default mode under the current umask. ``mode`` (a store's ``0600``) is the new file's
    bits whatever the old file had. Returns the new file's stat as written (taken on its
    descriptor before the rename, so a later change by someone else is never mistaken for it).
    """
    folder, written = _write_and_replace(path, data, mode)
    _fsync_dir(folder)
    return written


def _write_and_replace(
    path: str | os.PathLike[str], data: bytes, mode: int | None
) -> tuple[Path, os.stat_result]:
    """Write ``data`` to a temporary file beside ``path``, fsync and close it (Windows cannot
    rename an open file), give it the old file's mode and owner, and rename it over ``path``.
    Returns the folder and the new file's stat, taken before the rename."""
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
            os.fsync(f.fileno())
            written = os.fstat(f.fileno())
        os.close(fd)
        fd = -1
        if mode is not None:
            os.chmod(tmp, mode)
        elif st is not None:
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
    return folder, written
