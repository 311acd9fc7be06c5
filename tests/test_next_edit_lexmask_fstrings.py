"""Python f-strings in propagation's mask (issue 15: sites "outside strings and comments"): the
expressions of an f-string's replacement fields are code, its text parts are strings. Marked
text for the scanner (``mask_for``: the editor's mask for Python, and the bench's and the
workers') and the stdlib tokenizer (``exact=True``), then ``propose`` on the user's repro."""

from __future__ import annotations

import sys

import pytest
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from app.ui.lex_kinds import editor_mask
from forecode_core.next_edit.events import EditEvent
from forecode_core.next_edit.lexmask import Kind, mask_for
from forecode_core.next_edit.propagation import propose
from forecode_core.text.languages import by_id
from tests.test_next_edit_lexmask_styles import _marks  # marks of a mask: "s", "c", "."

# (text, marks): one mark per character, "s" string, "c" comment, "." code.
FIRES = [
    ('f"{old}!"', "sss...sss"),  # the repro: the field's expression is code
    ("f'{a} {b}'", "sss.sss.ss"),  # single quotes, two fields
    ("F'{a}'", "sss.ss"),  # capital prefix
    ('rf"\\{a}"', "sssss.ss"),  # raw: the backslash is text, the field code
    ('fr"{a}"', "ssss.ss"),
    ("Rf'{a}'", "ssss.ss"),
    ('f"""{a}\n{b}"""', "sssss.sss.ssss"),  # triple quotes over two lines
    ("f'''{a}'''", "sssss.ssss"),
    ('f"{d["k"]}"', "sss..sss.ss"),  # nested same quotes (Python 3.12)
    ("f\"{d['k']}\"", "sss..sss.ss"),  # the other quote inside (any Python 3)
    ('f"{f"{a}"}"', "ssssss.ssss"),  # a nested f-string: its field is code again
    ('f"{{a}} {b}"', "sssssssss.ss"),  # {{ }} escapes stay text
    ('f"{a:>10}"', "sss.ssssss"),  # a format spec is text
    ('f"{a:{w}.{p}}"', "sss.ss.sss.sss"),  # nested fields in the spec are code
    ('f"{a!r}"', "sss.ssss"),  # a conversion is text
    ('f"{a!r:>{w}}"', "sss.sssss.sss"),
    ('f"{a=}"', "sss.sss"),  # {x=}: the expression is code, the "=" text
    ('f"{a = !s}"', "sss..ssssss"),
    ('f"{a:%H:%M}"', "sss.ssssssss"),  # only the first top-level ":" starts the spec
    ('f"{a == b}"', "sss......ss"),  # comparisons are no {x=}
    ('f"{a != b}"', "sss......ss"),  # nor is "!=" a conversion
    ('f"{g(k=1)[1:2]}"', "sss...........ss"),  # "=" and ":" inside brackets are code
    ('f"{a <= b}"', "sss......ss"),
    ('f"\\N{DASH}{a}"', "sssssssssss.ss"),  # a named escape is no field
    ('x = f"{a}" # {b}', "....sss.ss.ccccc"),  # a comment after it stays a comment
    ('f"{a}" + "{b}"', "sss.ss...sssss"),  # a plain string after it stays a string
]

NEVER = [
    ('"{a}"', "sssss"),  # a plain string's braces are text
    ("'{a}'", "sssss"),
    ('b"{a}"', "ssssss"),  # bytes have no fields
    ('rb"{a}"', "sssssss"),
    ('r"{a}"', "ssssss"),
    ('u"{a}"', "ssssss"),
    ('"""{a}"""', "sssssssss"),
    ('buf"{a}"', "...sssss"),  # "uf" ends a name here, no prefix
    ('f"{{a}}"', "ssssssss"),  # only escapes: no field
    ("# f'{a}'", "cccccccc"),  # inside a comment
    ('"f{a}"', "ssssss"),  # an f inside a plain string
]


# Python 3.11's tokenizer splits 3.12's nested same quotes (f"{d["k"]}"); the scanner reads
# them on any Python, tokenize from 3.12.
CASES = [
    pytest.param(text, marks, exact, id=f"{'tokenize' if exact else 'scanner'}-{text!r}")
    for exact in (False, True)
    for text, marks in FIRES + NEVER
    if not (exact and text.startswith('f"{d["') and sys.version_info < (3, 12))
]


@pytest.mark.parametrize(("text", "marks", "exact"), CASES)
def test_fstring_fields_on_marked_text(text: str, marks: str, exact: bool) -> None:
    assert len(text) == len(marks)
    assert _marks(text, mask_for(text, "m.py", exact=exact)) == marks


def test_an_open_one_line_fstring_stops_at_its_line_end() -> None:
    text = 'a = f"{b\nc = d\n'  # typing: the field and the string are left open
    mask = mask_for(text, "m.py")
    assert mask.kind_at(text.index("c =")) is Kind.CODE
    assert mask.kind_at(text.index("b")) is Kind.CODE
    text = 'a = f"x {b:>\nc = "d"\n'  # left open in its format spec
    assert _marks(text, mask_for(text, "m.py")) == "....sssss.ss.....sss."


def test_fields_nested_too_deep_are_read_as_plain_strings() -> None:
    deep = "x = " + 'f"{' * 3000 + "a" + '}"' * 3000 + "\ny = b\n"
    for exact in (False, True):  # no RecursionError: the literal is read as plain strings
        mask = mask_for(deep, "m.py", exact=exact)
        assert mask.kind_at(deep.index("f")) is Kind.STRING
        assert mask.kind_at(deep.index("y = b")) is Kind.CODE
    ok = 'f"{' * 8 + "a" + '}"' * 8  # eight levels: still read as fields
    assert mask_for(ok, "m.py").kind_at(ok.index("a")) is Kind.CODE
    spec = 'f"{a:{b:{c}}}"'  # fields in a spec's field
    assert _marks(spec, mask_for(spec, "m.py")) == "sss.ss.ss.ssss"


def test_other_languages_keep_their_rules() -> None:
    js = "let s = `${a}` + f'{b}';"  # no Python f-strings outside Python-like files
    assert mask_for(js, "m.js").kind_at(js.index("b")) is Kind.STRING


# ---------------------------------------------------------------- propagation: the user's repro


def _sites(after: str, old: str, new: str, path: str = "m.py") -> list[str]:
    """The lines of the sites ``propose`` offers after the first ``old`` became ``new``."""
    at = after.index(new)
    event = EditEvent(at, old, new, 0, 0.0, 0.0, 0)
    sites = propose(after, [event], at + len(new), path=path)
    return [after[after.rfind("\n", 0, p.start) + 1 : after.find("\n", p.start)] for p in sites]


def test_a_rename_reaches_the_fstring_field() -> None:
    after = 'def f(new):\n    a = old + 1\n    return f"{old}!"\n'
    assert _sites(after, "old", "new") == ["    a = old + 1", '    return f"{old}!"']


@pytest.mark.parametrize(
    "line",
    [
        '    return f"old {x}"',  # the literal text
        '    return f"{{old}}"',  # an escape
        '    return f"{x:old}"',  # a format spec
        '    return f"{x!r} old"',
        '    return "{old}"',  # a plain string
        "    return x  # {old}",
    ],
)
def test_a_rename_never_reaches_fstring_text(line: str) -> None:
    after = f"def f(new):\n    a = old + 1\n{line}\n"
    assert _sites(after, "old", "new") == ["    a = old + 1"]


JINJA_LIKE = (
    "import markupsafe\n"
    "\n"
    "def urlize(text, rel):\n"
    "    rel_attr = escape(rel)\n"
    "    target_attr = f' target=\"{markupsafe.escape(target)}\"'\n"
    "    return f'<a href=\"{markupsafe.escape(url)}\"{rel_attr}>'\n"
)


def test_removing_a_module_prefix_reaches_the_fstring_fields() -> None:
    """jinja's utils.py: ``markupsafe.`` removed on one line, the same call inside two
    f-strings below (the bench's case that offered nothing)."""
    before = JINJA_LIKE.replace("escape(rel)", "markupsafe.escape(rel)")
    at = before.index("markupsafe.escape(rel)")
    event = EditEvent(at, "markupsafe.", "", 0, 0.0, 0.0, 0)
    sites = propose(JINJA_LIKE, [event], at, path="utils.py")
    assert [(JINJA_LIKE[p.start : p.end], p.new) for p in sites] == [
        ("markupsafe.escape", "escape"),
        ("markupsafe.escape", "escape"),
    ]
    assert [JINJA_LIKE.count("\n", 0, p.start) for p in sites] == [4, 5]


def test_the_editor_reads_python_fstrings_with_this_mask(qtbot: QtBot) -> None:
    """A real Python editor offscreen: its mask for propagation is the scanner's (None from
    the lexer styles), so a rename offers the f-string's field there too."""
    after = 'def f(new):\n    a = old + 1\n    return f"{old}!"\n'
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.set_language(by_id("python"))
    ed.set_text(after)
    assert editor_mask(ed, "m.py", after) is None
    at = after.index("new")
    event = EditEvent(at, "old", "new", 0, 0.0, 0.0, 0)
    sites = propose(after, [event], at + 3, path="m.py", mask=editor_mask(ed, "m.py", after))
    assert [after.count("\n", 0, p.start) for p in sites] == [1, 2]
