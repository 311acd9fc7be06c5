"""Editing behaviour of the real Scintilla widget, offscreen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from app.ui.highlight import categories_for
from app.ui.theme import DARK, LIGHT, bgr
from forecode_core.text.languages import by_id, language_for_path


@pytest.fixture
def editor(qtbot: QtBot) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.resize(800, 400)
    ed.show()
    return ed


def style_fore(editor: CodeEditor, style: int) -> int:
    return editor.send(2481, style)  # SCI_STYLEGETFORE


def style_back(editor: CodeEditor, style: int) -> int:
    return editor.send(2482, style)  # SCI_STYLEGETBACK


def style_category(editor: CodeEditor, needle: str, occurrence: int = 0) -> str | None:
    text = editor.text_bytes()
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.index(needle.encode(), pos + 1)
    editor.colourise(0, -1)
    return categories_for(editor.language).get(editor.styleAt(pos))


# A sample per language the editor must highlight, with tokens and the category each must get.
SAMPLES = [
    (
        "a.py",
        'def f(x):\n    return "s"  # c\n',
        [("def", "keyword"), ('"s"', "string"), ("# c", "comment"), ("f(", "function")],
    ),
    (
        "a.js",
        'const x = 1; // c\nlet s = "t";\n',
        [("const", "keyword"), ("// c", "comment"), ('"t"', "string"), ("1", "number")],
    ),
    (
        "a.ts",
        "let n: number = 2; /* c */\n",
        [("let", "keyword"), ("number", "type"), ("/* c */", "comment")],
    ),
    (
        "a.c",
        "#include <x.h>\nint main() { return 0; }\n",
        [("#include", "preprocessor"), ("int", "keyword")],
    ),
    ("a.cpp", "class A {}; // c\n", [("class", "keyword"), ("// c", "comment")]),
    ("a.rs", 'fn main() { let s = "x"; }\n', [("fn", "keyword"), ('"x"', "string")]),
    (
        "a.go",
        'func main() { var s string = "x" }\n',
        [("func", "keyword"), ("string", "type"), ('"x"', "string")],
    ),
    ("A.java", "public class A { int x = 3; }\n", [("public", "keyword"), ("3", "number")]),
    (
        "a.json",
        '{"k": 1, "s": "v", "b": true}\n',
        [('"k"', "property"), ("1", "number"), ('"v"', "string"), ("true", "keyword")],
    ),
    ("a.yaml", "key: value # c\nn: 3\n", [("key", "property"), ("# c", "comment")]),
    (
        "a.toml",
        '[table]\nkey = "v" # c\n',
        [("table", "type"), ('"v"', "string"), ("# c", "comment")],
    ),
    (
        "a.md",
        "# Title\n\n**bold** and `code`\n",
        [("#", "heading"), ("bold", "strong"), ("`code`", "string")],
    ),
    (
        "a.html",
        '<p class="x">hi</p><!-- c -->\n',
        [("p", "tag"), ("class", "attribute"), ("<!-- c -->", "comment")],
    ),
    (
        "a.css",
        "body { color: red; } /* c */\n",
        [("body", "tag"), ("color", "property"), ("/* c */", "comment")],
    ),
    (
        "a.sh",
        'if [ -n "$x" ]; then echo "y"; fi # c\n',
        [("if", "keyword"), ('"y"', "string"), ("# c", "comment")],
    ),
]


@pytest.mark.parametrize(("name", "text", "tokens"), SAMPLES)
def test_languages_are_highlighted(
    editor: CodeEditor, name: str, text: str, tokens: list[tuple[str, str]]
) -> None:
    language = language_for_path(name)
    assert language.lexer is not None
    editor.set_language(language)
    editor.set_text(text)
    for token, category in tokens:
        assert style_category(editor, token) == category, token
    # and the theme colours are really applied to those styles
    pos = editor.text_bytes().index(tokens[0][0].encode())
    colour = DARK.categories[tokens[0][1]][0]
    assert style_fore(editor, editor.styleAt(pos)) == bgr(colour)


def test_theme_switch_recolours(editor: CodeEditor) -> None:
    editor.set_language(by_id("python"))
    editor.set_text("import os\n")
    editor.apply_theme(LIGHT)
    assert style_back(editor, 32) == bgr(LIGHT.background)
    pos = 0
    assert style_fore(editor, editor.styleAt(pos)) == bgr(LIGHT.categories["keyword"][0])
    editor.apply_theme(DARK)
    assert style_back(editor, 32) == bgr(DARK.background)


def test_shebang_and_names_pick_the_language() -> None:
    assert language_for_path("script", "#!/usr/bin/env python3").id == "python"
    assert language_for_path("Makefile").id == "makefile"
    assert language_for_path("x.unknown").id == "plaintext"
    with pytest.raises(KeyError, match="known: python"):
        by_id("cobol")


def test_auto_indent_after_colon_and_brace(editor: CodeEditor, qtbot: QtBot) -> None:
    editor.set_language(by_id("python"))
    editor.set_text("def f():")
    editor.gotoPos(editor.textLength())
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClicks(editor, "x = 1")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClicks(editor, "y")
    assert editor.text() == "def f():\n    x = 1\n    y"
    editor.set_language(by_id("javascript"))
    editor.set_text("if (a) {")
    editor.gotoPos(editor.textLength())
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClicks(editor, "b();")
    assert editor.text() == "if (a) {\n    b();"


def test_bracket_matching_highlights_the_pair(editor: CodeEditor, qtbot: QtBot) -> None:
    editor.set_text("f(a[1], {b})")
    editor.gotoPos(1)  # before "("
    qtbot.wait(10)
    editor._on_update_ui(1)
    assert editor.braceMatch(1, 0) == 11
    # indicator of the highlight: STYLE_BRACELIGHT is applied by Scintilla at paint time, so
    # check the bad-brace path too
    editor.set_text("f(a")
    editor.gotoPos(2)
    assert editor.braceMatch(1, 0) == -1


def test_toggle_comment_is_one_undo_step(editor: CodeEditor) -> None:
    editor.set_language(by_id("python"))
    editor.set_text("a = 1\nb = 2\nc = 3\n")
    editor.setSelection(editor.positionFromLine(2), 0)  # lines 1-2, ends at column 0 of line 3
    editor.toggle_comment()
    assert editor.text() == "# a = 1\n# b = 2\nc = 3\n"
    editor.toggle_comment()
    assert editor.text() == "a = 1\nb = 2\nc = 3\n"
    editor.toggle_comment()
    editor.undo()
    assert editor.text() == "a = 1\nb = 2\nc = 3\n"


def test_ctrl_d_adds_next_occurrence_and_typing_edits_all(editor: CodeEditor, qtbot: QtBot) -> None:
    editor.set_text("foo bar foo baz foo\n")
    editor.gotoPos(1)
    editor.add_next_occurrence()  # selects the word
    editor.add_next_occurrence()
    editor.add_next_occurrence()
    assert editor.selections() == 3
    qtbot.keyClicks(editor, "qux")
    assert editor.text() == "qux bar qux baz qux\n"


def test_go_to_line_clamps_and_moves_caret(editor: CodeEditor) -> None:
    editor.set_text("\n".join(f"line {i}" for i in range(1, 101)))
    editor.go_to_line(40, 3)
    assert editor.caret_line_col() == (40, 3)
    editor.go_to_line(1000)
    assert editor.caret_line_col()[0] == 100


def test_alt_up_moves_line_and_window_keys_are_not_eaten(editor: CodeEditor, qtbot: QtBot) -> None:
    editor.set_text("one\ntwo\n")
    editor.gotoPos(editor.positionFromLine(1))
    qtbot.keyClick(editor, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert editor.text() == "two\none\n"
    # Scintilla's own Ctrl+D (duplicate line) is cleared: the key belongs to the window.
    qtbot.keyClick(editor, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert editor.text() == "two\none\n"
