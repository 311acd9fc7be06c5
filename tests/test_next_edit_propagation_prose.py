"""Propagation's rules added for issue 15's rename/template figure (2026-12-05-d): an edit inside
prose (a comment, a docstring, another string) repeated in prose of the same class, and a rename
to a name the file already uses when its function no longer binds the old name.

Marked text: ``«old»`` marks each site expected, in order (below the caret, then wrapped);
``‸`` is the caret. The edit is given as the recent history; each table row fails without its
rule (the rule's own guard rows fail with the guard taken out)."""

from __future__ import annotations

import pytest

from forecode_core.next_edit.propagation import Edit, propose


def _marked(marked: str) -> tuple[str, list[int], int]:
    """The plain text, the marked sites' starts in order of the marks, and the caret."""
    text, sites, caret = "", [], -1
    i = 0
    while i < len(marked):
        ch = marked[i]
        if ch == "«":
            sites.append(len(text))
        elif ch == "‸":
            caret = len(text)
        elif ch != "»":
            text += ch
        i += 1
    return text, sites, caret


def _offered(marked: str, done: list[tuple[str, str, int]]) -> tuple[list[int], list[int]]:
    """The starts of the sites offered after the edits ``done`` (``(before, after, nth)``, oldest
    first: the ``nth`` occurrence of ``after`` is where an older edit left its text; the newest
    ends at the caret), and the marked ones."""
    text, sites, caret = _marked(marked)
    edits = []
    for before, after, nth in done[:-1]:
        pos = -1
        for _ in range(nth + 1):
            pos = text.index(after, pos + 1)
        edits.append(Edit(pos, before, after))
    before, after, _nth = done[-1]
    edits.append(Edit(caret - len(after), before, after))
    got = propose(text, edits, caret, path="a.py")
    return [p.start for p in got], sites


PROSE = [
    pytest.param(
        'def f():\n    """Wraps ``http.cookiejar.CookieJar``."""\n\n\n'
        'def h():\n    """Uses ``http.cookiejar‸.CookieJar``."""\n\n\n'
        'def g(cookielib):\n    """A ``«cookielib».CookieJar`` too."""\n'
        "    # cookielib.CookieJar in a comment\n    return cookielib.x\n",
        [("cookielib", "http.cookiejar", 0), ("cookielib", "http.cookiejar", 0)],
        id="a-docstring-word-twice-reaches-docstrings-only",
    ),
    pytest.param(
        'def f(params):\n    """(optional) Bytes to send‸ in the body."""\n'
        'def g(params):\n    """(optional) Bytes to «be sent» in the request body."""\n'
        "    s = 'to be sent'  # to be sent\n",
        [("be sent", "send", 0)],
        id="a-docstring-phrase-once",
    ),
    pytest.param(
        "import a‸\nimport b«  # type: ignore»\nimport c  # type: ignore this\n"
        "x = 1«  # type: ignore»\n",
        [("  # type: ignore", "", 0)],
        id="a-whole-comment-deleted-at-lines-ending-with-it",
    ),
    pytest.param(
        'URL = "https://a.org/x"‸\nOTHER = "https://b.org«:443»/y"\nPORT = 443\n',
        [('"https://a.org:443/x"', '"https://a.org/x"', 0)],
        id="a-literal-without-another-copy-falls-back-to-its-words",
    ),
    pytest.param(
        'def f(json):\n    """:param json: (optional) A data."""\n'
        'def g(json):\n    """:param json: (optional) A‸ data."""\n'
        'def h(json):\n    """:param json: (optional) «json» data to send."""\n',
        [("json", "A", 0), ("json", "A", 0)],
        id="a-plain-word-twice-at-the-same-part-of-a-sentence",
    ),
    pytest.param(
        'def get(data):\n    """Send it.\n\n'
        '    :param data: (optional) Dictionary (will be form-encoded)‸, bytes.\n    """\n\n\n'
        'def post(data):\n    """Send it.\n\n'
        '    :param data: (optional) Dictionary«», bytes.\n    """\n'
        "# :param data: (optional) Dictionary, bytes.\n",
        [("", " (will be form-encoded)", 0)],
        id="an-insertion-where-the-whole-line-reads-again",
    ),
    pytest.param(
        "x = 1  # Wraps a compatibility‸ interface\ny = 2  # Wraps a «compatability» interface\n"
        '"""Wraps a compatability interface"""\n',
        [("compatability", "compatibility", 0)],
        id="one-plain-word-where-the-whole-comment-reads-again",
    ),
]


@pytest.mark.parametrize(("marked", "done"), PROSE)
def test_an_edit_in_prose_is_offered_in_prose_of_its_kind(
    marked: str, done: list[tuple[str, str, int]]
) -> None:
    got, want = _offered(marked, done)
    assert got == want


@pytest.mark.parametrize(
    ("marked", "done"),
    [
        pytest.param(
            'def f(json):\n    """:param json: (optional) A‸ data."""\n'
            'def g(json):\n    """:param json: (optional) json data to send."""\n',
            [("json", "A", 0)],
            id="one-plain-word-once-is-a-sentence-rewritten",
        ),
        pytest.param(
            'def f(json):\n    """:param json: (optional) json data to sendA‸."""\n'
            'def g(json):\n    """(optional) json data."""\n',
            [("", "A", 0)],
            id="an-insertion-has-no-old-text-to-find",
        ),
        pytest.param(
            'def f():\n    """Get it.\n\n    See python.org/psf.io‸/1979.\n    """\n'
            "    python.org(u)\n",
            [("python.org", "psf.io", 0)],
            id="the-edits-own-line-is-no-second-copy",
        ),
        pytest.param(
            'def f():\n    """Use y2‸ here."""\n\n\ndef g():\n    """Use x1 there."""\n',
            [("x1", "y2", 0)],
            id="an-old-text-of-under-three-characters",
        ),
        pytest.param(
            'x = 1\n# keep the cache warm‸\n"""Usage:\n# keep the cache hot\n"""\n',
            [("hot", "warm", 0)],
            id="the-same-line-in-another-prose-class",
        ),
        pytest.param(
            "x = 1  # Returns it‸\ny = 2  # Returns them\n",
            [("them", "it", 0)],
            id="a-line-of-under-three-words",
        ),
        pytest.param(
            '# about the term\ns = "the term"\nterm = 1\ndef f():\n    """A word‸ here."""\n',
            [("the term", "word", 0)],
            id="another-prose-class-is-no-site",
        ),
    ],
)
def test_prose_guards_offer_nothing(marked: str, done: list[tuple[str, str, int]]) -> None:
    got, want = _offered(marked, done)
    assert want == [] and got == []


RENAMES = [
    pytest.param(
        "def test_a(env):\n    t‸ = env.get('a')\n    assert «tmpl».render() == 1\n"
        "    assert «tmpl».name\n\n\ndef test_b(env):\n    tmpl = env.get('b')\n"
        "    assert tmpl.render()\n\n\ndef test_c(env):\n    t = 1\n    return t\n",
        [("tmpl", "t", 0)],
        id="a-local-renamed-at-its-binding",
    ),
    pytest.param(
        "def cert_pem_file(localhost_cert‸):\n    with «example_cert».pem() as tmp:\n"
        "        yield tmp\n\n\ndef key_file(example_cert):\n    return example_cert.key\n\n\n"
        "def other(localhost_cert):\n    return localhost_cert\n",
        [("example_cert", "localhost_cert", 0)],
        id="a-parameter-renamed-other-functions-keep-theirs",
    ),
]


@pytest.mark.parametrize(("marked", "done"), RENAMES)
def test_a_rename_whose_old_name_is_dangling_in_its_function(
    marked: str, done: list[tuple[str, str, int]]
) -> None:
    got, want = _offered(marked, done)
    assert got == want


@pytest.mark.parametrize(
    ("marked", "done"),
    [
        pytest.param(
            "tmpl = load()\n\n\ndef test_a(env):\n    t‸ = env.get('a')\n"
            "    assert tmpl.render() == 1\n\n\ndef test_c(env):\n    t = 1\n",
            [("tmpl", "t", 0)],
            id="the-module-binds-the-old-name",
        ),
        pytest.param(
            "def f(frame):\n    loop_frame = frame.inner()\n    g(frame‸)\n    h(loop_frame)\n",
            [("loop_frame", "frame", 0)],
            id="the-function-still-binds-the-old-name",
        ),
        pytest.param(
            "def f(env, t):\n    return t‸(x) + len(y)\n\n\ndef g(t):\n    return t\n",
            [("len", "t", 0)],
            id="a-builtin",
        ),
        pytest.param(
            "def test_post(server):\n    response‸ = make(\n        1)\n"
            "    response = send(request)\n    return response\n",
            [("request", "response", 0)],
            id="the-function-has-the-new-name-elsewhere",
        ),
    ],
)
def test_a_rename_to_a_used_name_still_waits(marked: str, done: list[tuple[str, str, int]]) -> None:
    got, want = _offered(marked, done)
    assert want == [] and got == []
