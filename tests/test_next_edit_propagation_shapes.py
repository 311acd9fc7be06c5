"""Propagation's shapes measured on real commits' rename/template edits (``bench next_edit``):
whole lines deleted, a name qualified or unqualified, a bare ``except:`` narrowed. Table tests
on marked text: ``«old»`` is a site expected to be offered (in the text after the user's edit,
in the order offered), ``‸`` the caret; each fails without its rule."""

from __future__ import annotations

import pytest

from forecode_core.next_edit.propagation import (
    Edit,
    cross_file_pattern,
    pattern_for_history,
    propose,
)


def unmark(marked: str) -> tuple[str, list[tuple[int, int]], int]:
    """The clean text, the ``«»`` spans in it (text order) and the caret (``‸``, else 0)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    caret = open_at = 0
    for ch in marked:
        if ch == "«":
            open_at = len(out)
        elif ch == "»":
            spans.append((open_at, len(out)))
        elif ch == "‸":
            caret = len(out)
        else:
            out.append(ch)
    return "".join(out), spans, caret


def edit(before: str, old: str, new: str, nth: int = 0) -> tuple[str, Edit]:
    pos = -1
    for _ in range(nth + 1):
        pos = before.index(old, pos + 1)
    return before[:pos] + new + before[pos + len(old) :], Edit(pos, old, new)


def sites(after: str, history: list[Edit], caret: int) -> list[tuple[str, str]]:
    return [(p.old, p.new) for p in propose(after, history, caret, path="a.py")]


# ---------------------------------------------------------------- whole lines deleted

DELETIONS = [
    pytest.param(
        "def f(\n    a: int,\n    stream: bool = False,\n) -> None:\n    pass\n\n\n"
        "def g(\n    stream: bool = False,\n    b: int = 0,\n) -> None:\n    pass\n",
        "    stream: bool = False,\n",
        ["    stream: bool = False,\n"],
        id="a-parameter-line-deleted-with-its-indent",
    ),
    pytest.param(
        "@threadpool\ndef test_a():\n    pass\n\n\nclass T:\n"
        "    @threadpool\n    def test_b(self):\n        pass\n",
        "@threadpool\n",
        ["    @threadpool\n"],
        id="a-decorator-at-another-indent",
    ),
    pytest.param(
        "x = 1\n# s = Session()\ns = 'Session()'\n    s = Session()\n",
        "x = 1\n",
        [],
        id="no-site-in-a-comment-or-string",
    ),
]


@pytest.mark.parametrize(("before", "line", "expected"), DELETIONS)
def test_a_deleted_line_offers_the_same_line_elsewhere(
    before: str, line: str, expected: list[str]
) -> None:
    after, e = edit(before, line, "")
    got = propose(after, [e], e.offset, path="a.py")
    assert [p.old for p in got] == expected
    for p in got:  # the whole line goes, with its indent and newline: no blank line left
        assert p.new == "" and after[p.start - 1 : p.start] in ("", "\n")
        assert after[p.end - 1] == "\n"


def test_a_deleted_statement_repeats_elsewhere() -> None:
    before = (
        "def a():\n    s = requests.Session()\n    s.get()\n\n"
        "def b():\n    s = requests.Session()\n"
    )
    after, e = edit(before, "    s = requests.Session()\n", "")
    assert sites(after, [e], e.offset) == [("    s = requests.Session()\n", "")]


WAITS = [
    pytest.param(
        "def f():\n    a = 1\n    b = 2\n    c = 3\n\ndef g():\n    a = 1\n    b = 2\n",
        "    a = 1\n    b = 2\n",
        id="several-lines-deleted",
    ),
    pytest.param(
        "".join(f"    self.indent()\n    write({k})\n" for k in range(5)),
        "    self.indent()\n",
        id="a-common-call-made-for-its-effect",
    ),
    pytest.param(
        "try:\n    x = 1\n    # note\nexcept:\n    pass\n",
        "    # note\n",
        id="a-comment-line-is-no-code",
    ),
]


@pytest.mark.parametrize(("before", "lines"), WAITS)
def test_one_deleted_line_of_these_shapes_waits(before: str, lines: str) -> None:
    after, e = edit(before, lines, "")
    assert propose(after, [e], e.offset, path="a.py") == []


def test_a_second_deletion_lifts_the_wait_and_no_line_deletion_reaches_other_files() -> None:
    before = "".join(f"    self.indent()\n    write({k})\n" for k in range(5))
    t1, e1 = edit(before, "    self.indent()\n", "", nth=0)
    t2, e2 = edit(t1, "    self.indent()\n", "", nth=0)
    assert len(propose(t2, [e1, e2], e2.offset, path="a.py")) == 3
    t, e = edit("a = 1\nprint(x)\nb = 2\nprint(x)\n", "print(x)\n", "")
    assert pattern_for_history(t, [e], "a.py") is not None
    assert cross_file_pattern(t, [e], "a.py") is None


def test_a_line_made_a_comment_is_no_deletion() -> None:
    # "print(x)\ny = 1\nprint(x)\n" with its first line commented out
    after = "# print(x)\ny = 1\nprint(x)\n"
    assert propose(after, [Edit(0, "", "# ")], 2, path="a.py") == []


# ---------------------------------------------------------------- whole lines inserted


def test_inserted_lines_go_between_the_same_two_lines_elsewhere() -> None:
    before = (
        "a = Limits(\n    max_connections=m,\n)\n"
        "b = Limits(\n    max_connections=m,\n    x=1,\n)\n"
        "c = Limits(\n    max_connections=m,\n)\n"
    )
    new_line = "    keepalive_expiry=k,\n"
    at = before.index(")\n")
    after = before[:at] + new_line + before[at:]
    e = Edit(at, "", new_line)
    got = propose(after, [e], at + len(new_line), path="a.py")
    assert [(p.old, p.new) for p in got] == [
        ("max_connections=m,\n)", "max_connections=m,\n    keepalive_expiry=k,\n)")
    ]
    assert after.index("c = Limits") < got[0].start
    pattern = pattern_for_history(after, [e], "a.py")
    assert pattern is not None and pattern.whole_line
    assert cross_file_pattern(after, [e], "a.py") is None  # one example: this file's


INSERT_NONE = [
    pytest.param("x = 1\n\ny = 2\nx = 1\n\n", "\n", "z = 3\n", id="a-blank-line-above"),
    pytest.param("x = 1\n# c\nx = 1\n# c\n", "x = 1\n", "z = 3\n", id="a-comment-below"),
    pytest.param("x = 1\ny = 2\nx = 1\ny = 2\n", "x = 1\n", "\n", id="a-blank-line-inserted"),
]


@pytest.mark.parametrize(("before", "above", "lines"), INSERT_NONE)
def test_lines_inserted_without_code_either_side_are_no_pattern(
    before: str, above: str, lines: str
) -> None:
    at = before.index(above) + len(above)
    after = before[:at] + lines + before[at:]
    assert propose(after, [Edit(at, "", lines)], at + len(lines), path="a.py") == []


# ---------------------------------------------------------------- qualified names

QUALIFY = [
    pytest.param(
        "from x import main\n\nr = invoke(main, [1])\nq = invoke(main, [2])\nmain = 3\n"
        "def main():\n    pass\nobj.main\nf(main=1)\n",
        "invoke(main, [1])",
        "invoke(httpx.main, [1])",
        "from x import main\n\nr = invoke(httpx.main‸, [1])\nq = invoke(«main», [2])\nmain = 3\n"
        "def main():\n    pass\nobj.main\nf(main=1)\n",
        id="qualified-at-uses-only",
    ),
    pytest.param(
        "from a import (\n    Markup,\n)\n\ndef f() -> Markup:\n    return Markup(x)\n",
        "-> Markup",
        "-> markupsafe.Markup",
        "from a import (\n    Markup,\n)\n\n"
        "def f() -> markupsafe.Markup‸:\n    return «Markup»(x)\n",
        id="never-in-a-parenthesised-import",
    ),
    pytest.param(
        "import typing\n\ndef f(x: typing.List) -> typing.List:\n    y: typing.List = []\n"
        "    return a.typing.List\n",
        "x: typing.List",
        "x: List",
        "import typing\n\ndef f(x: List‸) -> «typing.List»:\n    y: «typing.List» = []\n"
        "    return a.typing.List\n",
        id="unqualified-whole-chains-only",
    ),
    pytest.param(
        "class C:\n    def a(self):\n        decoder = self.decoder\n        self.decoder.x()\n"
        "        return self.decoder.y()\n\n    def b(self):\n        self.decoder.z()\n",
        "self.decoder.x",
        "decoder.x",
        "class C:\n    def a(self):\n        decoder = self.decoder\n        decoder‸.x()\n"
        "        return «self.decoder».y()\n\n    def b(self):\n        self.decoder.z()\n",
        id="self-attribute-to-a-local-in-its-function",
    ),
]


@pytest.mark.parametrize(("before", "old", "new", "marked"), QUALIFY)
def test_a_name_qualified_or_unqualified(before: str, old: str, new: str, marked: str) -> None:
    after, spans, caret = unmark(marked)
    after2, e = edit(before, old, new)
    assert after2 == after
    got = propose(after, [e], caret, path="a.py")
    assert [(p.start, p.end) for p in got] == spans
    # each site becomes what the example's chain became
    new_chain = {"main": "httpx.main", "Markup": "markupsafe.Markup"}
    new_chain |= {"typing.List": "List", "self.decoder": "decoder"}
    assert all(p.new == new_chain[p.old] for p in got)
    pattern = pattern_for_history(after, [e], "a.py")
    assert pattern is not None and pattern.chain in ("qualify", "unqualify")
    assert cross_file_pattern(after, [e], "a.py") is None  # each file imports what it uses


def test_two_unqualified_names_give_a_template() -> None:
    before = "import typing\na: typing.List\nb: typing.Dict\nc: typing.Set\n"
    t1, e1 = edit(before, "typing.List", "List")
    t2, e2 = edit(t1, "typing.Dict", "Dict")
    assert sites(t2, [e1, e2], e2.offset + 4) == [("typing.Set", "Set")]


def test_another_name_swapped_in_is_no_qualified_name() -> None:
    # a chain replaced (``bench next_edit``, 2026-12-05-e): one name swapped for another
    # expression waits for a second example, then its sites are any call's
    before = "x = asyncio_run(a)\ny = asyncio_run(b)\nz = asyncio_run(c)\n"
    after, e = edit(before, "asyncio_run", "self.loop.run", 0)
    assert pattern_for_history(after, [e], "a.py") is None
    again, e2 = edit(after, "asyncio_run", "self.loop.run", 0)
    pattern = pattern_for_history(again, [e, e2], "a.py")
    assert pattern is not None and pattern.chain == "replace"
    assert sites(again, [e, e2], e2.offset) == [("asyncio_run", "self.loop.run")]


# ---------------------------------------------------------------- a method renamed at a use


def test_a_method_renamed_at_self_use_offers_its_def_too() -> None:
    before = (
        "class A:\n    def run(self):\n        return self.build()\n\n"
        "    def build(self):\n        pass\n\n\ndef build():\n    pass\n\n\nx.build()\n"
    )
    after, e = edit(before, "build", "_build")
    got = propose(after, [e], e.offset, path="a.py")
    lines = [after.count("\n", 0, p.start) for p in got]
    # the method's def (line 4) and the attribute elsewhere (line 12, as any attribute's
    # rename); not the top-level function's def (line 8)
    assert lines == [4, 12] and all(p.old == "build" and p.new == "_build" for p in got)
    other = "class A:\n    def run(self):\n        return obj.build()\n\n    def build(self):\n"
    after, e = edit(other, "build", "_build")
    assert [p.start for p in propose(after, [e], e.offset, path="a.py")] == []


# ---------------------------------------------------------------- a bare except narrowed


def test_a_bare_except_narrowed_offers_the_other_bare_excepts() -> None:
    before = (
        "try:\n    a()\nexcept:\n    pass\ntry:\n    b()\nexcept OSError:\n    pass\n"
        "try:\n    c()\nexcept:  # all\n    pass\n"
    )
    after, e = edit(before, "except:", "except Exception:")
    got = sites(after, [e], e.offset)
    assert got == [("except:", "except Exception:")]
    assert after.count("except:") == 1 and propose(after, [e], 0, path="a.py")[0].start == (
        after.index("except:  # all")
    )


def test_other_lines_without_a_name_stay_too_generic() -> None:
    before = "try:\n    a()\nelse:\n    b()\nelse:\n    c()\n"
    after, e = edit(before, "else:", "elif x:")
    assert propose(after, [e], e.offset, path="a.py") == []
