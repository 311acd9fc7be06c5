"""How the editor opens a file by its size, and reading a big one in pieces (off the UI thread).

The rule (close to VS Code's, see the README's "Big files"):

* up to :data:`SYNC_READ_MAX_BYTES` (1 MiB): read and decoded on the UI thread (milliseconds);
* up to :data:`LARGE_FILE_BYTES` (20 MiB): read and decoded on a worker thread with progress
  and Cancel, then a normal, editable tab;
* up to :func:`hard_limit_bytes` (256 MiB, less on a machine with under 4 GiB of memory):
  *large-file mode*: read on a worker thread and decoded piece by piece, read-only, no
  highlighting, no completions, never indexed or backed up;
* above: refused with a message that says the size, the limit and what to use instead.

Whatever the size, a line longer than :data:`LONG_LINE_CHARS` (10,000 characters: minified
code, one-line JSON) is shown broken every 10,000 characters, read-only, unless the user asks
to edit anyway: Scintilla lays out a whole line to paint or scroll to any part of it, which
took seconds for a 6.5 MB one-line file and froze the UI thread. The file is never changed.

:func:`load_file` is the worker's side: a generator of a :class:`LoadHeader`, then the text in
pieces of at most 256 Ki characters, then a :class:`LoadDone` (the digest for change detection). It
holds at most a piece at a time in large-file mode, so memory is the widget's copy of the text
plus a few MiB; in the normal mode it holds the file's bytes and text (at most 20 MiB of
bytes) while it decodes them losslessly with :func:`forecode_core.text.textfile.decode_bytes`.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from forecode_core.text.textfile import (
    BINARY,
    Decoded,
    decode_bytes,
    detect_eol,
    encoding_label,
    normalize_encoding,
)

__all__ = [
    "LARGE_FILE_BYTES",
    "LONG_LINE_CHARS",
    "SYNC_READ_MAX_BYTES",
    "FileTooLargeError",
    "LineBreaker",
    "LoadDone",
    "LoadHeader",
    "OpenPlan",
    "break_long_lines",
    "content_digest",
    "hard_limit_bytes",
    "human_size",
    "load_file",
    "long_line_note",
    "plan_open",
    "refusal_message",
]

SYNC_READ_MAX_BYTES: Final = 1 << 20
"""Files up to this size are read on the UI thread."""

LARGE_FILE_BYTES: Final = 20 << 20
"""Files above this size open in large-file mode (read-only, plain text)."""

HARD_LIMIT_CAP: Final = 256 << 20
"""No file above this size is opened, however much memory the machine has."""

BLOCK_BYTES: Final = 1 << 20
"""Bytes read per block."""

PIECE_CHARS: Final = 256 << 10
"""The most characters in one piece of text handed to the widget (a few ms to append)."""

LONG_LINE_CHARS: Final = 10_000
"""Longer lines are shown broken into lines of this many characters (read-only)."""


class OpenPlan(StrEnum):
    """How a file opens, by its size (``plan_open``)."""

    SYNC = "sync"  # read on the UI thread
    BACKGROUND = "background"  # read on a worker; the tab shows "loading"
    LARGE = "large"  # read on a worker, shown in large-file mode
    REFUSE = "refuse"  # above the hard limit: not opened


_NUL_SHOWN_AS: Final = "\u2400"
_HEAD_BYTES: Final = 64 << 10


class FileTooLargeError(OSError):
    """The file is above the hard limit; ``strerror`` is the message for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EFBIG, message)


def total_memory_bytes() -> int | None:
    """Physical memory of the machine, or None where it cannot be read."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def hard_limit_bytes(total_memory: int | None = None) -> int:
    """The largest file the editor opens: 256 MiB, or a 16th of the machine's memory when that
    is less (the widget keeps the text and a style byte per character, and reading briefly
    needs more), but never under twice :data:`LARGE_FILE_BYTES`."""
    memory = total_memory if total_memory is not None else total_memory_bytes()
    if memory is None:
        return HARD_LIMIT_CAP
    return max(2 * LARGE_FILE_BYTES, min(HARD_LIMIT_CAP, memory // 16))


def plan_open(size: int, hard_limit: int | None = None) -> OpenPlan:
    """How a file of ``size`` bytes opens (see the module docstring)."""
    limit = hard_limit if hard_limit is not None else hard_limit_bytes()
    if size > limit:
        return OpenPlan.REFUSE
    if size > LARGE_FILE_BYTES:
        return OpenPlan.LARGE
    if size > SYNC_READ_MAX_BYTES:
        return OpenPlan.BACKGROUND
    return OpenPlan.SYNC


def human_size(size: int) -> str:
    """``1536`` → ``"1.5 KB"``, ``256 << 20`` → ``"256 MB"``: binary multiples with the
    familiar short names, one decimal below 100."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{size} bytes"
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def refusal_message(name: str, size: int, limit: int) -> str:
    return (
        f"{name} is too large to open: {human_size(size)}, the limit is "
        f"{human_size(limit)}. Use a pager such as less."
    )


def content_digest(data: bytes) -> str:
    """The digest the editor keeps of a file's bytes to tell a real change from a touch."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class LineBreaker:
    """Breaks lines longer than ``limit`` characters every ``limit`` characters, over text
    given in pieces (a line may span pieces). Line breaks are CR, LF and CRLF, as in the
    widget. ``broken`` counts the breaks added; ``longest`` is the longest line seen."""

    def __init__(self, limit: int = LONG_LINE_CHARS) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.run = 0  # characters since the last line break, real or added
        self.line = 0  # characters of the current (real) line so far
        self.broken = 0
        self.longest = 0

    def feed(self, piece: str) -> str:
        # The common case, checked at C speed: no line to break in this piece.
        segments = piece.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        inner = max(map(len, segments[1:]), default=0)
        if self.run + len(segments[0]) <= self.limit and inner <= self.limit:
            self.longest = max(self.longest, self.line + len(segments[0]), inner)
            if len(segments) == 1:
                self.run += len(piece)
                self.line += len(piece)
            else:
                self.run = self.line = len(segments[-1])
            return piece
        out: list[str] = []
        start = pos = 0
        n = len(piece)
        while pos < n:
            end = _next_break(piece, pos)
            self.line += end - pos
            self.longest = max(self.longest, self.line)
            while self.run + (end - pos) > self.limit:
                cut = pos + (self.limit - self.run)
                out.append(piece[start:cut])
                out.append("\n")
                start = pos = cut
                self.run = 0
                self.broken += 1
            self.run += end - pos
            if end < n:
                self.run = self.line = 0
            pos = end + 1
        out.append(piece[start:])
        return "".join(out)


def _next_break(text: str, pos: int) -> int:
    lf, cr = text.find("\n", pos), text.find("\r", pos)
    if lf < 0:
        return len(text) if cr < 0 else cr
    return lf if cr < 0 else min(lf, cr)


def _has_long_line(text: str, limit: int) -> bool:
    if len(text) <= limit:
        return False
    if max(map(len, text.split("\n"))) <= limit:  # C speed; CR-only files fall through
        return False
    breaker = LineBreaker(limit)
    breaker.feed(text)
    return breaker.broken > 0


def long_line_note(longest: int) -> str:
    return (
        f"Lines longer than {LONG_LINE_CHARS:,} characters (the longest has {longest:,}) "
        f"are shown broken every {LONG_LINE_CHARS:,} characters, read-only: the editor "
        "freezes on such lines. The file is not changed."
    )


def break_long_lines(decoded: Decoded) -> Decoded:
    """``decoded`` as it is, or with its long lines broken for display and read-only (the
    reason says so; a read-only file keeps its own reason)."""
    if not _has_long_line(decoded.text, LONG_LINE_CHARS):
        return decoded
    breaker = LineBreaker()
    text = breaker.feed(decoded.text)
    reason = decoded.read_only_reason or long_line_note(breaker.longest)
    return replace(decoded, text=text, read_only_reason=reason)


@dataclass(frozen=True)
class LoadHeader:
    """What the tab needs before the text: how the file was decoded, and whether it is in
    large-file mode (then ``read_only_reason`` says so)."""

    encoding: str
    eol: str
    mixed_eol: bool
    read_only_reason: str | None
    notice: str | None
    large: bool
    size: int
    first_line: str
    lines_hint: int = 0  # about how many lines the text has (to size the widget's index)
    long_lines: bool = False  # lines were broken for display (see break_long_lines)


@dataclass(frozen=True)
class LoadDone:
    mtime_ns: int
    size: int
    digest: str
    longest_broken: int = 0  # large-file mode: the longest line shown broken, if any


def _large_codec(head: bytes, encoding: str | None, default_eol: str) -> tuple[str, str]:
    """(encoding id or "binary", Python codec for an incremental decoder) for a large file,
    decided on its head (cut at its last line break, so no character is cut in two)."""
    if encoding is None:
        samples = [head]
        if len(head) == _HEAD_BYTES:  # cut at a line break (8-bit and UTF-8 text) or at a
            cut = head.rfind(b"\n")  # whole UTF-16/32 code unit, whichever decodes
            samples = [head[: cut + 1] if cut > 0 else head, head[: len(head) - len(head) % 4]]
        decodings = [decode_bytes(sample, default_eol) for sample in samples]
        decoded = next((d for d in decodings if not d.read_only), decodings[0])
        encoding = decoded.encoding
        if decoded.read_only and encoding != BINARY:
            encoding = "utf-8"  # damaged UTF-8: shown with replacement characters
    else:
        encoding = normalize_encoding(encoding) or "utf-8"
        if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    codec = {
        BINARY: "utf-8",
        "utf-8-sig": "utf-8-sig",
        "utf-16-le-bom": "utf-16",
        "utf-16-be-bom": "utf-16",
        "utf-32-le-bom": "utf-32",
        "utf-32-be-bom": "utf-32",
    }.get(encoding, encoding)
    return encoding, codec


def load_file(
    path: str | os.PathLike[str],
    *,
    default_eol: str = "\n",
    encoding: str | None = None,
    large: bool = False,
    hard_limit: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
    long_lines: bool = False,
) -> Iterator[LoadHeader | str | LoadDone]:
    """Read and decode the file at ``path`` in pieces (see the module docstring).

    Stops quietly (no more items) once ``cancelled()`` is true; raises ``OSError`` when the
    file cannot be read and :class:`FileTooLargeError` when it grows past the hard limit while
    being read. Lines over :data:`LONG_LINE_CHARS` are broken for display (read-only) unless
    ``long_lines`` allows them.
    """
    limit = hard_limit if hard_limit is not None else hard_limit_bytes()
    name = os.path.basename(os.fspath(path))
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())  # before reading: a change during the read is seen later
        total = st.st_size
        hasher = hashlib.blake2b(digest_size=16)
        done = 0

        def read_block() -> bytes:
            nonlocal done
            block = f.read(BLOCK_BYTES)
            done += len(block)
            if done > limit:
                raise FileTooLargeError(refusal_message(name, done, limit))
            hasher.update(block)
            progress(done, max(total, done))
            return block

        if not large:
            blocks = []
            while not cancelled():
                block = read_block()
                if not block:
                    break
                blocks.append(block)
            if cancelled():
                return
            data = b"".join(blocks)
            del blocks
            decoded = decode_bytes(data, default_eol, encoding)
            del data  # the text is all that is needed from here on
            broken = decoded if long_lines else break_long_lines(decoded)
            was_broken = broken is not decoded
            del decoded
            text = broken.text
            yield LoadHeader(
                broken.encoding,
                broken.eol,
                broken.mixed_eol,
                broken.read_only_reason,
                broken.notice,
                False,
                done,
                text[:200].split("\n", 1)[0],
                text.count("\n") + 1,
                was_broken,
            )
            for start in range(0, len(text), PIECE_CHARS):
                if cancelled():
                    return
                yield text[start : start + PIECE_CHARS]
            yield LoadDone(st.st_mtime_ns, done, hasher.hexdigest())
            return

        first = read_block()
        encoding_id, codec = _large_codec(first[:_HEAD_BYTES], encoding, default_eol)
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        piece = decoder.decode(first)
        eol, mixed = detect_eol(piece, default_eol)
        label = (
            "bytes shown as UTF-8, with \u2400 for NUL"
            if encoding_id == BINARY
            else (encoding_label(encoding_id))
        )
        reason = (
            f"Large file ({human_size(total)}): opened read-only in large-file mode, "
            f"without highlighting, completions, index or backups ({label})."
        )
        lines_hint = int(total * (piece.count("\n") + 1) / max(1, len(first)))
        yield LoadHeader(
            encoding_id,
            eol,
            mixed,
            reason,
            None,
            True,
            total,
            piece[:200].split("\n", 1)[0],
            lines_hint,
        )
        breaker = LineBreaker() if not long_lines else None
        while True:
            if cancelled():
                return
            if breaker is not None:
                piece = breaker.feed(piece)
            for start in range(0, len(piece), PIECE_CHARS):
                yield piece[start : start + PIECE_CHARS].replace("\x00", _NUL_SHOWN_AS)
            block = read_block()
            if not block:
                piece = decoder.decode(b"", final=True)
                if piece:
                    if breaker is not None:
                        piece = breaker.feed(piece)
                    yield piece.replace("\x00", _NUL_SHOWN_AS)
                break
            piece = decoder.decode(block)
        longest = breaker.longest if breaker is not None and breaker.broken else 0
        yield LoadDone(st.st_mtime_ns, done, hasher.hexdigest(), longest)
