"""The model's turn in the agent loop: text in a strict format, one action a turn.

    READ: path                 one or more lines: the files to read
    RUN: command               one line, then WHY: the reason (shown on the card)
    WHY: reason
    DONE: summary              the task is finished (or cannot be): the loop ends
    SEARCH: query              the codebase index's search (a plain-text search when the
                               index is not ready), the top chunks with path and lines
    DEFINITION: symbol         where a name is defined (the shadow's language servers)
    DIAGNOSTICS: path          a file's current problems (the shadow's language servers)
    FILE: path / NEW FILE: path with a fenced block
                               edits, as a multi-file edit's answer
                               (``forecode_core.edits.answer``: elisions allowed)

Prose may stand before the action (the model's reasoning); lines inside code blocks are
never actions. The first action is the turn's: its lines (several READ lines, one RUN with
its WHY, one DONE, file sections up to the next other action) and nothing after them, which
is dropped (the conversation keeps the turn up to there, and the model is told). Small
models go on writing after their action (Qwen2.5-Coder 1.5B wrote ``READ: calc.py`` and then
an invented ``FILE:`` section of the file it had not seen); rejecting such turns as
malformed ended every run at its second turn. A turn with no action, a RUN with no command,
a READ with no path or a malformed file section is malformed (``TurnError`` with the reason,
sent back once as a correction). Edits are parsed against the files the model has read: a
changed file must have been read first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from forecode_core.agent.paths import PathRefused, relative_path
from forecode_core.edits.answer import EditsAnswerError, FileOp, OpKind, parse_edits
from forecode_core.edits.prompt import SentFile

__all__ = [
    "Definition",
    "Diagnostics",
    "Done",
    "Edits",
    "ParsedTurn",
    "Read",
    "Run",
    "Search",
    "Turn",
    "TurnError",
    "UnreadFiles",
    "parse_turn",
]

_ACTION = re.compile(
    r"^\s*(?:[-*]\s+|#{1,6}\s+)?(?:\*\*|__)?(READ|RUN|WHY|DONE|SEARCH|DEFINITION|DIAGNOSTICS)(?:\*\*|__)?\s*:"
    r"(?:\*\*|__)?\s*(.*?)\s*$",
    re.IGNORECASE,
)
_FILE = re.compile(
    r"^\s*(?:#{1,6}\s+|[-*]\s+)?(?:\*\*|__)?\s*(new\s+file|delete\s+file|file|edit|new|delete)"
    r"\s*:(?:\*\*|__)?\s*(.*?)\s*$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Read:
    """The paths as the model wrote them: confinement (``paths.inside``) decides later, and
    a refused one is an observation, not a malformed turn."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    command: str
    why: str


@dataclass(frozen=True)
class Done:
    summary: str


@dataclass(frozen=True)
class Edits:
    ops: tuple[FileOp, ...]


@dataclass(frozen=True)
class Search:
    """A search of the project: the query as the model wrote it (``search_refusal`` says
    whether it is refused, an observation, not a malformed turn)."""

    query: str


@dataclass(frozen=True)
class Definition:
    """Where ``symbol`` (a name, or a dotted name: its last part is looked up) is defined."""

    symbol: str


@dataclass(frozen=True)
class Diagnostics:
    """The current problems of ``path`` (confined like a READ's)."""

    path: str


Turn = Read | Run | Done | Edits | Search | Definition | Diagnostics

_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_OUTSIDE = re.compile(
    r"(?:^|[\s\"'`(=])(?:/(?=[\w.])|~(?=[/\w])|[A-Za-z]:[\\/])|(?:^|[/\\\s])\.\.(?:[/\\]|$)"
)
MAX_QUERY = 200


def search_refusal(query: str) -> str:
    """Why a SEARCH is refused ("" when it is not): it names a place outside the workspace
    (an absolute path, a home folder, a drive, ``..``) or is too long. The search covers the
    workspace only whatever the query says; the refusal tells the model so."""
    if len(query) > MAX_QUERY:
        return f"the query is longer than {MAX_QUERY} characters"
    if _OUTSIDE.search(query):
        return "it names a place outside the workspace (the search covers the workspace only)"
    return ""


@dataclass(frozen=True)
class ParsedTurn:
    """The turn's first action, the text up to its end (what the conversation keeps of the
    turn) and whether anything after it was dropped."""

    action: Turn
    text: str
    dropped: bool


class TurnError(ValueError):
    """A malformed turn: ``reason`` is what the correction message tells the model."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnreadFiles(TurnError):
    """The turn changes files the model has not read (``paths``): not malformed; the loop
    shows them and asks for the edit again."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = paths
        super().__init__(f"it changes {', '.join(paths)} without having read it")


_FAMILY = {
    "READ": "READ",
    "RUN": "RUN",
    "WHY": "RUN",
    "DONE": "DONE",
    "FILE": "FILE",
    "SEARCH": "SEARCH",
    "DEFINITION": "DEFINITION",
    "DIAGNOSTICS": "DIAGNOSTICS",
}
_ONE_LINE = ("DONE", "SEARCH", "DEFINITION", "DIAGNOSTICS")


def _marks(lines: list[str]) -> list[tuple[int, str, str]]:
    """The action lines outside code blocks: (line index, keyword, value); a file header's
    keyword is FILE."""
    marks: list[tuple[int, str, str]] = []
    fence = ""
    for i, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence:
            if opened and set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            continue
        action = _ACTION.match(line)
        if action:
            marks.append((i, action.group(1).upper(), action.group(2).strip().strip("`")))
        elif _FILE.match(line):
            marks.append((i, "FILE", ""))
    return marks


def _repeats(family: str, key: str, group: list[tuple[str, str]]) -> bool:
    """Whether ``key`` starts a second action of its family: a second DONE, RUN or WHY."""
    if family in _ONE_LINE:
        return bool(group)
    return family == "RUN" and any(k == key for k, _ in group)


def _first_group(
    marks: list[tuple[int, str, str]], total: int
) -> tuple[list[tuple[str, str]], int]:
    """The first action's marks (keyword, value) and the line index where it ends: a run of
    marks of one family (one RUN with its WHY, one DONE), up to the next mark of another."""
    family = _FAMILY[marks[0][1]]
    group: list[tuple[str, str]] = []
    for i, key, value in marks:
        if _FAMILY[key] != family or _repeats(family, key, group):
            return group, i
        group.append((key, value))
    return group, total if family == "FILE" else marks[-1][0] + 1


def _plain(path: str) -> bool:
    try:
        return relative_path(path) == path and " " not in path
    except PathRefused:
        return False


def _unread(text: str, read: Mapping[str, SentFile]) -> tuple[str, ...]:
    """The files the turn's FILE: headers name that the model has not read."""
    out = []
    for line in text.split("\n"):
        header = _FILE.match(line)
        if header and header.group(1).lower() in ("file", "edit"):
            path = header.group(2).strip("`*_\"' ")
            if path.startswith("./"):
                path = path[2:]
            if path not in read and _plain(path):
                out.append(path)
    return tuple(dict.fromkeys(out))


def _edits(text: str, read: Mapping[str, SentFile]) -> Edits:
    unread = _unread(text, read)
    if unread:
        raise UnreadFiles(unread)
    try:
        parsed = parse_edits(text, read)
    except EditsAnswerError as exc:
        raise TurnError(f"the file edits are not well-formed: {exc}") from None
    if any(op.kind is OpKind.DELETE for op in parsed.ops):
        raise TurnError("the agent does not delete files (leave the file, or empty it)")
    return Edits(parsed.ops)


def _lookup(family: str, value: str) -> Turn:
    """A SEARCH, DEFINITION or DIAGNOSTICS line's action (``TurnError`` when it names
    nothing, or a DEFINITION names no symbol)."""
    if not value:
        raise TurnError(f"the {family}: line is empty")
    if family == "SEARCH":
        return Search(value)
    if family == "DIAGNOSTICS":
        return Diagnostics(value)
    symbol = value.strip("`*_\"'() ")
    if not _SYMBOL.fullmatch(symbol):
        raise TurnError("DEFINITION: takes one name, e.g. DEFINITION: parse_config")
    return Definition(symbol)


def _action(group: list[tuple[str, str]], text: str, read: Mapping[str, SentFile]) -> Turn:
    family = _FAMILY[group[0][0]]
    if family == "FILE":
        return _edits(text, read)
    if family == "DONE":
        return Done(group[0][1])
    if family in ("SEARCH", "DEFINITION", "DIAGNOSTICS"):
        return _lookup(family, group[0][1])
    if family == "RUN":
        runs = [value for key, value in group if key == "RUN"]
        if not runs or not runs[0]:
            raise TurnError("the RUN: line names no command")
        return Run(runs[0], " ".join(value for key, value in group if key == "WHY"))
    paths = tuple(dict.fromkeys(value for _, value in group))
    if not all(paths):
        raise TurnError("a READ: line names no file")
    return Read(paths)


def parse_turn(text: str, read: Mapping[str, SentFile]) -> ParsedTurn:
    """The first action of the model's turn ``text`` (``TurnError`` if there is none or it
    is malformed); ``read``: the files the model has read, by path (their current texts)."""
    lines = text.replace("\r\n", "\n").split("\n")
    marks = _marks(lines)
    if not marks:
        raise TurnError(
            "the turn has no action: end it with READ: <path>, SEARCH: <words>, "
            "DEFINITION: <name>, RUN: <command> and WHY: <reason>, FILE: <path> with a "
            "code block, or DONE: <summary>"
        )
    group, end = _first_group(marks, len(lines))
    taken = "\n".join(lines[:end]).rstrip()
    dropped = bool("\n".join(lines[end:]).strip())
    return ParsedTurn(_action(group, taken, read), taken, dropped)
