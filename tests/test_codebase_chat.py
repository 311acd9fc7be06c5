"""``@codebase`` in the chat panel: the search runs off the UI thread, its hits join the context
under the budget below the current file and the ``@file`` mentions, Stop cancels it, and a
missing or failing index never loses the question.

Most tests drive a real ``ChatPanel`` (offscreen) with a scripted ``CodebaseSearch`` and a
scripted ``ChatBackend`` at their seams. The last test is end to end: a tiny workspace indexed
by the real ``IndexSync`` (real embedder) into the real service on loopback, searched through a
minimal ``CodebaseSearch`` adapter, and the question sent through the real chat service (the
real default model), whose received request is recorded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.chat_panel import (
    CODEBASE_ENTRY,
    NO_HITS_NOTICE,
    NO_INDEX_NOTICE,
    SEARCH_STOPPED_NOTICE,
    SEARCHING_NOTICE,
    ChatPanel,
)
from forecode_core.chat.context import ContextSource
from forecode_core.chat.types import ChatDelta, ChatDone, ChatParams, ChatStarted, ContextItem
from forecode_core.index.codebase import CodebaseUnavailable, CodeHit

_END = object()

UTIL = "def helper():\n    return 1\n"
PARSER = "def parse_header(line):\n    key, _, value = line.partition(':')\n    return key, value"
LEXER = "class Lexer:\n    def tokens(self, text):\n        yield from text.split()"
BIG = "\n".join(f"    row_{i} = table[{i}]  # a long line of code here" for i in range(300))


# ----- the seams, scripted -------------------------------------------------------------------


class FakeCall:
    def __init__(self, params: ChatParams) -> None:
        self.params = params
        self._items: queue.Queue[object] = queue.Queue()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._items.get(timeout=60)
            if item is _END:
                return
            yield item

    def cancel(self) -> None:
        self._items.put(_END)

    def reply(self, text: str) -> None:
        for event in (ChatStarted("fake", "cloud"), ChatDelta(text), ChatDone("stop"), _END):
            self._items.put(event)


class FakeBackend:
    def __init__(self) -> None:
        self.calls: list[FakeCall] = []

    def chat(self, params: ChatParams) -> FakeCall:
        call = FakeCall(params)
        self.calls.append(call)
        return call

    def call(self, qtbot: QtBot, n: int = 1) -> FakeCall:
        qtbot.waitUntil(lambda: len(self.calls) >= n, timeout=5000)
        return self.calls[n - 1]


class FakeSearch:
    """A ``CodebaseSearch`` whose answer the test scripts: hits, or an exception; ``hold``
    makes it block (polling ``should_stop``) until ``release``."""

    def __init__(self, hits: Sequence[CodeHit] = (), error: Exception | None = None) -> None:
        self.hits = list(hits)
        self.error = error
        self.queries: list[tuple[str, int]] = []
        self.held = threading.Event()
        self.released = threading.Event()
        self.released.set()
        self.stopped = threading.Event()  # it saw should_stop() and gave up
        self.threads: list[threading.Thread] = []

    def hold(self) -> None:
        self.released.clear()

    def search(
        self, query: str, *, top_k: int = 8, should_stop: Callable[[], bool] | None = None
    ) -> list[CodeHit]:
        self.threads.append(threading.current_thread())
        self.queries.append((query, top_k))
        self.held.set()
        while not self.released.wait(0.01):
            if should_stop is not None and should_stop():
                self.stopped.set()
                raise CodebaseUnavailable("cancelled")
        if self.error is not None:
            raise self.error
        return self.hits[:top_k]


class Host:
    """The editor around the panel: one open file, a few workspace files."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.current: ContextSource | None = ContextSource(
            "current_file", "src/util.py", UTIL, "python"
        )

    def chat_editor_sources(self) -> tuple[ContextSource | None, ContextSource | None]:
        return self.current, None

    def chat_workspace_files(self) -> Sequence[str]:
        return list(self.files)

    def chat_read_file(self, path: str) -> tuple[str, str]:
        if path not in self.files:
            raise OSError(2, "No such file or directory")
        return self.files[path], "python"

    def chat_focus_editor(self) -> None:
        pass


def hit(path: str, text: str, start: int = 1, score: float = 1.0) -> CodeHit:
    return CodeHit(path, start, start + text.count("\n"), text, score)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def panel(qtbot: QtBot, backend: FakeBackend) -> Iterator[ChatPanel]:
    host = Host({"src/util.py": UTIL, "docs/notes.py": "NOTES = 1\n"})
    widget = ChatPanel(host, backend)
    qtbot.addWidget(widget)
    widget.resize(420, 700)
    widget.show()
    yield widget
    widget.stop()
    for call in backend.calls:
        call.cancel()


def ask(qtbot: QtBot, panel: ChatPanel, text: str) -> None:
    panel.input.setFocus()
    panel.input.setPlainText(text)
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)


def notices(panel: ChatPanel) -> list[str]:
    return [n.message for n in panel.notices()]


# ----- the search and its hits -----------------------------------------------------------------


def test_codebase_hits_go_with_the_question_below_the_file_and_mentions(
    qtbot: QtBot, panel: ChatPanel, backend: FakeBackend
) -> None:
    search = FakeSearch([hit("src/parser.py", PARSER, 10, 0.9), hit("src/lexer.py", LEXER, 3)])
    panel.set_codebase(search)
    ask(qtbot, panel, "@codebase where are headers parsed? see @docs/notes.py")

    call = backend.call(qtbot)
    assert search.queries == [("where are headers parsed? see @docs/notes.py", 8)]
    assert search.threads[0] is not threading.main_thread()
    assert call.params.context == (
        ContextItem("current_file", "src/util.py", UTIL, 0, 0, "python"),
        ContextItem("file", "docs/notes.py", "NOTES = 1\n", 0, 0, "python"),
        ContextItem("file", "src/parser.py", PARSER, 10, 12, "python"),
        ContextItem("file", "src/lexer.py", LEXER, 3, 5, "python"),
    )
    # the user's words go out as typed
    assert call.params.messages[-1].content == (
        "@codebase where are headers parsed? see @docs/notes.py"
    )
    question = panel.messages()[0]
    assert question.footer.text() == (
        "Context: current file src/util.py · docs/notes.py · src/parser.py:10-12 · src/lexer.py:3-5"
    )
    assert SEARCHING_NOTICE not in notices(panel)
    # the chips show the hits sent, until the next question is typed
    qtbot.waitUntil(
        lambda: (
            [c.text() for c in panel.codebase_chips]
            == ["✓ src/parser.py:10-12", "✓ src/lexer.py:3-5"]
        ),
        timeout=3000,
    )
    call.reply("It is in the parser.")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    stored = panel.current.messages[0]
    assert stored.context[-2:] == ("src/parser.py:10-12", "src/lexer.py:3-5")
    panel.input.setPlainText("next question")
    panel.refresh_context()
    assert panel.codebase_chips == []


def test_hits_give_way_first_under_the_budget_and_the_chips_say_so(
    qtbot: QtBot, panel: ChatPanel, backend: FakeBackend
) -> None:
    search = FakeSearch(
        [
            hit("src/parser.py", PARSER, 10),
            hit("src/util.py", "    return 1", 2),  # already sent: the file
            hit("src/big.py", BIG, 1),
            hit("src/lexer.py", LEXER, 3),
        ]
    )
    panel.set_codebase(search)
    panel.budget_tokens = 400
    ask(qtbot, panel, "how does the table work? @codebase")
    call = backend.call(qtbot)
    kinds = [(i.kind, i.path, i.truncated) for i in call.params.context]
    assert kinds == [
        ("current_file", "src/util.py", False),
        ("file", "src/parser.py", False),
        ("file", "src/big.py", True),
    ]
    big = call.params.context[2]
    assert big.start_line == 1 and 1 < big.end_line < 300
    assert big.text == "\n".join(BIG.split("\n")[: big.end_line])
    qtbot.waitUntil(lambda: len(panel.codebase_chips) == 4, timeout=3000)
    chips = [c.text() for c in panel.codebase_chips]
    assert chips == [
        "✓ src/parser.py:10-12",
        "✕ src/util.py:2-2 (dropped)",
        f"✂ src/big.py:1-300 (lines 1–{big.end_line})",
        "✕ src/lexer.py:3-5 (dropped)",
    ]
    assert "already included in the current file" in panel.codebase_chips[1].toolTip()
    assert "over the context budget" in panel.codebase_chips[3].toolTip()
    footer = panel.messages()[0].footer.text()
    assert f"src/big.py:1-300 (truncated to lines 1–{big.end_line})" in footer
    assert "src/lexer.py:3-5 (not sent: over the context budget)" in footer


def test_searching_shows_and_stop_cancels_it_and_returns_the_question(
    qtbot: QtBot, panel: ChatPanel, backend: FakeBackend
) -> None:
    search = FakeSearch([hit("src/parser.py", PARSER)])
    search.hold()
    panel.set_codebase(search)
    ask(qtbot, panel, "@codebase explain parsing")
    qtbot.waitUntil(search.held.is_set, timeout=3000)
    # the UI thread is free while the search blocks: the panel shows what it is doing
    assert panel.is_searching() and SEARCHING_NOTICE in notices(panel)
    assert panel.stop_button.isVisible() and not panel.send_button.isEnabled()
    assert [m.role for m in panel.messages()] == ["user"]
    assert panel.input.toPlainText() == ""
    assert not panel.send()  # one question at a time

    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert not panel.is_searching() and not panel.stop_button.isVisible()
    qtbot.waitUntil(search.stopped.is_set, timeout=3000)  # the search saw should_stop
    assert notices(panel) == [SEARCH_STOPPED_NOTICE]
    assert panel.messages() == []
    assert panel.input.toPlainText() == "@codebase explain parsing"
    assert panel.current.messages == ()
    qtbot.wait(100)
    assert backend.calls == []  # nothing was sent, and no late result arrives

    # the question goes again as it is, and this time the search answers
    search.released.set()
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)
    call = backend.call(qtbot)
    assert [i.path for i in call.params.context] == ["src/util.py", "src/parser.py"]


def test_escape_stops_the_search(qtbot: QtBot, panel: ChatPanel, backend: FakeBackend) -> None:
    search = FakeSearch()
    search.hold()
    panel.set_codebase(search)
    ask(qtbot, panel, "@codebase anything")
    qtbot.waitUntil(search.held.is_set, timeout=3000)
    qtbot.keyClick(panel.input, Qt.Key.Key_Escape)
    assert not panel.is_searching()
    assert panel.input.toPlainText() == "@codebase anything"
    assert backend.calls == []


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        (None, NO_INDEX_NOTICE),
        (
            FakeSearch(error=CodebaseUnavailable("the index is still syncing")),
            "The codebase index could not answer (the index is still syncing); the question was "
            "sent without codebase context.",
        ),
        (
            FakeSearch(error=RuntimeError("boom")),
            "The codebase index could not answer (the search failed: RuntimeError: boom); the "
            "question was sent without codebase context.",
        ),
        (FakeSearch([]), NO_HITS_NOTICE),
    ],
)
def test_without_an_answer_from_the_index_the_question_still_goes(
    qtbot: QtBot, panel: ChatPanel, backend: FakeBackend, search: FakeSearch | None, expected: str
) -> None:
    panel.set_codebase(search)
    ask(qtbot, panel, "@codebase where is the config read?")
    call = backend.call(qtbot)
    assert [i.kind for i in call.params.context] == ["current_file"]
    assert call.params.messages[-1].content == "@codebase where is the config read?"
    assert notices(panel) == [expected]
    assert [(m.role, m.content) for m in panel.current.messages] == [
        ("user", "@codebase where is the config read?"),
        ("notice", expected),
    ]
    call.reply("ok")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    assert [m.role for m in panel.current.messages] == ["user", "notice", "assistant"]


def test_a_question_without_codebase_does_not_search(
    qtbot: QtBot, panel: ChatPanel, backend: FakeBackend
) -> None:
    search = FakeSearch([hit("src/parser.py", PARSER)])
    panel.set_codebase(search)
    ask(qtbot, panel, "what is @codebases? and email me@codebase")
    call = backend.call(qtbot)
    assert search.queries == []
    assert [i.kind for i in call.params.context] == ["current_file"]
    assert notices(panel) == []


# ----- the @ picker and the chip ---------------------------------------------------------------


def test_the_at_picker_offers_codebase_beside_the_files(
    qtbot: QtBot, panel: ChatPanel, backend: FakeBackend
) -> None:
    panel.set_codebase(FakeSearch())
    qtbot.keyClicks(panel.input, "how is it done in the @")
    assert panel.picker.is_open()
    items = panel.picker.items()
    assert items[0].data is CODEBASE_ENTRY and items[0].label == "@codebase"
    assert {i.data for i in items[1:]} == {"src/util.py", "docs/notes.py"}
    qtbot.keyClicks(panel.picker.query_edit, "util")  # a file's name: no codebase row
    assert [i.data for i in panel.picker.items()] == ["src/util.py"]
    panel.picker.query_edit.clear()
    qtbot.keyClicks(panel.picker.query_edit, "cdb")
    assert panel.picker.items()[0].data is CODEBASE_ENTRY
    qtbot.keyClick(panel.picker.query_edit, Qt.Key.Key_Return)
    assert panel.input.toPlainText() == "how is it done in the @codebase "
    panel.refresh_context()
    assert [c.text() for c in panel.codebase_chips] == ["⌕ @codebase ✕"]
    assert panel.mention_chips == []  # not a file

    # clicking the chip takes the mention out
    panel.codebase_chips[0].click()
    assert panel.input.toPlainText() == "how is it done in the "
    assert panel.codebase_chips == []


def test_the_chip_says_when_there_is_no_index(qtbot: QtBot, panel: ChatPanel) -> None:
    panel.input.setPlainText("@codebase find the parser")
    panel.refresh_context()
    assert [c.text() for c in panel.codebase_chips] == ["@codebase (no index) ✕"]
    assert "no codebase index" in panel.codebase_chips[0].toolTip()


# ----- end to end: the real index, the real chat service ---------------------------------------

E2E_TOKEN = "codebase-chat-test-token-0123456789"
E2E_FILES = {
    "net/http.py": (
        "import re\n\n\n"
        "def parse_header(line):\n"
        '    """Split one HTTP header line into its name and value."""\n'
        "    name, _, value = line.partition(':')\n"
        "    return name.strip().lower(), value.strip()\n\n\n"
        "def status_text(code):\n"
        "    return {200: 'OK', 404: 'Not Found'}.get(code, 'Unknown')\n"
    ),
    "billing/tax.py": (
        "RATES = {'fr': 0.2, 'de': 0.19}\n\n\n"
        "def compute_tax(amount, country):\n"
        '    """The VAT owed on an amount in a country."""\n'
        "    return round(amount * RATES.get(country, 0.0), 2)\n"
    ),
    "ui/table.py": (
        "def render_table(rows):\n"
        "    widths = [max(len(str(c)) for c in col) for col in zip(*rows)]\n"
        "    return '\\n'.join(' '.join(str(c).ljust(w) for c, w in zip(r, widths))"
        " for r in rows)\n"
    ),
}
PARSE_HEADER = "\n".join(E2E_FILES["net/http.py"].split("\n")[3:7])


class IndexSearch:
    """The minimal ``CodebaseSearch`` over ``IndexSync`` (the index controller's job in the
    editor): results mapped back to the user's files, stale ones left out."""

    def __init__(self, sync: Any) -> None:
        self.sync = sync
        self.lock = threading.Lock()  # IndexSync has one owner at a time

    def search(
        self, query: str, *, top_k: int = 8, should_stop: Callable[[], bool] | None = None
    ) -> list[CodeHit]:
        from cloud_client.index_sync import SyncError

        with self.lock:
            if should_stop is not None and should_stop():
                raise CodebaseUnavailable("cancelled")
            try:
                results = self.sync.search(query, top_k=top_k)
            except SyncError as exc:
                raise CodebaseUnavailable(str(exc)) from exc
        return [
            CodeHit(r.path, r.start_line, r.end_line, r.text, r.score)
            for r in results
            if r.text is not None
        ]


class ChatRecorder(grpc.ServerInterceptor):  # type: ignore[misc]
    """A server interceptor keeping every ``Chat/Stream`` request the service receives."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method != "/forecode.v1.Chat/Stream":
            return handler
        parse = handler.request_deserializer

        def recording(raw: bytes) -> Any:
            self.requests.append(bytes(raw))
            return parse(raw) if parse is not None else raw

        return handler._replace(request_deserializer=recording)


class FileHost(Host):
    """The editor around the panel, over a real folder, with no file open."""

    def __init__(self, root: Path) -> None:
        super().__init__({})
        self.root = root
        self.current = None

    def chat_workspace_files(self) -> Sequence[str]:
        return [p.relative_to(self.root).as_posix() for p in self.root.rglob("*.py")]

    def chat_read_file(self, path: str) -> tuple[str, str]:
        return (self.root / path).read_text(encoding="utf-8"), "python"


@pytest.mark.slow
def test_codebase_question_reaches_the_real_chat_service_with_the_right_function(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from helpers.cloud import free_port

    from cloud_client.client import CloudClient
    from cloud_client.index_sync import IndexSync, IndexSyncClient, new_tree_id
    from cloud_server.config import ServerConfig
    from cloud_server.index_store import open_store
    from cloud_server.service import start_server
    from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
    from local_models.index.embed_model import ensure_embed_model
    from local_models.index.embedder import Embedder
    from proto.forecode.v1 import forecode_pb2 as pb

    workspace = tmp_path / "ws"
    for rel, text in E2E_FILES.items():
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_text(text, encoding="utf-8")

    recorder = ChatRecorder()
    store = open_store(tmp_path / "service-index", "embedded")
    config = ServerConfig(
        tokens=(E2E_TOKEN,),
        port=free_port(),
        backend="llama",
        slots=1,
        n_ctx=2048,
        default_max_tokens=16,
        grace_s=0.0,
    )
    server = start_server(config, index_store=store, interceptors=[recorder])
    target = f"127.0.0.1:{config.port}"
    try:
        with (
            Embedder(ensure_embed_model()) as embedder,
            IndexSyncClient(target, E2E_TOKEN, timeout=60.0) as index_client,
            CloudClient(target, E2E_TOKEN) as chat_client,
        ):
            sync = IndexSync(
                workspace,
                WorkspaceKeys(generate_workspace_key()),
                index_client,
                embedder,
                tree_id=new_tree_id(),
            )
            sync.sync()

            panel = ChatPanel(FileHost(workspace), chat_client)
            qtbot.addWidget(panel)
            panel.show()
            panel.budget_tokens = 1200
            panel.max_tokens = 8
            panel.codebase_top_k = 1
            panel.set_codebase(IndexSearch(sync))
            ask(qtbot, panel, "@codebase how is an HTTP header line split into name and value?")
            qtbot.waitUntil(lambda: len(panel.messages()) == 2, timeout=120_000)
            qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=180_000)
            assert panel.current.messages[-1].role == "assistant"
            assert panel.current.messages[-1].source == "cloud"

            (raw,) = recorder.requests
            request = pb.ChatRequest.FromString(raw)
            items = [(c.kind, c.path, c.start_line, c.end_line, c.text) for c in request.context]
            assert items == [(pb.ContextItem.KIND_FILE, "net/http.py", 4, 7, PARSE_HEADER)]
            assert panel.messages()[0].footer.text() == "Context: net/http.py:4-7"
            panel.close()
    finally:
        server.stop(0)
        store.close()
