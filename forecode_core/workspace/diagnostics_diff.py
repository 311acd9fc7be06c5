"""Diagnostics of a checked edit, pure: the diagnostic value, the checkers' JSON read into it,
which diagnostics an edit introduced, and the repair loop's policy (issue 16).

New, not old (VS Code's agent rule, with the lines shifted by the edit): a diagnostic after the
edit is *old* when a diagnostic before it has the same source, code and message and sat on a
line that the edit maps to within ``NEAR`` lines of it. ``line_map(old, new)`` maps each old
line to its new line (lines inside a replaced stretch map to the stretch's new start), so an
edit that inserts ten lines above an old warning does not make it new. Each old diagnostic
excuses one new one at most (two same undefined names after the edit where there was one
before: one is new).

The repair loop (``RepairPolicy``): after a check with new errors the model gets them back
(``repair_message``: at most ``MAX_SENT`` of them, errors first) for up to ``rounds`` tries;
then, or when a try adds nothing better, the user decides.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_SENT",
    "NEAR",
    "Diagnostic",
    "Next",
    "RepairPolicy",
    "Severity",
    "line_map",
    "new_diagnostics",
    "parse_pyright_json",
    "parse_ruff_json",
    "repair_message",
]

NEAR = 2
MAX_SENT = 20


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"
    HINT = "hint"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFORMATION: 2, Severity.HINT: 3}


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic of one workspace file: ``path`` workspace-relative POSIX, lines and
    columns 0-based (columns in characters)."""

    path: str
    line: int
    message: str
    severity: Severity = Severity.ERROR
    code: str = ""
    source: str = ""
    column: int = 0
    end_line: int = -1
    end_column: int = 0

    def key(self) -> tuple[str, str, str, str]:
        return (self.path, self.source, self.code, self.message)

    def describe(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return (
            f"{self.path}:{self.line + 1}:{self.column + 1}: {self.severity}: {self.message}{code}"
        )


def line_map(old: str, new: str) -> Callable[[int], int]:
    """Old line -> new line for an edit from ``old`` to ``new`` (texts): unchanged lines move
    with what was inserted or deleted above them; a line in a replaced stretch keeps its
    offset in it, up to the new stretch's last line (a re-indented block maps line for line:
    its old diagnostics are not new); a deleted line goes where its stretch went."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    blocks = matcher.get_opcodes()

    def mapped(line: int) -> int:
        for _tag, i1, i2, j1, j2 in blocks:
            if i1 <= line < i2:  # an insertion (i1 == i2) covers no old line
                return j1 + min(line - i1, max(0, j2 - j1 - 1))
        return line + (len(new.splitlines()) - len(old.splitlines()))

    return mapped


def new_diagnostics(
    before: Iterable[Diagnostic],
    after: Iterable[Diagnostic],
    maps: Mapping[str, Callable[[int], int]] | None = None,
    near: int = NEAR,
) -> list[Diagnostic]:
    """The diagnostics of ``after`` that ``before`` does not account for (see the module
    docstring); ``maps[path]`` shifts a file's old lines (files not in it did not move). In
    ``after``'s order."""
    pool: dict[tuple[str, str, str, str], list[int]] = {}
    for old in before:
        shift = (maps or {}).get(old.path)
        pool.setdefault(old.key(), []).append(shift(old.line) if shift else old.line)
    fresh: list[Diagnostic] = []
    for diag in after:
        lines = pool.get(diag.key(), [])
        best = min(
            (i for i, line in enumerate(lines) if abs(line - diag.line) <= near),
            key=lambda i: abs(lines[i] - diag.line),
            default=None,
        )
        if best is None:
            fresh.append(diag)
        else:
            del lines[best]
    return fresh


# ----- the checkers' output --------------------------------------------------------------------


def _rel(path: str, root: str) -> str:
    root = root.rstrip("/") + "/"
    return path[len(root) :] if path.startswith(root) else path


def parse_ruff_json(text: str, root: str) -> list[Diagnostic]:
    """``ruff check --output-format json``'s list; paths made relative to ``root``. A rule
    violation is a warning, a syntax error (no code) an error."""
    out: list[Diagnostic] = []
    items: Any = json.loads(text or "[]")
    for item in items if isinstance(items, list) else []:
        start, end = item.get("location") or {}, item.get("end_location") or {}
        code = item.get("code") or ""
        out.append(
            Diagnostic(
                path=_rel(str(item.get("filename", "")), root),
                line=max(0, int(start.get("row", 1)) - 1),
                column=max(0, int(start.get("column", 1)) - 1),
                end_line=max(0, int(end.get("row", 1)) - 1),
                end_column=max(0, int(end.get("column", 1)) - 1),
                message=str(item.get("message", "")),
                code=str(code),
                severity=Severity.WARNING
                if code and not str(code).startswith(("E9", "F821", "F822", "F823"))
                else Severity.ERROR,
                source="ruff",
            )
        )
    return out


def parse_pyright_json(text: str, root: str) -> list[Diagnostic]:
    """``basedpyright --outputjson``'s ``generalDiagnostics``; paths relative to ``root``."""
    data: Any = json.loads(text or "{}")
    out: list[Diagnostic] = []
    for item in data.get("generalDiagnostics", []) if isinstance(data, dict) else []:
        rng = item.get("range") or {}
        start, end = rng.get("start") or {}, rng.get("end") or {}
        try:
            severity = Severity(str(item.get("severity", "error")))
        except ValueError:
            severity = Severity.INFORMATION
        out.append(
            Diagnostic(
                path=_rel(str(item.get("file", "")), root),
                line=int(start.get("line", 0)),
                column=int(start.get("character", 0)),
                end_line=int(end.get("line", 0)),
                end_column=int(end.get("character", 0)),
                message=str(item.get("message", "")),
                code=str(item.get("rule", "")),
                severity=severity,
                source="basedpyright",
            )
        )
    return out


# ----- the repair loop's policy ------------------------------------------------------------------


class Next(StrEnum):
    SHOW = "show"  # nothing new: show the review
    REPAIR = "repair"  # send the new diagnostics back to the model
    ASK_USER = "ask_user"  # rounds spent (or no progress): the user decides


@dataclass(frozen=True)
class RepairPolicy:
    """Up to ``rounds`` repairs, only for new diagnostics at ``worst`` or above, and only while
    each round leaves fewer of them than the one before."""

    rounds: int = 2
    worst: Severity = Severity.ERROR
    history: tuple[int, ...] = field(default=())

    def counted(self, new: Sequence[Diagnostic]) -> int:
        return sum(1 for d in new if d.severity.rank <= self.worst.rank)

    def next(self, new: Sequence[Diagnostic]) -> tuple[Next, RepairPolicy]:
        """What follows a check whose new diagnostics are ``new``, and the policy after it."""
        count = self.counted(new)
        after = RepairPolicy(self.rounds, self.worst, (*self.history, count))
        if count == 0:
            return Next.SHOW, after
        spent = len(self.history) >= self.rounds
        stuck = bool(self.history) and count >= self.history[-1]
        return (Next.ASK_USER if spent or stuck else Next.REPAIR), after


def repair_message(new: Sequence[Diagnostic], limit: int = MAX_SENT) -> str:
    """The new diagnostics for the model, errors first, at most ``limit``: plain lines, data
    for the model to fix (never instructions from the repository)."""
    ordered = sorted(new, key=lambda d: (d.severity.rank, d.path, d.line))
    lines = [d.describe() for d in ordered[:limit]]
    more = len(ordered) - limit
    if more > 0:
        lines.append(f"... and {more} more")
    return (
        "The edit introduced these diagnostics (they were not there before it). "
        "Fix them and give the whole edit again:\n" + "\n".join(lines)
    )
