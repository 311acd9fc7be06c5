"""Post-processing of raw completions, as tables of marked text.

Each row is ``prefixˇsuffix`` (the cursor written as ``ˇ``), the model's raw output, and the
expected suggestion text, or ``DROP(reason)`` for a dropped one. Each rule has its own table, run
on the rule alone; the last tables run the whole pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from forecode_core.completion.postprocess import (
    RULES,
    Context,
    Suggestion,
    block_end,
    brackets,
    empty,
    make_context,
    overwritten,
    postprocess,
    repeats_prefix,
    repeats_suffix,
    single_line,
    suffix_overlap,
    syntax,
    trailing_space,
    truncated_tail,
)


@dataclass(frozen=True)
class DROP:
    reason: str


def ctx_of(marked: str, language: str = "python", **kw: bool) -> Context:
    assert marked.count("ˇ") == 1, "mark the cursor exactly once"
    prefix, suffix = marked.split("ˇ")
    return make_context(prefix, suffix, language, **kw)


def test_rules_are_listed_in_order() -> None:
    assert [r.name for r in RULES] == [
        "truncated_tail",
        "single_line",
        "block_end",
        "trailing_space",
        "repeats_suffix",
        "repeats_prefix",
        "suffix_overlap",
        "mid_line",
        "empty",
        "brackets",
        "syntax",
    ]


@pytest.mark.parametrize(
    ("marked", "raw", "truncated", "multiline", "expected"),
    [
        ("x = ˇ", "1\ny = 2\nz = comp", True, True, "1\ny = 2"),
        ("x = ˇ", "1\ny = 2\n", True, True, "1\ny = 2"),  # the cut came at a line end
        ("x = ˇ", "foo(a, b", True, True, "foo(a, b"),  # one partial line: kept
        ("x = ˇ", "1\ny = 2\nz = comp", False, True, "1\ny = 2\nz = comp"),  # not truncated
        ("x = ˇ", "1\ny = 2\nz = comp", True, False, "1\ny = 2\nz = comp"),  # single_line's job
    ],
)
def test_truncated_tail(
    marked: str, raw: str, truncated: bool, multiline: bool, expected: str
) -> None:
    ctx = ctx_of(marked, truncated=truncated, multiline=multiline)
    assert truncated_tail(raw, ctx) == expected


@pytest.mark.parametrize(
    ("raw", "multiline", "expected"),
    [
        ("foo()\nbar()", False, "foo()"),
        ("foo()\nbar()", True, "foo()\nbar()"),
        ("\nbar()", False, ""),
        ("foo()", False, "foo()"),
    ],
)
def test_single_line(raw: str, multiline: bool, expected: str) -> None:
    assert single_line(raw, ctx_of("x = ˇ", multiline=multiline)) == expected


@pytest.mark.parametrize(
    ("marked", "language", "raw", "expected"),
    [
        # Python: the first dedent below the cursor's block ends the completion.
        ("def f():\n    x = foo(ˇ", "python", "a, b)\n    y = 2\nz = 3", "a, b)\n    y = 2"),
        ("def f():\n    ˇ", "python", "return 1\n\nprint(f())", "return 1\n"),
        # The cursor line opens a block: the body must be deeper than it.
        ("def f():ˇ", "python", "\n    return 1\n\ny = 2", "\n    return 1\n"),
        ("if x:ˇ", "python", "\n    a()\nelse:\n    b()", "\n    a()"),
        # At column 0 of an empty line, the completion's first line sets the block.
        ("def f():\nˇ", "python", "    return 1\nprint(1)", "    return 1"),
        # Closing brackets at the block's own depth stay.
        (
            "    x = [ˇ",
            "python",
            "\n        1,\n    ]\n    y()\nz()",
            "\n        1,\n    ]\n    y()",
        ),
        (
            "import os\nˇ",
            "python",
            "import sys\n\ndef main():\n    pass",
            "import sys\n\ndef main():\n    pass",
        ),
        ("a:\n  b: 1\n  ˇ", "yaml", "c: 2\nd: 3", "c: 2"),
        # Tabs count as 8 columns.
        ("def f():\n\tˇ", "python", "a()\n\tb()\nc()", "a()\n\tb()"),
        # Brace languages: a } closing a block the suffix already closes ends it before the }.
        ("function f() {\n  ˇ\n}", "javascript", "return 1;\n}\n\nfunction g() {}", "return 1;\n"),
        ("if (a) {\n  ˇ\n}", "c", "x();\n} else {\n  y();\n}", "x();\n"),
        ("if (a) { ˇ }", "java", "x(); }", "x(); "),
        # ... and one the suffix does not close is kept, with the rest of its line.
        ("function f() {\n  ˇ", "typescript", "return 1;\n});\nfoo();", "return 1;\n});"),
        # Braces the completion opens itself are its own business.
        (
            "fn main() {\n    ˇ\n}",
            "rust",
            "if x {\n        y();\n    }\n",
            "if x {\n        y();\n    }\n",
        ),
        # A } in a string or comment is not a brace.
        ("int f() {\n  ˇ\n}", "c", 'puts("}"); // }\n}', 'puts("}"); // }\n'),
        # Other languages: untouched.
        ("# Titleˇ", "markdown", "\n\n}\nText", "\n\n}\nText"),
    ],
)
def test_block_end(marked: str, language: str, raw: str, expected: str) -> None:
    assert block_end(raw, ctx_of(marked, language)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("foo()  \n\n\n", "foo()"),
        ("\n    return 1\n  ", "\n    return 1"),
        ("  x", "  x"),
        (" \n \t", ""),
    ],
)
def test_trailing_space(raw: str, expected: str) -> None:
    assert trailing_space(raw, ctx_of("ˇ")) == expected


@pytest.mark.parametrize(
    ("marked", "raw", "dropped"),
    [
        ("x = 1\nˇ\ny = 2\nz = 3", "y = 2", True),
        ("x = 1\nˇ\ny = 2\nz = 3", "y  =  2\n  z = 3", True),  # whitespace normalised
        ("x = 1\nˇ\n\n\ny = 2\n\nz = 3\nw = 4", "y = 2\nz = 3\nw = 4\nv = 5", True),  # 3 lines
        ("x = ˇfoo()\nbar()", "foo()", True),  # repeats the rest of the cursor line
        ("if (a) {\n  x();\nˇ}\n", "}", True),
        ("x = 1\nˇ\ny = 2\nz = 3", "y = 3", False),
        ("x = 1\nˇ\ny = 2\nz = 3", "w = 0\ny = 2", False),
        ("x = 1\nˇ\ny = 2\nz = 3", "y = 2\nw = 0", False),
        ("x = 1\nˇ", "y = 2", False),  # nothing after the cursor
        ("x = 1\nˇ\n\n", "y = 2", False),
    ],
)
def test_repeats_suffix(marked: str, raw: str, dropped: bool) -> None:
    assert (repeats_suffix(raw, ctx_of(marked)) is None) == dropped


@pytest.mark.parametrize(
    ("marked", "raw", "dropped"),
    [
        ("import os\nimport traceback\nˇ", "import traceback", True),
        ("import traceback\n\n\nˇ", "import traceback", True),  # blank lines between
        ("import traceback\nimport ˇ", "traceback", True),  # the line typed in part
        ("    x = compute(a)\n    ˇ", "x  =  compute(a)", True),  # whitespace normalised
        ("import traceback\nˇ", "import traceback\nimport sys", True),  # first line counts
        ("import traceback\nˇ", "import sys", False),
        ("import traceback\nimport sys\nˇ", "import traceback", False),  # not the line above
        ("    pass\nˇ", "pass", False),  # short lines may repeat
        ("}\nˇ", "}", False),
        ("x += 1\nˇ", "x += 1", False),
        ("ˇ", "import traceback", False),  # nothing above
        ("import traceback\nˇ", "", False),
    ],
)
def test_repeats_prefix(marked: str, raw: str, dropped: bool) -> None:
    assert (repeats_prefix(raw, ctx_of(marked)) is None) == dropped


@pytest.mark.parametrize(
    ("marked", "raw", "expected"),
    [
        ("foo(ˇ)", "a, b)", "a, b"),
        ("foo(ˇ):", "a):", "a"),
        ('print("ˇ")', 'hi")', "hi"),
        ("x = [ˇ]", "1, 2]", "1, 2"),
        ("foo(ˇ)", "\n    a,\n    b)", "\n    a,\n    b"),
        # The completion's own closing bracket is not an overlap.
        ("print(ˇ)", "foo()", "foo()"),
        ("print(ˇ)", "foo())", "foo()"),
        # Letters are never trimmed: "max" + "x)" is not an overlap.
        ("foo(ˇx)", "max", "max"),
        ("foo(ˇ)", "a, b", "a, b"),
        ("foo(ˇ", "a)", "a)"),  # nothing after the cursor
        ("foo(ˇ)\nbar()", ")", ""),
    ],
)
def test_suffix_overlap(marked: str, raw: str, expected: str) -> None:
    assert suffix_overlap(raw, ctx_of(marked)) == expected


@pytest.mark.parametrize(("raw", "dropped"), [("", True), (" \n\t ", True), ("x", False)])
def test_empty(raw: str, dropped: bool) -> None:
    assert (empty(raw, ctx_of("ˇ")) is None) == dropped


@pytest.mark.parametrize(
    ("marked", "language", "raw", "dropped"),
    [
        ("foo(ˇ", "python", "a, b)", False),
        ("foo(ˇ)", "python", "a, b)", True),  # the suffix closes it already
        ("foo(ˇ)", "python", "a, (b)", False),
        ("xs = [ˇ", "python", "1, 2)", True),  # wrong kind
        ("foo([ˇ", "python", "1)", True),  # closes ( while [ is the innermost
        ("foo([ˇ", "python", "1])", False),
        ("ˇ", "python", "x)", True),
        ("ˇ", "python", "(x]", True),
        ("ˇ", "python", "f(x[0], {'a': (1, 2)})", False),
        # Brackets in strings and comments do not count, in the prefix, suffix or completion.
        ("s = ')'\nfoo(ˇ", "python", "a)  # )", False),
        ('foo("(", ˇ', "python", "a)", False),
        ("x = '''\n(\n'''\nˇ", "python", "f()", False),
        ('print("a(ˇ")', "python", "b", False),  # the cursor is inside a string
        ('print("a(ˇ")', "python", 'b")', True),  # the suffix closes both already
        ("int main() {\n  /* { */ ˇ", "c", "return 0;\n}", False),
        ("int main() {\n  ˇ\n}", "c", "}", True),
        ("const s = `${a}\n(`;\nf(ˇ", "javascript", "1)", False),
        ("fn f<'a>(x: &'a str) {\n    ˇ", "rust", "x.len()\n}", False),
        # No known syntax: not checked.
        ("ˇ", "markdown", "1) first", False),
    ],
)
def test_brackets(marked: str, language: str, raw: str, dropped: bool) -> None:
    assert (brackets(raw, ctx_of(marked, language)) is None) == dropped


@pytest.mark.parametrize(
    ("marked", "language", "raw", "expected"),
    [
        # A later line breaks the balance: the lines before it are kept.
        ("int main() {\n  ˇ\n}", "c", "return 0;\n}", "return 0;"),
        (
            "def main(ˇ",
            "python",
            "path):\n    print(path)\n    print(f(x))))",
            "path):\n    print(path)",
        ),
        ("x = [ˇ", "python", "1,\n    2)\n]", "1,"),
        # ... never an empty or blank remainder: dropped
        ("x = [ˇ", "python", "\n)", None),
        ("x = [ˇ", "python", "1)\n2", None),  # the first line breaks it
    ],
)
def test_brackets_keeps_the_lines_before_a_break(
    marked: str, language: str, raw: str, expected: str | None
) -> None:
    assert brackets(raw, ctx_of(marked, language)) == expected


@pytest.mark.parametrize(
    ("marked", "raw", "dropped"),
    [
        ("    return ˇ\n", "a b", True),
        ("x = ˇ\n", "1 +* 2", True),
        ("for i in ˇ", "range(10) do", True),
        ("    if x ˇ", "== 1:", False),  # a block opener: judged with a body
        ("    elˇ", "se:", False),
        ("    excˇ", "ept ValueError as exc:", False),
        ("    finˇ", "ally:", False),
        ("    @propˇ", "erty", False),  # a decorator: judged with a function below it
        ("x = foo(ˇ)", "a, b", False),
        # With the auto-closed ")" the line is judged: unfinished is not wrong (":" comes next).
        ("def main(ˇ)", "path", False),
        ("if f(ˇ)", "x", False),
        ("def main(ˇ)", "path path", True),
        # Not judged: the line goes on (an open bracket, a string, a backslash) ...
        ('@click.option("--shout", ˇ', "1, help=", False),
        ("x = ˇ", "[1, 2,", False),
        ('s = """abcˇ', "def", False),
        ("x = 1 + ˇ", "2 \\", False),
        # ... or continues a bracket opened on a line above, or is inside a string.
        ("def f(a,\n      bˇ", "=1):", False),
        ('x = """\nˇ', "not ( python", False),
        # An error in the user's own text is not the completion's (newer syntax, say).
        ("if x = 1 and ˇ", "y:", False),
        ("    case Point(x=0, ˇ", "y=0):", False),
        # Only Python is checked.
        ("let x = ˇ", "1 +* 2", False),
    ],
)
def test_syntax(marked: str, raw: str, dropped: bool) -> None:
    language = "javascript" if marked.startswith("let") else "python"
    assert (syntax(raw, ctx_of(marked, language)) is None) == dropped
    if dropped:
        prefix, suffix = marked.split("ˇ")
        assert postprocess(raw, prefix, suffix, language) == Suggestion("", "invalid_syntax")


def test_a_dropping_rule_names_its_reason() -> None:
    reasons = {r.name: r.reason for r in RULES}
    assert postprocess("   ", "x = ", "", "python") == Suggestion("", reasons["empty"])


@pytest.mark.parametrize(
    ("marked", "language", "raw", "options", "expected"),
    [
        # Python
        (
            "def add(a, b):\n    ˇ",
            "python",
            "return a + b\n\n\ndef sub(a, b):\n    return a - b",
            {},
            "return a + b",
        ),
        # The model typed the call's ")" and went on with the next line, already there: the
        # repeated line goes, and the ")" typed replaces the one on the line.
        (
            "def f():\n    x = max(ˇ)\n    return x",
            "python",
            "a, b)\n    return x",
            {},
            Suggestion("a, b)", overwrite=1),
        ),
        (
            "def f():\n    x = max(ˇ)\n    return y",
            "python",
            "a, b)\n    return x",
            {},
            Suggestion("a, b)\n    return x", overwrite=1),
        ),
        ("def f():\n    x = max(ˇ)\n    return x", "python", "a, b)", {}, "a, b"),
        ("items = [ˇ]", "python", "1, 2, 3]", {}, "1, 2, 3"),
        ("x = 1\nˇ\ny = 2\n", "python", "y = 2\n", {}, DROP("repeats_suffix")),
        ("x = ˇ", "python", "  \n\n", {}, DROP("empty")),
        ("x = ˇ", "python", "", {}, DROP("empty")),
        (
            "x = ˇ",
            "python",
            "compute(a,\n          b)\nprint(x)",
            {"multiline": False},
            "compute(a,",
        ),
        ("for i in range(ˇ):", "python", "10):", {}, "10"),
        (
            "total = 0\nfor x in xs:\n    ˇ",
            "python",
            "total += x\n    print(total)\nprint(done",
            {"truncated": True},
            "total += x\n    print(total)",
        ),
        ("x = foo(ˇ", "python", "a]", {}, DROP("unbalanced_brackets")),
        (
            "class A:\n    def f(self):ˇ",
            "python",
            "\n        pass\n\n    def g(self):\n",
            {},
            "\n        pass",
        ),
        # CRLF in and out
        ("def f():\r\n    ˇ\r\n", "python", "return 1\r\nx = 2", {}, "return 1"),
        # Brace languages
        (
            "function f(a) {\n  ˇ\n}\n",
            "javascript",
            "return a * 2;\n}\n\nfunction g() {",
            {},
            "return a * 2;",
        ),
        (
            "function f(a) {\n  ˇ",
            "javascript",
            "return a * 2;\n}\n\nfunction g() {",
            {},
            "return a * 2;\n}",
        ),
        ("int main(void) {\n    printf(ˇ);\n}", "c", '"hi\\n");', {}, '"hi\\n"'),
        ("fn main() {\n    let v = vec![ˇ];\n}", "rust", "1, 2, 3];", {}, "1, 2, 3"),
        ("func main() {\n\tˇ\n}", "go", "}", {}, DROP("empty")),
        ("if (a) {\n  ˇ\n}", "java", "b();\n}", {}, "b();"),
        # Non-ASCII text passes through
        ("s = 'héllo ˇ'", "python", "wörld ✓'", {}, "wörld ✓"),
        # Plain text: no block or bracket rules
        ("Dear ˇ", "plaintext", "Sir (or Madam:\n\nhello", {}, "Sir (or Madam:\n\nhello"),
    ],
)
def test_pipeline(
    marked: str,
    language: str,
    raw: str,
    options: dict[str, bool],
    expected: str | DROP | Suggestion,
) -> None:
    prefix, suffix = marked.split("ˇ")
    got = postprocess(raw, prefix, suffix, language, **options)
    if isinstance(expected, DROP):
        assert got == Suggestion("", expected.reason)
    elif isinstance(expected, Suggestion):
        assert got == expected
    else:
        assert got == Suggestion(expected)


def test_a_large_file_is_fast() -> None:
    import time

    prefix = "def f(x):\n    return (x, [1, 2], {'a': '(('})  # ))\n" * 20_000 + "y = g(ˇ"
    suffix = ")\n" + "z = 1\n" * 20_000
    started = time.perf_counter()
    got = postprocess("1, 2)", prefix.replace("ˇ", ""), suffix, "python")
    assert got == Suggestion("1, 2")
    assert time.perf_counter() - started < 0.5


# ----- closers already on the line (auto-closed brackets and quotes) ------------------------
#
# Each row: the document with the cursor (``ˇ``) as the editor holds it after typing with
# auto-closing on, the model's raw output, and the document after accepting the suggestion
# (``text`` inserted at the cursor over the first ``overwrite`` characters after it), or
# ``DROP(reason)``. VS Code's rule: accepting ``a, b)`` over the auto-inserted ``)`` does not
# leave ``))``.


def accepted(marked: str, raw: str, language: str = "python") -> str | DROP:
    prefix, suffix = marked.split("ˇ")
    got = postprocess(raw, prefix, suffix, language)
    if got.reason_dropped:
        return DROP(got.reason_dropped)
    assert suffix[: got.overwrite].strip(" \t)]}\"'`;,:") == ""  # only closers are replaced
    return prefix + got.text + suffix[got.overwrite :]


@pytest.mark.parametrize(
    ("marked", "language", "raw", "expected"),
    [
        # The suggestion closes the bracket itself and goes on: it replaces the auto-closed one.
        (
            "import os\ndef main(ˇ)",
            "python",
            "path):\n    print(os.getcwd())",
            "import os\ndef main(path):\n    print(os.getcwd())",
        ),
        (
            "x = foo(ˇ)",
            "python",
            "1)\ny = foo(2)\nprint(x, y)",
            "x = foo(1)\ny = foo(2)\nprint(x, y)",
        ),
        ("x = f(ˇ)", "python", "a)[0]", "x = f(a)[0]"),
        ("for i in range(ˇ):", "python", "10):  # ten", "for i in range(10):  # ten"),
        ("if f(ˇ):", "python", "x) and y", "if f(x) and y:"),  # the ":" stays after it
        # A FIM model fills in the middle: inserted before the ")", the ":" still to come.
        ("import os\ndef main(ˇ)", "python", "path", "import os\ndef main(path)"),
        ("foo(ˇ);", "javascript", "a); // call", "foo(a); // call"),
        # Quotes: the suggestion ends the string and goes on.
        ('x = "ˇ"', "python", 'hello" + name', 'x = "hello" + name'),
        ("d = {'ˇ'}", "python", "a': 1, 'b': 2}", "d = {'a': 1, 'b': 2}"),
        ('print("ˇ")', "python", 'hi", end="")', 'print("hi", end="")'),
        ('def f():\n    """ˇ"""', "python", 'Say hi."""', 'def f():\n    """Say hi."""'),
        # Ends with the closers: the end is trimmed (an insert), as before.
        ("f(g(ˇ))", "python", "x))", "f(g(x))"),
        ("f(g(ˇ))", "python", "x)", "f(g(x))"),
        ("items = [ˇ]", "python", "1, 2]", "items = [1, 2]"),
        # The suggestion's own brackets stay its own: the line's closer is kept after it.
        ("print(ˇ)", "python", "foo()", "print(foo())"),
        ("print(ˇ)", "python", "foo(1) + 2)", "print(foo(1) + 2)"),
        ("print('ˇ')", "python", "first second", "print('first second')"),
        # Multi-line: the closers go after the last line when that is where they belong.
        ("foo(ˇ)", "python", "\n    a,\n    b)", "foo(\n    a,\n    b)"),
        # Still dropped: a closer of the wrong kind, or a line that does not parse.
        ("x = f(ˇ)", "python", "a)]", DROP("unbalanced_brackets")),
        ("x = f(ˇ)", "python", "a) b c", DROP("invalid_syntax")),
    ],
)
def test_closers_already_on_the_line(
    marked: str, language: str, raw: str, expected: str | DROP
) -> None:
    assert accepted(marked, raw, language) == expected


def test_overwritten_characters_appear_in_order_in_the_first_line() -> None:
    """The user's closers are retyped, never lost: what is replaced is in the suggestion's
    first line, in order; with none there, nothing is replaced."""
    ctx = ctx_of("def main(ˇ)")
    assert overwritten("path):", ctx) == [1]
    assert overwritten("path", ctx) == [0]
    assert overwritten("\n    pass", ctx) == [0]
    assert overwritten("x", ctx_of("foo(ˇbar)")) == [0]  # the rest is not closers only
    # the streamed first line alone gives the same answer as the whole suggestion
    whole = postprocess("path):\n    pass", "def main(", ")", "python")
    first = postprocess("path):\n    pass", "def main(", ")", "python", multiline=False)
    assert (whole.overwrite, first.overwrite, first.text) == (1, 1, "path):")
