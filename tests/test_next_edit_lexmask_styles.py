"""Propagation's mask from the editor's lexer styles (issue 15: sites "outside strings and
comments, by the lexer's styles"): the pure ``mask_from_style_kinds`` on marked text, and real
editors offscreen (JavaScript, C, Rust) where the core's C-like scanner would propose a site
inside a string and the lexer's styles do not."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.ui import lex_kinds
from app.ui.editor import CodeEditor
from app.ui.lex_kinds import editor_mask, kind_table
from forecode_core.next_edit.events import EditEvent
from forecode_core.next_edit.lexmask import (
    KIND_CODES,
    Kind,
    LexMask,
    mask_for,
    mask_from_style_kinds,
    prefers_scanner,
)
from forecode_core.next_edit.propagation import propose
from forecode_core.text.languages import by_id

# Marked text: a run of "s" or "c" under a character marks it string or comment.
MARKED = [
    # (text, marks: one per character, "." code)
    ('x = "ab" # c', "....ssss.ccc"),
    ("a /* b */ c", "..ccccccc.."),
    ("", ""),
    ("plain code", ".........."),
    ('"é" + ü // ß', "sss......ccc"),  # non-ASCII: byte codes, str offsets
    ("'日本' x", "ssss.."),
]


def _codes(text: str, marks: str) -> bytes:
    """One code per UTF-8 byte: each character's mark repeated over its bytes."""
    code = {".": 0, "s": KIND_CODES[Kind.STRING], "c": KIND_CODES[Kind.COMMENT]}
    return b"".join(bytes([code[m]]) * len(ch.encode()) for ch, m in zip(text, marks, strict=True))


def _marks(text: str, mask: LexMask) -> str:
    out = ["."] * len(text)
    for start, end, kind in mask.spans():
        for i in range(start, end):
            out[i] = "s" if kind is Kind.STRING else "c"
    return "".join(out)


@pytest.mark.parametrize(("text", "marks"), MARKED)
def test_mask_from_style_kinds_on_marked_text(text: str, marks: str) -> None:
    mask = mask_from_style_kinds(text, _codes(text, marks))
    assert _marks(text, mask) == marks


def test_mask_from_style_kinds_short_or_long_codes() -> None:
    text = 'a "b" c'
    assert _marks(text, mask_from_style_kinds(text, b"\x00\x00\x01")) == "..s...."
    assert _marks(text, mask_from_style_kinds(text, _codes(text, "..sss..") + b"\x02" * 9)) == (
        "..sss.."
    )


def test_python_keeps_the_scanner() -> None:
    assert prefers_scanner("pkg/mod.py") and prefers_scanner("stubs.pyi")
    for path in ("a.js", "a.ts", "main.go", "lib.rs", "x.c", "Makefile", "py"):
        assert not prefers_scanner(path)


# ----------------------------------------------------------------------- real editors offscreen

JS = (
    "function area(box) {\n"
    "  return box.w * box.h;\n"
    "}\n"
    "const ok = /'/.test(s) + ' area ';\n"  # a regex with a quote: the scanner's string ends early
    "let a = area(b);\n"
    "// area\n"
)
C = (
    "int area(int x) { return x; }\n"
    'const char *s = "see \\\narea now";\n'  # a string continued by a backslash
    "int y = area(2); /* area */\n"
)
RUST = (
    "fn area(x: u32) -> u32 { x }\n"
    'let s = r#"say "area" here"#;\n'  # a raw string holding quotes
    "let y = area(2); // area\n"
)


def _editor(qtbot: QtBot, language: str, text: str) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.set_language(by_id(language))
    ed.set_text(text)
    return ed


def _rename_sites(text: str, path: str, mask: LexMask | None) -> list[str]:
    """Sites propagation offers after ``area`` was renamed to ``surface`` in the first line
    (the text as it is after), each as its line."""
    after = text.replace("area", "surface", 1)
    at = after.index("surface")
    event = EditEvent(at, "area", "surface", 0, 0.0, 0.0, 0)
    sites = propose(after, [event], at + len("surface"), path=path, mask=mask)
    return [after[after.rfind("\n", 0, p.start) + 1 : after.find("\n", p.start)] for p in sites]


@pytest.mark.parametrize(
    ("language", "path", "text", "code_line"),
    [
        ("javascript", "shapes.js", JS, "let a = area(b);"),
        ("c", "shapes.c", C, "int y = area(2); /* area */"),
        ("rust", "shapes.rs", RUST, "let y = area(2); // area"),
    ],
)
def test_rename_sites_by_the_lexer_styles(
    qtbot: QtBot, language: str, path: str, text: str, code_line: str
) -> None:
    after = text.replace("area", "surface", 1)
    ed = _editor(qtbot, language, after)
    mask = editor_mask(ed, path, after)
    assert mask is not None
    # the lexer's styles: only the code use is a site
    assert _rename_sites(text, path, mask) == [code_line]
    # the core's C-like scanner alone proposes a site inside the string (why styles are used)
    assert len(_rename_sites(text, path, mask_for(after, path))) > 1


def test_javascript_styles_mark_the_regex_string_and_comment(qtbot: QtBot) -> None:
    ed = _editor(qtbot, "javascript", JS)
    mask = editor_mask(ed, "shapes.js", JS)
    assert mask is not None
    found = {(JS[s:e].strip(), k) for s, e, k in mask.spans()}
    assert ("/'/", Kind.STRING) in found
    assert ("' area '", Kind.STRING) in found
    assert ("// area", Kind.COMMENT) in found
    assert mask.kind_at(JS.index("area(b)")) is Kind.CODE


def test_non_ascii_text_keeps_str_offsets(qtbot: QtBot) -> None:
    text = '// é ü\nconst s = "ß area";\nlet v = area;\n'
    ed = _editor(qtbot, "javascript", text)
    mask = editor_mask(ed, "a.js", text)
    assert mask is not None
    assert mask.kind_at(text.index("area")) is Kind.STRING
    assert mask.kind_at(text.index("area;")) is Kind.CODE
    assert mask.kind_at(text.index("ü")) is Kind.COMMENT


def test_python_and_plain_text_and_huge_files_fall_back(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    ed = _editor(qtbot, "python", "x = 'a'\n")
    assert editor_mask(ed, "a.py", "x = 'a'\n") is None  # propagation's scanner
    assert kind_table(by_id("python")) is not None  # (styles exist: only the choice differs)
    plain = _editor(qtbot, "plaintext", "x\n")
    assert editor_mask(plain, "notes.txt", "x\n") is None
    monkeypatch.setattr(lex_kinds, "MAX_STYLED_BYTES", 100)  # a file over the cap: the scanner
    big = "let a = 1;\n" * 10
    ed_big = _editor(qtbot, "javascript", big)
    assert editor_mask(ed_big, "big.js", big) is None
    monkeypatch.setattr(lex_kinds, "MAX_STYLED_BYTES", 1000)
    assert editor_mask(ed_big, "big.js", big) is not None


def test_the_model_inputs_window_starts_on_code_not_in_a_docstring(qtbot: QtBot) -> None:
    from app.ui.owners.next_edit import _window_start

    lines = [f"value_{k} = {k}" for k in range(150)]
    lines += ['NOTE = """', *[f"text at column 0, {k} (" for k in range(30)], '"""']
    lines += [f"    indented_{k} = ({k}" if k % 2 else f"after_{k} = {k}" for k in range(80)]
    ed = _editor(qtbot, "python", "\n".join(lines) + "\n")
    assert _window_start(ed, 170) == 150  # the docstring's first line: it starts as code
    assert _window_start(ed, 183) == 182  # a top-level line below the docstring
    assert _window_start(ed, 184) == 184  # itself: top-level code
    assert _window_start(ed, 185) == 184  # an indented line: the top-level one above
