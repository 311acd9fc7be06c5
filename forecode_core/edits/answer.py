"""The strict parser of a multi-file edit answer (the format ``prompt`` asks for).

An answer is prose (the explanation) and file sections, each a header line then what it
needs::

    FILE: path/to/changed.py         a fenced block follows: the changed parts, with elisions
    NEW FILE: path/to/new.py         a fenced block follows: the whole new file
    DELETE FILE: path/to/old.py      no block

A header may carry Markdown decoration (``### FILE: `a.py` ``, ``**NEW FILE:** a.py``); the
keyword is case-insensitive; ``EDIT:`` is ``FILE:``, ``NEW:`` and ``DELETE:`` the others.
Only blank lines may stand between a header and its block. Anything else is an error, and
one error rejects the whole answer (``EditsAnswerError``: the reason and its line; nothing
is applied): a block without a header above it, a header without its block, a deleted file
with a block, a block that never closes (the answer was cut off), a path that is absolute,
climbs with ``..``, uses backslashes or is not the file the client sent (a changed or
deleted file must be one of the whole files sent; a new file must not be), a file named
twice, a new file that leaves code out (``# ... existing code ...``), an answer with no file
section at all.

One slip of a small model is forgiven, seen in a user run (Qwen2.5-Coder 1.5B, one file sent
as an editable excerpt, answering "The changed line is:" and a block, then ``NEW FILE:`` and
the file's path): when exactly one file was sent editable, a block with no header above it
is that file's (as a chat code block's Apply takes the current file; the apply engine then
places it or refuses, and the review shows it before anything changes), and a header naming
that same file right after such a block, with no block of its own, is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from forecode_core.apply.block import is_elision
from forecode_core.edits.prompt import SentFile

__all__ = [
    "FILE_HEADER",
    "EditsAnswerError",
    "FileOp",
    "OpKind",
    "ParsedEdits",
    "parse_edits",
]


class OpKind(StrEnum):
    EDIT = "edit"
    NEW = "new"
    DELETE = "delete"


_KEYWORDS: dict[str, OpKind] = {
    "file": OpKind.EDIT,
    "edit": OpKind.EDIT,
    "new file": OpKind.NEW,
    "new": OpKind.NEW,
    "delete file": OpKind.DELETE,
    "delete": OpKind.DELETE,
}

_HEADER = re.compile(
    r"^\s*(?:#{1,6}\s+|[-*]\s+)?(?:\*\*|__)?\s*"
    r"(new\s+file|delete\s+file|file|edit|new|delete)\s*:\s*(?:\*\*|__(?!\w))?\s*(.*?)\s*$",
    re.IGNORECASE,
)
FILE_HEADER = _HEADER  # a header line: group 2 its path (with any decoration around it)
_DUNDER = re.compile(r"__\w+__")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")


@dataclass(frozen=True)
class FileOp:
    """One file section: ``block`` is the fenced code without its fences ("" for a delete);
    ``line`` the header's line (1-based)."""

    kind: OpKind
    path: str
    block: str
    line: int


@dataclass(frozen=True)
class ParsedEdits:
    explanation: str
    ops: tuple[FileOp, ...]


class EditsAnswerError(ValueError):
    """The answer is not a well-formed set of file edits: ``reason`` at ``line`` (1-based; 0:
    the answer as a whole)."""

    def __init__(self, reason: str, line: int = 0) -> None:
        self.reason = reason
        self.line = line
        where = f" (line {line})" if line else ""
        super().__init__(f"{reason}{where}")

    @property
    def user_message(self) -> str:
        return (
            f"The model's answer is not a well-formed set of file edits: {self}. "
            "Nothing was changed."
        )


def _clean_path(raw: str, line: int) -> str:
    path = raw.strip().strip("`*\"'").strip()
    # underscores only as a pair around the whole path (``__a.py__``): ``__init__.py`` keeps its
    for mark in ("__", "_"):
        if path.startswith(mark) and path.endswith(mark) and not _DUNDER.fullmatch(path):
            inner = path[len(mark) : -len(mark)]
            if inner and not inner.startswith("_") and not inner.endswith("_"):
                path = inner.strip()
                break
    if path.startswith("./"):
        path = path[2:]
    if not path:
        raise EditsAnswerError("a file header names no path", line)
    problem = ""
    if any(c in path for c in "\\\x00") or any(c.isspace() for c in path):
        problem = "is not a file path"
    elif path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        problem = "is absolute; paths are relative to the project"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        problem = "is not a plain relative path (empty, '.' or '..' parts)"
    if problem:
        raise EditsAnswerError(f"the path {path[:120]!r} {problem}", line)
    return path


@dataclass
class _Open:
    """A header waiting for its block, or a block being read."""

    kind: OpKind
    path: str
    line: int
    fence: str = ""  # the opening fence once the block started
    body: list[str] | None = None
    trailing: bool = False  # a header after the headerless block of the same file


def _check_op(op: FileOp, files: Mapping[str, SentFile]) -> None:
    sent = files.get(op.path)
    if op.kind is OpKind.NEW:
        if sent is not None:
            raise EditsAnswerError(
                f"it creates {op.path}, which exists (change it with FILE:)", op.line
            )
        if any(is_elision(x) for x in op.block.splitlines()):
            raise EditsAnswerError(
                f"the new file {op.path} leaves code out ('... existing code ...')", op.line
            )
        return
    verb = "changes" if op.kind is OpKind.EDIT else "deletes"
    if sent is None:
        raise EditsAnswerError(f"it {verb} {op.path}, which was not sent with the request", op.line)
    if not sent.editable:
        raise EditsAnswerError(
            f"it {verb} {op.path}, which was sent only in part (a range or truncated)", op.line
        )
    if op.kind is OpKind.DELETE and sent.excerpt is not None:
        raise EditsAnswerError(f"it deletes {op.path}, which was sent only as an excerpt", op.line)
    if op.kind is OpKind.EDIT and not op.block.strip():
        raise EditsAnswerError(f"the block for {op.path} is empty", op.line)


class _Parser:
    def __init__(self, only: str | None = None) -> None:
        self.ops: list[FileOp] = []
        self.prose: list[str] = []
        self.open: _Open | None = None
        self.after_delete: FileOp | None = None  # until a non-blank line
        self.only = only  # the one file sent editable: a headerless block is its
        self.implicit: str | None = None  # the path a headerless block went to

    def feed(self, number: int, line: str) -> None:
        current = self.open
        if current is not None and current.body is not None:
            self._in_block(current, line)
            return
        header = _HEADER.match(line)
        fence = _FENCE.match(line)
        if header:
            self._header(number, header)
        elif fence:
            self._fence(number, fence.group(1))
        elif line.strip():
            if current is not None and current.trailing:
                self.open = current = None  # a stray header after the block: dropped
            if current is not None:
                raise EditsAnswerError(
                    f"the header for {current.path} must be followed by its code block",
                    number,
                )
            self.after_delete = None
            self.prose.append(line)
        elif current is None and self.prose:
            self.prose.append(line)

    def _in_block(self, current: _Open, line: str) -> None:
        assert current.body is not None
        stripped = line.strip()
        if stripped and set(stripped) == {current.fence[0]} and len(stripped) >= len(current.fence):
            self.ops.append(FileOp(current.kind, current.path, "".join(current.body), current.line))
            self.open = None
        else:
            current.body.append(line)

    def _header(self, number: int, header: re.Match[str]) -> None:
        current = self.open
        if current is not None and not current.trailing:
            raise EditsAnswerError(f"the header for {current.path} has no code block", current.line)
        kind = _KEYWORDS[" ".join(header.group(1).lower().split())]
        path = _clean_path(header.group(2), number)
        self.after_delete = None
        if kind is OpKind.DELETE:
            op = FileOp(kind, path, "", number)
            self.ops.append(op)
            self.after_delete = op
        else:
            trailing = path == self.implicit and bool(self.ops) and self.ops[-1].path == path
            self.open = _Open(kind, path, number, trailing=trailing)

    def _fence(self, number: int, fence: str) -> None:
        current = self.open
        if self.after_delete is not None:
            raise EditsAnswerError(
                f"{self.after_delete.path} is deleted, so it takes no code block", number
            )
        if current is None and self.only is not None and self.implicit is None:
            current = self.open = _Open(OpKind.EDIT, self.only, number)
            self.implicit = self.only
        if current is None:
            raise EditsAnswerError(
                "a code block belongs to no file (put a FILE: line above it)", number
            )
        current.fence = fence
        current.body = []

    def finish(self) -> ParsedEdits:
        current = self.open
        if current is not None and current.trailing and current.body is None:
            current = self.open = None  # a stray header after the block: dropped
        if current is not None:
            if current.body is not None:
                raise EditsAnswerError(
                    f"the block for {current.path} never closes (the answer was cut off)",
                    current.line,
                )
            raise EditsAnswerError(f"the header for {current.path} has no code block", current.line)
        if not self.ops:
            raise EditsAnswerError("it names no file to change, create or delete")
        return ParsedEdits("".join(self.prose).strip(), tuple(self.ops))


def parse_edits(answer: str, files: Mapping[str, SentFile]) -> ParsedEdits:
    """The answer's explanation and file operations, checked against the ``files`` the
    request sent; ``EditsAnswerError`` for anything else (module docstring)."""
    editable = [f.path for f in files.values() if f.editable]
    parser = _Parser(editable[0] if len(editable) == 1 else None)
    for number, line in enumerate(answer.replace("\r\n", "\n").splitlines(keepends=True), 1):
        parser.feed(number, line)
    parsed = parser.finish()
    seen: dict[str, int] = {}
    for op in parsed.ops:
        if op.path in seen:
            raise EditsAnswerError(
                f"it names {op.path} twice (lines {seen[op.path]} and {op.line})", op.line
            )
        seen[op.path] = op.line
        _check_op(op, files)
    return parsed
