"""Propagation's rules from the rename/template misses of ``bench next_edit`` (2026-12-05-e):
a rename whose old binding a recent edit took away, a rename repeated in prose that continues
in code, a number changed in a comment offered in the code below it, whole lines deleted twice.
Table tests on plain text: each history is replayed top to bottom (offsets stay valid), and
each row fails without its rule; the rows named ``...-waits`` or ``no-...`` are where the rule
must not fire."""

from __future__ import annotations

import pytest

from forecode_core.next_edit.propagation import Edit, propose


def replay(before: str, steps: list[tuple[str, str, int]]) -> tuple[str, list[Edit]]:
    """``before`` with each ``(old, new, nth)`` step made in turn (the ``nth`` occurrence of
    ``old`` in the text so far), and the edits as the editor records them."""
    text = before
    history: list[Edit] = []
    for old, new, nth in steps:
        pos = -1
        for _ in range(nth + 1):
            pos = text.index(old, pos + 1)
        text = text[:pos] + new + text[pos + len(old) :]
        history.append(Edit(pos, old, new))
    return text, history


def offered(text: str, history: list[Edit]) -> list[tuple[str, str, int]]:
    """(old, new, line) of each proposal, in order, with the caret after the newest edit."""
    last = history[-1]
    caret = last.offset + len(last.after)
    return [
        (p.old, p.new, text.count("\n", 0, p.start) + 1)
        for p in propose(text, history, caret, path="a.py")
    ]


# ---------------------------------------------------------------- a binding taken away

TYPES = (
    "from typing import (\n    Any,\n    Mapping,\n    MutableMapping,\n)\n\n"
    "A = Mapping[str, Any]\nB = MutableMapping[str, Any]\nC = MutableMapping[str, str]\n"
)

UNBOUND = [
    pytest.param(
        TYPES,
        [("    MutableMapping,\n", "", 0), ("MutableMapping", "Mapping", 0)],
        [("MutableMapping", "Mapping", 8)],
        id="its-import-line-deleted",
    ),
    pytest.param(
        "from .utils import concat, _encode\nfrom .codec import decode\n\n"
        "def f(x):\n    return _encode(x)\n\n"
        "def g(y):\n    return _encode(y) + encode(y)\n",
        [(", _encode", "", 0), ("decode", "decode, encode", 0), ("_encode", "encode", 0)],
        [("_encode", "encode", 8)],
        id="taken-from-its-import",
    ),
    pytest.param(
        TYPES,
        [("MutableMapping", "Mapping", 1)],
        [],
        id="still-imported-waits",
    ),
    pytest.param(
        TYPES + "MutableMapping = dict\n",
        [("    MutableMapping,\n", "", 0), ("MutableMapping", "Mapping", 0)],
        [],
        id="still-bound-elsewhere-waits",
    ),
    pytest.param(
        TYPES.replace(")\n\n", ")\nfrom .compat import *\n\n"),
        [("    MutableMapping,\n", "", 0), ("MutableMapping", "Mapping", 0)],
        [],
        id="a-star-import-may-bind-it-waits",
    ),
]


@pytest.mark.parametrize(("before", "steps", "expected"), UNBOUND)
def test_a_rename_to_a_used_name_whose_old_binding_was_taken_away(
    before: str, steps: list[tuple[str, str, int]], expected: list[tuple[str, str, int]]
) -> None:
    text, history = replay(before, steps)
    assert offered(text, history) == expected


# ---------------------------------------------------------------- a rename again, in prose

ERRORS = (
    "from .exceptions import (\n    HTTPError,\n    RequestError,\n    HTTPStatusError,\n)\n\n"
    "class Response:\n    def raise_for_status(self):\n"
    '        """Raise the `HTTPError` if one occurred."""\n'
    "        if self.is_error:\n            raise HTTPError(self)\n"
)

AGAIN = [
    pytest.param(
        ERRORS,
        [("HTTPError", "HTTPStatusError", 0), ("HTTPError", "HTTPStatusError", 0)],
        [("HTTPError", "HTTPStatusError", 11)],
        id="an-import-then-a-docstring",
    ),
    pytest.param(
        "class BaseTCPStream:\n    pass\n\n"
        'def open() -> "BaseTCPStream":\n    return BaseTCPStream()\n',
        [("BaseTCPStream", "BaseSocketStream", 0), ("BaseTCPStream", "BaseSocketStream", 0)],
        [("BaseTCPStream", "BaseSocketStream", 5)],
        id="a-class-then-a-quoted-annotation",
    ),
    pytest.param(
        ERRORS,
        [("HTTPError", "HTTPStatusError", 0), ("HTTPError", "StatusError", 0)],
        [],
        id="no-other-words-in-prose",
    ),
]


@pytest.mark.parametrize(("before", "steps", "expected"), AGAIN)
def test_a_code_rename_repeated_in_prose_goes_on_in_code(
    before: str, steps: list[tuple[str, str, int]], expected: list[tuple[str, str, int]]
) -> None:
    text, history = replay(before, steps)
    assert offered(text, history) == expected


# ---------------------------------------------------------------- a number in a comment

CHECK = (
    "def check(major, minor):\n    # urllib3 >= 1.21.1, <= 1.25\n    assert major == 1\n"
    "    assert minor >= 21\n    assert minor <= 25\n"
)

NUMBERS = [
    pytest.param(CHECK, [("25", "26", 0)], [("25", "26", 5)], id="the-code-below-the-comment"),
    pytest.param(
        "    # chardet >= 3.0.2, < 5.0.0\n    assert (3, 0, 2) <= v < (5, 0, 0)\n",
        [("5", "6", 0)],
        [("5", "6", 2)],
        id="one-part-of-a-version",
    ),
    pytest.param(
        CHECK.replace("major == 1", "major == 25"),
        [("25", "26", 0)],
        [],
        id="no-number-read-twice-below",
    ),
    pytest.param(
        CHECK.replace("    assert major == 1\n", "\n"),
        [("25", "26", 0)],
        [],
        id="no-site-past-a-blank",
    ),
    pytest.param(
        "x = 25  # was 25\ny = 25\n", [("25", "26", 0)], [], id="no-number-changed-in-code"
    ),
]


@pytest.mark.parametrize(("before", "steps", "expected"), NUMBERS)
def test_a_number_changed_in_a_comment_is_offered_in_the_code_below(
    before: str, steps: list[tuple[str, str, int]], expected: list[tuple[str, str, int]]
) -> None:
    text, history = replay(before, steps)
    assert offered(text, history) == expected


# ---------------------------------------------------------------- whole lines deleted twice


def test_a_template_of_two_deleted_lines_deletes_whole_lines() -> None:
    before = (
        "def a(node):\n    frame.names.add(node.target)\n    x = 1\n\n"
        "def b(node):\n    frame.names.add(node.alias)\n    y = 2\n\n"
        "def c(node):\n    frame.names.add(node.name)\n    z = 3\n"
    )
    text, history = replay(
        before,
        [
            ("    frame.names.add(node.target)\n", "", 0),
            ("    frame.names.add(node.alias)\n", "", 0),
        ],
    )
    got = propose(text, history, history[-1].offset, path="a.py")
    assert [(p.old, p.new) for p in got] == [("    frame.names.add(node.name)\n", "")]


# ---------------------------------------------------------------- a chain replaced

CHAINS = [
    pytest.param(
        "def a(self):\n    return list(self.extensions.itervalues())\n\n"
        "def b(self):\n    for ext in self.extensions.itervalues():\n        pass\n",
        [("self.extensions.itervalues", "self.iter_extensions", 0)],
        [("self.extensions.itervalues", "self.iter_extensions", 5)],
        id="two-names-replaced",
    ),
    pytest.param(
        "def name(obj):\n    if obj.__class__.__module__:\n        return obj.__class__.__name__\n",
        [("obj.__class__", "cls", 0)],
        [("obj.__class__", "cls", 3)],
        id="by-one-name",
    ),
    pytest.param(
        "def a():\n    return asyncio_run(f())\n\ndef b():\n    return asyncio_run(g())\n",
        [("asyncio_run", "self._loop.run_until_complete", 0)],
        [],
        id="one-name-replaced-once-waits",
    ),
    pytest.param(
        "KEEPALIVE = 5.0\n\ndef a(limits):\n    f(expiry=KEEPALIVE)\n    g(expiry=KEEPALIVE)\n",
        [("KEEPALIVE = 5.0\n", "", 0), ("KEEPALIVE", "limits.expiry", 0)],
        [("KEEPALIVE", "limits.expiry", 4)],
        id="one-name-whose-binding-went",
    ),
    pytest.param(
        "def a():\n    x = self.a.b\n    self.a.b = 2\n    y = self.a.b\n",
        [("self.a.b", "self.c", 0)],
        [("self.a.b", "self.c", 4)],
        id="no-site-where-it-is-assigned",
    ),
]


@pytest.mark.parametrize(("before", "steps", "expected"), CHAINS)
def test_a_dotted_chain_replaced_by_another(
    before: str, steps: list[tuple[str, str, int]], expected: list[tuple[str, str, int]]
) -> None:
    text, history = replay(before, steps)
    assert offered(text, history) == expected


# ---------------------------------------------------------------- a quote changed or typed

#: (text, where the edit is, the quote replaced or "", the quote typed, expected)
QUOTES = [
    pytest.param(
        "m = request.method.encode('ascii')\n",
        "'ascii",
        "'",
        '"',
        [("'", '"', 1)],
        id="its-opening-quote-swapped",
    ),
    pytest.param(
        "def f(\n    app: WSGIApplication,\n) -> None: ...\n",
        "WSGI",
        "",
        '"',
        [("", '"', 2)],
        id="typed-before-a-name",
    ),
    pytest.param(
        "m = f('say \"hi\"')\n", "'say", "'", '"', [], id="no-swap-where-the-string-holds-it"
    ),
    pytest.param("def f():\n    '''Doc.'''\n", "'", "'", '"', [], id="no-swap-of-a-triple-quote"),
    pytest.param("s = 'the name here'\n", "name", "", '"', [], id="no-close-inside-a-string"),
    pytest.param("x = abc\n", "bc", "", '"', [], id="no-close-for-a-quote-inside-a-word"),
]


@pytest.mark.parametrize(("before", "where", "old", "new", "expected"), QUOTES)
def test_a_strings_other_quote_follows_its_first(
    before: str, where: str, old: str, new: str, expected: list[tuple[str, str, int]]
) -> None:
    at = before.index(where)
    text = before[:at] + new + before[at + len(old) :]
    assert offered(text, [Edit(at, old, new)]) == expected


# ---------------------------------------------------------------- a string prefix

PREFIXES = [
    pytest.param(
        'def get(url, **kwargs):\n    """Sends a GET.\n\n'
        '    :param \\*\\*kwargs: more.\n    """\n\n\n'
        'def head(url):\n    """Sends a HEAD."""\n\n\n'
        'def post(url, **kwargs):\n    """Sends a POST.\n\n'
        '    :param \\*\\*kwargs: more.\n    """\n',
        '"""Sends a GET',
        "r",
        [("", "r", 13)],
        id="r-before-docstrings-with-an-unknown-escape",
    ),
    pytest.param(
        "x = [('имя'.encode('utf-8'), 'пароль'.encode('utf-8')), ('føø', 1)]\n",
        "'имя'",
        "u",
        [("", "u", 1)],
        id="u-before-non-ascii-used-alike",
    ),
    pytest.param(
        "a = 'x\\n'\nb = 'y\\d'\nc = 'z\\n'\n",
        "'y",
        "r",
        [],
        id="no-r-before-known-escapes",
    ),
    pytest.param("a = 'abc'\nb = 'def'\n", "'abc'", "u", [], id="no-u-for-ascii-text"),
]


@pytest.mark.parametrize(("before", "where", "prefix", "expected"), PREFIXES)
def test_a_string_prefix_is_offered_where_a_string_needs_it_too(
    before: str, where: str, prefix: str, expected: list[tuple[str, str, int]]
) -> None:
    at = before.index(where)
    text = before[:at] + prefix + before[at:]
    assert offered(text, [Edit(at, "", prefix)]) == expected


# ---------------------------------------------------------------- prose: words deleted


def test_words_deleted_in_prose_only_where_the_same_character_stands_before_them() -> None:
    before = (
        'def f():\n    """Raise :exc:`jinja2.exceptions.UndefinedError`.\n\n'
        "    >>> foo\n    jinja2.exceptions.UndefinedError: 'foo' is undefined\n\n"
        '    Raise `jinja2.exceptions.UndefinedError` on call.\n    """\n'
    )
    text, history = replay(before, [("jinja2.exceptions.", "", 0)])
    assert offered(text, history) == [("jinja2.exceptions.", "", 7)]


# ---------------------------------------------------------------- a module no longer imported


def test_names_unqualified_from_a_module_no_longer_imported() -> None:
    before = (
        "import collections\nfrom .compat import (\n    str,\n)\n\n"
        "a = isinstance(h, collections.Callable)\n"
        "b = isinstance(d, (list, collections.Mapping))\n"
        "c = collections.OrderedDict()\n"
    )
    steps = [
        ("import collections\n", "", 0),
        ("    str,\n", "    Callable, Mapping,\n    str,\n", 0),
        ("collections.Callable", "Callable", 0),
    ]
    text, history = replay(before, steps)
    # OrderedDict is not imported: it stays qualified (the user imports it or not)
    assert offered(text, history) == [("collections.Mapping", "Mapping", 7)]
    still, history2 = replay(before, steps[1:])  # ``import collections`` kept: one name only
    assert offered(still, history2) == []


# ---------------------------------------------------------------- the method an attribute calls

CONFIG = (
    "def load(v):\n    ctx.set_alpn(v.alpn_strings)\n    ctx.set_npn(v.alpn_strings)\n\n\n"
    "class HTTPVersionConfig:\n    @property\n    def alpn_strings(self):\n        return []\n"
)
TWICE = [("alpn_strings", "alpn_identifiers", 0), ("alpn_strings", "alpn_identifiers", 0)]

METHODS = [
    pytest.param(CONFIG, TWICE, [("alpn_strings", "alpn_identifiers", 8)], id="renamed-twice"),
    pytest.param(CONFIG, TWICE[:1], [("alpn_strings", "alpn_identifiers", 3)], id="once-uses-only"),
    pytest.param(
        CONFIG + "\n\nclass Other:\n    def alpn_strings(self):\n        return []\n",
        TWICE,
        [],
        id="no-def-where-two-classes-define-it",
    ),
    pytest.param(
        CONFIG + "\n    def alpn_identifiers(self):\n        return []\n",
        TWICE,
        [],
        id="no-def-where-the-new-name-is-defined",
    ),
]


@pytest.mark.parametrize(("before", "steps", "expected"), METHODS)
def test_an_attribute_renamed_twice_renames_the_method_it_calls(
    before: str, steps: list[tuple[str, str, int]], expected: list[tuple[str, str, int]]
) -> None:
    text, history = replay(before, steps)
    assert offered(text, history) == expected


# ---------------------------------------------------------------- reST's double backquotes

DOC = 'def f():\n    """The `attribute` parameter and `start`."""\n'

BACKQUOTES = [
    pytest.param(DOC, "`attribute", [("", "`", 2)], id="the-closing-one-doubled"),
    pytest.param(DOC, "` parameter", [], id="no-pair-that-closes-a-span"),
    pytest.param(
        DOC.replace("attribute`", "attribute``"), "`attribute", [], id="no-close-doubled-already"
    ),
    pytest.param("x = `a` + `b`\n", "`a", [], id="no-close-in-code"),
]


@pytest.mark.parametrize(("before", "where", "expected"), BACKQUOTES)
def test_a_backquote_doubled_in_prose_doubles_its_closing_one(
    before: str, where: str, expected: list[tuple[str, str, int]]
) -> None:
    at = before.index(where)
    text = before[:at] + "`" + before[at:]
    assert offered(text, [Edit(at, "", "`")]) == expected


# ---------------------------------------------------------------- a name qualified: no locals

INSTALL = (
    "def install(translations):\n    _install(\n        gettext=gettext,\n"
    "        pgettext=pgettext,\n    )\n\n"
    "def _install(self, pgettext: t.Optional[F] = None):\n    if pgettext is not None:\n"
    "        return pgettext\n\n"
    "def _make(func):\n    def pgettext(s):\n        return func(s)\n\n    return pgettext\n\n"
    "x = pgettext\n"
)


def test_a_name_qualified_is_not_offered_where_a_function_binds_it() -> None:
    text, history = replay(INSTALL, [("pgettext=pgettext", "pgettext=translations.pgettext", 0)])
    # the parameter, its uses and a nested def's name are those functions' own; the module's
    # use at the end is the only site
    assert offered(text, history) == [("pgettext", "translations.pgettext", 17)]


# ---------------------------------------------------------------- a name also an attribute

REDIRECTS = (
    "def resolve(self, resp, req):\n"
    "    hist = []\n"
    "    while resp.is_redirect:\n"
    "        hist.append(resp)\n"
    "        resp.history = hist[1:]\n"
    "    return hist\n"
)

ATTRIBUTE = [
    pytest.param(
        REDIRECTS,
        [("hist", "history", 0)],
        [("hist", "history", 4), ("hist", "history", 5), ("hist", "history", 6)],
        id="new-name-only-an-attribute",
    ),
    pytest.param(
        REDIRECTS.replace("    return hist\n", "    history = 1\n    return hist\n"),
        [("hist", "history", 0)],
        [],
        id="new-name-also-a-bare-name-waits",
    ),
]


@pytest.mark.parametrize(("before", "steps", "expected"), ATTRIBUTE)
def test_an_attribute_of_the_new_name_is_no_use_of_it(
    before: str, steps: list[tuple[str, str, int]], expected: list[tuple[str, str, int]]
) -> None:
    """A user run on requests' sessions.py: ``hist`` -> ``history`` beside
    ``resp.history`` was offered nothing (the attribute counted as the name in use)."""
    text, history = replay(before, steps)
    assert offered(text, history) == expected
