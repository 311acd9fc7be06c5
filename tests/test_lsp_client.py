"""Language servers for real: basedpyright and ``ruff server`` (installed with Forecode) driven
by the LSP hub on its own thread, shown in a real window offscreen: a squiggle after a type
error and gone after the fix, the Problems panel and the status bar's counts, hover text, a
stale diagnostic dropped, a server killed and restarted, a hung one killed, a missing
server's message, positions with astral characters."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.services.lsp import LspHub, ServerStatus
from app.ui.document import Document
from app.ui.main_window import MainWindow
from app.ui.owners.language import INDICATORS, LanguageController
from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.positions import Position
from forecode_core.lsp.restart import ServerState
from tests.helpers.window import folder_window

pytestmark = pytest.mark.slow

ERROR_INDICATOR = INDICATORS[Severity.ERROR][0]
WARNING_INDICATOR = INDICATORS[Severity.WARNING][0]
SERVER_WAIT_MS = 120_000  # a cold basedpyright took 20-40 s at load 25 on two cores


@pytest.fixture(autouse=True)
def servers_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORECODE_LSP", raising=False)  # conftest turns them off elsewhere


def _settings(config: Path, **extra: object) -> None:
    values: dict[str, object] = {
        "completion.enabled": False,
        "cloud.autostart": False,
        "lsp.enabled": True,
        **extra,
    }
    (config / "settings.json").write_text(json.dumps(values))


def _painted(doc: Document, indicator: int) -> list[tuple[int, int]]:
    """The byte ranges of ``indicator`` in the document's editor."""
    editor = doc.editor
    ranges: list[tuple[int, int]] = []
    pos = 0
    length = editor.textLength()
    while pos < length:
        if editor.indicatorValueAt(indicator, pos):
            end = editor.indicatorEnd(indicator, pos)
            ranges.append((pos, end))
            pos = max(end, pos + 1)
        else:
            nxt = editor.indicatorEnd(indicator, pos)
            if nxt <= pos:
                break
            pos = nxt
    return ranges


def _text_at(doc: Document, span: tuple[int, int]) -> str:
    return bytes(doc.editor.textRange(*span).data()).decode()


@pytest.fixture
def lsp_window(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path]
) -> tuple[MainWindow, Path]:
    _settings(isolated_dirs["config"])
    ws = tmp_path / "ws"
    ws.mkdir()
    return folder_window(qtbot, ws), ws


def test_a_type_error_is_squiggled_listed_and_gone_after_the_fix(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    path = ws / "calc.py"
    path.write_text('def double(x: int) -> int:\n    return x * 2\n\n\ndouble("two")\n')
    doc = win.open_file(path)
    assert doc is not None
    language = win.language
    # basedpyright: "two" is not an int. The squiggle covers exactly the argument.
    qtbot.waitUntil(lambda: bool(_painted(doc, ERROR_INDICATOR)), timeout=SERVER_WAIT_MS)
    assert [_text_at(doc, span) for span in _painted(doc, ERROR_INDICATOR)] == ['"two"']
    hits = language.diagnostics_at(doc, _painted(doc, ERROR_INDICATOR)[0][0])
    assert hits and hits[0].source == "basedpyright" and "int" in hits[0].message
    assert language.status_label.text().startswith("⊗ 1")
    language.show_problems()
    assert language.dock is not None and language.dock.isVisible()
    rows = language.dock.visible_texts()
    assert rows[0] == "calc.py  (1)" and "[Ln 5, Col 8]" in rows[1]
    # A click on the row puts the caret on the problem.
    doc.editor.gotoPos(0)
    top = language.dock.tree.topLevelItem(0)
    assert top is not None and top.child(0) is not None
    language.dock.tree.itemClicked.emit(top.child(0), 0)
    assert doc.editor.caret_line_col() == (5, 8)
    # The fix: typed in the buffer, not saved. The squiggle goes.
    doc.editor.set_text(doc.editor.text().replace('"two"', "2"), keep_undo=True)
    qtbot.waitUntil(lambda: not _painted(doc, ERROR_INDICATOR), timeout=SERVER_WAIT_MS)
    qtbot.waitUntil(lambda: language.status_label.text().startswith("⊗ 0"), timeout=5000)
    assert language.dock.visible_texts() == ["No problems have been detected."]


def test_ruff_bug_rules_after_a_save_with_astral_characters(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    path = ws / "bugs.py"
    path.write_text("x = 1\n")
    doc = win.open_file(path)
    assert doc is not None
    language = win.language
    qtbot.waitUntil(lambda: language._open.get(path.as_uri()) is not None, timeout=5000)
    source = (
        'label = "😀😀"; print(label, undefined_name)\n'
        "\n\n"
        "def add(item, into=[]):\n"
        "    into.append(item)\n"
        "    return into\n"
        "\n\n"
        "def run():\n"
        "    unused = 1\n"
        "    return [lambda: i for i in range(3)]\n"
    )
    doc.editor.set_text(source, keep_undo=True)
    win.save_current()

    def codes() -> set[str]:
        return {d.code for d in language.store.all_for(path.as_uri()) if d.source == "Ruff"}

    qtbot.waitUntil(lambda: {"F821", "F841", "B006", "B023"} <= codes(), timeout=SERVER_WAIT_MS)
    # F821 lies after two astral characters (4 UTF-16 units, 8 UTF-8 bytes): the squiggle
    # still covers the name exactly.
    errors = [_text_at(doc, span) for span in _painted(doc, ERROR_INDICATOR)]
    assert "undefined_name" in errors
    # The hover text over the squiggle names the rule.
    span = next(s for s in _painted(doc, ERROR_INDICATOR) if _text_at(doc, s) == "undefined_name")
    labels = [d.label() for d in language.diagnostics_at(doc, span[0])]
    assert any("F821" in label for label in labels)


def test_a_stale_diagnostic_is_dropped(qtbot: QtBot, lsp_window: tuple[MainWindow, Path]) -> None:
    win, ws = lsp_window
    path = ws / "stale.py"
    path.write_text("value = 1\n")
    doc = win.open_file(path)
    assert doc is not None
    language: LanguageController = win.language
    uri = path.as_uri()
    qtbot.waitUntil(lambda: uri in language._open, timeout=5000)
    doc.editor.set_text("value = 2\n", keep_undo=True)
    qtbot.waitUntil(lambda: language._open[uri].version >= 2, timeout=5000)
    version = language._open[uri].version
    old = Diagnostic(Position(0, 0), Position(0, 5), Severity.ERROR, "old news", "fake", "X1")
    # Diagnostics for the version before the last one sent arrive late: dropped.
    language._on_diagnostics(uri, version - 1, "fake", [old])
    assert not any(d.source == "fake" for d in language.store.all_for(uri))
    assert not _painted(doc, ERROR_INDICATOR)
    # The same for the current version are shown.
    language._on_diagnostics(uri, version, "fake", [old])
    assert _painted(doc, ERROR_INDICATOR) == [(0, 5)]


def test_the_hub_drops_diagnostics_older_than_the_text_it_sent(tmp_path: Path) -> None:
    """The hub's own check, on its thread, with a real ruff: a publish for an older version
    is not passed on."""
    got: list[tuple[str, int | None, str]] = []
    ready = threading.Event()

    def on_diagnostics(uri: str, version: int | None, server: str, _found: object) -> None:
        got.append((uri, version, server))
        ready.set()

    hub = LspHub(on_diagnostics, lambda _s: None, (("python", (("ruff",),)),))
    try:
        path = tmp_path / "m.py"
        uri = path.as_uri()
        hub.open(uri, "python", "import os\n", tmp_path)
        assert ready.wait(30)
        hub.change(uri, "import os\nimport sys\n")
        hub.change(uri, "import os\nimport sys\nimport re\n")
        session = hub.call(lambda: hub.sessions()[0]).result(5)
        got.clear()
        stale = lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[], version=1)
        hub.call(lambda: session._on_diagnostics(stale)).result(5)
        assert all(version != 1 for _u, version, _s in got)
    finally:
        hub.shutdown()


def _server(language: LanguageController, name: str) -> tuple[int | None, ServerState]:
    assert language.bridge is not None
    hub = language.bridge.hub
    sessions = hub.call(hub.sessions).result(5)
    session = next(s for s in sessions if s.spec.name == name)
    return session.pid, session.state


def test_a_killed_server_is_restarted_and_reports_again(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    path = ws / "crash.py"
    path.write_text("import os\n")  # F401: ruff reports an unused import
    doc = win.open_file(path)
    assert doc is not None
    language = win.language
    uri = path.as_uri()

    def ruff_codes() -> set[str]:
        return {d.code for d in language.store.all_for(uri) if d.source == "Ruff"}

    qtbot.waitUntil(lambda: "F401" in ruff_codes(), timeout=SERVER_WAIT_MS)
    pid, state = _server(language, "ruff")
    assert pid is not None and state == ServerState.RUNNING
    messages: list[str] = []
    language.message.connect(lambda text, _ms: messages.append(text))
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: any("ruff exited" in m for m in messages), timeout=10_000)

    def restarted() -> bool:
        new_pid, new_state = _server(language, "ruff")
        return new_state == ServerState.RUNNING and new_pid not in (None, pid)

    qtbot.waitUntil(restarted, timeout=SERVER_WAIT_MS)
    # The new server was given the open document again and reports on the next edit.
    doc.editor.set_text("import os\nimport sys\n", keep_undo=True)
    qtbot.waitUntil(
        lambda: sum(d.code == "F401" for d in language.store.all_for(uri)) == 2,
        timeout=SERVER_WAIT_MS,
    )


def test_a_hung_server_is_killed_at_the_deadline_and_restarted(tmp_path: Path) -> None:
    """SIGSTOP freezes a real ruff server: a request past the deadline kills it (the UI
    never waits: the future fails) and a new one starts."""
    states: list[ServerStatus] = []
    opened = threading.Event()
    hub = LspHub(
        lambda *_a: opened.set(),
        states.append,
        (("python", (("ruff",),)),),
        request_timeout_s=1.0,
    )
    try:
        path = tmp_path / "hang.py"
        uri = path.as_uri()
        hub.open(uri, "python", "import os\n", tmp_path)
        assert opened.wait(30)
        first = hub.call(lambda: hub.sessions()[0].pid).result(5)
        assert first is not None
        os.kill(first, signal.SIGSTOP)
        for _ in range(100):  # the stop takes effect when its threads next run
            if Path(f"/proc/{first}/stat").read_text().split()[2] == "T":
                break
            threading.Event().wait(0.05)
        params = lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(0, 0))
        future = hub.request(uri, "ruff", lsp.TEXT_DOCUMENT_HOVER, params)
        with pytest.raises(TimeoutError):
            future.result(10)
        deadline_pid = [first]

        def restarted() -> bool:
            pid = hub.call(lambda: hub.sessions()[0].pid).result(5)
            state = hub.call(lambda: hub.sessions()[0].state).result(5)
            deadline_pid.append(pid)
            return state == ServerState.RUNNING and pid not in (None, first)

        for _ in range(200):
            if restarted():
                break
            threading.Event().wait(0.1)
        assert restarted()
        assert any("did not answer textDocument/hover" in s.message for s in states)
    finally:
        hub.shutdown()


def test_a_configured_server_that_is_missing_says_so(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path]
) -> None:
    _settings(isolated_dirs["config"], **{"lsp.servers": {"c": "forecode-no-such-server --stdio"}})
    ws = tmp_path / "ws"
    ws.mkdir()
    win = folder_window(qtbot, ws)
    (ws / "main.c").write_text("int main(void) { return 0; }\n")
    messages: list[str] = []
    win.language.message.connect(lambda text, _ms: messages.append(text))
    win.open_file(ws / "main.c")
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert "forecode-no-such-server" in messages[0] and "not found" in messages[0]
    qtbot.waitUntil(lambda: "not found" in win.statusBar().currentMessage(), timeout=5000)


def _dwell(doc: Document, position: int) -> None:
    """The mouse resting over byte ``position`` (Scintilla's dwell signal, as it sends it)."""
    editor = doc.editor
    x = editor.pointXFromPosition(position) + 2
    y = editor.pointYFromPosition(position) + editor.textHeight(0) // 2
    editor.dwellStart.emit(x, y)


def test_hover_shows_the_servers_text_and_a_squiggles_message(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    path = ws / "hover.py"
    path.write_text(
        'def greet(name: str) -> str:\n    """Say hello."""\n    return name\n\n\ngreet(missing)\n'
    )
    doc = win.open_file(path)
    assert doc is not None
    uri = path.as_uri()
    qtbot.waitUntil(  # basedpyright up (ruff, faster, answers hovers only over noqa codes)
        lambda: any(d.source == "basedpyright" for d in win.language.store.all_for(uri)),
        timeout=SERVER_WAIT_MS,
    )
    tips: list[str] = []
    win.language.tip_shown.connect(tips.append)
    text = doc.editor.text()
    # Over the call's name: basedpyright's signature and docstring.
    _dwell(doc, text.rindex("greet") + 1)
    qtbot.waitUntil(
        lambda: any("def greet(name: str) -> str" in t for t in tips), timeout=SERVER_WAIT_MS
    )
    assert any("Say hello." in t for t in tips)
    # Over the undefined name: the squiggle's message first, the hover under it.
    tips.clear()
    _dwell(doc, text.rindex("missing") + 1)
    qtbot.waitUntil(lambda: bool(tips), timeout=SERVER_WAIT_MS)
    assert '"missing" is not defined' in tips[0] and "F821" in tips[0]
    # Another owner's line there (the bug finder's finding) stays in the tip when the
    # server's hover answers: a user run saw the hover replace the likely bug's reason.
    spot = text.rindex("greet") + 1
    win.language.tip_sources.append(
        lambda d, pos: ["Likely bug (wrong-variable): why"] if d is doc and pos == spot else []
    )
    tips.clear()
    _dwell(doc, spot)
    qtbot.waitUntil(
        lambda: any("def greet(name: str) -> str" in t for t in tips), timeout=SERVER_WAIT_MS
    )
    answered = next(t for t in tips if "def greet" in t)
    assert answered.startswith("Likely bug (wrong-variable): why")


def test_f12_goes_to_a_definition_in_another_file_and_alt_left_comes_back(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    (ws / "helpers.py").write_text("import os\n\n\ndef helper(x: int) -> int:\n    return x\n")
    main = ws / "main.py"
    # One type error, so basedpyright's report says its analysis of the file is done.
    main.write_text('from helpers import helper\n\nprint(helper(1))\nlabel: int = "x"\n')
    doc = win.open_file(main)
    assert doc is not None
    language = win.language
    qtbot.waitUntil(
        lambda: any(d.source == "basedpyright" for d in language.store.all_for(main.as_uri())),
        timeout=SERVER_WAIT_MS,
    )
    caret = doc.editor.text().rindex("helper(1)") + 2
    doc.editor.gotoPos(caret)
    win.actions_by_id["editor.definition"].trigger()

    def in_helpers() -> bool:
        current = win.current_document()
        return current is not None and current.path == (ws / "helpers.py").resolve()

    qtbot.waitUntil(in_helpers, timeout=SERVER_WAIT_MS)
    target = win.current_document()
    assert target is not None
    line, col = target.editor.caret_line_col()
    assert (line, col) == (4, 5)  # def helper: the name, 1-based
    win.actions_by_id["nav.back"].trigger()
    current = win.current_document()
    assert current is doc and doc.editor.currentPos() == caret
    win.actions_by_id["nav.forward"].trigger()
    assert in_helpers()


def test_shift_f12_lists_references_across_files_and_picking_one_goes_there(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    (ws / "helpers.py").write_text("def helper(x: int) -> int:\n    return x\n")
    main = ws / "main.py"
    main.write_text('from helpers import helper\n\nprint(helper(1), helper(2))\nlabel: int = "x"\n')
    doc = win.open_file(main)
    assert doc is not None
    language = win.language
    qtbot.waitUntil(
        lambda: any(d.source == "basedpyright" for d in language.store.all_for(main.as_uri())),
        timeout=SERVER_WAIT_MS,
    )
    doc.editor.gotoPos(doc.editor.text().rindex("helper(2)") + 1)
    win.actions_by_id["editor.references"].trigger()
    qtbot.waitUntil(lambda: bool(language.references), timeout=SERVER_WAIT_MS)
    labels = [row.label for row in language.references]
    # This file's first (the import and both calls), then the definition in helpers.py.
    assert labels == ["main.py:1:21", "main.py:3:7", "main.py:3:18", "helpers.py:1:5"]
    assert win.picker.isVisible()
    # Typed to narrow the list, then Enter: the definition, as the user would pick it.
    qtbot.keyClicks(win.picker.query_edit, "helpers")
    qtbot.keyClick(win.picker.query_edit, Qt.Key.Key_Return)
    current = win.current_document()
    assert current is not None and current.path == (ws / "helpers.py").resolve()
    assert current.editor.caret_line_col() == (1, 5)
    win.actions_by_id["nav.back"].trigger()
    assert win.current_document() is doc


def test_a_call_after_shutdown_is_a_failed_future_not_an_exception() -> None:
    # A closing window's late timer (the definition probe) once asked a shut-down hub:
    # RuntimeError('Event loop is closed') inside the Qt event loop, failing a later test.
    hub = LspHub(lambda *_a: None, lambda _s: None, ())
    hub.shutdown(2.0)
    for future in (
        hub.ask("file:///x.py", "definition_provider", "textDocument/definition", None),
        hub.request("file:///x.py", "ruff", "textDocument/hover", None),
        hub.call(lambda: 1),
    ):
        assert future.done()
        assert isinstance(future.exception(), RuntimeError)
    hub.close("file:///x.py")  # a notification after shutdown is dropped quietly


def test_a_folder_with_python_files_starts_its_servers_before_a_file_opens(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path]
) -> None:
    """As VS Code's Python extension does for such a folder: the client's import, the servers'
    boot and ``initialize`` happen while the user looks at the tree, so the first file's
    squiggles wait only for its check. A folder without Python files starts none."""
    from forecode_core.lsp.restart import ServerState

    _settings(isolated_dirs["config"])
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "todo.md").write_text("# todo\n")
    win = folder_window(qtbot, plain)
    qtbot.wait(300)
    assert win.language.bridge is None  # nothing to serve: no servers, no thread
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "calc.py").write_text(
        'def double(x: int) -> int:\n    return x * 2\n\n\ndouble("two")\n'
    )
    win.open_folder(ws)
    qtbot.waitUntil(
        lambda: win.workspace.files_complete and win.workspace.root == ws.resolve(), timeout=5000
    )

    def running() -> set[str]:
        bridge = win.language.bridge
        if bridge is None:
            return set()
        sessions = bridge.hub.call(bridge.hub.sessions).result(10)
        return {s.spec.name for s in sessions if s.state == ServerState.RUNNING}

    qtbot.waitUntil(lambda: running() == {"basedpyright", "ruff"}, timeout=SERVER_WAIT_MS)
    assert win.docs.documents() == []  # started with no file open
    doc = win.open_file(ws / "pkg" / "calc.py")
    assert doc is not None
    qtbot.waitUntil(lambda: bool(_painted(doc, ERROR_INDICATOR)), timeout=SERVER_WAIT_MS)
    assert [_text_at(doc, span) for span in _painted(doc, ERROR_INDICATOR)] == ['"two"']
