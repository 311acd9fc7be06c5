"""The model's turn in the agent loop: text in a strict format, one action a turn.

    READ: path                 one or more lines: the files to read
    RUN: command               one line, then WHY: the reason (shown on the card)
    WHY: reason
    DONE: summary              the task is finished (or cannot be): the loop ends
    FILE: path / NEW FILE: path with a fenced block
                               edits, as a multi-file edit's answer
                               (``forecode_core.edits.answer``: elisions allowed)

Prose may stand before the action (the model's reasoning); lines inside code blocks are
never actions. A turn with no action, with two kinds of action, with two RUN lines, a RUN
with no command or a DONE beside anything else is malformed (``TurnError`` with the
reason, sent back once as a correction). Edits are parsed against the files the model has
read: a changed file must have been read first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from forecode_core.edits.answer import EditsAnswerError, FileOp, OpKind, parse_edits
from forecode_core.edits.prompt import SentFile

__all__ = ["Done", "Edits", "Read", "Run", "Turn", "TurnError", "parse_turn"]

_ACTION = re.compile(
    r"^\s*(?:[-*]\s+|#{1,6}\s+)?(?:\*\*|__)?(READ|RUN|WHY|DONE)(?:\*\*|__)?\s*:"
    r"(?:\*\*|__)?\s*(.*?)\s*$",
    re.IGNORECASE,
)
_FILE = re.compile(
    r"^\s*(?:#{1,6}\s+|[-*]\s+)?(?:\*\*|__)?\s*(new\s+file|delete\s+file|file|edit|new|delete)"
    r"\s*:",
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


Turn = Read | Run | Done | Edits


class TurnError(ValueError):
    """A malformed turn: ``reason`` is what the correction message tells the model."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _outside_blocks(text: str) -> tuple[list[tuple[str, str]], bool]:
    """The action lines outside code blocks as (keyword, value), and whether a file
    header stands outside them."""
    actions: list[tuple[str, str]] = []
    has_file = False
    fence = ""
    for line in text.replace("\r\n", "\n").split("\n"):
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
            actions.append((action.group(1).upper(), action.group(2).strip().strip("`")))
        elif _FILE.match(line):
            has_file = True
    return actions, has_file


def _run(actions: list[tuple[str, str]]) -> Run:
    runs = [value for key, value in actions if key == "RUN"]
    whys = [value for key, value in actions if key == "WHY"]
    if len(runs) != 1:
        raise TurnError("propose one command a turn (one RUN: line)")
    if not runs[0]:
        raise TurnError("the RUN: line names no command")
    return Run(runs[0], " ".join(whys))


def _edits(text: str, read: Mapping[str, SentFile]) -> Edits:
    try:
        parsed = parse_edits(text, read)
    except EditsAnswerError as exc:
        raise TurnError(f"the file edits are not well-formed: {exc}") from None
    if any(op.kind is OpKind.DELETE for op in parsed.ops):
        raise TurnError("the agent does not delete files (leave the file, or empty it)")
    return Edits(parsed.ops)


def parse_turn(text: str, read: Mapping[str, SentFile]) -> Turn:
    """The one action of the model's turn ``text`` (``TurnError`` if malformed); ``read``:
    the files the model has read, by path (their current texts)."""
    actions, has_file = _outside_blocks(text)
    kinds = {"RUN" if key == "WHY" else key for key, _ in actions}
    if has_file:
        kinds.add("FILE")
    if not kinds:
        raise TurnError(
            "the turn has no action: end it with READ: <path>, RUN: <command> and WHY: "
            "<reason>, FILE: <path> with a code block, or DONE: <summary>"
        )
    if len(kinds) > 1:
        names = ", ".join(sorted(k + ":" for k in kinds))
        raise TurnError(f"one kind of action a turn, not several ({names})")
    kind = kinds.pop()
    if kind == "FILE":
        return _edits(text, read)
    if kind == "RUN":
        return _run(actions)
    if kind == "DONE":
        if len(actions) != 1:
            raise TurnError("one DONE: line a turn")
        return Done(actions[0][1])
    paths = tuple(dict.fromkeys(value for _, value in actions))
    if not all(paths):
        raise TurnError("a READ: line names no file")
    return Read(paths)
