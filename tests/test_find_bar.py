"""The find/replace bar, driven through the keyboard on a real ScintillaEdit."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyside6_scintilla import ScintillaEdit

from app.ui.find_bar import MAX_MATCHES, FindBar

SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier
CTRL_ALT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


class Harness:
    def __init__(self, qtbot) -> None:
        self.qtbot = qtbot
        self.host = QWidget()
        layout = QVBoxLayout(self.host)
        self.bar = FindBar(self.host)
        self.editor = ScintillaEdit(self.host)
        self.editor.setCodePage(65001)
        layout.addWidget(self.bar)
        layout.addWidget(self.editor)
        self.bar.set_editor(self.editor)
        qtbot.addWidget(self.host)
        self.host.resize(700, 400)
        self.host.show()

    # what the user sees
    def text(self) -> str:
        return bytes(self.editor.getText(self.editor.textLength() + 1)).rstrip(b"\0").decode()

    def selected(self) -> str:
        return bytes(self.editor.getSelText()).rstrip(b"\0").decode()

    def label(self) -> str:
        return self.bar.count_label.text()

    def set_text(self, text: str, caret: int = 0) -> None:
        self.editor.setText(text)
        self.editor.emptyUndoBuffer()
        self.editor.setEmptySelection(caret)

    def type_query(self, text: str) -> None:
        self.qtbot.keyClicks(self.bar.query_edit, text)

    def key(self, key: Qt.Key, mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        widget = self.host.focusWidget() or self.bar.query_edit
        self.qtbot.keyClick(widget, key, mods)


@pytest.fixture
def h(qtbot) -> Harness:
    return Harness(qtbot)


def test_typing_searches_from_the_caret_and_shows_the_count(h: Harness) -> None:
    h.set_text("foo bar foo baz foo", caret=5)
    h.bar.open_find()
    assert h.bar.isVisible() and h.bar.query_edit.hasFocus()
    assert not h.bar.replace_edit.isVisible()
    h.type_query("fo")
    assert (h.editor.selectionStart(), h.selected()) == (8, "fo")
    h.type_query("o")
    assert (h.editor.selectionStart(), h.selected()) == (8, "foo")
    assert h.label() == "2 of 3"
    assert h.bar.match_count() == 3
    h.type_query("x")
    assert h.label() == "No results"
    assert h.bar.match_count() == 0


def test_enter_f3_and_shift_variants_walk_matches_with_wraparound(h: Harness) -> None:
    h.set_text("foo bar foo baz foo")
    h.bar.open_find()
    h.type_query("foo")
    assert h.label() == "1 of 3"
    h.key(Qt.Key.Key_Return)
    assert (h.editor.selectionStart(), h.label()) == (8, "2 of 3")
    h.key(Qt.Key.Key_F3)
    assert (h.editor.selectionStart(), h.label()) == (16, "3 of 3")
    h.key(Qt.Key.Key_Return)  # wraps to the top
    assert (h.editor.selectionStart(), h.label()) == (0, "1 of 3")
    h.key(Qt.Key.Key_Return, SHIFT)  # wraps to the bottom
    assert (h.editor.selectionStart(), h.label()) == (16, "3 of 3")
    h.key(Qt.Key.Key_F3, SHIFT)
    assert (h.editor.selectionStart(), h.label()) == (8, "2 of 3")
    assert h.selected() == "foo"


def test_moving_the_caret_off_a_match_shows_question_mark(h: Harness) -> None:
    h.set_text("foo foo")
    h.bar.open_find()
    h.type_query("foo")
    h.editor.setEmptySelection(2)  # the label follows the caret once the editor updates
    h.qtbot.waitUntil(lambda: h.label() == "? of 2", timeout=2000)


def test_match_case_whole_word_and_regex_toggles(h: Harness) -> None:
    h.set_text("Foo foo food afoo f.o")
    h.bar.open_find()
    h.type_query("foo")
    assert h.bar.match_count() == 4
    h.key(Qt.Key.Key_C, ALT)
    assert h.bar.case_button.isChecked()
    assert h.bar.match_count() == 3
    assert h.label() == "1 of 3" and h.editor.selectionStart() == 4
    h.key(Qt.Key.Key_W, ALT)
    assert h.bar.word_button.isChecked()
    assert h.bar.match_count() == 1
    h.key(Qt.Key.Key_C, ALT)
    h.key(Qt.Key.Key_W, ALT)
    h.bar.query_edit.setText("f.o")
    assert h.bar.match_count() == 1  # literal dot
    h.key(Qt.Key.Key_R, ALT)
    assert h.bar.regex_button.isChecked()
    assert h.bar.match_count() == 5  # Foo foo foo foo f.o
    h.key(Qt.Key.Key_W, ALT)  # whole word also applies to regex matches
    assert h.bar.match_count() == 3  # Foo foo f.o


def test_all_matches_are_highlighted_while_open(h: Harness) -> None:
    h.set_text("foo bar foo")
    h.bar.open_find()
    h.type_query("foo")
    ind = FindBar.INDICATOR
    assert [h.editor.indicatorValueAt(ind, p) for p in (0, 2, 4, 8, 10)] == [1, 1, 0, 1, 1]
    h.key(Qt.Key.Key_Escape)
    assert h.editor.indicatorValueAt(ind, 8) == 0


def test_editing_the_document_recounts_after_a_short_delay(h: Harness) -> None:
    h.set_text("foo\n")
    h.bar.open_find()
    h.type_query("foo")
    assert h.label() == "1 of 1"
    h.editor.appendText(len("foo foo\n"), "foo foo\n")
    h.qtbot.waitUntil(lambda: h.label() == "1 of 3", timeout=2000)
    assert h.editor.indicatorValueAt(FindBar.INDICATOR, 8) == 1


def test_replace_one_replaces_the_match_and_selects_the_next(h: Harness) -> None:
    h.set_text("foo bar foo baz foo", caret=5)
    h.bar.open_replace()
    assert h.bar.replace_edit.isVisible()
    h.type_query("foo")
    h.qtbot.keyClicks(h.bar.replace_edit, "X")
    h.qtbot.keyClick(h.bar.replace_edit, Qt.Key.Key_Return)
    assert h.text() == "foo bar X baz foo"
    assert (h.editor.selectionStart(), h.selected()) == (14, "foo")
    assert h.label() == "2 of 2"
    h.qtbot.keyClick(h.bar.replace_edit, Qt.Key.Key_Return)
    assert h.text() == "foo bar X baz X"
    assert (h.editor.selectionStart(), h.label()) == (0, "1 of 1")


def test_replace_all_is_one_undo_step(h: Harness) -> None:
    original = "a foo\nb foo foo\n\tfoo;\n"
    h.set_text(original)
    h.bar.open_replace()
    h.type_query("foo")
    h.qtbot.keyClicks(h.bar.replace_edit, "longer_name")
    h.qtbot.keyClick(h.bar.replace_edit, Qt.Key.Key_Return, CTRL_ALT)
    assert h.text() == original.replace("foo", "longer_name")
    assert h.label() == "Replaced 4"
    h.editor.undo()
    assert h.text() == original
    assert not h.editor.canUndo()


def test_regex_groups_in_the_replacement(h: Harness) -> None:
    h.set_text("call(12, 34)\ncall(5, 6)\n")
    h.bar.open_replace()
    h.key(Qt.Key.Key_R, ALT)
    h.type_query(r"call\((\d+), (\d+)\)")
    assert h.bar.match_count() == 2
    h.bar.replace_edit.setText(r"call($2, \1) $& $$")
    assert h.bar.replace_all() == 2
    assert h.text() == "call(34, 12) call(12, 34) $\ncall(6, 5) call(5, 6) $\n"


def test_empty_regex_matches_do_not_hang(h: Harness) -> None:
    h.set_text("a\nb\nc")
    h.bar.open_replace()
    h.key(Qt.Key.Key_R, ALT)
    h.type_query("^")
    assert h.bar.match_count() == 3
    h.bar.replace_edit.setText("# ")
    assert h.bar.replace_all() == 3
    assert h.text() == "# a\n# b\n# c"


def test_non_ascii_text_before_matches(h: Harness) -> None:
    h.set_text("héllo wörld → foo\nnaïve «foo» 日本語 foo\n")
    h.bar.open_replace()
    h.type_query("foo")
    assert h.selected() == "foo" and h.label() == "1 of 3"
    h.key(Qt.Key.Key_Return)
    h.key(Qt.Key.Key_Return)
    assert h.selected() == "foo" and h.label() == "3 of 3"
    h.bar.query_edit.setText("wörld")
    assert h.selected() == "wörld"
    h.bar.query_edit.setText("foo")
    h.bar.replace_edit.setText("fœ")
    assert h.bar.replace_all() == 3
    assert h.text() == "héllo wörld → fœ\nnaïve «fœ» 日本語 fœ\n"
    h.key(Qt.Key.Key_R, ALT)
    h.bar.query_edit.setText("(.)œ")
    h.bar.replace_edit.setText("$1ü")
    h.bar.replace_all()
    assert h.text() == "héllo wörld → fü\nnaïve «fü» 日本語 fü\n"


def test_invalid_regex_shows_a_message_instead_of_crashing(h: Harness) -> None:
    h.set_text("f(x) f(y)")
    h.bar.open_find()
    h.key(Qt.Key.Key_R, ALT)
    h.type_query("f(")
    assert h.label().startswith("Invalid regular expression")
    assert h.bar.query_edit.property("invalid") is True
    assert "border" in h.bar.query_edit.styleSheet()
    assert h.bar.match_count() == 0
    assert not h.bar.find_next()
    assert h.bar.replace_all() == 0
    assert h.text() == "f(x) f(y)"
    h.key(Qt.Key.Key_Backspace)
    h.type_query(r"\(")
    assert h.label() == "1 of 2"
    assert h.bar.query_edit.property("invalid") is False
    assert h.bar.query_edit.styleSheet() == ""


def test_open_find_seeds_from_a_one_line_selection(h: Harness) -> None:
    h.set_text("alpha beta\nbeta gamma beta.x\n")
    h.editor.setSelection(10, 6)  # "beta"
    h.bar.open_find()
    assert h.bar.query_edit.text() == "beta"
    assert h.bar.query_edit.selectedText() == "beta"
    assert h.editor.selectionStart() == 6 and h.label() == "1 of 3"
    h.bar.close_bar()
    h.bar.regex_button.setChecked(True)
    h.editor.setSelection(28, 22)  # "beta.x", escaped for the regex
    h.bar.open_find()
    assert h.bar.query_edit.text() == r"beta\.x"
    assert h.label() == "1 of 1"
    h.editor.setSelection(15, 6)  # spans two lines: keep the old query
    h.bar.open_find()
    assert h.bar.query_edit.text() == r"beta\.x"


def test_escape_hides_the_bar_and_focuses_the_editor(h: Harness) -> None:
    h.set_text("foo")
    h.host.activateWindow()
    h.qtbot.waitUntil(h.host.isActiveWindow, timeout=2000)
    h.bar.open_replace()
    h.qtbot.keyClick(h.bar.query_edit, Qt.Key.Key_Escape)
    assert not h.bar.isVisible()
    assert h.editor.hasFocus()


def test_huge_match_counts_are_capped(h: Harness) -> None:
    h.set_text("ab " * (MAX_MATCHES + 50))
    h.bar.open_find()
    h.type_query("ab")
    assert h.bar.match_count() == MAX_MATCHES
    assert h.label() == f"1 of {MAX_MATCHES}+"
    h.key(Qt.Key.Key_Return, SHIFT)  # wraps to the last match, beyond the cap
    assert h.label() == f"? of {MAX_MATCHES}+"
    assert h.editor.selectionStart() == 3 * (MAX_MATCHES + 49)


def test_enter_right_after_an_edit_still_finds_the_new_match(h: Harness) -> None:
    h.set_text("foo\n")
    h.bar.open_find()
    h.type_query("foo")
    h.editor.appendText(len("bar foo\n"), "bar foo\n")  # recount is still pending
    h.key(Qt.Key.Key_Return)
    assert (h.editor.selectionStart(), h.label()) == (8, "2 of 2")


def test_large_documents_search_after_a_typing_pause(h: Harness) -> None:
    filler = "x" * 99 + "\n"
    h.set_text(filler * 11_000 + "needle\n" + filler + "needle\n")
    h.bar.open_find()
    h.type_query("needle")
    h.qtbot.waitUntil(lambda: h.label() == "1 of 2", timeout=2000)
    assert h.selected() == "needle"
    h.bar.query_edit.clear()
    h.type_query("need")
    h.key(Qt.Key.Key_Return)  # before the pause: selects the first match, not the second
    assert (h.label(), h.editor.selectionStart()) == ("1 of 2", 1_100_000)
