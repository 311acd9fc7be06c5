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
import difflib
import re
from dataclasses import dataclass

from forecode_core.index.chunking import DEFINITION, chunk_text

__all__ = [
    "Function",
    "changed_functions",
    "changed_lines",
    "changed_lines_between",
    "functions_in",
    "head_version",
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


def _python_functions(text: str) -> list[Function] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    out: list[Function] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{scope}.{child.name}" if scope else child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out.append(Function(name, first, child.end_lineno or child.lineno))
                visit(child, name)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{scope}.{child.name}" if scope else child.name)
            else:
                visit(child, scope)

    visit(tree, "")
    return out


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
    functions = functions_in(path, text)
    picked: dict[Function, None] = {}
    for line in sorted(lines):
        holders = [f for f in functions if f.start_line <= line <= f.end_line]
        if holders:
            picked[min(holders, key=lambda f: f.end_line - f.start_line)] = None
    return sorted(picked, key=lambda f: f.start_line)


def head_version(path: str, head: str, function: Function) -> str | None:
    """``function``'s text in HEAD's copy of the file (``head``): the function of the same
    qualified name, the nearest one to its line when the name repeats (a property's getter and
    setter); None when HEAD has no such function (it is new)."""
    same = [f for f in functions_in(path, head) if f.name == function.name]
    if not same:
        return None
    nearest = min(same, key=lambda f: abs(f.start_line - function.start_line))
    return nearest.text(head)
