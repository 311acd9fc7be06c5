"""What the language servers know near the caret, as budgeted context for the models'
prompts (completions, next edit, chat): the problems near the caret and the definitions of
the names at and around it.

Pure choices over plain data; the window (``app.ui.owners.lsp_actions``) gathers the inputs
from what has already arrived (the diagnostics store, definitions answered earlier and
cached): a prompt is never held for a server.

- Problems: errors before warnings (information and hints are left out), nearest the caret
  first, only within ``window`` lines of it, at most ``limit``; each one line, trimmed to
  ``width``, with its code line under it (trimmed too), as comments of the file's language.
- Definitions: the name at the caret first, then the other names of the caret's line by
  distance from the caret; a definition inside the current file near the caret is already
  in the prompt's window and left out; each excerpt is the definition's first lines (its
  header and body while indented deeper, at most ``max_lines``).
- The budget is characters, shared: the problems first (they say what is wrong now), then
  the definitions while they fit; an item that does not fit whole is left out, never cut
  mid-line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from forecode_core.lsp.diagnostics import Diagnostic, Severity, line_distance

__all__ = [
    "Definition",
    "PromptContext",
    "choose_context",
    "definition_excerpt",
    "names_near",
    "near_problems",
    "problem_lines",
]

NEAR_LINES = 30  # a definition this close to the caret in its own file is in the prompt already
_NAME = re.compile(r"[^\W\d]\w*")
_SEVERITY = {Severity.ERROR: "error", Severity.WARNING: "warning"}


@dataclass(frozen=True)
class Definition:
    """Where ``name`` is defined: ``path`` (workspace-relative), 0-based ``start_line`` of
    ``text`` (the definition's first lines)."""

    name: str
    path: str
    start_line: int
    text: str


@dataclass(frozen=True)
class PromptContext:
    """The chosen context: ``problems`` (a comment block, "" for none) about ``path`` and
    the ``definitions`` to show as code."""

    path: str
    problems: str
    definitions: tuple[Definition, ...]

    @property
    def empty(self) -> bool:
        return not self.problems and not self.definitions

    def chars(self) -> int:
        return len(self.problems) + sum(len(d.text) for d in self.definitions)


def _trim(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def near_problems(
    diagnostics: Sequence[Diagnostic], caret_line: int, *, window: int = 40, limit: int = 4
) -> list[Diagnostic]:
    """Errors then warnings within ``window`` lines of ``caret_line`` (0-based), nearest
    first within a severity, at most ``limit``; the same message on the same line once."""
    seen: set[tuple[int, str]] = set()
    chosen: list[Diagnostic] = []
    ranked = sorted(
        (d for d in diagnostics if d.severity in _SEVERITY),
        key=lambda d: (d.severity, _distance(d, caret_line), d.start),
    )
    for d in ranked:
        key = (d.start.line, d.message)
        if _distance(d, caret_line) > window or key in seen:
            continue
        seen.add(key)
        chosen.append(d)
        if len(chosen) >= limit:
            break
    return chosen


def _distance(d: Diagnostic, line: int) -> int:
    return line_distance(d, line)


def problem_lines(
    d: Diagnostic, lines: Sequence[str], *, comment: str = "#", width: int = 160
) -> list[str]:
    """One problem as comment lines: where, what (source and code), and its code line."""
    code = f" {d.code}" if d.code else ""
    severity = _SEVERITY.get(d.severity, "note")
    head = f"{comment} line {d.start.line + 1}: {severity} ({d.source}{code}): "
    out = [head + _trim(d.message, max(20, width - len(head)))]
    if 0 <= d.start.line < len(lines) and lines[d.start.line].strip():
        out.append(f"{comment}     {_trim(lines[d.start.line], width - len(comment) - 5)}")
    return out


def names_near(line: str, column: int) -> list[str]:
    """The identifiers of ``line``: the one at (or just before) code-point ``column`` first,
    then the others by distance from it; each once."""
    found: list[tuple[int, int, str]] = []
    for m in _NAME.finditer(line):
        if m.start() <= column <= m.end():
            distance = 0
        else:
            distance = min(abs(m.start() - column), abs(m.end() - column))
        found.append((distance, m.start(), m.group()))
    names: list[str] = []
    for _d, _s, name in sorted(found):
        if name not in names:
            names.append(name)
    return names


def definition_excerpt(lines: Sequence[str], start_line: int, *, max_lines: int = 12) -> str:
    """The definition that starts at ``start_line``: that line, then the lines after it that
    are blank or indented deeper (its body), at most ``max_lines``; trailing blanks dropped.
    "" when ``start_line`` is outside ``lines``."""
    if not 0 <= start_line < len(lines):
        return ""
    first = lines[start_line]
    indent = len(first) - len(first.lstrip())
    taken = [first]
    for line in lines[start_line + 1 :]:
        if len(taken) >= max_lines:
            break
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        taken.append(line)
    while taken and not taken[-1].strip():
        taken.pop()
    return "\n".join(taken) + "\n"


def choose_context(
    path: str,
    lines: Sequence[str],
    caret: tuple[int, int],
    diagnostics: Sequence[Diagnostic],
    definitions: Mapping[str, Definition],
    budget_chars: int,
    *,
    comment: str = "#",
) -> PromptContext:
    """The context for a caret at (0-based line, code-point column) of ``path`` (whose text
    is ``lines``): problems first, then the cached ``definitions`` (by name) of the names
    near the caret, within ``budget_chars`` (module docstring)."""
    line, column = caret
    left = budget_chars
    block: list[str] = []
    chosen = near_problems(diagnostics, line)
    if chosen:
        header = f"{comment} Problems the language servers report near the cursor in {path}:"
        block = [header]
        left -= len(header) + 1
        for d in chosen:
            item = problem_lines(d, lines, comment=comment)
            size = sum(len(t) + 1 for t in item)
            if size > left:
                break
            block.extend(item)
            left -= size
        if len(block) == 1:  # not even one fits
            block, left = [], budget_chars
    picked: list[Definition] = []
    here = lines[line] if 0 <= line < len(lines) else ""
    for name in names_near(here, column):
        found = definitions.get(name)
        if found is None or found in picked or not found.text:
            continue
        if found.path == path and abs(found.start_line - line) <= NEAR_LINES:
            continue  # already in the prompt's window around the caret
        if len(found.text) > left:
            continue
        picked.append(found)
        left -= len(found.text)
    return PromptContext(path, "\n".join(block) + "\n" if block else "", tuple(picked))
