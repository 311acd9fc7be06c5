"""A rename made in two goes, in the real editor (issue 15; a user run's bug): in a copy of
Python's ``copy.py`` the user renames the local ``rv`` to ``copy``, pauses, then renames that
``copy`` to ``dup`` at the same place. The offers must be the remaining ``rv`` sites as ``dup``
(the second edit continues the first), never the function ``copy``'s call or definition.

Real ``Documents`` tabs, a real Scintilla editor offscreen, real key presses, a real pause
of more than a second (``events.PAUSE_S``) and real propagation; the model's seam is the fake
of tests/test_next_edit_ui.py, here only to read the input it was asked with.
"""

from __future__ import annotations

import copy as copy_module
import re
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from forecode_core.next_edit.events import PAUSE_S
from tests import test_next_edit_ui as ui
from tests.test_next_edit_ui import Env, press

env = ui.env  # the real window's next-edit fixture (tabs, owner, the model's fake seam)

SOURCE = Path(copy_module.__file__).read_text(encoding="utf-8")
FIRST = "        rv = reductor(x)\n"  # in ``def copy``: a local ``rv``, used four times below


def select_on_line(ed: CodeEditor, line_text: str, word: str) -> None:
    """Select ``word`` where it starts ``line_text`` (after its indent), as a double-click."""
    raw = ed.text_bytes()
    assert raw.count(b"\n" + line_text.encode()) == 1
    line = raw.index(b"\n" + line_text.encode()) + 1
    start = line + len(line_text) - len(line_text.lstrip())
    assert raw[start : start + len(word.encode())] == word.encode()
    ed.setSelection(start, start + len(word.encode()))


def type_keys(qtbot: QtBot, ed: CodeEditor, text: str) -> None:
    qtbot.keyClicks(ed, text)  # type: ignore[no-untyped-call]


def rv_lines(text: str) -> list[int]:
    """The lines of ``def copy``'s body that use the name ``rv``."""
    start = text.index("\ndef copy(x):")
    end = text.index("\ndef ", start + 1)
    first = text.count("\n", 0, start) + 2
    body = text[start + 1 : end].splitlines()
    return [first + k for k, line in enumerate(body) if re.search(r"\brv\b", line)]


def test_a_rename_in_two_goes_offers_the_first_names_sites_with_the_last_name(env: Env) -> None:
    assert "\ndef copy(x):" in SOURCE
    doc = env.open("copy.py", SOURCE)
    ed = doc.editor
    select_on_line(ed, FIRST, "rv")
    type_keys(env.qtbot, ed, "copy")  # rv -> copy
    env.qtbot.wait(int(PAUSE_S * 1000) + 200)  # the user pauses: the event closes
    select_on_line(ed, FIRST.replace("rv", "copy"), "copy")
    type_keys(env.qtbot, ed, "dup")  # copy -> dup, at the same place
    env.ctl.predict_now()

    offers = env.ctl.buffer_session(doc).propagation
    text = ed.text()
    got = [
        (text.count("\n", 0, o.edits[0].start) + 1, o.edits[0].old, o.edits[0].new) for o in offers
    ]
    assert got == [(n, "rv", "dup") for n in rv_lines(text)], got  # the four, nearest first
    assert len(got) == 4
    # the model is asked with the chain as one pair: rv -> dup, never the step copy -> dup
    _kind, inp, _version, _buffer = env.model.requests[-1]
    newest = inp.events[-1]
    assert ("rv = reductor(x)" in newest.before, "dup = reductor(x)" in newest.after) == (
        True,
        True,
    ), newest
    assert not any("copy = reductor" in pair.before for pair in inp.events)

    for _ in range(4):
        press(env.qtbot, ed, Qt.Key.Key_Tab)  # jump
        press(env.qtbot, ed, Qt.Key.Key_Tab)  # accept
    assert rv_lines(ed.text()) == []  # every use renamed
    fn = ed.text().split("\ndef copy(x):", 1)[1].split("\ndef ", 1)[0]
    assert len(re.findall(r"\bdup\b", fn)) == 5
    assert "\ndef copy(x):" in ed.text() and "dup(" not in ed.text()  # the function untouched
