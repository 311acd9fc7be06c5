"""Diagnostics as plain values, the stale-version rule, and the store the editor keeps.

A server says which document version its diagnostics are for (``publishDiagnostics``'
``version``); one for a version older than the last the editor sent is stale (the text moved
on; its ranges would point at the wrong characters) and is dropped. A server that gives no
version is trusted (ruff and basedpyright both give one).

The store keeps each document's diagnostics per server, so basedpyright's and ruff's lists
replace only their own; ``all_for`` joins them in document order. ``near`` answers the ones
around a line from an index by line built once per change of the document's diagnostics, so
a prompt's context at the caret does not grow with a file's 1,000 problems."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from enum import IntEnum

from .positions import Position

__all__ = ["Counts", "Diagnostic", "DiagnosticStore", "Severity", "is_stale", "line_distance"]


class Severity(IntEnum):
    """LSP's DiagnosticSeverity (a missing severity is an error, as VS Code shows it)."""

    ERROR = 1
    WARNING = 2
    INFORMATION = 3
    HINT = 4


@dataclass(frozen=True)
class Diagnostic:
    start: Position
    end: Position
    severity: Severity
    message: str
    source: str = ""  # "basedpyright", "Ruff"
    code: str = ""  # "reportAttributeAccessIssue", "F821"

    def label(self) -> str:
        """The message as the problems list and the hover show it: ``msg (source code)``."""
        tail = " ".join(part for part in (self.source, self.code) if part)
        return f"{self.message} ({tail})" if tail else self.message


@dataclass(frozen=True)
class Counts:
    errors: int = 0
    warnings: int = 0
    infos: int = 0  # information and hints

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.errors + other.errors, self.warnings + other.warnings, self.infos + other.infos
        )


def is_stale(published: int | None, current: int | None) -> bool:
    """Diagnostics for ``published`` are stale when the editor has since sent ``current``."""
    return published is not None and current is not None and published < current


def count(diagnostics: list[Diagnostic]) -> Counts:
    errors = sum(1 for d in diagnostics if d.severity == Severity.ERROR)
    warnings = sum(1 for d in diagnostics if d.severity == Severity.WARNING)
    return Counts(errors, warnings, len(diagnostics) - errors - warnings)


class DiagnosticStore:
    """Diagnostics by document (any key: a URI) and server name."""

    def __init__(self) -> None:
        self._by_doc: dict[str, dict[str, list[Diagnostic]]] = {}
        self._near: dict[str, _LineIndex] = {}  # per document, dropped on each change

    def put(self, doc: str, server: str, diagnostics: list[Diagnostic]) -> None:
        self._near.pop(doc, None)
        servers = self._by_doc.setdefault(doc, {})
        if diagnostics:
            servers[server] = list(diagnostics)
        else:
            servers.pop(server, None)
            if not servers:
                del self._by_doc[doc]

    def forget(self, doc: str, server: str | None = None) -> None:
        """Drop a document's diagnostics (one server's, or all)."""
        if server is None:
            self._near.pop(doc, None)
            self._by_doc.pop(doc, None)
        else:
            self.put(doc, server, [])

    def all_for(self, doc: str) -> list[Diagnostic]:
        joined = [d for ds in self._by_doc.get(doc, {}).values() for d in ds]
        return sorted(joined, key=lambda d: (d.start, d.severity, d.end, d.message))

    def near(self, doc: str, line: int, window: int) -> list[Diagnostic]:
        """``all_for(doc)``'s diagnostics that reach within ``window`` lines of ``line``
        (0-based; a range over the line is at 0), in its order. The document's index is
        built at the first query after a change; a query then reads only the nearby ones."""
        index = self._near.get(doc)
        if index is None:
            index = self._near[doc] = _LineIndex(self.all_for(doc))
        return index.near(line, window)

    def docs(self) -> list[str]:
        return sorted(self._by_doc)

    def counts(self) -> Counts:
        total = Counts()
        for doc in self._by_doc:
            total = total + count(self.all_for(doc))
        return total


def line_distance(d: Diagnostic, line: int) -> int:
    """Lines from ``line`` to ``d``'s range (0 when the range covers it)."""
    if d.start.line <= line <= d.end.line:
        return 0
    return min(abs(d.start.line - line), abs(d.end.line - line))


class _LineIndex:
    """One document's diagnostics (``all_for``'s order: by start) for ``near``: the short
    ones (at most ``LONG`` lines) found by bisecting their start lines; the long ones, few,
    checked each time."""

    LONG = 64

    def __init__(self, ordered: list[Diagnostic]) -> None:
        self._short = [
            (i, d) for i, d in enumerate(ordered) if d.end.line - d.start.line <= self.LONG
        ]
        self._starts = [d.start.line for _i, d in self._short]  # sorted: ordered by start
        self._long = [
            (i, d) for i, d in enumerate(ordered) if d.end.line - d.start.line > self.LONG
        ]

    def near(self, line: int, window: int) -> list[Diagnostic]:
        lo = bisect_left(self._starts, line - window - self.LONG)
        hi = bisect_right(self._starts, line + window)
        hits = [(i, d) for i, d in self._short[lo:hi] if line_distance(d, line) <= window]
        if self._long:
            hits += [(i, d) for i, d in self._long if line_distance(d, line) <= window]
            hits.sort(key=lambda pair: pair[0])
        return [d for _i, d in hits]
