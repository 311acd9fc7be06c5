"""Auto-closing brackets and quotes: the pure rules on marked text (``|`` is the caret,
``[...]`` a selection), then the real editor widget typing keys offscreen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from forecode_core.store.settings import Settings
from forecode_core.text.autoclose import on_backspace, on_char, on_enter, rules_for, wrap
from forecode_core.text.languages import by_id


def type_char(marked: str, ch: str, lang: str = "python", over: bool = False) -> str | None:
    before, after = marked.split("|")
    typed = on_char(ch, before, after, rules_for(lang), over_auto_closer=over)
    if typed is None:
        return None
    if typed.skip:
        return before + after[: typed.skip] + "|" + after[typed.skip :]
    return before + typed.insert[: typed.caret] + "|" + typed.insert[typed.caret :] + after


@pytest.mark.parametrize(
    ("marked", "ch", "lang", "after"),
    [
        ("f|", "(", "python", "f(|)"),
        ("x = |", "[", "python", "x = [|]"),
        ("if (a) |", "{", "javascript", "if (a) {|}"),
        ("f(|)", "[", "python", "f([|])"),  # before a closer: closes
        ("f(|, b)", "(", "python", "f((|), b)"),  # before a comma: closes
        ("|abc", "(", "python", None),  # before a word: not closed
        ("x = |", '"', "python", 'x = "|"'),
        ("x = |", "'", "python", "x = '|'"),
        ("x = f|", '"', "python", 'x = f"|"'),  # a string prefix
        ("x = rb|", "'", "python", "x = rb'|'"),
        ("don|", "'", "python", None),  # after a word character
        ("print(x|)", '"', "python", None),
        ('s = "abc |', "'", "python", None),  # inside a string
        ('s = "a\\" |', "'", "python", None),  # an escaped quote keeps the string open
        ('s = "a" + |', "'", "python", "s = \"a\" + '|'"),
        ("x = 1  # it|", '"', "python", None),  # in a comment
        ("it|", "'", "plaintext", None),  # prose: no ' pairs
        ("say |", '"', "plaintext", 'say "|"'),
        ("const s = |", "`", "javascript", "const s = `|`"),
        ("fn f<|", "'", "rust", None),  # lifetimes
        ('    x = ""|', '"', "python", '    x = """|"""'),  # a docstring
        ("''|", "'", "python", "'''|'''"),
        ('x = """|', '"', "python", None),  # a fourth quote is just a quote
        ('x = ""|', '"', "javascript", 'x = """|"'),  # no triple quotes there: a new pair
    ],
)
def test_typing_an_opener_or_quote(marked: str, ch: str, lang: str, after: str | None) -> None:
    assert type_char(marked, ch, lang) == after


def test_typing_the_closer_steps_over_only_an_auto_inserted_one() -> None:
    assert type_char("f(|)", ")", over=True) == "f()|"
    assert type_char("f(|)", ")", over=False) is None  # typed by hand: inserted as usual
    assert type_char('x = "|"', '"', over=True) == 'x = ""|'
    assert type_char("f(|]", ")", over=True) is None


def test_backspace_between_an_auto_inserted_pair_deletes_both() -> None:
    py = rules_for("python")
    assert on_backspace("f(", ")", py, over_auto_closer=True)
    assert on_backspace('x = "', '"', py, over_auto_closer=True)
    assert not on_backspace("f(", ")", py, over_auto_closer=False)
    assert not on_backspace("f(", "]", py, over_auto_closer=True)
    assert not on_backspace("", ")", py, over_auto_closer=True)


def test_wrap_a_selection() -> None:
    py = rules_for("python")
    assert wrap("(", "a + b", py) == "(a + b)"
    assert wrap('"', "name", py) == '"name"'
    assert wrap("x", "name", py) is None
    assert wrap("(", "a", py, brackets=False) is None
    assert wrap("'", "it", rules_for("plaintext")) is None


def test_enter_between_a_pair() -> None:
    assert on_enter("if (a) {", "}")
    assert on_enter("f(", "  )")
    assert not on_enter("f(", "]")
    assert not on_enter("x", "")


def test_settings_default_on_and_can_be_turned_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from forecode_core.store.settings import load_settings

    assert Settings().auto_closing_brackets and Settings().auto_closing_quotes
    path = tmp_path / "settings.json"
    path.write_text('{"editor.autoClosingBrackets": "never", "editor.autoClosingQuotes": "x"}')
    settings, problems = load_settings(path)
    assert not settings.auto_closing_brackets
    assert settings.auto_closing_quotes  # a bad value falls back to the default, with a word
    assert any("editor.autoClosingQuotes" in p for p in problems)


# ----- the real widget ----------------------------------------------------------------------
@pytest.fixture
def editor(qtbot: QtBot) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.set_language(by_id("python"))
    ed.resize(800, 400)
    ed.show()
    ed.focus()
    return ed


def marked(ed: CodeEditor) -> str:
    text = ed.text_bytes()
    s, e = ed.selectionStart(), ed.selectionEnd()
    if s == e:
        return (text[:s] + b"|" + text[s:]).decode()
    return (text[:s] + b"[" + text[s:e] + b"]" + text[e:]).decode()


def test_widget_types_pairs_steps_over_and_deletes(editor: CodeEditor, qtbot: QtBot) -> None:
    qtbot.keyClicks(editor, "print(")
    assert marked(editor) == "print(|)"
    qtbot.keyClicks(editor, '"hi')
    assert marked(editor) == 'print("hi|")'
    qtbot.keyClicks(editor, '")')  # steps over both auto-inserted closers
    assert marked(editor) == 'print("hi")|'
    qtbot.keyClicks(editor, " + f(")
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)  # deletes the pair
    assert marked(editor) == 'print("hi") + f|'
    editor.undo()
    assert "f(" in editor.text()  # the pair was one undo step
    editor.set_text("")
    qtbot.keyClicks(editor, "don't")
    assert editor.text() == "don't"
    editor.set_text("")
    qtbot.keyClicks(editor, '"""')  # a docstring, as VS Code types it
    assert marked(editor) == '"""|"""'


def test_widget_wraps_a_selection_and_splits_braces(editor: CodeEditor, qtbot: QtBot) -> None:
    editor.set_text("x = a + b")
    editor.setSelection(9, 4)
    qtbot.keyClicks(editor, "(")
    assert marked(editor) == "x = ([a + b])"
    editor.set_language(by_id("javascript"))
    editor.set_text("if (a) ")
    editor.gotoPos(editor.textLength())
    qtbot.keyClicks(editor, "{")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert marked(editor) == "if (a) {\n    |\n}"
    qtbot.keyClicks(editor, "b();")
    assert editor.text() == "if (a) {\n    b();\n}"


def test_widget_a_closer_typed_by_hand_is_not_stepped_over(
    editor: CodeEditor, qtbot: QtBot
) -> None:
    editor.set_text("f()")
    editor.gotoPos(2)
    qtbot.keyClicks(editor, ")")
    assert editor.text() == "f())"


def test_widget_off_when_the_setting_is_off(editor: CodeEditor, qtbot: QtBot) -> None:
    s = Settings()
    assert s.auto_closing_brackets and s.auto_closing_quotes
    editor.auto_close.configure(brackets=False, quotes=False)
    qtbot.keyClicks(editor, 'f("')
    assert editor.text() == 'f("'


def test_widget_pairs_and_wraps_at_every_caret(editor: CodeEditor, qtbot: QtBot) -> None:
    """Several carets (Ctrl+D, Alt+click) get the same treatment at each, as VS Code."""
    editor.set_text("a = name\nb = name\n")
    editor.gotoPos(5)
    editor.add_next_occurrence()
    editor.add_next_occurrence()
    assert editor.selections() == 2
    qtbot.keyClicks(editor, '"')  # wraps both selections
    assert editor.text() == 'a = "name"\nb = "name"\n'
    assert [(editor.selectionNStart(i), editor.selectionNEnd(i)) for i in range(2)] == [
        (5, 9),
        (16, 20),
    ]
    editor.set_text("f\ng\n")
    editor.setSelection(1, 1)
    editor.addSelection(3, 3)
    qtbot.keyClicks(editor, "(x")
    assert editor.text() == "f(x)\ng(x)\n"
    qtbot.keyClicks(editor, ")")  # steps over both auto-inserted closers
    assert editor.text() == "f(x)\ng(x)\n"
    assert sorted(editor.selectionNCaret(i) for i in range(2)) == [4, 9]
    qtbot.keyClicks(editor, ";")
    assert editor.text() == "f(x);\ng(x);\n"


def test_widget_a_typed_docstring_steps_over_all_three_closing_quotes(
    editor: CodeEditor, qtbot: QtBot
) -> None:
    """A user run typed a one-line docstring as on any editor, closing quotes and all: the
    first closing quote stepped over, the other two were inserted, '""' was left after it."""
    qtbot.keyClicks(editor, '"""Return the keys."""')
    assert marked(editor) == '"""Return the keys."""|'
    editor.set_text("")
    qtbot.keyClicks(editor, '"""')
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)  # between the pairs: one quote of each goes
    assert marked(editor) == '""|""'
