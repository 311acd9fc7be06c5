"""Edit-pattern propagation beyond the current file: the sites of a pattern in the other open
buffers, then in the workspace's files, nearest first. No Qt: blocking, for a worker thread.

The editor's next-edit owner (``app/ui/owners/next_edit.py``) calls it once the sites in the
current file are offered (or none are), on a worker thread (``BackgroundTask``'s ``cancel``
event is this function's ``cancel``), and hands the result to the UI thread, versioned so a
stale one is dropped::

    pattern = cross_file_pattern(text, events, path, mask=mask)  # forecode_core.next_edit
    if pattern is not None:
        result = find_other_sites(
            pattern,
            origin=path,                       # the current file (never searched here)
            buffers=[OpenBuffer(p, t, m), ...],  # the other open buffers (any order)
            root=workspace.root,               # the workspace folder, or None
            files=workspace.files,             # its files (root-relative POSIX), as the
                                               # codebase index lists them
            cancel=cancel,
        )
        for site in result.sites: ...          # FileSite: path, start, end, line, old, new

- **Order.** Open buffers first (their text as the user sees it, unsaved edits included; their
  mask from Scintilla's styles when the caller has one), then workspace files; in each group
  the files nearest the origin first (the same folder, then one step away, ...; ties by
  path), sites in text order within a file. ``rank`` is the offer order across files.
- **Prefilter.** A file whose text lacks the pattern's anchor (``anchor_text``: the old name
  of a rename) is skipped before it is decoded or tokenized; a file over ``max_file_bytes``,
  binary or not decodable is skipped too; an open buffer is never read from disk.
- **Bounds** (``Bounds``). At most ``max_files`` workspace files looked at, ``max_sites``
  sites, and a ``deadline_s`` wall-clock budget; ``cancel`` stops between files. What was
  found before a bound is kept and ``stopped`` says which bound ended it (``"done"``: none).
- **Which patterns.** Only what ``cross_file_pattern`` returns: a local variable's or a
  parameter's rename stays in its file. Each file's sites are ``other_file_sites``': a
  rename is no rename in a file that already uses the new name, nor, for a method, in a file
  that defines the old name itself.

Offsets are ``str`` indices into each file's text as decoded (``decode_bytes``: line endings
kept), so the editor converts them to its byte positions as it does for the current file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

from forecode_core.next_edit.lexmask import LexMask
from forecode_core.next_edit.propagation import Pattern, Site, anchor_text, other_file_sites
from forecode_core.text.textfile import decode_bytes

__all__ = [
    "DEFAULT_DEADLINE_S",
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_SITES",
    "Bounds",
    "FileSite",
    "OpenBuffer",
    "OtherSites",
    "find_other_sites",
    "nearness",
]

DEFAULT_DEADLINE_S = 1.5
DEFAULT_MAX_FILES = 5000
DEFAULT_MAX_SITES = 200
DEFAULT_MAX_FILE_BYTES = 1_000_000

Stopped = Literal["done", "deadline", "max_files", "max_sites", "cancelled"]


@dataclass(frozen=True)
class OpenBuffer:
    """An open buffer: its file's path (absolute), its text now, its mask if the editor has
    one (else the fallback scanner's)."""

    path: str
    text: str
    mask: LexMask | None = None


@dataclass(frozen=True)
class FileSite:
    path: str  # absolute
    start: int
    end: int
    line: int  # 0-based line of ``start``
    old: str
    new: str
    rank: int  # 0 is offered first
    open_buffer: bool  # found in an open buffer's text (else read from disk)


@dataclass(frozen=True)
class OtherSites:
    sites: tuple[FileSite, ...]
    files_searched: int  # files whose text was searched (after the prefilter)
    files_looked_at: int  # files considered (open buffers and workspace files)
    stopped: Stopped


def nearness(origin: str, path: str) -> tuple[int, str]:
    """A sort key: the folder steps from ``origin``'s folder to ``path``'s, then the path."""
    return _steps(PurePath(origin).parent.parts, PurePath(path).parent.parts), path


def _steps(a: Sequence[str], b: Sequence[str]) -> int:
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return len(a) + len(b) - 2 * common


def _by_nearness(origin: str, root: Path, files: Sequence[str]) -> list[str]:
    """Root-relative POSIX paths, nearest ``origin`` first (``nearness``), cheaply: tens of
    thousands of names sorted as strings, no path objects per file."""
    root_parts = root.parts
    here = PurePath(origin).parent.parts
    if here[: len(root_parts)] == root_parts:  # the origin is in the workspace
        here_rel: Sequence[str] = here[len(root_parts) :]
        return sorted(files, key=lambda rel: (_steps(here_rel, rel.split("/")[:-1]), rel))
    return sorted(files)


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.abspath(path))


def _read(path: Path, anchor: bytes, max_bytes: int) -> str | None:
    """The file's text when it may hold a site: small enough, the anchor in its bytes (UTF-8;
    a UTF-16 file is decoded first), decodable and not binary."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if not utf16 and anchor not in data:
        return None
    decoded = decode_bytes(data)
    if decoded.read_only_reason is not None:
        return None
    return decoded.text


@dataclass(frozen=True)
class Bounds:
    """How far one search goes (module doc); ``clock`` is seconds, any monotonic clock."""

    deadline_s: float = DEFAULT_DEADLINE_S
    max_files: int = DEFAULT_MAX_FILES  # workspace files looked at
    max_sites: int = DEFAULT_MAX_SITES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    clock: Callable[[], float] = time.monotonic


class _Search:
    def __init__(
        self, pattern: Pattern, origin: str, bounds: Bounds, cancel: threading.Event | None
    ) -> None:
        self.pattern = pattern
        self.anchor = anchor_text(pattern)
        self.origin = origin
        self.bounds = bounds
        self.cancel = cancel
        self.stop_at = bounds.clock() + bounds.deadline_s
        self.sites: list[FileSite] = []
        self.searched = 0
        self.looked = 0
        self.skip = {_key(origin)}

    def stopped(self) -> Stopped | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.bounds.clock() > self.stop_at:
            return "deadline"
        return None

    def result(self, why: Stopped) -> OtherSites:
        return OtherSites(tuple(self.sites), self.searched, self.looked, why)

    def add(self, path: str, text: str, mask: LexMask | None, open_buffer: bool) -> bool:
        """Search one file's text; False once ``max_sites`` are found."""
        if self.anchor not in text:
            return True
        self.searched += 1
        left = self.bounds.max_sites - len(self.sites)
        found: list[Site] = other_file_sites(text, self.pattern, path=path, mask=mask, limit=left)
        for s in found:
            line = text.count("\n", 0, s.start)
            self.sites.append(
                FileSite(path, s.start, s.end, line, s.old, s.new, len(self.sites), open_buffer)
            )
        return len(self.sites) < self.bounds.max_sites

    def buffers(self, buffers: Sequence[OpenBuffer]) -> Stopped | None:
        for buf in sorted(buffers, key=lambda b: nearness(self.origin, b.path)):
            key = _key(buf.path)
            if key in self.skip:
                continue
            self.skip.add(key)
            why = self.stopped()
            if why is not None:
                return why
            self.looked += 1
            if not self.add(buf.path, buf.text, buf.mask, True):
                return "max_sites"
        return None

    def files(self, root: str | os.PathLike[str], files: Sequence[str]) -> Stopped:
        base = Path(os.path.abspath(root))
        anchor = self.anchor.encode("utf-8")
        names = {os.path.basename(k) for k in self.skip}
        looked = 0
        for rel in _by_nearness(self.origin, base, files):
            path = str(base / rel)
            if os.path.normcase(rel.rsplit("/", 1)[-1]) in names and _key(path) in self.skip:
                continue
            if looked >= self.bounds.max_files:
                return "max_files"
            why = self.stopped()
            if why is not None:
                return why
            looked += 1
            self.looked += 1
            text = _read(Path(path), anchor, self.bounds.max_file_bytes)
            if text is not None and not self.add(path, text, None, False):
                return "max_sites"
        return "done"


def find_other_sites(
    pattern: Pattern,
    *,
    origin: str,
    buffers: Sequence[OpenBuffer] = (),
    root: str | os.PathLike[str] | None = None,
    files: Sequence[str] = (),
    cancel: threading.Event | None = None,
    bounds: Bounds = Bounds(),
) -> OtherSites:
    """The pattern's sites in the other open buffers, then in the workspace's files (module
    doc); blocking: call it on a worker thread."""
    search = _Search(pattern, origin, bounds, cancel)
    if not search.anchor:
        return search.result("done")
    why = search.buffers(buffers)
    if why is None:
        why = "done" if root is None else search.files(root, files)
    return search.result(why)
