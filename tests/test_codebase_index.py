"""The codebase index inside the editor (``app.ui.codebase_index`` and its wiring in the main
window), with real parts only: the real gRPC service in-process on loopback over an embedded
store in a tmp folder, the real embedding model (all-MiniLM-L6-v2 through llama.cpp, in the
nice +10 embed worker process), real Qt widgets offscreen, and the real ``TokenStore`` on its
encrypted-file fallback (keyring's null backend, as on a headless box).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from helpers.cloud import free_port
from keyring.backends import null
from PySide6.QtCore import QTimer

from app.ui.codebase_index import CodebaseIndex, IndexStatus, key_name, state_path
from app.ui.main_window import MainWindow
from app.ui.owners.cloud import token_name
from cloud_client.index_sync import SyncStage
from cloud_client.tokens import TokenStore
from cloud_server.config import ServerConfig
from cloud_server.index_store import IndexStore, open_store
from cloud_server.service import RunningServer, start_server
from forecode_core.index.codebase import CodebaseUnavailable, CodeHit
from forecode_core.index.crypto import export_key, import_key
from local_models.index.embed_client import EmbedWorker
from local_models.index.embed_model import ensure_embed_model

pytestmark = pytest.mark.slow

TOKEN = "codebase-index-test-token-0123456789"
SYNCED = re.compile(r"^Index: \d+ chunks, synced$")


# ---------------------------------------------------------------------------------------------
# the parts


class Service:
    """The real service on a fixed loopback port over a store in ``folder``; ``stop`` then
    ``start`` again is a restart on the same port and files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.store: IndexStore | None = None
        self.running: RunningServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Service:
        self.store = open_store(self.folder)
        config = ServerConfig(
            tokens=(TOKEN,),
            port=self.port,
            backend="openai",
            openai_url="http://127.0.0.1:9",
            openai_model="unused",
            grace_s=0.0,
        )
        self.running = start_server(config, index_store=self.store)
        return self

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None
        if self.store is not None:
            self.store.close()
            self.store = None


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ensure_embed_model()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "service-index").start()
    yield svc
    svc.stop()


@pytest.fixture(autouse=True)
def file_keyring() -> Iterator[None]:
    """No OS keyring: the TokenStore falls back to its encrypted file in the data dir."""
    old = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    yield
    keyring.set_keyring(old)


FUNCTION = '''

def {name}(values: list[float], rate: float = {n}.5) -> float:
    """{doc}"""
    total = 0.0
    for value in values:
        if value > {n}:
            total += value * rate
        else:
            total -= value / (rate + {n})
    return round(total, {n} % 5)
'''

TOPICS = [
    "parse the header of a bitmap image",
    "merge two sorted linked lists",
    "compute the checksum of a network packet",
    "render a progress bar as text",
    "retry an HTTP request with exponential backoff",
    "convert Celsius to Fahrenheit",
    "find the shortest path in a weighted graph",
    "escape HTML special characters",
    "split a sentence into words",
    "validate an email address",
    "count the vowels in a string",
    "rotate a matrix by ninety degrees",
    "load a configuration file from disk",
    "format a duration in hours and minutes",
    "hash a password with a salt",
    "schedule a job with cron syntax",
]
TARGET_DOC = (
    "Add up the line items of a customer invoice, apply the sales tax rate and "
    "round the grand total to cents."
)


def make_workspace(root: Path, files: int, functions: int) -> Path:
    """``files`` Python modules of ``functions`` documented functions each; the invoice
    function sits in ``billing/invoice.py``."""
    root.mkdir(parents=True)
    for f in range(files):
        folder = root / ("pkg" if f % 2 else "lib") / f"part{f % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        body = f'"""Module {f}."""\n'
        for g in range(functions):
            n = f * functions + g
            topic = TOPICS[n % len(TOPICS)]
            body += FUNCTION.format(
                name=f"helper_{f}_{g}", n=n % 9 + 1, doc=f"Helper {n}: {topic}."
            )
        (folder / f"module_{f}.py").write_text(body)
    (root / "billing").mkdir()
    (root / "billing" / "invoice.py").write_text(
        '"""Invoices."""\n\n\n'
        "def invoice_total(items: list[tuple[int, float]], tax: float) -> float:\n"
        f'    """{TARGET_DOC}"""\n'
        "    net = sum(quantity * price for quantity, price in items)\n"
        "    return round(net * (1 + tax), 2)\n"
    )
    (root / ".env").write_text("API_KEY=not-for-the-index\n")
    return root


def search_off_ui(
    qtbot,
    index: CodebaseIndex,
    query: str,
    top_k: int = 5,
    should_stop: Callable[[], bool] | None = None,
) -> list[CodeHit] | Exception:
    """``index.search`` on a thread of its own (as chat calls it), the UI thread spinning."""
    out: list[list[CodeHit] | Exception] = []

    def run() -> None:
        try:
            out.append(index.search(query, top_k=top_k, should_stop=should_stop))
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    qtbot.waitUntil(lambda: bool(out), timeout=60000)
    thread.join()
    return out[0]


class StatusLog:
    def __init__(self, index: CodebaseIndex) -> None:
        self.items: list[IndexStatus] = []
        index.status_changed.connect(self.items.append)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.items]

    @property
    def last(self) -> str:
        return self.items[-1].state if self.items else ""


def _forms(key: bytes) -> list[bytes]:
    """Every text form of the key a careless program might have written."""
    return [
        key,
        key.hex().encode(),
        key.hex().upper().encode(),
        base64.b64encode(key),
        base64.urlsafe_b64encode(key),
        base64.b64encode(key).rstrip(b"="),
        base64.urlsafe_b64encode(key).rstrip(b"="),
        export_key(key).encode(),
    ]


# ---------------------------------------------------------------------------------------------
# the window


def test_the_window_indexes_the_folder_syncs_saves_and_answers_searches(
    qtbot, tmp_path: Path, service: Service, isolated_dirs: dict[str, Path]
):
    workspace = make_workspace(tmp_path / "ws", files=12, functions=3)
    (isolated_dirs["config"] / "settings.json").write_text(
        json.dumps(
            {
                "completion.enabled": False,
                "cloud.autostart": False,
                "cloud.url": service.target,
                "index.debounceMs": 300,
            }
        )
    )
    TokenStore().set(token_name(service.target), TOKEN)  # as "Cloud: Set Service Token" does

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(workspace)
    qtbot.waitUntil(lambda: window.index.index is not None, timeout=30000)
    index = window.index.index
    assert isinstance(index, CodebaseIndex)
    statuses = StatusLog(index)
    ticks: list[str] = []
    probe = QTimer()
    probe.timeout.connect(lambda: ticks.append(index.status.state))
    probe.start(20)
    qtbot.waitUntil(lambda: statuses.last in ("synced", "error"), timeout=90000)
    assert index.status.state == "synced", index.status.detail
    probe.stop()

    # progress, then "synced", in the status bar; the UI thread ran meanwhile
    assert any(re.fullmatch(r"Indexing \d+/\d+ chunks", t) for t in statuses.texts)
    assert SYNCED.match(window.status_index.text()), window.status_index.text()
    assert not window.status_index.isHidden()
    assert ticks.count("indexing") > 0
    first = index.last_report
    assert first.changed and first.files_uploaded == 13  # 12 modules and invoice.py ...
    assert ".env" in first.skipped  # ... the secret stays on this machine

    # search: the function whose docstring is the query, with its local path and lines
    hits = search_off_ui(qtbot, index, "add up the line items of an invoice and apply tax")
    assert isinstance(hits, list), hits
    assert hits[0].path == "billing/invoice.py"
    assert (hits[0].start_line, hits[0].end_line) == (4, 7)
    assert hits[0].text.startswith("def invoice_total(")

    # the window hands the index to @codebase in chat and to the completion context: after a
    # pause at the caret, the completion prompt's snippets hold the code the index found
    assert window.chat_panel.codebase is index and window.retrieved.search is index
    draft = window.open_file(workspace / "lib" / "part1" / "module_4.py")
    assert draft is not None
    draft.editor.setText(
        draft.editor.text() + "\n\n# add up the line items of an invoice "
        "and apply tax\ndef checkout(cart):\n    total = "
    )
    draft.editor.go_to_line(draft.editor.lineCount())
    draft.editor.focus()

    def retrieved() -> list[str]:
        return [s.path for s in window.completions.completion_context()[2] if s.kind == "retrieved"]

    qtbot.waitUntil(lambda: "billing/invoice.py" in retrieved(), timeout=60000)

    # an edit saved in the editor: one incremental sync that uploads only that file
    reports = len(index.reports)
    doc = window.open_file(workspace / "lib" / "part0" / "module_0.py")
    assert doc is not None
    doc.editor.setText(doc.editor.text() + "\n\ndef added_later() -> int:\n    return 42\n")
    window.save_current()
    qtbot.waitUntil(lambda: len(index.reports) > reports, timeout=60000)
    qtbot.wait(900)  # three debounce periods: no second sync follows
    assert len(index.reports) == reports + 1
    edit = index.last_report
    assert edit.changed and edit.files_uploaded == 1 and edit.paths_deleted == 0
    assert edit.chunks_embedded <= 2  # the new function (and the module's changed tail)
    assert edit.bytes_sent < first.bytes_sent / 10
    assert SYNCED.match(window.status_index.text())
    hits = search_off_ui(qtbot, index, "add up the line items of an invoice and apply tax")
    assert isinstance(hits, list) and hits[0].path == "billing/invoice.py"

    # the key is in the TokenStore, and nowhere in plain text or base64 on disk
    text = TokenStore().get(key_name(workspace))
    assert text is not None
    key = import_key(text)
    assert (isolated_dirs["data"] / "tokens.enc").is_file()
    assert state_path(workspace).is_file()  # the tree id, for a restart
    scanned = 0
    for base in (workspace, isolated_dirs["data"], isolated_dirs["config"]):
        for path in base.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                for form in _forms(key):
                    assert form not in data, f"the key is in {path}"
    assert scanned > 15

    # the palette lists the index commands
    titles = {c.title for c in window.commands}
    assert {
        "Codebase Index: Cancel",
        "Codebase Index: Sync Now",
        "Codebase Index: Copy Workspace Key",
        "Codebase Index: Import Workspace Key...",
    } <= titles

    # closing the window stops the index: no thread, no embedding process left behind
    window.close()
    assert window.index.index is None
    assert not index.alive
    assert window.chat_panel.codebase is None and window.retrieved.search is None


# ---------------------------------------------------------------------------------------------
# the index alone (real service, real model, real Qt)


def _index(folder: Path, service: Service, model_path: Path, **kw: object) -> CodebaseIndex:
    return CodebaseIndex(
        folder,
        service.target,
        TOKEN,
        embedder_factory=lambda: EmbedWorker(model=model_path),
        debounce_ms=200,
        **kw,
    )  # type: ignore[arg-type]


def test_cancel_stops_a_first_index_and_the_next_sync_resumes_it(
    qtbot, tmp_path: Path, service: Service, model_path: Path
):
    workspace = make_workspace(tmp_path / "ws", files=16, functions=6)
    index = _index(workspace, service, model_path)
    statuses = StatusLog(index)

    def cancel_mid_embedding(status: IndexStatus) -> None:
        if status.state == "indexing" and status.total and 0 < status.done < status.total / 2:
            index.cancel()

    index.status_changed.connect(cancel_mid_embedding)
    try:
        index.start()
        qtbot.waitUntil(lambda: statuses.last in ("cancelled", "synced", "error"), timeout=90000)
        assert statuses.last == "cancelled", statuses.texts
        assert "Index: cancelled" in statuses.texts
        embedded_at_cancel = index.embedded_total
        assert embedded_at_cancel > 0
        assert not index.reports
        index.status_changed.disconnect(cancel_mid_embedding)

        early = search_off_ui(qtbot, index, "invoice")
        if index._sync.synced_root is None:  # cancelled before the first batch committed
            assert isinstance(early, CodebaseUnavailable)
            assert "still being built" in str(early)
        else:  # the first batch is searchable
            assert isinstance(early, list)

        index.sync_now()
        qtbot.waitUntil(lambda: statuses.last == "synced", timeout=90000)
        resumed = index.last_report
        tree_chunks = index._sync.stats().tree_chunks
        # nothing was embedded twice: what the cancel kept was not computed again
        assert index.embedded_total == tree_chunks
        assert resumed.chunks_embedded == tree_chunks - embedded_at_cancel
    finally:
        index.close()
    assert not index.alive


def test_service_down_shows_offline_and_sync_resumes_when_it_is_back(
    qtbot, tmp_path: Path, service: Service, model_path: Path
):
    workspace = make_workspace(tmp_path / "ws", files=2, functions=2)
    index = _index(workspace, service, model_path, call_timeout_s=1.5, retry_s=1.0)
    statuses = StatusLog(index)
    try:
        index.start()
        qtbot.waitUntil(lambda: statuses.last == "synced", timeout=90000)
        service.stop()
        (workspace / "billing" / "invoice.py").write_text(
            (workspace / "billing" / "invoice.py").read_text() + "\n# paid in full\n"
        )
        ticks: list[int] = []
        probe = QTimer()
        probe.timeout.connect(lambda: ticks.append(1))
        probe.start(20)
        index.notify_changed()
        qtbot.waitUntil(lambda: statuses.last == "offline", timeout=60000)
        probe.stop()
        assert statuses.items[-1].text == "Index: offline, will retry"
        assert ticks  # the UI thread kept running while the sync waited for the service
        result = search_off_ui(qtbot, index, "invoice total")
        assert isinstance(result, CodebaseUnavailable) and "offline" in str(result)

        synced_before = len(index.reports)
        service.start()  # same port, same store: the retry after the backoff finds it
        qtbot.waitUntil(lambda: len(index.reports) > synced_before, timeout=60000)
        # the folder watcher may start one more (empty) sync after the retry: wait for the end
        qtbot.waitUntil(lambda: statuses.last == "synced", timeout=60000)
        assert index.reports[synced_before].files_uploaded == 1  # the retry sent the edit
        hits = search_off_ui(qtbot, index, "add up the line items of an invoice and apply tax")
        assert isinstance(hits, list) and hits[0].path == "billing/invoice.py"
    finally:
        index.close()
    assert not index.alive


def test_a_restart_resumes_the_same_remote_tree_and_an_imported_key_starts_a_new_one(
    qtbot, tmp_path: Path, service: Service, model_path: Path
):
    workspace = make_workspace(tmp_path / "ws", files=2, functions=1)
    index = _index(workspace, service, model_path)
    statuses = StatusLog(index)
    index.start()
    qtbot.waitUntil(lambda: statuses.last == "synced", timeout=90000)
    tree_id = index._sync.tree_id
    index.close()

    again = _index(workspace, service, model_path)
    statuses = StatusLog(again)
    copied: list[str] = []
    again.key_copied.connect(copied.append)
    try:
        again.start()
        qtbot.waitUntil(lambda: statuses.last == "synced", timeout=90000)
        assert again._sync.tree_id == tree_id
        report = again.last_report
        assert not report.changed and report.chunks_embedded == 0  # nothing to send again

        again.copy_key()
        qtbot.waitUntil(lambda: bool(copied), timeout=10000)
        assert import_key(copied[0]) == import_key(TokenStore().get(key_name(workspace)))

        messages: list[str] = []
        again.message.connect(messages.append)
        again.import_key("not a key")
        qtbot.waitUntil(lambda: bool(messages), timeout=10000)
        assert "not a Forecode index key" in messages[0]

        teammate = export_key(bytes(range(32)))
        reports = len(again.reports)
        again.import_key(teammate)
        qtbot.waitUntil(
            lambda: len(again.reports) > reports and statuses.last == "synced", timeout=90000
        )
        assert again._sync.tree_id != tree_id
        assert TokenStore().get(key_name(workspace)) == teammate
        assert again.last_report.changed  # a fresh tree under the new key
    finally:
        again.close()


def test_a_search_pre_empts_a_running_first_index_which_then_resumes(
    qtbot, tmp_path: Path, service: Service, model_path: Path
):
    workspace = make_workspace(tmp_path / "ws", files=24, functions=6)
    index = _index(workspace, service, model_path)
    statuses = StatusLog(index)
    raw: list[tuple[int, int]] = []  # the sync's own (done, total) of its embedding
    progress = index._progress

    def spy(stage: SyncStage, done: int, total: int) -> None:
        if stage == SyncStage.EMBED:
            raw.append((done, total))
        progress(stage, done, total)

    index._progress = spy  # type: ignore[method-assign]
    try:
        index.start()
        # the first batch is committed (searchable) while the rest is still being embedded
        qtbot.waitUntil(
            lambda: index._sync is not None and index._sync.synced_root is not None, timeout=90000
        )
        out: list[tuple[object, bool]] = []

        def ask() -> None:
            try:
                answer: object = index.search(
                    "add up the line items of an invoice and apply tax", top_k=5
                )
            except CodebaseUnavailable as exc:
                answer = exc
            out.append((answer, not index.reports))

        thread = threading.Thread(target=ask)
        thread.start()
        qtbot.waitUntil(lambda: bool(out), timeout=60000)
        thread.join()
        hits, still_indexing = out[0]
        assert isinstance(hits, list), hits
        assert still_indexing  # answered while the first index still ran: it was pre-empted
        assert all(h.text for h in hits)
        qtbot.waitUntil(lambda: statuses.last in ("synced", "error"), timeout=120000)
        assert statuses.last == "synced", statuses.items[-1].detail
        assert len(index.reports) == 1  # the pre-empted sync resumed; it did not fail
        tree_chunks = index._sync.stats().tree_chunks
        assert index.embedded_total == tree_chunks  # resumed, nothing embedded twice
        # The resumed sync counts only what is left, from 0 (the defect: the status bar's
        # "Indexing n/m" jumped back); the pass's count shown goes on, its total fixed.
        assert any(b < a or t != raw[0][1] for (a, _), (b, t) in itertools.pairwise(raw)), raw
        shown = [
            (s.done, s.total)
            for s in statuses.items
            if re.fullmatch(r"Indexing \d+/\d+ chunks", s.text)
        ]
        assert shown and {t for _, t in shown} == {raw[0][1]}, shown
        assert [d for d, _ in shown] == sorted(d for d, _ in shown), shown
        assert shown[-1] == (raw[0][1], raw[0][1])
        hits = search_off_ui(qtbot, index, "add up the line items of an invoice and apply tax")
        assert isinstance(hits, list) and hits[0].path == "billing/invoice.py"
    finally:
        index.close()
    assert not index.alive
