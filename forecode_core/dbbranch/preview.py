"""The branch preview's model: what a test run changed, per table, with a few sample rows,
and the pure pieces that compute it (the merge of two sorted key streams, the test run's
summary line, names and quoting)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "SAMPLES",
    "Change",
    "KeyDiff",
    "Preview",
    "Sample",
    "TableChange",
    "TestRun",
    "branch_name",
    "merge_diff",
    "quote_ident",
    "summary_line",
]

SAMPLES = 3  # sample rows per kind of change and table
CELL_MAX = 80  # a sample cell's characters shown


class Change(StrEnum):
    INSERTED = "inserted"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class Sample:
    """One changed row: its cells as text (the branch's; a deleted row's the dev's)."""

    change: Change
    cells: tuple[str, ...]


@dataclass(frozen=True)
class TableChange:
    table: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    columns: tuple[str, ...] = ()
    samples: tuple[Sample, ...] = ()
    note: str = ""  # "new table", "schema changed", ...

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted or self.note)


@dataclass(frozen=True)
class Preview:
    tables: tuple[TableChange, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> tuple[TableChange, ...]:
        return tuple(t for t in self.tables if t.changed)

    def totals(self) -> tuple[int, int, int]:
        return (
            sum(t.inserted for t in self.tables),
            sum(t.updated for t in self.tables),
            sum(t.deleted for t in self.tables),
        )


@dataclass(frozen=True)
class TestRun:
    """A finished test command: its exit code (None: it did not run or was stopped), the
    summary line and the output's tail."""

    command: str
    exit_code: int | None
    summary: str
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


@dataclass
class KeyDiff:
    """``merge_diff``'s result: counts and up to ``SAMPLES`` keys of each kind."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    keys: dict[Change, list[str]] = field(default_factory=lambda: {c: [] for c in Change})

    def _note(self, change: Change, key: str, samples: int) -> None:
        setattr(self, change.value, getattr(self, change.value) + 1)
        if len(self.keys[change]) < samples:
            self.keys[change].append(key)


def merge_diff(
    dev: Iterable[tuple[str, str]], branch: Iterable[tuple[str, str]], samples: int = SAMPLES
) -> KeyDiff:
    """Two streams of ``(key, row digest)`` sorted by key (as plain strings compare: hex
    digests sort the same in the database under ``COLLATE "C"`` and here) merged into the
    rows inserted (only in ``branch``), deleted (only in ``dev``) and updated (same key, other
    digest). Equal keys pair off one by one, so a keyless table's rows keyed by their own
    digest count as a multiset."""
    out = KeyDiff()
    a, b = iter(dev), iter(branch)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            assert x is not None
            out._note(Change.DELETED, x[0], samples)
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            out._note(Change.INSERTED, y[0], samples)
            y = next(b, None)
        else:
            if x[1] != y[1]:
                out._note(Change.UPDATED, y[0], samples)
            x, y = next(a, None), next(b, None)
    return out


def cell_text(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


_PYTEST_SUMMARY = re.compile(
    r"^=*\s*(\d+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed)\b.*?)\s*=*$"
)
_UNITTEST = re.compile(r"^(Ran \d+ tests? in .*|OK.*|FAILED \(.*\))$")


def summary_line(output: str) -> str:
    """The test runner's own summary (pytest's ``3 passed, 1 failed in 0.1s``, unittest's
    ``FAILED (failures=1)``/``OK``), else the output's last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        m = _PYTEST_SUMMARY.match(line)
        if m:
            return m.group(1)
        if _UNITTEST.match(line):
            return line
    return lines[-1] if lines else ""


def quote_ident(name: str) -> str:
    """An SQL identifier quoted (both SQLite and PostgreSQL): ``"a""b"``."""
    return '"' + name.replace('"', '""') + '"'


def branch_name(dev: str, token: str) -> str:
    """A PostgreSQL branch database's name: ``fc_br_<dev>_<token>``, lowercase ASCII letters,
    digits and ``_`` only, within PostgreSQL's 63 bytes."""
    safe = re.sub(r"[^a-z0-9_]", "_", dev.lower())
    tail = re.sub(r"[^a-z0-9]", "", token.lower())[:12]
    return f"fc_br_{safe[: 63 - 7 - len(tail)]}_{tail}"


def batched(rows: Iterable[tuple[object, ...]]) -> Iterator[tuple[str, str]]:
    """Database rows of (key, digest) as strings, for ``merge_diff``."""
    for key, digest in rows:
        yield str(key), str(digest)
