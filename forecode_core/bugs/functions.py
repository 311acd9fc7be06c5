"""The functions changed since the last commit.

``changed_lines`` reads ``git diff -U0`` output (one file) and returns the new side's changed
lines; ``functions_in`` lists a file's functions with their line spans; ``changed_functions``
keeps those that hold a changed line.

Python's functions come from the standard ``ast`` (exact spans, methods and nested functions
one by one, decorators included; the innermost function holds a line). The index's tree-sitter
chunker (``forecode_core.index.chunking``) merges small definitions with their neighbours,
keeps a small class whole and cuts a big function into windows, so its units are not one
function each; it is the fallback for other languages (its ``definition`` chunks).
"""

from __future__ import annotations

import ast
import bisect
import difflib
import itertools
import re
from dataclasses import dataclass

from forecode_core.index.chunking import DEFINITION, chunk_text

__all__ = [
    "Function",
    "changed_among",
    "changed_functions",
    "changed_lines",
    "changed_lines_between",
    "functions_in",
    "head_version",
    "version_among",
]

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Function:
    """A function's name (qualified: ``Class.method``) and 1-based inclusive lines."""

    name: str
    start_line: int
    end_line: int

    def text(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        return "".join(lines[self.start_line - 1 : self.end_line])


def changed_lines(diff: str) -> set[int]:
    """The new side's lines that a ``git diff -U0`` of one file adds or changes. A pure
    deletion counts as a change of the line after it (the code around it changed)."""
    out: set[int] = set()
    for line in diff.splitlines():
        match = _HUNK.match(line)
        if match is None:
            continue
        start = int(match.group(1))
        count = 1 if match.group(2) is None else int(match.group(2))
        if count == 0:
            out.add(max(start, 1))  # deletion after line `start`: the code there changed
            out.add(start + 1)
        else:
            out.update(range(start, start + count))
    return out


def changed_lines_between(old: str, new: str) -> set[int]:
    """``changed_lines`` of ``new`` against ``old`` (the buffer against HEAD's blob), by the
    standard ``difflib`` on lines; the same rule for deletions."""
    out: set[int] = set()
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if j2 > j1:
            out.update(range(j1 + 1, j2 + 1))
        else:
            out.update({max(j1, 1), j1 + 1})
    return out


# ``ast.parse`` is one C call that holds the GIL for its whole run: 13-18 ms for argparse.py
# (2,600 lines), and the UI thread waited that long for it while the bug finder's thread parsed
# (bench next_edit_ui, 2026-12-05: a 19.6 ms stall with 0.1 ms of the UI thread's own work). So
# a file is parsed in pieces of about this many lines, cut where a line at column 0 starts a new
# top-level statement; a wrong cut (inside a string or brackets) leaves a piece that does not
# parse, and then the whole file is parsed at once, as before.
PIECE_LINES = 200
_CONTINUES = ("else", "elif", "except", "finally", "#", ")", "]", "}")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _pieces(lines: list[str]) -> list[tuple[int, int]]:
    """``[start, end)`` line spans (0-based) of about ``PIECE_LINES`` each, cut before a
    top-level statement's first line (never after a decorator)."""
    cuts = [0]
    last_code = ""
    for i, line in enumerate(lines):
        starts = line[:1].strip() and not line.startswith(_CONTINUES)
        if i - cuts[-1] >= PIECE_LINES and starts and not last_code.startswith("@"):
            cuts.append(i)
        if line.strip() and not line.lstrip().startswith("#"):
            last_code = line
    cuts.append(len(lines))
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _parse_in_pieces(text: str) -> list[tuple[int, ast.Module]] | None:
    """(line offset, tree) for each piece; None when a piece does not parse."""
    lines = _LINE.findall(text)  # Python's own line ends only (str.splitlines also cuts at \f)
    out: list[tuple[int, ast.Module]] = []
    for start, end in _pieces(lines):
        try:
            out.append((start, ast.parse("".join(lines[start:end]))))
        except (SyntaxError, ValueError):
            return None
    return out


def _python_functions(text: str) -> list[Function] | None:
    trees = _parse_in_pieces(text)
    if trees is None:
        try:
            trees = [(0, ast.parse(text))]
        except (SyntaxError, ValueError):
            return None
    out: list[Function] = []
    for offset, tree in trees:
        _collect(tree, offset, out)
    return out


def _collect(tree: ast.Module, offset: int, out: list[Function]) -> None:
    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{scope}.{child.name}" if scope else child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                last = child.end_lineno or child.lineno
                out.append(Function(name, first + offset, last + offset))
                visit(child, name)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{scope}.{child.name}" if scope else child.name)
            else:
                visit(child, scope)

    visit(tree, "")


def functions_in(path: str, text: str) -> list[Function]:
    """The functions of a file in source order (outer before inner)."""
    if path.endswith((".py", ".pyi")):
        found = _python_functions(text)
        if found is not None:
            return sorted(found, key=lambda f: (f.start_line, -f.end_line))
    chunks, _method = chunk_text(path, text)
    return [
        Function(c.symbol or f"lines {c.start_line}", c.start_line, c.end_line)
        for c in chunks
        if c.kind == DEFINITION
    ]


def changed_functions(path: str, text: str, lines: set[int]) -> list[Function]:
    """The innermost function holding each changed line, each once, in source order."""
    return changed_among(functions_in(path, text), lines)


def changed_among(functions: list[Function], lines: set[int]) -> list[Function]:
    """``changed_functions`` over a file's functions already found (``functions_in``).
    Each function claims the changed lines in its span, the bigger ones first, so a smaller
    (inner) one takes its lines over (the first of equal spans last): lines times nesting
    depth, not lines times functions (a pasted file of 50 k lines and 14 k functions)."""
    ordered = sorted(lines)
    order = sorted(
        range(len(functions)),
        key=lambda i: (functions[i].start_line - functions[i].end_line, -i),
    )
    owner: dict[int, Function] = {}
    for i in order:
        f = functions[i]
        lo = bisect.bisect_left(ordered, f.start_line)
        hi = bisect.bisect_right(ordered, f.end_line)
        for line in ordered[lo:hi]:
            owner[line] = f
    first: dict[Function, int] = {}
    for line in ordered:
        holder = owner.get(line)
        if holder is not None:
            first.setdefault(holder, line)
    return sorted(first, key=lambda f: (f.start_line, first[f]))


def head_version(path: str, head: str, function: Function) -> str | None:
    """``function``'s text in HEAD's copy of the file (``head``): the function of the same
    qualified name, the nearest one to its line when the name repeats (a property's getter and
    setter); None when HEAD has no such function (it is new)."""
    return version_among(functions_in(path, head), head, function)


def version_among(head_functions: list[Function], head: str, function: Function) -> str | None:
    """``head_version`` over HEAD's functions already found (``functions_in(path, head)``)."""
    same = [f for f in head_functions if f.name == function.name]
    if not same:
        return None
    nearest = min(same, key=lambda f: abs(f.start_line - function.start_line))
    return nearest.text(head)
