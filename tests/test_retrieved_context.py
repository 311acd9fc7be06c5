"""Retrieved code in the completion context: the pure decisions
(``forecode_core.completion.retrieval``: the
query, the cache, what goes in the prompt) as tables, and ``RetrievedContext`` on a real editor
offscreen with a scripted ``CodebaseSearch`` at the seam (pauses, cache, cancel, no index, an
index that cannot answer, and the renderer ranking what it hands over lowest)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from app.ui.retrieved_context import RetrievedContext
from forecode_core.completion.prompt import NEAR_LINES, CompletionInput, Snippet, render_prompt
from forecode_core.completion.retrieval import (
    MAX_SNIPPETS,
    QUERY_MAX_CHARS,
    REGION_LINES,
    SNIPPET_MAX_LINES,
    HitCache,
    build_query,
    needs_search,
    region_of,
    retrieved_snippets,
)
from forecode_core.index.codebase import CodebaseUnavailable, CodeHit
from forecode_core.profiles import get_profile
from forecode_core.text.languages import by_id

# ----- the query ---------------------------------------------------------------------------------


def marked(text: str) -> tuple[list[str], int]:
    """Lines of ``text`` and the 1-based line holding the cursor mark ``ˇ`` (removed)."""
    lines = text.split("\n")
    row = next(i for i, line in enumerate(lines) if "ˇ" in line)
    lines[row] = lines[row].replace("ˇ", "")
    return lines, row + 1


@pytest.mark.parametrize(
    ("text", "query"),
    [
        # the cursor line, eight lines above and two below (indentation stripped, blanks out)
        (
            "import os\n\ndef load_config(path):\n    with open(path) as f:\n        data = ˇ\n"
            "    return data\n\nother()\nfar_below()",
            "import os\ndef load_config(path):\nwith open(path) as f:\ndata =\nreturn data",
        ),
        # only eight lines above count
        (
            "\n".join(f"a{i} = {i}" for i in range(20)) + "\nx = ˇ",
            "\n".join(f"a{i} = {i}" for i in range(12, 20)) + "\nx =",
        ),
        # at the top of a file
        ("ˇdef first():\n    pass", "def first():\npass"),
        # an empty file
        ("ˇ", ""),
    ],
)
def test_build_query(text: str, query: str) -> None:
    lines, line = marked(text)
    assert build_query(lines, line) == query


def test_a_query_keeps_the_lines_nearest_the_cursor_within_its_size() -> None:
    lines = [f"line_{i} = " + "x" * 150 for i in range(10)]
    query = build_query(lines, 10)
    assert len(query) <= QUERY_MAX_CHARS
    assert query.endswith(lines[9]) and lines[8] in query and lines[0] not in query
    huge = ["y" * 5000]
    assert build_query(huge, 1) == "y" * QUERY_MAX_CHARS


@pytest.mark.parametrize(
    ("cached", "query", "search"),
    [
        (None, "def load(path):", True),
        (None, "   ", False),  # nothing to search for
        (
            "def load(path):\nwith open(path) as f:",
            "def load(path):\nwith open(path) as f:\nda",
            False,
        ),  # a few characters typed: the cached answer holds
        ("def load(path):", "class Parser:\n    def tokens(self):", True),  # another block
    ],
)
def test_needs_search(cached: str | None, query: str, search: bool) -> None:
    assert needs_search(cached, query) is search


def test_regions_and_the_cache() -> None:
    assert region_of("a.py", 1) == region_of("a.py", REGION_LINES)
    assert region_of("a.py", REGION_LINES + 1) != region_of("a.py", 1)
    assert region_of("a.py", 1) != region_of("b.py", 1)
    cache = HitCache(capacity=2)
    one, two, three = (region_of(p, 1) for p in ("1.py", "2.py", "3.py"))
    cache.put(one, "q1", [CodeHit("x.py", 1, 1, "x", 1.0)])
    cache.put(two, "q2", [])
    assert cache.hits(one)[0].path == "x.py"  # used: now the most recent
    cache.put(three, "q3", [])
    assert cache.query(one) == "q1" and cache.query(two) is None and len(cache) == 2


# ----- what goes in the prompt -----------------------------------------------------------------


def hit(path: str, start: int, n_lines: int = 3, score: float = 1.0) -> CodeHit:
    text = "\n".join(f"{path.split('.')[0]}_{start + i} = {i}" for i in range(n_lines))
    return CodeHit(path, start, start + n_lines - 1, text, score)


def test_retrieved_snippets_leave_out_what_the_prompt_already_holds() -> None:
    cursor = 100
    hits = [
        hit("main.py", cursor - NEAR_LINES - 3, 3),  # the edited file, but far: kept
        hit("main.py", cursor + 5, 3),  # the edited file near the cursor: in the prompt
        hit("main.py", cursor - NEAR_LINES - 2, 3),  # overlaps the first one: once is enough
        hit("util.py", 10, 5),  # overlaps the open file's snippet
        hit("lexer.py", 1, SNIPPET_MAX_LINES + 30),  # long: cut
        hit("parser.py", 7, 2),
        hit("more.py", 1, 2),  # over MAX_SNIPPETS
    ]
    others = (Snippet("util.py", "a\nb\nc\n", 12, "open_file"),)
    out = retrieved_snippets(hits, "main.py", cursor, others)
    assert [(s.path, s.start_line, s.end_line) for s in out] == [
        ("main.py", cursor - NEAR_LINES - 3, cursor - NEAR_LINES - 1),
        ("lexer.py", 1, SNIPPET_MAX_LINES),
        ("parser.py", 7, 8),
    ]
    assert len(out) == MAX_SNIPPETS and all(s.kind == "retrieved" for s in out)
    assert out[2].text == "parser_7 = 0\nparser_8 = 1\n"


def test_retrieved_snippets_rank_lowest_in_the_prompt() -> None:
    """Under a budget too small for all, the retrieved snippet is the first to go; with room,
    it sits farthest from the code (least important first)."""
    edit = Snippet("src/util.py", "def helper(x):\n    return x * 2\n", 10, "recent_edit")
    opened = Snippet("README.md", "# Demo\n", 1, "open_file")
    (found,) = retrieved_snippets(
        [CodeHit("src/db.py", 3, 4, "def connect(url):\n    pass", 1.0)], "src/main.py", 3
    )
    inp = CompletionInput(
        "src/main.py", "python", "import db\n\nconn = ", "\n", (found, opened, edit)
    )

    def count(text: str) -> int:
        return len(text) // 3 + 1

    roomy = render_prompt(inp, get_profile("gemma3"), count, 1000)
    assert roomy.snippets_included == ("src/util.py:10", "README.md:1", "src/db.py:3")
    assert roomy.text.index("# Path: src/db.py") < roomy.text.index("# Path: README.md")
    # The largest budget that cannot keep all three: only the retrieved one has gone.
    tight = next(
        r
        for b in range(1000, 0, -1)
        if len((r := render_prompt(inp, get_profile("gemma3"), count, b)).snippets_included) < 3
    )
    assert tight.snippets_included == ("src/util.py:10", "README.md:1")


# ----- RetrievedContext on a real editor -------------------------------------------------------


class FakeSearch:
    """A scripted ``CodebaseSearch``: answers ``answer(query)``; ``hold`` blocks it (polling
    ``should_stop``) until ``release``."""

    def __init__(
        self, answer: Callable[[str], list[CodeHit]] | None = None, error: Exception | None = None
    ) -> None:
        self.answer = answer or (
            lambda q: [CodeHit("src/db.py", 3, 4, "def connect(url):\n    pass", 1.0)]
        )
        self.error = error
        self.queries: list[str] = []
        self.threads: list[threading.Thread] = []
        self.released = threading.Event()
        self.released.set()
        self.held = threading.Event()
        self.stopped = threading.Event()

    def search(
        self, query: str, *, top_k: int = 8, should_stop: Callable[[], bool] | None = None
    ) -> list[CodeHit]:
        self.queries.append(query)
        self.threads.append(threading.current_thread())
        self.held.set()
        while not self.released.wait(0.01):
            if should_stop is not None and should_stop():
                self.stopped.set()
                raise CodebaseUnavailable("cancelled")
        if self.error is not None:
            raise self.error
        return self.answer(query)[:top_k]


SOURCE = (
    "\n".join(
        ["import db", "", "def open_store(url):", "    conn = db.connect(url)", "    return conn"]
        + [f"value_{i} = {i}" for i in range(60)]
    )
    + "\n"
)


@pytest.fixture
def editor(qtbot: QtBot) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.resize(700, 300)
    ed.set_language(by_id("python"))
    ed.set_text(SOURCE)
    ed.show()
    return ed


@pytest.fixture
def retrieved(editor: CodeEditor) -> Iterator[RetrievedContext]:
    ctx = RetrievedContext(idle_ms=30, retry_s=3600)
    yield ctx
    ctx.shutdown()


def caret_to(editor: CodeEditor, line: int) -> None:
    """The caret at the end of the 1-based ``line``."""
    editor.gotoPos(editor.lineEndPosition(line - 1))


def test_a_pause_searches_off_the_ui_thread_and_completions_read_the_cache(
    qtbot: QtBot, editor: CodeEditor, retrieved: RetrievedContext
) -> None:
    search = FakeSearch()
    retrieved.set_codebase(search)
    retrieved.attach(editor, "src/main.py")
    caret_to(editor, 4)
    assert retrieved.current_snippets() == ()  # nothing cached yet: nothing, at once
    with qtbot.waitSignal(retrieved.searched, timeout=3000):
        pass
    assert search.queries == [
        "import db\ndef open_store(url):\nconn = db.connect(url)\nreturn conn\nvalue_0 = 0"
    ]
    assert search.threads[0] is not threading.main_thread()
    assert retrieved.current_snippets() == (
        Snippet("src/db.py", "def connect(url):\n    pass\n", 3, "retrieved"),
    )
    # the same region again, unchanged: the cache answers, no second search
    caret_to(editor, 5)
    qtbot.waitUntil(lambda: retrieved.cache_hits >= 1, timeout=3000)
    assert retrieved.searches == len(search.queries) == 1
    assert retrieved.snippets("src/main.py", 5)[0].path == "src/db.py"
    # another region of the file: its own search; the first region keeps its answer
    caret_to(editor, 50)
    with qtbot.waitSignal(retrieved.searched, timeout=3000):
        pass
    assert len(search.queries) == 2 and "value_44 = 44" in search.queries[1]
    assert retrieved.snippets("src/main.py", 4) != ()


def test_hits_of_the_edited_file_near_the_cursor_are_left_out(
    qtbot: QtBot, editor: CodeEditor, retrieved: RetrievedContext
) -> None:
    search = FakeSearch(
        lambda q: [
            CodeHit("src/main.py", 3, 5, "def open_store(url):", 2.0),
            CodeHit("src/other.py", 1, 1, "OTHER = 1", 1.0),
        ]
    )
    retrieved.set_codebase(search)
    retrieved.attach(editor, "src/main.py")
    caret_to(editor, 4)
    with qtbot.waitSignal(retrieved.searched, timeout=3000):
        pass
    assert [s.path for s in retrieved.current_snippets()] == ["src/other.py"]


def test_moving_on_cancels_the_search_in_flight(
    qtbot: QtBot, editor: CodeEditor, retrieved: RetrievedContext
) -> None:
    search = FakeSearch()
    search.released.clear()
    retrieved.set_codebase(search)
    retrieved.attach(editor, "src/main.py")
    caret_to(editor, 4)
    qtbot.waitUntil(search.held.is_set, timeout=3000)
    assert retrieved.current_snippets() == ()  # the search blocks; completions do not
    search.held.clear()
    caret_to(editor, 50)  # a new region: a new search, the old one told to stop
    qtbot.waitUntil(search.stopped.is_set, timeout=3000)
    qtbot.waitUntil(search.held.is_set, timeout=3000)
    search.released.set()
    with qtbot.waitSignal(retrieved.searched, timeout=3000) as blocker:
        pass
    assert blocker.args == [region_of("src/main.py", 50)]
    assert retrieved.snippets("src/main.py", 4) == ()  # the cancelled answer was not kept
    assert retrieved.snippets("src/main.py", 50) != ()


def test_without_an_index_nothing_is_asked_or_given(
    qtbot: QtBot, editor: CodeEditor, retrieved: RetrievedContext
) -> None:
    search = FakeSearch()
    retrieved.set_codebase(search)
    retrieved.attach(editor, "src/main.py")
    caret_to(editor, 4)
    with qtbot.waitSignal(retrieved.searched, timeout=3000):
        pass
    retrieved.set_codebase(None)
    assert retrieved.current_snippets() == ()
    caret_to(editor, 50)
    retrieved.on_pause()  # the pause, now: no index, no search
    assert retrieved.searches == len(search.queries) == 1
    # a new index starts with an empty cache
    retrieved.set_codebase(FakeSearch(lambda q: []))
    assert retrieved.snippets("src/main.py", 4) == ()


@pytest.mark.parametrize("error", [CodebaseUnavailable("not synced yet"), RuntimeError("boom")])
def test_an_index_that_cannot_answer_gives_nothing_and_is_not_hammered(
    qtbot: QtBot, editor: CodeEditor, retrieved: RetrievedContext, error: Exception
) -> None:
    search = FakeSearch(error=error)
    retrieved.set_codebase(search)
    retrieved.attach(editor, "src/main.py")
    caret_to(editor, 4)
    qtbot.waitUntil(lambda: bool(retrieved.unavailable), timeout=3000)
    assert str(error) in retrieved.unavailable
    assert retrieved.current_snippets() == ()
    caret_to(editor, 50)
    retrieved.on_pause()  # the pause, now
    assert retrieved.searches == len(search.queries) == 1  # not asked again before retry_s
    retrieved.retry_s = 0
    retrieved.on_pause()
    assert retrieved.searches == 2
    qtbot.waitUntil(lambda: len(search.queries) == 2, timeout=3000)


def test_an_answer_for_another_file_stays_with_its_region(
    qtbot: QtBot, editor: CodeEditor, retrieved: RetrievedContext
) -> None:
    search = FakeSearch()
    retrieved.set_codebase(search)
    retrieved.attach(editor, "src/main.py")
    caret_to(editor, 4)
    with qtbot.waitSignal(retrieved.searched, timeout=3000):
        pass
    retrieved.attach(editor, "src/renamed.py")  # the same editor, saved under another name
    assert retrieved.current_snippets() == ()
    with qtbot.waitSignal(retrieved.searched, timeout=3000):
        pass
    assert retrieved.current_snippets() != ()
