"""How the editor opens a file by its size, and reading a big one in pieces (off the UI thread).

The rule (close to VS Code's, see the README's "Big files"):

* up to :data:`SYNC_READ_MAX_BYTES` (1 MiB): read and decoded on the UI thread (milliseconds);
* up to :data:`LARGE_FILE_BYTES` (20 MiB): read and decoded on a worker thread with progress
  and Cancel, then a normal, editable tab;
* up to :func:`hard_limit_bytes` (256 MiB, less on a machine with under 4 GiB of memory):
  *large-file mode*: read on a worker thread and decoded piece by piece, read-only, no
  highlighting, no completions, never indexed or backed up;
* above: refused with a message that says the size, the limit and what to use instead.

:func:`load_file` is the worker's side: a generator of a :class:`LoadHeader`, then the text in
pieces of at most 256 Ki characters, then a :class:`LoadDone` (the digest for change detection). It
holds at most a piece at a time in large-file mode, so memory is the widget's copy of the text
plus a few MiB; in the normal mode it holds the file's bytes and text (at most 20 MiB of
bytes) while it decodes them losslessly with :func:`app.core.textfile.decode_bytes`.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from app.core.textfile import (
    BINARY,
    decode_bytes,
    detect_eol,
    encoding_label,
    normalize_encoding,
)

__all__ = [
    "LARGE_FILE_BYTES",
    "SYNC_READ_MAX_BYTES",
    "FileTooLargeError",
    "LoadDone",
    "LoadHeader",
    "OpenPlan",
    "content_digest",
    "hard_limit_bytes",
    "human_size",
    "load_file",
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

OpenPlan = Literal["sync", "background", "large", "refuse"]

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
        return "refuse"
    if size > LARGE_FILE_BYTES:
        return "large"
    if size > SYNC_READ_MAX_BYTES:
        return "background"
    return "sync"


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
    return (f"{name} is too large to open: {human_size(size)}, the limit is "
            f"{human_size(limit)}. Use a pager such as less.")


def content_digest(data: bytes) -> str:
    """The digest the editor keeps of a file's bytes to tell a real change from a touch."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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


@dataclass(frozen=True)
class LoadDone:
    mtime_ns: int
    size: int
    digest: str


def _large_codec(head: bytes, encoding: str | None, default_eol: str) -> tuple[str, str]:
    """(encoding id or "binary", Python codec for an incremental decoder) for a large file,
    decided on its head (cut at its last line break, so no character is cut in two)."""
    if encoding is None:
        samples = [head]
        if len(head) == _HEAD_BYTES:  # cut at a line break (8-bit and UTF-8 text) or at a
            cut = head.rfind(b"\n")   # whole UTF-16/32 code unit, whichever decodes
            samples = [head[:cut + 1] if cut > 0 else head, head[:len(head) - len(head) % 4]]
        decodings = [decode_bytes(sample, default_eol) for sample in samples]
        decoded = next((d for d in decodings if not d.read_only), decodings[0])
        encoding = decoded.encoding
        if decoded.read_only and encoding != BINARY:
            encoding = "utf-8"  # damaged UTF-8: shown with replacement characters
    else:
        encoding = normalize_encoding(encoding) or "utf-8"
        if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    codec = {BINARY: "utf-8", "utf-8-sig": "utf-8-sig", "utf-16-le-bom": "utf-16",
             "utf-16-be-bom": "utf-16", "utf-32-le-bom": "utf-32",
             "utf-32-be-bom": "utf-32"}.get(encoding, encoding)
    return encoding, codec


def load_file(path: str | os.PathLike[str], *, default_eol: str = "\n",
              encoding: str | None = None, large: bool = False,
              hard_limit: int | None = None,
              cancelled: Callable[[], bool] = lambda: False,
              progress: Callable[[int, int], None] = lambda _done, _total: None,
              ) -> Iterator[LoadHeader | str | LoadDone]:
    """Read and decode the file at ``path`` in pieces (see the module docstring).

    Stops quietly (no more items) once ``cancelled()`` is true; raises ``OSError`` when the
    file cannot be read and :class:`FileTooLargeError` when it grows past the hard limit while
    being read.
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
            text = decoded.text
            yield LoadHeader(decoded.encoding, decoded.eol, decoded.mixed_eol,
                             decoded.read_only_reason, decoded.notice, False, done,
                             text[:200].split("\n", 1)[0], text.count("\n") + 1)
            del decoded
            for start in range(0, len(text), PIECE_CHARS):
                if cancelled():
                    return
                yield text[start:start + PIECE_CHARS]
            yield LoadDone(st.st_mtime_ns, done, hasher.hexdigest())
            return

        first = read_block()
        encoding_id, codec = _large_codec(first[:_HEAD_BYTES], encoding, default_eol)
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        piece = decoder.decode(first)
        eol, mixed = detect_eol(piece, default_eol)
        label = "bytes shown as UTF-8, with \u2400 for NUL" if encoding_id == BINARY else (
            encoding_label(encoding_id))
        reason = (f"Large file ({human_size(total)}): opened read-only in large-file mode, "
                  f"without highlighting, completions, index or backups ({label}).")
        lines_hint = int(total * (piece.count("\n") + 1) / max(1, len(first)))
        yield LoadHeader(encoding_id, eol, mixed, reason, None, True, total,
                         piece[:200].split("\n", 1)[0], lines_hint)
        while True:
            if cancelled():
                return
            for start in range(0, len(piece), PIECE_CHARS):
                yield piece[start:start + PIECE_CHARS].replace("\x00", _NUL_SHOWN_AS)
            block = read_block()
            if not block:
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail.replace("\x00", _NUL_SHOWN_AS)
                break
            piece = decoder.decode(block)
        yield LoadDone(st.st_mtime_ns, done, hasher.hexdigest())
