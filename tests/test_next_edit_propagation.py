"""Edit-pattern propagation (forecode_core.next_edit.propagation): table tests on marked text.

Marks: ``«old»`` is a site expected to be offered (in the text after the user's edit), ``‸``
the caret; ``⟦s…⟧`` / ``⟦c…⟧`` mark a string / comment span for a caller-filled ``LexMask``.
"""

from __future__ import annotations

import tokenize
from pathlib import Path

import pytest

from forecode_core.next_edit.events import BufferEdits, Change
from forecode_core.next_edit.lexmask import (
    Kind,
    LexMask,
    c_like_mask,
    mask_for,
    python_like_mask,
    python_mask,
)
from forecode_core.next_edit.propagation import (
    Edit,
    Hole,
    Lit,
    _examples,
    ambiguity,
    example_of,
    find_sites,
    generalise,
    pattern_for_history,
    propose,
)


def unmark(marked: str) -> tuple[str, list[tuple[int, int]], int]:
    """The clean text, the ``«»`` spans in it (text order) and the caret (``‸``, else 0)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    caret = 0
    open_at = -1
    n = 0
    for ch in marked:
        if ch == "«":
            open_at = n
        elif ch == "»":
            spans.append((open_at, n))
        elif ch == "‸":
            caret = n
        else:
            out.append(ch)
            n += 1
    return "".join(out), spans, caret


def masked(marked: str) -> tuple[str, LexMask]:
    """Text with ``⟦s…⟧`` / ``⟦c…⟧`` spans -> (clean text, the mask a caller would fill)."""
    out: list[str] = []
    runs: list[tuple[int, int, Kind]] = []
    i = n = 0
    start, kind = -1, Kind.CODE
    while i < len(marked):
        ch = marked[i]
        if ch == "⟦":
            kind = Kind.STRING if marked[i + 1] == "s" else Kind.COMMENT
            start = n
            i += 2
            continue
        if ch == "⟧":
            runs.append((start, n, kind))
        else:
            out.append(ch)
            n += 1
        i += 1
    return "".join(out), LexMask.from_spans(runs)


def edit_at(before: str, old: str, new: str, nth: int = 0) -> tuple[str, Edit]:
    """Replace the ``nth`` occurrence of ``old`` (a token-bounded find is the test's job)."""
    pos = -1
    for _ in range(nth + 1):
        pos = before.index(old, pos + 1)
    return before[:pos] + new + before[pos + len(old) :], Edit(pos, old, new)


def offered(
    after: str, history: list[Edit], caret: int, path: str = "a.py", **kw: object
) -> list[tuple[int, int, str, str]]:
    return [(p.start, p.end, p.old, p.new) for p in propose(after, history, caret, path=path, **kw)]  # type: ignore[arg-type]


# ---------------------------------------------------------------- renames

RENAMES = [
    pytest.param(
        "a.py",
        "def f(count):\n    total = count + 1  # count here\n    s = 'count'\n    return count\n",
        "def f(n‸):\n    total = «count» + 1  # count here\n    s = 'count'\n    return «count»\n",
        id="python-strings-comments",
    ),
    pytest.param(
        "a.py",
        'x = foo\nfoobar = foo_ + _foo + foo2 + foo\nd = f"{foo}"\n"""foo\nfoo"""\n',
        # an f-string's field is code (tests/test_next_edit_lexmask_fstrings.py)
        'x = bar‸\nfoobar = foo_ + _foo + foo2 + «foo»\nd = f"{«foo»}"\n"""foo\nfoo"""\n',
        id="substring-non-matches",
    ),
    pytest.param(
        "m.go",
        '// size of it\nsize := 3\n/* size\nsize */ s := "size" + `size`\nreturn size + size2\n',
        '// size of it\nn‸ := 3\n/* size\nsize */ s := "size" + `size`\nreturn «size» + size2\n',
        id="c-like-strings-comments",
    ),
    pytest.param(
        "a.py",
        "def f(item):\n    obj.item = item\n    item.item(item)\n",
        "def f(thing‸):\n    obj.item = «item»\n    «item».item(«item»)\n",
        id="bare-name-leaves-attributes",
    ),
    pytest.param(
        "a.py",
        "obj.item = item\nitem.item(item)\nx . item\n",
        "obj.thing‸ = item\nitem.«item»(item)\nx . «item»\n",
        id="attribute-renames-attributes",
    ),
]


@pytest.mark.parametrize(("path", "before", "marked_after"), RENAMES)
def test_rename_offers_code_sites_only(path: str, before: str, marked_after: str) -> None:
    after, spans, caret = unmark(marked_after)
    # the user's edit: the first code occurrence of the old name, replaced
    old = after_name = ""
    for k in range(len(before)):
        if before[k] != after[k]:
            start = k
            while start > 0 and (before[start - 1].isalnum() or before[start - 1] == "_"):
                start -= 1
            end_b = start
            while before[end_b].isalnum() or before[end_b] == "_":
                end_b += 1
            end_a = start
            while after[end_a].isalnum() or after[end_a] == "_":
                end_a += 1
            old, after_name = before[start:end_b], after[start:end_a]
            break
    history = [Edit(start, old, after_name)]
    got = offered(after, history, caret, path=path)
    assert [(s, e) for s, e, _o, _n in got] == spans
    assert all(o == old and n == after_name for _s, _e, o, n in got)
    pattern = pattern_for_history(after, history, path)
    assert pattern is not None and pattern.kind == "rename"


def test_rename_typed_partly_widens_to_the_whole_identifier() -> None:
    before = "value = 1\nprint(value)\n"
    # the user changed 'alue' to 'olume' in 'value': the pattern is value -> volume
    after = "volume = 1\nprint(value)\n"
    history = [Edit(1, "alue", "olume")]
    assert offered(after, history, 6) == [(17, 22, "value", "volume")]
    assert example_of(before, after, history[0], "a.py") is not None


# ---------------------------------------------------------------- arguments, Tab order


def test_argument_added_to_four_calls_tab_order_below_then_wrapping() -> None:
    before = "".join(f"r{k} = fetch(url)\n" for k in range(5))
    after, edit = edit_at(before, "fetch(url)", "fetch(url, timeout=5)", nth=2)
    caret = edit.offset + len("fetch(url, timeout=5)")
    got = offered(after, [edit], caret)
    lines = [after.count("\n", 0, s) for s, _e, _o, _n in got]
    assert lines == [3, 4, 0, 1]  # Tab, Tab below; then wrap to the top
    assert {(o, n) for _s, _e, o, n in got} == {("fetch(url)", "fetch(url, timeout=5)")}
    # the caret's own line is not offered, nor calls with other arguments
    after2 = after.replace("r4 = fetch(url)", "r4 = fetch(uri)")
    assert len(offered(after2, [edit], caret)) == 3


def test_insertion_as_a_raw_keystroke_edit_widens_to_the_call() -> None:
    before = "a(x)\nb = a(x)\nc = a(y)\n"
    pos = before.index(")")
    after = before[:pos] + ", 2" + before[pos:]
    got = offered(after, [Edit(pos, "", ", 2")], pos + 3)
    assert [(o, n) for _s, _e, o, n in got] == [("a(x)", "a(x, 2)")]


# ---------------------------------------------------------------- literals, lines

LITERALS = [
    pytest.param(
        'open(p, encoding="latin-1")\nx = "latin-1"\n# "latin-1"\ny = f"latin-1"\n',
        '"latin-1"',
        '"utf-8"',
        ['"latin-1"'],
        id="string-literal",
    ),
    pytest.param(
        "sleep(30)\nn = 30\nsleep(30)\nsleep(300)\n",
        "sleep(30)",
        "sleep(60)",
        ["sleep(30)"],
        id="number-widens-to-call",
    ),
    pytest.param(
        "if x is None: return\nif y is None: return\nif x is None: return\n",
        "if x is None: return",
        "if x is None: return x",
        ["if x is None: return"],
        id="same-line-transformation",
    ),
]


@pytest.mark.parametrize(("before", "old", "new", "olds"), LITERALS)
def test_literal_and_line_changes(before: str, old: str, new: str, olds: list[str]) -> None:
    after, edit = edit_at(before, old, new)
    got = offered(after, [edit], edit.offset)
    assert [o for _s, _e, o, _n in got] == olds
    assert all(n == new for _s, _e, _o, n in got)


# ---------------------------------------------------------------- templates

TEMPLATES = [
    pytest.param(
        ('x.get("a")', 'x.get("a", None)'),
        ('y.get("b")', 'y.get("b", None)'),
        "$1.get($2) → $1.get($2, None)",
        [("z.get(k)", "z.get(k, None)"), ('w.get("c")', 'w.get("c", None)')],
        id="consistent",
    ),
    pytest.param(
        ("f(a, a)", "g(a)"),
        ("f(b, b)", "g(b)"),
        "f($1, $1) → g($1)",
        [("f(c, c)", "g(c)")],
        id="one-hole-twice",
    ),
    pytest.param(
        ("f(a, a)", "g(a)"),
        ("f(b, c)", "g(b)"),  # a binds b and c: no template, the newest is exact
        None,
        [],
        id="inconsistent-holes",
    ),
    pytest.param(
        ("p.x", "p.y"),
        ("q.z", "q.w"),  # renames of different names: no template
        None,
        [],
        id="unrelated-renames",
    ),
    pytest.param(
        ("h(a)", "h(a, 1)"),
        ("h(b, c)", "h(b, c, 1)"),  # different shapes
        None,
        [],
        id="different-shapes",
    ),
]

SITES = 'z.get(k)\nf(c, c)\nf(c, d)\nw.get("c")\nv.get(1, 2)\nhh(a)\n'


@pytest.mark.parametrize(("first", "second", "label", "expected"), TEMPLATES)
def test_two_examples_generalise_a_template(
    first: tuple[str, str],
    second: tuple[str, str],
    label: str | None,
    expected: list[tuple[str, str]],
) -> None:
    before = f"{first[0]}\n{second[0]}\n{SITES}"
    mid, e1 = edit_at(before, first[0], first[1])
    after, e2 = edit_at(mid, second[0], second[1])
    pattern = pattern_for_history(after, [e1, e2], "a.py")
    if label is None:  # the newest alone, or nothing when one example of it is ambiguous
        assert pattern is None or pattern.kind != "template"
    else:
        assert pattern is not None
        assert pattern.kind == "template" and pattern.label == label
        got = offered(after, [e1, e2], e2.offset)
        assert [(o, n) for _s, _e, o, n in got] == expected


def test_generalise_refuses_a_template_that_does_not_hold_for_both() -> None:
    b1 = "t.get('a')\n"
    ex1 = example_of(b1, "t.get('a', 0)\n", Edit(0, "t.get('a')", "t.get('a', 0)"), "a.py")
    ex2 = example_of(
        "s.get('b')\n", "s.get('b', 1)\n", Edit(0, "s.get('b')", "s.get('b', 1)"), "a.py"
    )
    assert ex1 is not None and ex2 is not None
    assert generalise(ex1, ex2) is None  # the added literal differs and is no bound hole
    ex3 = example_of(
        "s.get('b')\n", "s.get('b', 0)\n", Edit(0, "s.get('b')", "s.get('b', 0)"), "a.py"
    )
    assert ex3 is not None
    template = generalise(ex1, ex3)
    assert template is not None
    assert template.before == (
        Hole(1),
        Lit(".", "punct"),
        Lit("get", "ident"),
        Lit("(", "punct"),
        Hole(2),
        Lit(")", "punct"),
    )


# ---------------------------------------------------------------- guards


def test_never_proposes_reverting_the_users_edit() -> None:
    # the user renamed old -> new twice, then changed one back: propagating new -> old would undo
    before = "old(1)\nold(2)\nold(3)\n"
    t1, e1 = edit_at(before, "old", "new", 0)
    t2, e2 = edit_at(t1, "old", "new", 0)
    t3, e3 = edit_at(t2, "new", "old", 1)
    assert offered(t3, [e1, e2, e3], e3.offset) == []
    # and a template never maps a site back to the text the user changed away from
    assert offered(t2, [e1, e2], e2.offset) == [(14, 17, "old", "new")]


def test_a_template_never_undoes_an_earlier_example() -> None:
    # swapping arguments: the template f($1, $2) -> f($2, $1) also matches the first swapped
    # call, where it would swap back; only the untouched call is offered
    before = "f(a, b)\nf(c, d)\nf(e, g)\n"
    t1, e1 = edit_at(before, "f(a, b)", "f(b, a)")
    t2, e2 = edit_at(t1, "f(c, d)", "f(d, c)")
    pattern = pattern_for_history(t2, [e1, e2], "a.py")
    assert pattern is not None and pattern.label == "f($1, $2) → f($2, $1)"
    assert [(o, n) for _s, _e, o, n in offered(t2, [e1, e2], e2.offset)] == [("f(e, g)", "f(g, e)")]


def test_sites_never_overlap_each_other_or_the_edit() -> None:
    before = "a + a + a + a\nb = a + a\n"
    after, edit = edit_at(before, "b = a + a", "b = a + a + 1")
    # one example, whole line: nothing else reads 'b = a + a'
    assert offered(after, [edit], 0) == []
    before2 = "f(f(x))\ng(f(x))\n"
    after2, e = edit_at(before2, "f(x)", "f(x, 1)", 1)
    got = offered(after2, [e], e.offset)
    # the inner f(x) of line 1 is one site; the caret's own f(x) is never offered
    assert [(o, n) for _s, _e, o, n in got] == [("f(x)", "f(x, 1)")]
    assert got[0][0] == 2


def test_overlapping_matches_keep_the_earlier() -> None:
    text = "x.y.y.y\n"
    pattern = pattern_for_history("z.q\n" + text, [Edit(0, "z.y", "z.q")], "a.py")
    assert pattern is not None and pattern.label == "y → q"
    sites = find_sites(text, pattern, path="a.py")
    assert [(s.start, s.old) for s in sites] == [(2, "y"), (4, "y"), (6, "y")]


def test_no_pattern_for_whitespace_comment_or_empty() -> None:
    before = "x = 1  # note\n"
    assert pattern_for_history("x  = 1  # note\n", [Edit(1, " ", "  ")], "a.py") is None
    assert pattern_for_history("x = 1  # nota\n", [Edit(11, "e", "a")], "a.py") is None
    assert propose("", [], 0, path="a.py") == []
    assert propose(before, [], 0, path="a.py") == []
    # a history whose texts do not check out is ignored, never guessed
    assert propose(before, [Edit(0, "y", "z")], 0, path="a.py") == []


def test_unparseable_python_falls_back_to_the_scanner() -> None:
    before = 'def f(:\n    foo = "unterminated\n    foo(1) # foo\n    s = """foo\n'
    after, edit = edit_at(before, "foo", "bar")
    site = (after.index("foo("), after.index("foo(") + 3, "foo", "bar")
    assert offered(after, [edit], 0) == [site]
    assert offered(after, [edit], 0, mask=mask_for(after, "a.py", exact=True)) == [site]


def test_caller_supplied_mask_is_obeyed() -> None:
    # the editor's lexer says a code-looking region is a comment (e.g. a doc block): skipped
    text, mask = masked("bar = 1\n⟦cfoo(1)⟧\nfoo(2)\nx = ⟦sfoo⟧\n")
    got = offered(text, [Edit(0, "foo", "bar")], 0, mask=mask)
    assert [o for _s, _e, o, _n in got] == ["foo"]
    assert got[0][0] == text.index("foo(2)")


# ---------------------------------------------------------------- masks


def test_masks_from_the_fallback_lexers() -> None:
    py = 'a = "x#y"  # c\nb = r\'\\\'\' + """q\n"""\n'
    kinds = [(py[s:e], k.value) for s, e, k in python_mask(py).spans()]
    assert kinds == [
        ('"x#y"', "string"),
        ("# c", "comment"),
        ("r'\\''", "string"),
        ('"""q\n"""', "string"),
    ]
    c = 'a = "x\\"//"; // c\n/* d\n*/ b = \'/\';\n'
    m = c_like_mask(c)
    kinds = [(c[s:e], k.value) for s, e, k in m.spans()]
    assert kinds == [
        ('"x\\"//"', "string"),
        ("// c", "comment"),
        ("/* d\n*/", "comment"),
        ("'/'", "string"),
    ]
    assert mask_for("# x\n", "run.sh").kinds == (Kind.COMMENT,)
    assert mask_for("", "a.py") == LexMask()


@pytest.mark.parametrize("module", ["argparse.py", "typing.py", "tokenize.py"])
def test_scanner_agrees_with_tokenize_on_stdlib_modules(module: str) -> None:
    text = (Path(tokenize.__file__).parent / module).read_text(encoding="utf-8")
    assert python_like_mask(text) == python_mask(text)
    assert mask_for(text, module, exact=True) == mask_for(text, module)


def test_rename_on_a_real_file_skips_strings_and_comments() -> None:
    text = (Path(tokenize.__file__).parent / "argparse.py").read_text(encoding="utf-8")
    pos = text.index("def _get_values(self, action, arg_strings)") + len("def _get_values(self, ")
    after = text[:pos] + "act" + text[pos + len("action") :]
    got = propose(after, [Edit(pos, "action", "act")], pos, path="argparse.py")
    mask = python_mask(after)
    assert got and all(mask.kind_at(p.start) is Kind.CODE for p in got)
    assert all(after[p.start : p.end] == "action" for p in got)
    assert all(not (after[p.start - 1].isalnum() or after[p.start - 1] == "_") for p in got)
    below = [p.start for p in got if p.start >= pos]
    assert below == sorted(below) and got[0].start == below[0]
    # every whole-word bare 'action' in code of that method is offered (not attributes)
    lo = after.rindex("\n    def ", 0, pos) + 1
    hi = after.index("\n    def ", pos) + 1
    words = [i for i in range(lo, hi) if after.startswith("action", i)]
    code = [
        i
        for i in words
        if mask.kind_at(i) is Kind.CODE
        and not (after[i - 1].isalnum() or after[i - 1] == "_")
        and not (after[i + 6].isalnum() or after[i + 6] == "_")
        and after[i - 1] != "."
    ]
    assert len(got) == len(code) > 10


SCOPES = [
    pytest.param(
        "def f(x):\n    return x + 1\n\ndef g(x):\n    return x\n",
        "def f(y‸):\n    return «x» + 1\n\ndef g(x):\n    return x\n",
        id="parameter-stays-in-its-function",
    ),
    pytest.param(
        "class C:\n    async def f(self, x,\n            z=1):\n        '''x\nx'''\n"
        "        if x:\n            return [x,\n    x]\n    # x\n        return x\n"
        "    def g(self, x):\n        return x\n",
        "class C:\n    async def f(self, y‸,\n            z=1):\n        '''x\nx'''\n"
        "        if «x»:\n            return [«x»,\n    «x»]\n    # x\n        return «x»\n"
        "    def g(self, x):\n        return x\n",
        id="method-block-by-indentation",
    ),
    pytest.param(
        "def f(a):\n    x = 1\n    return x\n\ndef g():\n    return x\n",
        "def f(a):\n    y‸ = 1\n    return «x»\n\ndef g():\n    return x\n",
        id="a-local-stays-in-its-function",
    ),
    pytest.param(
        "def f(a):\n    for x in a:\n        use(x)\n\ndef g():\n    return x\n",
        "def f(a):\n    for y‸ in a:\n        use(«x»)\n\ndef g():\n    return x\n",
        id="a-for-target-is-a-local",
    ),
    pytest.param(
        "def f(a):\n    with open(a) as x:\n        total: int = 0\n        use(x)\n"
        "def g():\n    return x\n",
        "def f(a):\n    with open(a) as «x»:\n        total: int = 0\n        use(y‸)\n"
        "def g():\n    return x\n",
        id="an-as-target-is-a-local",
    ),
    pytest.param(
        "def f(a):\n    global x\n    x = 1\n    return x\n\ndef g():\n    return x\n",
        "def f(a):\n    global y‸\n    «x» = 1\n    return «x»\n\ndef g():\n    return «x»\n",
        id="a-global-is-the-whole-files",
    ),
    pytest.param(
        "def f(a):\n    h(x=1)\n    return x\n\ndef g():\n    return x\n",
        "def f(a):\n    h(x=1)\n    return y‸\n\ndef g():\n    return «x»\n",
        id="a-keyword-argument-binds-nothing",
    ),
    pytest.param(
        "x = 1\n\ndef g(x):\n    return x\n",
        "y‸ = 1\n\ndef g(«x»):\n    return «x»\n",  # no shadowing analysis
        id="module-level-whole-file",
    ),
]


@pytest.mark.parametrize(("before", "marked_after"), SCOPES)
def test_parameter_rename_is_scoped_to_its_function(before: str, marked_after: str) -> None:
    after, spans, caret = unmark(marked_after)
    k = next(i for i in range(len(after)) if before[i] != after[i])
    history = [Edit(k, "x", "y")]
    assert [(s, e) for s, e, _o, _n in offered(after, history, caret)] == spans


# ---------------------------------------------------------------- size


def test_long_line_and_long_file_are_linear() -> None:
    # 200,000 sites on one line, and a 1 MB run of one identifier (every find is a near miss)
    line = "foo, " * 200_000
    after, edit = edit_at("x = foo\n" + line, "foo", "bar")
    got = propose(after, [edit], 0, path="a.py")
    assert len(got) == 500 and got[0].old == "foo"
    blob = "a = foo\n" + "foo" * 300_000 + "\n"
    after, edit = edit_at(blob, "foo", "bar")
    assert propose(after, [edit], 0, path="a.py") == []
    # a long line as the pattern (whole-line transformation) against a file of near misses
    long_line = "x = " + " + ".join(f"v{k}" for k in range(90))
    text = "\n".join([long_line] * 3 + [long_line[:-1]] * 2000) + "\n"
    after, edit = edit_at(text, long_line, long_line + " + 1")
    got = propose(after, [edit], edit.offset, path="a.py")
    assert len(got) == 2


# ---------------------------------------------------------------- with the real edit events


def _typed(text: str, changes: list[tuple[int, str, str, float]]) -> tuple[str, BufferEdits]:
    """Apply changes (offset, removed, inserted, time) to ``text``, recording each."""
    edits = BufferEdits()
    for offset, removed, inserted, when in changes:
        assert text[offset : offset + len(removed)] == removed
        line = text.count("\n", 0, offset)
        edits.record(Change(offset, removed, inserted, when, line))
        text = text[:offset] + inserted + text[offset + len(removed) :]
    return text, edits


def test_events_from_keystrokes_drive_a_rename() -> None:
    before = "def f(count):\n    return count + count\n"
    # the user deletes 'count' in the def and types 'n', 'u', 'm' (one coalesced event)
    after, edits = _typed(
        before, [(6, "count", "", 0.0), (6, "", "n", 0.1), (7, "", "u", 0.2), (8, "", "m", 0.3)]
    )
    assert after.startswith("def f(num):")
    got = propose(after, edits.events(), 9, path="a.py")
    assert [(p.old, p.new) for p in got] == [("count", "num"), ("count", "num")]


def test_events_two_pauses_apart_generalise_a_template() -> None:
    before = 'a = x.get("k")\nb = y.get("j")\nc = z.get(w)\n'
    i1 = before.index(")")
    mid = before[:i1] + ", None" + before[i1:]
    i2 = mid.index(")", mid.index("y.get"))
    after, edits = _typed(before, [(i1, "", ", None", 0.0), (i2, "", ", None", 5.0)])
    assert len(edits.events()) == 2
    got = propose(after, edits.events(), i2, path="a.py")
    assert [(p.old, p.new) for p in got] == [("z.get(w)", "z.get(w, None)")]
    assert got[0].reason.startswith("template, 2 examples: $1.get($2) → $1.get($2, None)")


def test_revert_guard_alone_vetoes_the_inverse_of_an_older_edit() -> None:
    # foo -> bar on line 1, then bar -> foo on line 2: line 3's bar is not a recent edit's
    # region, but turning it into foo would undo the pattern the user made first
    before = "foo()\nbar()\nbar()\n"
    t1, e1 = edit_at(before, "foo", "bar")
    t2, e2 = edit_at(t1, "bar", "foo", 1)
    assert offered(t2, [e2], e2.offset) == [(12, 15, "bar", "foo"), (0, 3, "bar", "foo")]
    assert offered(t2, [e1, e2], e2.offset) == []


def test_one_line_minified_file_reads_a_window_around_the_edit() -> None:
    body = ";".join(f"var{k % 50}=call(item,{k})" for k in range(40_000))  # ~1 MB, one line
    before = f"item=1;{body}\n"
    after, edit = edit_at(before, "item", "elem")
    got = propose(after, [edit], edit.offset, path="m.js")
    assert len(got) == 500 and {(p.old, p.new) for p in got} == {("item", "elem")}
    # a call's change widens to the call; a whole-line change is clipped: no pattern
    after, edit = edit_at(before, "call(item,20000)", "call(item,20001)")
    pattern = pattern_for_history(after, [edit], "m.js")
    assert pattern is not None and pattern.label == "call(item,20000) → call(item,20001)"
    after, edit = edit_at(before, "var0=call(item,20000)", "var0=call(item,20000)+1")
    assert pattern_for_history(after, [edit], "m.js") is None


WHOLE_LINES = [
    # lines inserted between two lines of code: those lines with the new ones between them
    pytest.param(
        "a(1)\n):\n):\n",
        5,
        "",
        "x: int = 1,\n",
        "a(1)\n): → a(1)\nx: int = 1,\n):",
        id="lines-inserted",
    ),
    # a whole line deleted: the same line elsewhere (tests/test_next_edit_propagation_shapes.py)
    pytest.param(
        "a(1)\nprint(x)\nprint(x)\n", 5, "print(x)\n", "", "print(x) → ", id="line-deleted"
    ),
    # a whole line replaced: the line alone, never the next one
    pytest.param(
        "a = 1\nb = 2\na = 1\nb = 2\n", 0, "a = 1\n", "a = 3\n", "a = 1 → a = 3", id="line-replaced"
    ),
    # a keyword or constant changed is no rename: it widens like a number
    pytest.param(
        "f(x=None)\ny = None\n", 0, "f(x=None)", "f(x=True)", "f(x=None) → f(x=True)", id="constant"
    ),
    # a line with no name in it is too generic to repeat
    pytest.param("def f(\n    a,\n):\n", 14, "):", ") -> None:", None, id="no-name-line"),
]


@pytest.mark.parametrize(("before", "offset", "old", "new", "label"), WHOLE_LINES)
def test_whole_line_edits(before: str, offset: int, old: str, new: str, label: str | None) -> None:
    assert before[offset : offset + len(old)] == old
    after = before[:offset] + new + before[offset + len(old) :]
    pattern = pattern_for_history(after, [Edit(offset, old, new)], "a.py")
    assert (pattern.label if pattern else None) == label


def test_a_line_transformation_matches_whole_lines_only() -> None:
    before = "a = b\nx.a = b\n    a = b  # same\nc = a = b\n"
    after, edit = edit_at(before, "a = b", "a = b or c")
    got = offered(after, [edit], 0)
    assert [(after.count("\n", 0, s), o, n) for s, _e, o, n in got] == [(2, "a = b", "a = b or c")]


KEYWORDS = [
    pytest.param(
        "r = f(data=data)\ng(1, data=x)\ndata = 1\ny = x == data\n"
        "h(data == 2)\nk(\n    data=y,\n)\n",
        "r = f(content‸=data)\ng(1, «data»=x)\ndata = 1\ny = x == data\n"
        "h(data == 2)\nk(\n    «data»=y,\n)\n",
        id="keyword-argument-renames-keywords",
    ),
    pytest.param(
        "data = load()\nf(data=data)\nprint(data)\n",
        "payload‸ = load()\nf(data=«data»)\nprint(«data»)\n",
        id="bare-name-leaves-keywords",
    ),
    pytest.param(
        "def f(\n    a,\n    data=None,\n):\n    return g(data=data)\n\ndata = 2\n",
        "def f(\n    a,\n    payload‸=None,\n):\n    return g(data=«data»)\n\ndata = 2\n",
        id="parameter-with-default-in-a-long-def",
    ),
]


@pytest.mark.parametrize(("before", "marked_after"), KEYWORDS)
def test_keyword_arguments_rename_apart_from_names(before: str, marked_after: str) -> None:
    after, spans, caret = unmark(marked_after)
    k = next(i for i in range(len(after)) if before[i] != after[i])
    new = after[k:].split("=")[0].split(" ")[0]
    history = [Edit(k, "data", new)]
    assert [(s, e) for s, e, _o, _n in offered(after, history, caret)] == spans


# ---------------------------------------------------------------- one example is ambiguous

AMBIGUOUS = [
    pytest.param(
        # loop_frame is still bound in f: one reference swapped for another binding
        "def f(a, frame):\n    g(loop_frame)\n    loop_frame = frame.inner()\n"
        "    h(loop_frame)\n    k(frame)\n",
        "loop_frame",
        "frame",
        "frame is already used in the file",
        id="rename-to-a-name-in-use",
    ),
    pytest.param(
        "class A(object):\n    pass\nclass B(object):\n    pass\n",
        "object",
        "Base",
        "a name of another kind (class, function, constant)",
        id="a-builtin-swapped-for-a-class",
    ),
    pytest.param(
        "from compat import text_type, UnicodeMixin\nclass A(UnicodeMixin):\n    pass\n",
        "UnicodeMixin",
        "implements_to_string",
        "a name of another kind (class, function, constant)",
        id="a-class-swapped-for-a-function",
    ),
    pytest.param(
        "from compat import PY2\nif PY2:\n    pass\n",
        "PY2",
        "UnicodeMixin",
        "a name of another kind (class, function, constant)",
        id="a-constant-swapped-for-a-class",
    ),
    pytest.param(
        "for x in xs:\n    f(x)\nfor x in xs:\n    g(x)\n",
        "for x in xs:\n",
        "for i, x in enumerate(xs):\n    print(i)\n",
        "the edit adds lines",
        id="edit-adds-lines",
    ),
    pytest.param(
        "def get(self, url):\n    pass\ndef get(self, url):\n    pass\n",
        "def get(self, url)",
        "def get(self, url, timeout)",
        "a def or class line",
        id="def-line",
    ),
    pytest.param(
        'w(")")\nw(")")\nw("x")\n',
        '")"',
        '"))"',
        "a string without a word in it",
        id="string-without-a-word",
    ),
    pytest.param(
        'def f():\n    """Get it.\n\n    See requests/requests/1979.\n    """\n'
        "    requests.get(u)\n",
        "requests/1979",
        "psf/1979",
        "the edit is inside a string or comment",
        id="inside-a-docstring",
    ),
    pytest.param(
        "a = ('undefined', 1)\nb = ('undefined', 2)\nc = ('undefined', 3)\nd = ('undefined', 4)\n",
        "'undefined'",
        "'param'",
        "a common value: one of its copies changed is not all of them",
        id="a-literal-with-many-copies",
    ),
    pytest.param(
        "assert d('a') == []\nassert d('b') == []\n",
        "[]",
        '["x"]',
        "a value added, removed or changed",
        id="a-string-added-to-an-empty-list",
    ),
    pytest.param(
        'h = sha1(s.encode("utf-8"))\nk = sha1(t.encode("utf-8"))\n',
        'encode("utf-8")',
        "encode()",
        "a value added, removed or changed",
        id="a-string-argument-removed",
    ),
    pytest.param(
        "def f(a: Union[A, B]): pass\ndef g(a: Union[A, B]): pass\n",
        "Union[A, B]",
        "Union[A, B, None]",
        "a value added, removed or changed",
        id="none-added",
    ),
]


@pytest.mark.parametrize(("before", "old", "new", "why"), AMBIGUOUS)
def test_one_ambiguous_example_offers_nothing(before: str, old: str, new: str, why: str) -> None:
    after, edit = edit_at(before, old, new)
    examples = _examples(after, [edit], "a.py")
    assert examples[0] is not None
    assert ambiguity(examples[0], after, mask_for(after, "a.py"), "a.py") == why
    assert offered(after, [edit], edit.offset + len(new)) == []


def test_the_same_rename_twice_lifts_the_ambiguity() -> None:
    before = (
        "def f(a, frame):\n    g(loop_frame)\n    h(loop_frame)\n    k(loop_frame)\n"
        "    loop_frame = frame.inner()\n"
    )
    mid, e1 = edit_at(before, "loop_frame", "frame")
    after, e2 = edit_at(mid, "loop_frame", "frame")
    assert offered(after, [e1], e1.offset) == []  # one example: ambiguous
    got = offered(after, [e1, e2], e2.offset + len("frame"))
    assert [(o, n) for _s, _e, o, n in got] == [("loop_frame", "frame")] * 2
    assert got[0][0] == after.index("k(loop_frame)") + 2
    pattern = pattern_for_history(after, [e1, e2], "a.py")
    assert pattern is not None and pattern.examples == 2


def test_a_fresh_rename_and_a_word_literal_are_offered_from_one_example() -> None:
    after, edit = edit_at("x = load(a)\ny = load(b)\n", "load", "fetch")
    assert [o for _s, _e, o, _n in offered(after, [edit], edit.offset)] == ["load"]
    after, edit = edit_at('f("utf-8")\ng("utf-8")\n', '"utf-8"', '"latin-1"')
    assert [o for _s, _e, o, _n in offered(after, [edit], edit.offset)] == ['"utf-8"']


DEFINITIONS = [
    pytest.param(
        "class A:\n    def test_join(self):\n        pass\n"
        "class B:\n    def test_join(self):\n        test_join(1)\n",
        "def test_join",
        "def test_join_ints",
        "class A:\n    def test_join_ints‸(self):\n        pass\n"
        "class B:\n    def test_join(self):\n        «test_join»(1)\n",
        id="other-defs-of-the-name-are-not-sites",
    ),
    pytest.param(
        "class Reader:\n    pass\nx: Reader = Reader()\nclass Reader:\n    pass\n",
        "class Reader",
        "class Stream",
        "class Stream‸:\n    pass\nx: «Reader» = «Reader»()\nclass Reader:\n    pass\n",
        id="a-class-renamed",
    ),
]


@pytest.mark.parametrize(("before", "old", "new", "marked_after"), DEFINITIONS)
def test_a_definitions_rename_offers_uses_not_other_definitions(
    before: str, old: str, new: str, marked_after: str
) -> None:
    after, spans, caret = unmark(marked_after)
    mid, edit = edit_at(before, old, new)
    assert mid == after
    got = offered(after, [edit], caret)
    assert [(s, e) for s, e, _o, _n in got] == spans


METHODS = [
    pytest.param(
        "class C:\n    def send(self):\n        pass\n"
        "    def go(self):\n        self.send()\n        self.dispatch.send()\n        send()\n",
        "def send",
        "def transmit",
        "class C:\n    def transmit‸(self):\n        pass\n"
        "    def go(self):\n        self.«send»()\n"
        "        self.dispatch.send()\n        «send»()\n",
        id="method-rename-offers-self-attributes-not-another-objects",
    ),
    pytest.param(
        "for key, value in items:\n    use(key)\nprint(value)\n",
        "value",
        "_",
        "for key, _‸ in items:\n    use(key)\nprint(value)\n",
        id="a-discard-is-no-rename",
    ),
]


@pytest.mark.parametrize(("before", "old", "new", "marked_after"), METHODS)
def test_what_a_definitions_and_a_discards_rename_offer(
    before: str, old: str, new: str, marked_after: str
) -> None:
    after, spans, caret = unmark(marked_after)
    mid, edit = edit_at(before, old, new)
    assert mid == after
    got = offered(after, [edit], caret)
    assert [(s, e) for s, e, _o, _n in got] == spans


def test_rename_context_reads_the_documents_mask_not_a_window_in_a_docstring() -> None:
    # the edit sits more than 2,000 characters into a docstring's function: a window cut
    # inside the docstring would take its closing quotes for an opening and the call for text
    doc = "    " + "a line of the docstring\n    " * 120
    before = f'def f():\n    """{doc}"""\n    response.close()\n    close()\n    response.close()\n'
    after, edit = edit_at(before, "response.close()", "response.aclose()")
    pattern = pattern_for_history(after, [edit], "a.py")
    assert pattern is not None and pattern.dotted is True
    got = offered(after, [edit], edit.offset)
    assert [after[s - 9 : e] for s, e, _o, _n in got] == ["response.close"]


UNFINISHED = [
    pytest.param(
        "try:\n    f()\nexcept OSError:\n    pass\ntry:\n    g()\nexcept OSError:\n    pass\n",
        "except OSError:",
        "except (OSError:",
        id="an-opener-typed-its-closer-not-yet",
    ),
    pytest.param(
        "a: AuthTypes = None\nb: AuthTypes = None\n",
        "AuthTypes",
        "typing.Union[AuthTypes",
        id="a-subscript-opened",
    ),
    pytest.param(
        "x = f(a, b)\ny = f(a, b)\n",
        "f(a, b)",
        "f(a, b",
        id="a-closer-deleted",
    ),
]


@pytest.mark.parametrize(("before", "old", "new"), UNFINISHED)
def test_an_edit_that_unbalances_brackets_is_no_pattern(before: str, old: str, new: str) -> None:
    after, edit = edit_at(before, old, new)
    assert offered(after, [edit], edit.offset + len(new)) == []
    # twice the same unfinished edit is still none
    after2, edit2 = edit_at(after, old, new)
    assert offered(after2, [edit, edit2], edit2.offset + len(new)) == []


def test_two_examples_inside_a_docstring_are_still_no_code_pattern() -> None:
    before = 'def post(json):\n    """Send.\n\n    :param json: the body.\n    :type json: dict\n'
    before += '    """\n    return request(json=json)\n'
    mid, e1 = edit_at(before, "json:", "obj:")
    after, e2 = edit_at(mid, "json:", "obj:")
    pattern = pattern_for_history(after, [e1, e2], "a.py")
    assert pattern is None
    assert offered(after, [e1, e2], e2.offset) == []


# ---------------------------------------------------------------- rules from real commits


def test_await_is_added_only_inside_async_functions() -> None:
    """``send()`` -> ``await send()``: a site in an ``async def`` (its signature wrapped, the
    ``)`` dedented) is one; a plain ``def``'s is none (``await`` is a syntax error there)."""
    text = (
        "class A:\n    def f(self):\n        r = g.send(x)\n"
        "class B:\n    async def f(\n        self,\n    ) -> None:\n"
        "        r = g.send(x)\n        r = g.send(x)\n"
    )
    pos = text.rindex("g.send(x)")
    after = text[:pos] + "await " + text[pos:]
    got = offered(after, [Edit(pos, "", "await ")], pos + 6)
    assert [after.count("\n", 0, s) for s, _e, _o, _n in got] == [7]
    assert got[0][3] == "r = await g.send(x)"


def test_a_methods_rename_keeps_self_sites_in_its_class_when_others_define_the_name() -> None:
    """``def get_source`` renamed in one loader class: another class's ``self.get_source()``
    calls its own method (no site); in this class it is one; with no other definition of the
    name, every ``self.`` use is."""
    text = (
        "class A:\n    def get_source(self):\n        pass\n"
        "    def load(self):\n        self.get_source()\n"
        "class B:\n    def get_source(self):\n        pass\n"
        "    def load(self):\n        self.get_source()\n"
    )
    after, edit = edit_at(text, "get_source", "get_loader", nth=2)
    got = offered(after, [edit], edit.offset)
    assert [after.count("\n", 0, s) for s, _e, _o, _n in got] == [9]
    alone = text.replace("class B:\n    def get_source(self):\n        pass\n", "class B:\n")
    after, edit = edit_at(alone, "get_source", "get_loader")
    got = offered(after, [edit], edit.offset)
    assert [after.count("\n", 0, s) for s, _e, _o, _n in got] == [4, 7]


def test_a_rename_never_imports_a_name_twice() -> None:
    """``bytes`` -> ``str`` at its uses: ``from compat import str, bytes`` is no site (it
    would import ``str`` twice); an import without ``str`` is one."""
    text = "from compat import str, bytes\nfrom other import bytes\nx = bytes(a)\ny = bytes(b)\n"
    mid, e1 = edit_at(text, "bytes(a)", "str(a)")
    e1 = Edit(e1.offset, "bytes", "str")
    mid2 = mid
    after, e2 = edit_at(mid2, "bytes(b)", "str(b)")
    e2 = Edit(e2.offset, "bytes", "str")
    got = offered(after, [e1, e2], e2.offset + 3)
    assert [after.count("\n", 0, s) for s, _e, _o, _n in got] == [1]


def test_an_edit_across_a_closing_bracket_is_whole_lines_not_the_group() -> None:
    """``py_compile=True)\\n    assert x`` -> ``)``: the change crosses the call's closer,
    so the shape is the two lines (their copy below is the site), never the call alone with
    a broken after text (``self.compile_down(py_compile=True)`` -> ``self``)."""
    block = "    log = self.down(py_compile=True)\n    assert x in log\n"
    text = "def a():\n" + block + "def b():\n" + block
    pos = text.index("py_compile")
    old = "py_compile=True)\n    assert x in log"
    after = text[:pos] + ")" + text[pos + len(old) :]
    got = offered(after, [Edit(pos, old, ")")], pos + 1)
    assert [(o, n) for _s, _e, o, n in got] == [
        (
            "log = self.down(py_compile=True)\n    assert x in log",
            "log = self.down()",
        )
    ]
