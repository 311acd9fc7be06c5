"""Diagnostics as plain values, the stale-version rule, and the store the editor keeps.

A server says which document version its diagnostics are for (``publishDiagnostics``'
``version``); one for a version older than the last the editor sent is stale (the text moved
on; its ranges would point at the wrong characters) and is dropped. A server that gives no
version is trusted (ruff and basedpyright both give one).

The store keeps each document's diagnostics per server, so basedpyright's and ruff's lists
replace only their own; ``all_for`` joins them in document order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .positions import Position

__all__ = ["Counts", "Diagnostic", "DiagnosticStore", "Severity", "is_stale"]


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

    def put(self, doc: str, server: str, diagnostics: list[Diagnostic]) -> None:
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
            self._by_doc.pop(doc, None)
        else:
            self.put(doc, server, [])

    def all_for(self, doc: str) -> list[Diagnostic]:
        joined = [d for ds in self._by_doc.get(doc, {}).values() for d in ds]
        return sorted(joined, key=lambda d: (d.start, d.severity, d.end, d.message))

    def docs(self) -> list[str]:
        return sorted(self._by_doc)

    def counts(self) -> Counts:
        total = Counts()
        for doc in self._by_doc:
            total = total + count(self.all_for(doc))
        return total
