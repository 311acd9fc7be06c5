"""Edit events: keystrokes coalesce into before/after pairs; pauses, jumps and undo.

Each case types into a real string (``Doc``) and feeds the same changes to ``BufferEdits``; the
events must be what a diff of the document would say, with their line."""

from __future__ import annotations

import pytest

from forecode_core.next_edit.events import (
    MAX_EVENTS,
    BufferEdits,
    Change,
    EditEvent,
    EditHistory,
)


class Doc:
    """A document whose every change is reported to ``edits``, as the editor does."""

    def __init__(self, text: str, edits: BufferEdits) -> None:
        self.text = text
        self.edits = edits

    def change(self, offset: int, removed_len: int, inserted: str, t: float) -> None:
        removed = self.text[offset : offset + removed_len]
        line = self.text.count("\n", 0, offset)
        self.text = self.text[:offset] + inserted + self.text[offset + removed_len :]
        self.edits.record(Change(offset, removed, inserted, t, line))

    def type(self, marker: str | int, text: str, t: float, dt: float = 0.1) -> float:
        """Type ``text`` one key at a time where ``marker`` (a unique substring, or an offset)
        starts."""
        at = marker if isinstance(marker, int) else self.text.index(marker)
        for ch in text:
            self.change(at, 0, ch, t)
            at += 1
            t += dt
        return t

    def backspace(self, at: int, n: int, t: float, dt: float = 0.1) -> float:
        for _ in range(n):
            self.change(at - 1, 1, "", t)
            at -= 1
            t += dt
        return t


FILE = "".join(f"line{i} = value{i}\n" for i in range(40))


def pairs(edits: BufferEdits) -> list[tuple[int, str, str]]:
    return [(e.line, *e.trimmed()) for e in edits.events()]


def test_keystrokes_coalesce_into_one_event() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    doc.type(" = value5", "_total", 0.0)
    assert pairs(edits) == [(5, "", "_total")]
    (ev,) = edits.events()
    assert doc.text[ev.offset : ev.end] == ev.after
    assert doc.text[: ev.offset] + ev.before + doc.text[ev.end :] == FILE


@pytest.mark.parametrize(
    ("second_at", "gap", "expected"),
    [
        # a pause of a second closes the event
        ("line5_x", 1.0, [(5, "", "_x"), (5, "", "y")]),
        # a quick key right after joins it
        ("line5_x", 0.2, [(5, "", "_xy")]),
        # a jump of more than three lines closes it, however quick
        ("line9 ", 0.1, [(5, "", "_x"), (9, "", "y")]),
        # a change nearby that does not touch the span is its own event
        ("line7 ", 0.1, [(5, "", "_x"), (7, "", "y")]),
    ],
)
def test_pause_and_jump_close_the_event(
    second_at: str, gap: float, expected: list[tuple[int, str, str]]
) -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    t = doc.type(" = value5", "_x", 0.0)
    at = doc.text.index(second_at) + (len(second_at) if second_at.startswith("line5") else 5)
    doc.change(at, 0, "y", t - 0.1 + gap)
    assert pairs(edits) == expected


def test_a_jump_closes_the_event_even_where_its_span_is_touched() -> None:
    # Lines typed below line 5 make one event whose span reaches line 9; the caret goes back
    # up to the span's start (line 5) at once: a jump of four lines, a new event, although the
    # change touches the span (the touch rule alone would merge it: the row above cannot tell).
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    t = doc.type(" = value5", "\na\nb\nc\nd", 0.0)
    (typed,) = edits.events()
    assert (typed.line, typed.last_line) == (5, 9)
    doc.change(typed.offset, 0, "#", t)  # 0.1 s later, where the span starts
    assert pairs(edits) == [(5, "", "\na\nb\nc\nd"), (5, "", "#")]
    # the same change three lines up from the last one still joins it
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    t = doc.type(" = value5", "\na\nb\nc", 0.0)
    (typed,) = edits.events()
    doc.change(typed.offset, 0, "#", t)
    assert pairs(edits) == [(5, "", "#\na\nb\nc")]


def test_replacing_a_word_is_one_pair_with_its_before_text() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    at = doc.text.index("value12") + len("value12")
    t = doc.backspace(at, 5, 0.0)  # "value12" -> "va"
    doc.type(at - 5, "riant12", t)
    assert doc.text.count("variant12") == 1
    assert pairs(edits) == [(12, "lue", "riant")]  # trimmed: "12" came back
    (ev,) = edits.events()
    assert doc.text[: ev.offset] + ev.before + doc.text[ev.end :] == FILE


def test_a_selection_replaced_across_lines_keeps_the_start_line() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    start = doc.text.index("line3 ")
    end = doc.text.index("line5 ")
    doc.change(start, end - start, "", 0.0)
    doc.change(start, 0, "x", 0.1)
    assert pairs(edits) == [(3, "line3 = value3\nline4 = value4\n", "x")]


def test_typing_then_deleting_it_again_leaves_no_event() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    t = doc.type(" = value2", "abc", 0.0)
    doc.backspace(doc.text.index("abc") + 3, 3, t)
    assert doc.text == FILE
    assert edits.events() == ()


def test_an_undo_of_a_closed_event_cancels_it() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    doc.type(" = value2", "_a", 0.0)
    doc.type(" = value20", "_b", 5.0)
    assert pairs(edits) == [(2, "", "_a"), (20, "", "_b")]
    # Undo puts the first edit back in one change, much later: that event is gone.
    at = doc.text.index("line2_a") + len("line2")
    doc.change(at, 2, "", 10.0)
    assert pairs(edits) == [(20, "", "_b")]
    (ev,) = edits.events()
    assert doc.text[ev.offset : ev.end] == ev.after  # its offset followed the undo


def test_an_undo_in_two_steps_cancels_a_replacement() -> None:
    """The editor undoes a typed-over word as two changes: the typing removed, then the
    deleted text put back."""
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    at = doc.text.index("value12") + len("value12")
    t = doc.backspace(at, 5, 0.0)
    doc.type(at - 5, "riant", t)
    assert pairs(edits) == [(12, "lue12", "riant")]
    doc.change(at - 5, 5, "", 10.0)  # undo the typing
    doc.change(at - 5, 0, "lue12", 10.0)  # undo the deletion
    assert doc.text == FILE
    assert edits.events() == ()


def test_events_move_with_changes_above_them() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    doc.type(" = value30", "_z", 0.0)
    doc.change(doc.text.index("line1 "), 0, "new line\nmore\n", 5.0)
    old, new = edits.events()
    assert (old.line, new.line) == (32, 1)
    assert doc.text[old.offset : old.end] == "_z"


def test_only_the_newest_events_are_kept() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    for i in range(MAX_EVENTS + 3):
        doc.type(f"line{i} ", "!", float(10 * i))
    events = edits.events()
    assert len(events) == MAX_EVENTS
    assert [e.line for e in events] == list(range(3, MAX_EVENTS + 3))


def test_is_open_until_a_pause() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    doc.type(" = value1", "x", 0.0)
    assert edits.is_open(0.5)
    assert not edits.is_open(1.5)
    edits.close()
    assert not edits.is_open(0.5)


def test_close_starts_a_new_event_even_right_after() -> None:
    edits = BufferEdits()
    doc = Doc(FILE, edits)
    t = doc.type(" = value1", "x", 0.0)
    edits.close()
    doc.type("x = value1", "y", t)
    assert pairs(edits) == [(1, "", "x"), (1, "", "y")]


def test_history_is_per_buffer() -> None:
    history = EditHistory()
    history.record("a.py", Change(0, "", "x", 0.0, 0))
    history.record("b.py", Change(0, "", "y", 0.1, 0))
    assert [e.after for e in history.events("a.py")] == ["x"]
    assert [e.after for e in history.events("b.py")] == ["y"]
    history.forget("a.py")
    assert history.events("a.py") == ()


@pytest.mark.parametrize(
    ("before", "after", "trimmed"),
    [
        ("foo(a)", "foo(a, b)", ("", ", b")),
        ("value", "variant", ("lue", "riant")),
        ("x", "x", ("", "")),
        ("aaa", "aa", ("a", "")),
    ],
)
def test_trimmed_pair(before: str, after: str, trimmed: tuple[str, str]) -> None:
    assert EditEvent(0, before, after, 0, 0.0, 0.0, 0).trimmed() == trimmed
