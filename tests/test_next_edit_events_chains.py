"""Chains of edit events (``events.continues``, ``compose_chains``, ``compose_events``): an edit
made in two goes at the same place is one edit to propagation.

Each row types into a real string with the editor's changes (a selection replaced is a
deletion, then one insertion a key; an undo removes the typing, then puts the deleted text
back), feeds them to ``BufferEdits``, and checks the composed pairs and what propagation then
offers. Marked text: ``«rv»`` is the word the step selects and types over (its first marked
occurrence is taken and the marks dropped), ``«»`` an insertion point.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from forecode_core.next_edit.events import (
    BufferEdits,
    ChainedEdit,
    Change,
    EditEvent,
    chains,
    compose_chains,
    compose_events,
    continues,
    steps_and_chains,
)
from forecode_core.next_edit.propagation import Edit, propose

# A function of Python's copy.py, shortened: a local ``rv``, and a ``def copy`` elsewhere.
SRC = (
    "def copy(x):\n"  # 1
    "    return x\n"  # 2
    "\n"  # 3
    "\n"  # 4
    "def deep(x):\n"  # 5
    "    rv = reductor(x)\n"  # 6
    "    if rv is None:\n"  # 7
    "        rv = reductor(4)\n"  # 8
    "    state = copy(rv)\n"  # 9
    "    return rv, state\n"  # 10
)


@dataclass
class Editor:
    """A document whose changes go to ``edits`` as the editor sends them."""

    text: str
    edits: BufferEdits
    t: float = 0.0
    undo: list[tuple[int, str, str]] | None = None

    def change(self, offset: int, removed: str, inserted: str) -> None:
        assert self.text.startswith(removed, offset)
        line = self.text.count("\n", 0, offset)
        self.edits.record(Change(offset, removed, inserted, self.t, line))
        self.text = self.text[:offset] + inserted + self.text[offset + len(removed) :]
        self.t += 0.1

    def type_over(self, line: int, marked: str, new: str) -> None:
        """On 1-based ``line``, select the marked word of ``marked`` (the line's text with
        ``«word»``, or ``«»`` for an insertion point) and type ``new`` a key at a time."""
        head, rest = marked.split("«", 1)
        old = rest.split("»", 1)[0]
        start = self.line_start(line)
        assert self.text.startswith(marked.replace("«", "").replace("»", ""), start), marked
        at = start + len(head)
        if old:
            self.change(at, old, "")
        for k, ch in enumerate(new):
            self.change(at + k, "", ch)
        self.undo = [(at, old, new)] + (self.undo or [])

    def ctrl_z(self) -> None:
        """Undo the last ``type_over``: the typing removed, then the old text put back."""
        assert self.undo
        at, old, new = self.undo.pop(0)
        self.change(at, new, "")
        if old:
            self.change(at, "", old)

    def pause(self) -> None:
        self.t += 2.0  # more than events.PAUSE_S: the next key opens a new event

    def line_start(self, line: int) -> int:
        at = 0
        for _ in range(line - 1):
            at = self.text.index("\n", at) + 1
        return at


Step = tuple[int, str, str] | str  # (line, marked line, typed), "pause", "undo"


def run(steps: list[Step]) -> Editor:
    ed = Editor(SRC, BufferEdits())
    for step in steps:
        if step == "pause":
            ed.pause()
        elif step == "undo":
            ed.ctrl_z()
        else:
            assert isinstance(step, tuple)
            ed.type_over(*step)
    return ed


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


RV_TO_COPY: Step = (6, "    «rv» = reductor(x)", "copy")
COPY_TO_DUP: Step = (6, "    «copy» = reductor(x)", "dup")
RV_SITES = [7, 8, 9, 10]  # the function's other uses of ``rv``


@pytest.mark.parametrize(
    ("steps", "composed", "offered"),
    [
        pytest.param(
            [RV_TO_COPY, "pause", COPY_TO_DUP],
            [("rv", "dup")],
            [(n, "rv", "dup") for n in RV_SITES],
            id="the user's chain: rv -> copy -> dup offers the rv sites as dup",
        ),
        pytest.param(
            [RV_TO_COPY, "pause", COPY_TO_DUP, "pause", (6, "    «dup» = reductor(x)", "clone")],
            [("rv", "clone")],
            [(n, "rv", "clone") for n in RV_SITES],
            id="a chain of three",
        ),
        pytest.param(
            [
                RV_TO_COPY,
                "pause",
                (2, "    return «x»", "y"),
                "pause",
                COPY_TO_DUP,
            ],
            [("rv", "copy"), ("x", "y"), ("copy", "dup")],
            # broken: the newest edit alone, a rename of ``copy``: the call of ``def copy``
            [(9, "copy", "dup")],
            id="a chain broken by an edit elsewhere is two edits",
        ),
        pytest.param(
            [RV_TO_COPY, "pause", COPY_TO_DUP, "pause", "undo"],
            [("rv", "copy")],
            [],  # rv -> copy alone: ``copy`` is used in the file, one example waits
            id="an undo inside a chain leaves the first step, at its place",
        ),
        pytest.param(
            [RV_TO_COPY, "pause", COPY_TO_DUP, "pause", (6, "    «dup» = reductor(x)", "rv")],
            [("rv", "rv")],
            [],
            id="a chain back to the original name: nothing to propagate, never a revert",
        ),
        pytest.param(
            [(6, "    «rv» = reductor(x)", "new_na"), "pause", (6, "    new_na«» = r", "me")],
            [("rv", "new_name")],
            [(n, "rv", "new_name") for n in RV_SITES],
            id="typing continued after a pause, at the end",
        ),
        pytest.param(
            [(6, "    «rv» = reductor(x)", "dpu"), "pause", (6, "    d«pu» = r", "up")],
            [("rv", "dup")],
            [(n, "rv", "dup") for n in RV_SITES],
            id="a typo fixed inside the new name",
        ),
        pytest.param(
            [(6, "    «rv» = reductor(x)", "dup"), "pause", (6, "    «dup = reductor»(x)", "f")],
            [("rv", "dup"), ("dup = reductor", "f")],
            [],  # reaches past the first edit's text: not its continuation
            id="an edit reaching past the first one's text is its own",
        ),
    ],
)
def test_chains_compose_for_propagation(
    steps: list[Step],
    composed: list[tuple[str, str]],
    offered: list[tuple[int, str, str]],
) -> None:
    ed = run(steps)
    pairs = compose_chains(ed.edits.events())
    assert [(p.before, p.after) for p in pairs] == composed
    assert ed.text.startswith(pairs[-1].after, pairs[-1].offset)  # where it says it is
    caret = ed.edits.events()[-1].end if ed.edits.events() else 0
    got = propose(ed.text, ed.edits.events(), caret, path="copy.py")
    assert [(line_of(ed.text, p.start), p.old, p.new) for p in got] == offered


def test_before_the_fix_the_newest_step_alone_renamed_def_copy() -> None:
    """What the user saw: the newest step alone (``copy`` -> ``dup``) offers renaming the
    call of the function ``copy``, a name the user never touched."""
    ed = run([RV_TO_COPY, "pause", COPY_TO_DUP])
    newest = ed.edits.events()[-1]
    got = propose(ed.text, [newest], newest.end, path="copy.py")
    assert [(line_of(ed.text, p.start), p.old, p.new) for p in got] == [(9, "copy", "dup")]


def test_an_undo_in_a_chain_keeps_the_first_step_where_it_was() -> None:
    # The undo puts ``copy`` back by an insertion at the first event's start: that event does
    # not move (it used to, to after the inserted text, and no longer held).
    ed = run([RV_TO_COPY, "pause", COPY_TO_DUP, "pause", "undo"])
    (event,) = ed.edits.events()
    assert (event.before, event.after) == ("rv", "copy")
    assert ed.text.startswith("copy = reductor", event.offset)


def test_compose_events_for_the_model_and_the_revert_guards() -> None:
    ed = run([(2, "    return «x»", "y"), "pause", RV_TO_COPY, "pause", COPY_TO_DUP])
    events = ed.edits.events()
    model = compose_events(events)
    assert [(e.before, e.after, e.line) for e in model] == [("x", "y", 1), ("rv", "dup", 5)]
    assert model[-1].start_time == events[1].start_time
    assert model[-1].end_time == events[2].end_time
    # the guards: each step and the chain
    guards = steps_and_chains(events)
    assert [(e.before, e.after) for e in guards] == [
        ("x", "y"),
        ("rv", "copy"),
        ("copy", "dup"),
        ("rv", "dup"),
    ]
    # a chain back to the start is no pair for the model
    back = run([RV_TO_COPY, "pause", COPY_TO_DUP, "pause", (6, "    «dup» = r", "rv")])
    assert compose_events(back.edits.events()) == ()


@pytest.mark.parametrize(
    ("older", "newer", "continued"),
    [
        ((10, "rv", "copy"), (10, "copy", "dup"), True),  # the whole text again
        ((10, "rv", "copy"), (14, "", "_x"), True),  # at its end
        ((10, "rv", "copy"), (10, "", "my_"), True),  # at its start
        ((10, "rv", "copy"), (11, "op", "po"), True),  # inside
        ((10, "", "abc"), (13, "", "d"), True),  # typing on after a pause
        ((10, "foo", ""), (10, "", "bar"), True),  # deleted, then typed there
        ((10, "rv", "copy"), (9, " c", "c"), False),  # starts before it
        ((10, "rv", "copy"), (12, "py ", "p"), False),  # ends after it
        ((10, "rv", "copy"), (15, "", "x"), False),  # a character away
        ((10, "rv", "copy"), (10, "dup", "x"), False),  # not its text (a stale offset)
    ],
)
def test_continues(
    older: tuple[int, str, str], newer: tuple[int, str, str], continued: bool
) -> None:
    assert continues(Edit(*older), Edit(*newer)) is continued


def test_compose_chains_keeps_other_pairs_as_they_are() -> None:
    a, b, c, d = (
        Edit(0, "x", "y"),
        Edit(20, "rv", "copy"),
        Edit(20, "copy", "dup"),
        Edit(5, "", "z"),
    )
    assert chains([a, b, c, d]) == [(a,), (b, c), (d,)]
    assert compose_chains([a, b, c, d]) == [a, ChainedEdit(20, "rv", "dup"), d]
    assert compose_chains([]) == []
    event = EditEvent(3, "a", "b", 0, 0.0, 0.1, 0)
    assert compose_events([event]) == (event,)
