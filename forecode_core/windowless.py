"""Forecode's processes on Windows, where the frozen app is a windowed (GUI) program.

A user of an editor expects one window, the editor's: no black console window beside it, and
none flashing each time the editor starts a child. Two things follow on Windows:

- ``no_window()``: the keyword arguments every child process is started with
  (``subprocess.Popen(cmd, ..., **no_window())``, and the same for
  ``asyncio.create_subprocess_exec`` and pygls' ``start_io``). A console program started by a
  windowed one gets a new console window unless it is created with ``CREATE_NO_WINDOW``; git,
  ruff, Node (basedpyright) and ``python.exe`` (a checkout's children) are console programs.
  ``tests/test_spawn_windowless.py`` scans the source: a spawn site without it fails the test.
  Elsewhere it is empty (``Popen`` refuses ``creationflags`` on POSIX).
- ``ensure_std_streams()``: a windowed program has no standard handles, so Python sets
  ``sys.stdin``/``sys.stdout``/``sys.stderr`` to None; ``sys.stderr.write``, ``faulthandler``
  or a child's ``os.dup(1)`` would then fail. The frozen entry point calls it first: each
  missing stream (and its file descriptor, when that is not open) becomes the null device. A
  child started with pipes (every Forecode child is) has real streams and keeps them.

Only the standard library; no Forecode package is imported.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any, TypedDict

__all__ = ["CREATE_NO_WINDOW", "NoWindow", "ensure_std_streams", "no_window"]

CREATE_NO_WINDOW = 0x08000000
"""Windows' process creation flag (``subprocess.CREATE_NO_WINDOW``, defined there on Windows
only): the child gets no console window."""


class NoWindow(TypedDict, total=False):
    """``Popen``'s keyword arguments that ``no_window`` may give."""

    creationflags: int


def no_window(platform: str | None = None) -> NoWindow:
    """``{"creationflags": CREATE_NO_WINDOW}`` on Windows, else ``{}``; ``platform`` defaults
    to ``sys.platform``, read at each call."""
    if (sys.platform if platform is None else platform) == "win32":
        return {"creationflags": CREATE_NO_WINDOW}
    return {}


_STREAMS = (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w"))


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _null_stream(fd: int, mode: str) -> IO[Any]:
    """A text stream on the null device; on ``fd`` itself when ``fd`` is not open (so C code
    and ``os.dup(fd)`` see the null device too)."""
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd and not _fd_open(fd):
        os.dup2(null, fd)
        os.close(null)
        null = fd
    return open(null, mode, encoding="utf-8", errors="replace", closefd=null != fd)


def ensure_std_streams() -> list[str]:
    """Give each of ``sys.stdin``/``stdout``/``stderr`` that is None (a windowed program's) a
    stream on the null device, and the same to its ``sys.__std*__`` twin when that is None;
    return the names replaced (empty when all three were there)."""
    replaced: list[str] = []
    for name, fd, mode in _STREAMS:
        if getattr(sys, name) is not None:
            continue
        stream = _null_stream(fd, mode)
        setattr(sys, name, stream)
        if getattr(sys, f"__{name}__") is None:
            setattr(sys, f"__{name}__", stream)
        replaced.append(name)
    return replaced
