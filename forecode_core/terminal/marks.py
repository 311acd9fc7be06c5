"""Shell-integration marks in a terminal's raw output, found as the output streams.

The shell scripts (``app/services/terminal/shell/``) wrap the prompt and each command in
FinalTerm's OSC 133 marks and VS Code's OSC 633 extensions:

- ``ESC ] 133 ; A`` the prompt starts, ``B`` the prompt ends (the user types after it),
  ``C`` the command runs (its output follows), ``D ; <exit>`` it finished;
- ``ESC ] 633 ; E ; <command line> [; <nonce>]`` the command line as the shell ran it,
  ``ESC ] 633 ; P ; Cwd=<folder>`` the shell's folder; both escaped as VS Code does
  (``\\\\`` a backslash, ``\\xAB`` a byte: ``\\x3b`` for ``;``, control characters);
  ``633 ; A``-``D`` are accepted as the 133 ones.

Each sequence ends with BEL or ST (``ESC \\``). ``MarkScanner`` takes text as it arrives, in
pieces split anywhere (inside a mark too), and gives the display text with the marks taken
out, the marks in their place; every other escape sequence (colours, titles) stays in the
display text for the screen. ``CommandTracker`` turns the pieces into ``CommandRecord``s.
``ShellStream`` is both over bytes (UTF-8, a character split across reads kept whole).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .records import CommandRecord

__all__ = [
    "CommandTracker",
    "Fed",
    "Mark",
    "MarkKind",
    "MarkScanner",
    "Piece",
    "ShellStream",
    "clean_output",
    "escape_value",
    "unescape_value",
]

ESC = "\x1b"
BEL = "\x07"
ST = "\x1b\\"
_PREFIXES = ("\x1b]133;", "\x1b]633;")
MAX_MARK = 1 << 16  # a longer "mark" is garbage: it is shown as text, never held for ever
MAX_OUTPUT = 1 << 20  # a command's output kept for its record: the last MiB


class MarkKind(StrEnum):
    PROMPT_START = "A"
    PROMPT_END = "B"
    OUTPUT_START = "C"
    FINISHED = "D"  # value: the exit code's text ("" when the shell gave none)
    COMMAND_LINE = "E"  # value: the command line, unescaped
    CWD = "Cwd"  # value: the folder, unescaped


@dataclass(frozen=True, slots=True)
class Mark:
    kind: MarkKind
    value: str = ""


Piece = str | Mark  # display text, or a mark at that place in it


_HEX = re.compile(r"\\(\\|x([0-9a-fA-F]{2}))")


def unescape_value(text: str) -> str:
    """VS Code's OSC 633 escaping undone: ``\\\\`` -> ``\\``, ``\\xAB`` -> chr(0xAB)."""
    return _HEX.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(2), 16)), text)


def escape_value(text: str) -> str:
    """The inverse of ``unescape_value``: what the shell scripts write."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == ";" or ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _parse_mark(body: str, nonce: str | None = None) -> Mark | None:
    """``body``: what follows ``ESC ]`` up to the terminator, e.g. ``133;D;1``. With a
    ``nonce``, only a body ending in ``;<nonce>`` is a mark (the nonce taken off)."""
    if nonce is not None:
        body, _, given = body.rpartition(";")
        if given != nonce:
            return None
    code, _, rest = body.partition(";")
    kind, _, arg = rest.partition(";")
    if kind in ("A", "B", "C"):
        return Mark(MarkKind(kind))
    if kind == "D":
        return Mark(MarkKind.FINISHED, arg.partition(";")[0])
    if code != "633":
        return None
    if kind == "E":
        return Mark(MarkKind.COMMAND_LINE, unescape_value(arg.partition(";")[0]))
    if kind == "P" and arg.startswith("Cwd="):
        return Mark(MarkKind.CWD, unescape_value(arg[4:]))
    return None


class MarkScanner:
    """Display text and marks from text fed in arbitrary pieces.

    ``nonce``: the session's secret that Forecode's shell scripts put last in every mark; a
    mark without it (printed by a program: a file cat'ed, a test's output) is dropped, neither
    shown nor believed. ``None`` believes every mark (another shell's integration)."""

    def __init__(self, nonce: str | None = None) -> None:
        self._held = ""  # the start of a sequence that may be a mark, not yet ended
        self._nonce = nonce

    def feed(self, text: str) -> list[Piece]:
        data = self._held + text
        self._held = ""
        pieces: list[Piece] = []
        start = 0
        while True:
            at = data.find(ESC, start)
            if at < 0:
                _text(pieces, data[start:])
                return pieces
            verdict = _classify(data, at, self._nonce)
            if verdict is None:  # maybe a mark, not complete yet: hold it
                _text(pieces, data[start:at])
                self._held = data[at:]
                return pieces
            end, mark = verdict
            if mark is _NOT_OURS:
                _text(pieces, data[start:end])
            else:
                _text(pieces, data[start:at])
                if isinstance(mark, Mark):
                    pieces.append(mark)
            start = end

    def flush(self) -> list[Piece]:
        """What is held, as text (the stream ended)."""
        held, self._held = self._held, ""
        return [held] if held else []


_NOT_OURS = object()
_ABORTED = object()


def _classify(data: str, at: int, nonce: str | None) -> tuple[int, object] | None:
    """At ``data[at] == ESC``: ``None`` when more text is needed to tell; else the index after
    what was decided and: ``_NOT_OURS`` (text up to that index), a ``Mark``, ``_ABORTED``
    (a garbled mark dropped) or ``None``-valued mark (an OSC 133/633 we do not use, dropped)."""
    head = data[at : at + 6]
    if not any(p.startswith(head) or head.startswith(p) for p in _PREFIXES):
        return at + 1, _NOT_OURS
    if len(head) < 6:
        return None  # a prefix of ours, cut by the read
    body_start = at + 2
    i = body_start
    limit = min(len(data), at + MAX_MARK)
    while i < limit:
        ch = data[i]
        if ch == BEL:
            return i + 1, _parse_mark(data[body_start:i], nonce)
        if ch == ESC:
            if i + 1 >= len(data):
                return None
            if data[i + 1] == "\\":
                return i + 2, _parse_mark(data[body_start:i], nonce)
            return i, _ABORTED  # a new sequence inside the mark: the mark was cut off
        if ch in "\x18\x1a":  # CAN / SUB cancel a control string
            return i + 1, _ABORTED
        i += 1
    if limit - at >= MAX_MARK:
        return at + 1, _NOT_OURS  # never ended: shown as the text it is
    return None


def _text(pieces: list[Piece], text: str) -> None:
    if text:
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += text
        else:
            pieces.append(text)


_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, links), ended or cut
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[()*+][0-9A-Za-z]"  # charset designation
    r"|\x1b[ -/]*[0-~]"  # other two-character escapes
)
_CONTROL = re.compile(r"[\x00-\x07\x0b-\x1f\x7f]")


def clean_output(raw: str) -> str:
    """A command's raw output as the text it shows: escapes stripped, CRLF as LF, a line's
    carriage returns and backspaces applied (a progress bar leaves its last state)."""
    text = _ANSI.sub("", raw).replace("\r\n", "\n")
    lines = [_overwrite(line) for line in text.split("\n")]
    return "\n".join(lines)


def _overwrite(line: str) -> str:
    if "\r" not in line and "\b" not in line:
        return _CONTROL.sub("", line)
    cells: list[str] = []
    col = 0
    for ch in line:
        if ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(0, col - 1)
        elif ch == "\t" or ch >= " ":
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
    return "".join(cells)


class CommandTracker:
    """The shell's state from the marks, and one ``CommandRecord`` per command that ran.

    A command is recorded at D when its C was seen (an empty Enter gives D alone). Its line is
    E's, else the text typed between B and C; its folder the last ``Cwd`` before C, else
    ``start_cwd``; its output the text between C and D (the last ``MAX_OUTPUT`` characters)."""

    def __init__(self, start_cwd: str = "") -> None:
        self.cwd = start_cwd
        self.at_prompt = False  # between B and C: what is typed is the command line
        self.running = False  # between C and D
        self._line: str | None = None
        self._typed: list[str] = []
        self._output: list[str] = []
        self._size = 0
        self._ran_in = start_cwd

    def feed(self, pieces: Iterable[Piece]) -> list[CommandRecord]:
        records: list[CommandRecord] = []
        for piece in pieces:
            if isinstance(piece, str):
                self._text(piece)
            else:
                record = self._mark(piece)
                if record is not None:
                    records.append(record)
        return records

    def _text(self, text: str) -> None:
        if self.running:
            self._output.append(text)
            self._size += len(text)
            if self._size > 2 * MAX_OUTPUT:
                joined = "".join(self._output)[-MAX_OUTPUT:]
                self._output, self._size = [joined], len(joined)
        elif self.at_prompt:
            self._typed.append(text)

    def _mark(self, mark: Mark) -> CommandRecord | None:
        kind = mark.kind
        if kind is MarkKind.PROMPT_START:
            self.at_prompt = self.running = False
        elif kind is MarkKind.PROMPT_END:
            self.at_prompt, self.running = True, False
            self._typed, self._line = [], None
        elif kind is MarkKind.COMMAND_LINE:
            self._line = mark.value
        elif kind is MarkKind.CWD:
            self.cwd = mark.value
        elif kind is MarkKind.OUTPUT_START:
            self._ran_in = self.cwd
            self.at_prompt, self.running = False, True
            self._output, self._size = [], 0
        elif kind is MarkKind.FINISHED:
            return self._finish(mark.value)
        return None

    def _finish(self, code: str) -> CommandRecord | None:
        if not self.running:
            return None
        self.running = False
        line = self._line if self._line is not None else clean_output("".join(self._typed))
        output = clean_output("".join(self._output)[-MAX_OUTPUT:])
        exit_code = int(code) if code.lstrip("-").isdigit() else None
        self._line, self._typed, self._output, self._size = None, [], [], 0
        return CommandRecord(line.strip(), self._ran_in, output, exit_code)


@dataclass(frozen=True, slots=True)
class Fed:
    pieces: list[Piece]
    records: list[CommandRecord]


class ShellStream:
    """Bytes from the PTY in, display pieces and finished commands out."""

    def __init__(self, start_cwd: str = "", nonce: str | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.scanner = MarkScanner(nonce)
        self.tracker = CommandTracker(start_cwd)

    def feed(self, data: bytes) -> Fed:
        pieces = self.scanner.feed(self._decoder.decode(data))
        return Fed(pieces, self.tracker.feed(pieces))
