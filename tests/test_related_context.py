"""Related files as context (forecode_core.next_edit.related_context): the names wanted at a
caret, the definitions of a related file, the excerpts chosen within a budget, and quick
open's boost; table tests on marked text (``|`` marks the caret)."""

from __future__ import annotations

import pytest

from forecode_core.next_edit.input import EditPair
from forecode_core.next_edit.related_context import (
    MAX_DEF_LINES,
    RelatedSource,
    boost_related,
    choose_excerpts,
    definitions_of,
    related_excerpts,
    wanted_names,
)
from forecode_core.workspace.fuzzy import Match


def caret_of(marked: str) -> tuple[str, int]:
    return marked.replace("|", "", 1), marked.index("|")


# ----- wanted names ----------------------------------------------------------------------------

WANTED = [
    (
        "the name at the caret first, then its line by distance, keywords and one letter out",
        "x = 1\nresult = parse_header(ra|w, limit)\nreturn result\n",
        (),
        ["raw", "parse_header", "limit", "result"],
    ),
    (
        "a name just before the caret (typing its end) comes first",
        "value = compute_total|\n",
        (),
        ["compute_total", "value"],
    ),
    (
        "the near lines: above before below, nearest first; then the far ones",
        "far_above\nabove_two\nabove_one\nhere|\nbelow_one\nbelow_two\nfar_below\n",
        (),
        ["here", "above_one", "below_one", "above_two", "below_two", "far_above", "far_below"],
    ),
    (
        "the recent edits' names come before the far lines'",
        "far_away\n\n\nhere|\n",
        (EditPair("a.py", 9, "x", "edited_name"),),
        ["here", "edited_name", "far_away"],
    ),
    (
        "then the recent edits' new text, newest first; repeats once",
        "call(|)\n",
        (
            EditPair("a.py", 0, "old_name()", "older_edit()"),
            EditPair("a.py", 3, "x", "newest_edit(call)"),
        ),
        ["call", "newest_edit", "older_edit"],
    ),
    (
        "an empty file wants nothing",
        "|",
        (),
        [],
    ),
]


@pytest.mark.parametrize(
    ("why", "marked", "recent", "expected"), WANTED, ids=[w[0] for w in WANTED]
)
def test_wanted_names(
    why: str, marked: str, recent: tuple[EditPair, ...], expected: list[str]
) -> None:
    text, caret = caret_of(marked)
    assert wanted_names(text, caret, recent) == expected, why


# ----- definitions -----------------------------------------------------------------------------

DEFINITIONS = [
    (
        "python: a def with its body, a decorated class, a constant",
        "import os\n\nLIMIT = 10\n\n@dataclass\nclass Box:\n    size: int\n\n"
        "    def area(self):\n        return self.size\n\ndef main():\n    pass\n",
        [("LIMIT", 2, 2), ("Box", 4, 9), ("area", 8, 9), ("main", 11, 12)],
    ),
    (
        "braces: the closing line at the definition's own indent belongs to it",
        "export function render(node) {\n  return node;\n}\nconst WIDTH = 80;\n"
        "pub(crate) async fn fetch(url: &str) {\n    get(url)\n}\n",
        [("render", 0, 2), ("WIDTH", 3, 3), ("fetch", 4, 6)],
    ),
    (
        "go: a method's receiver before its name",
        "type Server struct {\n\taddr string\n}\n\nfunc (s *Server) Start() error {\n"
        "\treturn nil\n}\n",
        [("Server", 0, 2), ("Start", 4, 6)],
    ),
    (
        "comparisons and calls are not definitions",
        "if x == 1:\n    run(x)\nprint(value)\n",
        [],
    ),
]


@pytest.mark.parametrize(("why", "text", "expected"), DEFINITIONS, ids=[d[0] for d in DEFINITIONS])
def test_definitions(why: str, text: str, expected: list[tuple[str, int, int]]) -> None:
    found = [(d.name, d.first_line, d.last_line) for d in definitions_of(text.split("\n"))]
    assert found == expected, why


def test_a_long_definition_is_cut_at_the_cap() -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(100))
    (definition,) = [d for d in definitions_of(("def long():\n" + body).split("\n"))]
    assert (definition.first_line, definition.last_line) == (0, MAX_DEF_LINES - 1)


# ----- choosing excerpts -----------------------------------------------------------------------

UTIL = (
    "import re\n"
    "\n"
    "def parse_header(raw, limit):\n"
    "    return raw[:limit]\n"
    "\n"
    "def unused():\n"
    "    return 0\n"
    "\n"
    "def split_lines(text):\n"
    "    return text.split()\n"
)
MODELS = "from dataclasses import dataclass\n\n\n@dataclass\nclass Header:\n    name: str\n"


def excerpts(
    sources: dict[str, str], names: list[str], budget: int, head_lines: int
) -> list[tuple[str, int, str]]:
    chosen = choose_excerpts(
        [RelatedSource.of(p, t) for p, t in sources.items()], names, budget, head_lines=head_lines
    )
    return [(e.path, e.start_line, e.text) for e in chosen]


IMPORT_RE = ("util.py", 0, "import re\n")
PARSE_HEADER = ("util.py", 2, "def parse_header(raw, limit):\n    return raw[:limit]\n")
SPLIT_LINES = ("util.py", 8, "def split_lines(text):\n    return text.split()\n")

CHOOSE = [
    (
        "the wanted definition, then the head, not the rest of the file",
        {"util.py": UTIL},
        ["parse_header"],
        1000,
        1,
        [IMPORT_RE, PARSE_HEADER],
    ),
    (
        "two wanted definitions come out in line order, apart",
        {"util.py": UTIL},
        ["split_lines", "parse_header"],
        1000,
        1,
        [IMPORT_RE, PARSE_HEADER, SPLIT_LINES],
    ),
    (
        "within the budget the more wanted definition wins; the other is left out whole",
        {"util.py": UTIL},
        ["split_lines", "parse_header"],
        50,
        1,
        [SPLIT_LINES],
    ),
    (
        "no wanted definition: the file's head (trailing blank lines dropped)",
        {"models.py": MODELS},
        ["parse_header"],
        1000,
        20,
        [("models.py", 0, MODELS)],
    ),
    (
        "the head is cut at a blank line to fit",
        {"models.py": MODELS},
        [],
        40,
        20,
        [("models.py", 0, "from dataclasses import dataclass\n")],
    ),
    (
        "a head that reaches a definition is merged with it",
        {"util.py": UTIL},
        ["parse_header"],
        1000,
        3,
        [("util.py", 0, "import re\n\ndef parse_header(raw, limit):\n    return raw[:limit]\n")],
    ),
    (
        "every file's definitions first, then the heads in file order with what is left",
        {"util.py": UTIL, "models.py": MODELS},
        ["parse_header"],
        100,
        1,
        [IMPORT_RE, PARSE_HEADER, ("models.py", 0, "from dataclasses import dataclass\n")],
    ),
    (
        "a definition in the second file wins over the first file's head",
        {"util.py": UTIL, "models.py": MODELS},
        ["Header"],
        80,
        20,
        [IMPORT_RE, ("models.py", 3, "@dataclass\nclass Header:\n    name: str\n")],
    ),
    (
        "a nested definition inside a wanted one is merged into it",
        {"m.py": MODELS + "\n    def show(self):\n        return self.name\n"},
        ["Header", "show"],
        1000,
        1,
        [
            ("m.py", 0, "from dataclasses import dataclass\n"),
            (
                "m.py",
                3,
                "@dataclass\nclass Header:\n    name: str\n\n    def show(self):\n"
                "        return self.name\n",
            ),
        ],
    ),
    (
        "no budget: nothing",
        {"util.py": UTIL},
        ["parse_header"],
        0,
        20,
        [],
    ),
]


@pytest.mark.parametrize(
    ("why", "sources", "names", "budget", "head_lines", "expected"),
    CHOOSE,
    ids=[c[0] for c in CHOOSE],
)
def test_choose_excerpts(
    why: str,
    sources: dict[str, str],
    names: list[str],
    budget: int,
    head_lines: int,
    expected: list[tuple[str, int, str]],
) -> None:
    got = excerpts(sources, names, budget, head_lines)
    assert got == expected, why
    assert sum(len(text) for _, _, text in got) <= budget


def test_related_excerpts_for_the_caret() -> None:
    text, caret = caret_of("from util import parse_header\n\nhead = parse_he|ader(data, 4)\n")
    sources = [RelatedSource.of("models.py", MODELS), RelatedSource.of("util.py", UTIL)]
    got = related_excerpts(sources, text, caret, 80)
    # the definition in the second file wins over the first file's head; then util's head
    assert [(e.path, e.start_line, e.text) for e in got] == [IMPORT_RE, PARSE_HEADER]


# ----- quick open ------------------------------------------------------------------------------

BOOST = [
    (
        "a related file wins among close matches",
        [("a/config.py", 100.0), ("b/conf.py", 95.0)],
        {"b/conf.py": 0.6},
        ["b/conf.py", "a/config.py"],
    ),
    (
        "a modest boost: never over a clearly better match (an exact name)",
        [("core/models.py", 160.0), ("ui/model_view.py", 100.0)],
        {"ui/model_view.py": 1.0},
        ["core/models.py", "ui/model_view.py"],
    ),
    (
        "nothing related: the order stays",
        [("x.py", 10.0), ("y.py", 10.0), ("z.py", 5.0)],
        {},
        ["x.py", "y.py", "z.py"],
    ),
]


@pytest.mark.parametrize(("why", "scored", "related", "expected"), BOOST, ids=[b[0] for b in BOOST])
def test_boost_related(
    why: str, scored: list[tuple[str, float]], related: dict[str, float], expected: list[str]
) -> None:
    matches = [Match(path, score, ()) for path, score in scored]
    assert [m.path for m in boost_related(matches, related)] == expected, why
