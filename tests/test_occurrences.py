"""Ctrl+D / Ctrl+Shift+L as VS Code: the pure part on marked text, then the real widget.

Marked text: ``[`` and ``]`` around each selection, ``|`` a bare caret; the main selection is
the last one marked unless a test says otherwise.
"""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from forecode_core.text.occurrences import all_occurrences, next_occurrence, word_at


def parse(marked: str) -> tuple[bytes, list[tuple[int, int]]]:
    out = bytearray()
    ranges: list[tuple[int, int]] = []
    start = -1
    for ch in marked:
        if ch == "[":
            start = len(out)
        elif ch == "]":
            ranges.append((start, len(out)))
        elif ch == "|":
            ranges.append((len(out), len(out)))
        else:
            out += ch.encode()
    return bytes(out), ranges


def mark(text: bytes, ranges: list[tuple[int, int]]) -> str:
    inserts: list[tuple[int, int, str]] = []
    for s, e in ranges:
        if s == e:
            inserts.append((s, 1, "|"))
        else:
            inserts += [(s, 1, "["), (e, 0, "]")]
    out = bytearray(text)
    for pos, _order, tok in sorted(inserts, key=lambda t: (t[0], t[1]), reverse=True):
        out[pos:pos] = tok.encode()
    return out.decode()


def add_next(marked: str, whole_word: bool) -> str:
    text, ranges = parse(marked)
    found = next_occurrence(text, ranges, len(ranges) - 1, whole_word)
    return mark(text, sorted(ranges + ([found] if found else [])))


@pytest.mark.parametrize(
    ("before", "whole_word", "after"),
    [
        # the word from a bare caret: whole words only, so `params` is never taken
        ("self.[param] = self.params + param", True, "self.[param] = self.params + [param]"),
        ("[param] params param_x xparam param", True, "[param] params param_x xparam [param]"),
        # case-sensitive
        ("[Foo] foo FOO Foo", True, "[Foo] foo FOO [Foo]"),
        ("[Foo] foo FOO Foo", False, "[Foo] foo FOO [Foo]"),
        # a selection the user made: its exact text, inside words too
        ("[ram] params", False, "[ram] pa[ram]s"),
        ("[param] = self.params", False, "[param] = self.[param]s"),
        # wraps around from the main (last) selection, skipping what is selected
        ("a x [a] y [a]", True, "[a] x [a] y [a]"),
        # everything selected: nothing more
        ("[a] [a]", True, "[a] [a]"),
        # multi-byte word characters belong to the word
        ("[é] éa é", True, "[é] éa [é]"),
    ],
)
def test_next_occurrence_on_marked_text(before: str, whole_word: bool, after: str) -> None:
    assert add_next(before, whole_word) == after


@pytest.mark.parametrize(
    ("marked", "word"),
    [
        ("self.par|am = 1", "param"),
        ("|param", "param"),
        ("param|", "param"),
        ("a |b", "b"),
        ("a| b", "a"),
        ("a | b", None),
        ("x = ré|sumé", "résumé"),
    ],
)
def test_word_at_the_caret(marked: str, word: str | None) -> None:
    text, [(pos, _)] = parse(marked)
    found = word_at(text, pos)
    assert (text[found[0] : found[1]].decode() if found else None) == word


def test_all_occurrences_whole_word_or_exact() -> None:
    text = b"param params param"
    assert all_occurrences(text, b"param", True) == [(0, 5), (13, 18)]
    assert all_occurrences(text, b"param", False) == [(0, 5), (6, 11), (13, 18)]
    assert all_occurrences(text, b"", False) == []


# ----- the real widget ------------------------------------------------------------------------
@pytest.fixture
def editor(qtbot: QtBot) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.resize(800, 400)
    ed.show()
    return ed


def widget_marked(ed: CodeEditor) -> str:
    return mark(ed.text_bytes(), sorted(ed._selection_ranges()))


def test_ctrl_d_from_a_bare_caret_never_takes_a_longer_word(
    editor: CodeEditor, qtbot: QtBot
) -> None:
    """The issue's case: from `param`, `self.params` must not become `self.prms`."""
    editor.set_text("def f(param):\n    self.params = param\n")
    editor.gotoPos(editor.text_bytes().index(b"param") + 2)
    for _ in range(3):
        editor.add_next_occurrence()
    assert widget_marked(editor) == "def f([param]):\n    self.params = [param]\n"
    qtbot.keyClicks(editor, "prm")
    assert editor.text() == "def f(prm):\n    self.params = prm\n"


def test_ctrl_d_from_a_user_selection_takes_the_exact_text(
    editor: CodeEditor, qtbot: QtBot
) -> None:
    editor.set_text("param params Param\n")
    editor.setSelection(5, 0)  # the user selected "param"
    editor.add_next_occurrence()
    assert widget_marked(editor) == "[param] [param]s Param\n"
    editor.add_next_occurrence()  # Param differs in case: nothing more
    assert editor.selections() == 2


def test_ctrl_d_through_the_window_key(editor: CodeEditor, qtbot: QtBot) -> None:
    """Ctrl+D pressed on the window's real shortcut (not a method call)."""
    from app.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    doc = window.new_untitled()
    ed = doc.editor
    ed.set_text("x = param + params\n")
    ed.gotoPos(5)
    ed.focus()
    qtbot.waitUntil(lambda: ed.hasFocus())
    from PySide6.QtCore import Qt

    qtbot.keyClick(ed, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(ed, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert widget_marked(ed) == "x = [param] + params\n"


def test_select_all_occurrences_from_a_bare_caret_is_whole_word(editor: CodeEditor) -> None:
    editor.set_text("param params param\n")
    editor.gotoPos(1)
    editor.select_all_occurrences()
    assert widget_marked(editor) == "[param] params [param]\n"
    editor.setSelection(9, 6)  # the user selected "par" inside params
    editor.select_all_occurrences()
    assert widget_marked(editor) == "[par]am [par]ams [par]am\n"


def test_select_all_is_capped_and_whole_words_hold_at_window_edges() -> None:
    text = b"x " * 50_000
    assert len(all_occurrences(text, b"x", True)) == 10_000  # MAX_OCCURRENCES
    assert len(all_occurrences(text, b"x", False, limit=5)) == 5
    # a search window that ends inside a longer word must not take its start
    assert next_occurrence(b"params param", [(7, 12)], 0, True) is None
    assert next_occurrence(b"param paramsx param", [(0, 5)], 0, True) == (14, 19)


def test_select_all_stops_at_its_limit_and_the_window_says_so(qtbot: QtBot) -> None:
    from PySide6.QtCore import Qt

    from app.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    ed = window.new_untitled().editor
    ed.set_text("x = 1\n" * (CodeEditor.SELECT_ALL_LIMIT + 50))
    ed.gotoPos(0)
    ed.focus()
    qtbot.waitUntil(lambda: ed.hasFocus())
    qtbot.keyClick(
        ed, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert ed.selections() == CodeEditor.SELECT_ALL_LIMIT
    assert "first 2,000 occurrences" in window.statusBar().currentMessage()
