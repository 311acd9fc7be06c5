"""A re-indent is a change where indentation is syntax (Python, YAML, Makefile, ...): the
review never grays it as "whitespace-only"; elsewhere (JavaScript, C, ...) it stays grayed.
Trailing whitespace and blank lines stay cosmetic everywhere. (A user run: a 0.5B model
dedented a nested ``def`` out of its function and the review called it "whitespace/rename
(grayed)".)"""

from __future__ import annotations

import pytest

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone
from forecode_core.apply.pipeline import finish_result
from forecode_core.apply.review import REJOIN_WINDOW, diff_hunks, final_hunks, indentation_matters
from forecode_core.edits.events import FileChange, FileChangeKind
from forecode_core.edits.review import FileReview
from forecode_core.streams import FinishReason

NESTED = """\
def outer(xs):
    def replace(match):
        return match.group(0)
    return [replace(x) for x in xs]
"""
DEDENTED = """\
def outer(xs):
def replace(match):
    return match.group(0)
    return [replace(x) for x in xs]
"""
JS = "function f(a) {\n  if (a) {\n    return 1;\n  }\n}\n"
JS_REINDENTED = "function f(a) {\n    if (a) {\n        return 1;\n    }\n}\n"
YAML = "a:\n  b: 1\n  c: 2\n"
YAML_MOVED = "a:\n  b: 1\nc: 2\n"
MAKE = "all:\n\tcc -o x x.c\n"
MAKE_SPACES = "all:\n    cc -o x x.c\n"
PY_TRAILING = "def f():\n    return 1   \n"
PY_BLANKS = "def f():\n\n\n    return 1\n"
PY_RENAME = "def f():\n    x = 1\n    a()\n    b()\n    c()\n    return x\n"
W_AND_S = ["whitespace-only", "substantive"]

# (path, original, new, kinds)
TABLE = [
    ("encoder.py", NESTED, DEDENTED, ["substantive"]),
    ("app.js", JS, JS_REINDENTED, ["whitespace-only"]),
    ("main.c", JS, JS_REINDENTED, ["whitespace-only"]),
    ("conf.yml", YAML, YAML_MOVED, ["substantive"]),
    ("Makefile", MAKE, MAKE_SPACES, ["substantive"]),
    ("rules.mk", MAKE, MAKE_SPACES, ["substantive"]),
    ("x.coffee", NESTED, DEDENTED, ["substantive"]),
    ("x.nim", NESTED, DEDENTED, ["substantive"]),
    ("x.fs", NESTED, DEDENTED, ["substantive"]),
    ("x.hs", NESTED, DEDENTED, ["substantive"]),
    # trailing whitespace and blank lines stay cosmetic in Python too
    ("a.py", "def f():\n    return 1\n", PY_TRAILING, ["whitespace-only"]),
    ("a.py", "def f():\n    return 1\n", PY_BLANKS, ["whitespace-only"]),
    ("a.py", "def f():\n    return 1\r\n", "def f():\n    return 1\n", ["whitespace-only"]),
    # blank lines moved around lines that keep their indentation: cosmetic; a line moved
    # into the ``if`` block: a change
    ("a.py", "if a:\n    b()\n\nc()\n", "if a:\n\n    b()\nc()\n", ["whitespace-only"] * 2),
    ("a.py", "if a:\n    b()\nc()\n", "if a:\n\n    b()\n    c()\n", W_AND_S),
]


@pytest.mark.parametrize(("path", "original", "new", "kinds"), TABLE)
def test_hunk_kinds_by_language(path: str, original: str, new: str, kinds: list[str]) -> None:
    indent = indentation_matters(path)
    assert [h.kind for h in diff_hunks(original, new, indent_matters=indent)] == kinds
    # the streamed hunks are classified the same way (once enough lines follow them)
    tail = "".join(f"z{i} = 0\n" for i in range(2 * REJOIN_WINDOW))
    streamed = final_hunks(original + tail, new + tail, indent_matters=indent)
    assert [h.kind for h in streamed] == kinds


def test_without_the_flag_a_reindent_is_whitespace_only() -> None:
    assert [h.kind for h in diff_hunks(NESTED, DEDENTED)] == ["whitespace-only"]


def test_a_repeated_rename_that_also_dedents_is_not_grayed_in_python() -> None:
    renamed = PY_RENAME.replace("x", "y")
    dedented = renamed.replace("    y = 1", "y = 1")
    assert [h.kind for h in diff_hunks(PY_RENAME, renamed, indent_matters=True)] == ["rename"] * 2
    kinds = [h.kind for h in diff_hunks(PY_RENAME, dedented, indent_matters=True)]
    assert kinds == ["substantive"] * 2  # the dedented one is no rename, so y=x occurs once
    assert [h.kind for h in diff_hunks(PY_RENAME, dedented)] == ["rename"] * 2


@pytest.mark.parametrize(
    ("path", "language", "matters"),
    [
        ("pkg/encoder.py", "python", True),
        ("pkg/encoder.py", "", True),
        ("a/b/Makefile", "", True),
        ("ci.YAML", "", True),
        ("x", "yaml", True),
        ("app.js", "javascript", False),
        ("lib.rs", "rust", False),
        ("notes.txt", "plaintext", False),
        (".py", "", False),
    ],
)
def test_indentation_matters(path: str, language: str, matters: bool) -> None:
    assert indentation_matters(path, language) is matters


def test_apply_result_of_a_python_file_calls_the_dedent_a_change() -> None:
    """The path the apply review shows at the end of a stream."""
    request = ApplyInput("json/encoder.py", "python", NESTED, DEDENTED)
    result = finish_result(request, DEDENTED, ApplyDone(FinishReason.STOP, source="model"))
    assert [h.kind for h in result.hunks] == ["substantive"]
    js_request = ApplyInput("f.js", "javascript", JS, JS_REINDENTED)
    js = finish_result(js_request, JS_REINDENTED, ApplyDone(FinishReason.STOP, source="model"))
    assert [h.kind for h in js.hunks] == ["whitespace-only"]


def test_multi_file_review_of_a_python_file_calls_the_dedent_a_change() -> None:
    change = FileChange("pkg/encoder.py", FileChangeKind.MODIFIED, NESTED, DEDENTED)
    assert [h.kind for h in FileReview.of(change).hunks] == ["substantive"]
    js = FileChange("web/app.js", FileChangeKind.MODIFIED, JS, JS_REINDENTED)
    assert [h.kind for h in FileReview.of(js).hunks] == ["whitespace-only"]
