"""The Search panel in a real window, offscreen: Ctrl+Shift+F, toggles, globs, grouping, opening
at a match, replace across files as a reviewed set, cancellation, and the UI thread's event-loop
gaps while a search runs over a generated 10,000-file tree and while a catastrophic regex runs."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QApplication, QTreeWidgetItem
from pytestqt.qtbot import QtBot

from app.services.gcpolicy import freeze_startup_heap
from app.ui.find_in_files import MATCH_INDICATOR, ROLE, FindInFilesPanel
from app.ui.main_window import MainWindow
from tests.helpers.window import folder_window

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "build").mkdir()
    (ws / ".gitignore").write_text("build/\n")
    (ws / "src" / "a.py").write_text("def params(param):\n    return Param + params\n")
    (ws / "src" / "pkg" / "b.js").write_text("const param = 1;\n// PARAM\n")
    (ws / "src" / "crlf.txt").write_bytes(b"one param\r\ntwo param\r\n")
    (ws / "src" / "legacy.txt").write_bytes(b"\xa9 caf\xe9 param \x80\n")  # cp1252
    (ws / "src" / "data.bin").write_bytes(b"param\x00\x01")
    (ws / "build" / "out.py").write_text("param\n")
    return ws


@pytest.fixture
def window(qtbot: QtBot, workspace: Path) -> MainWindow:
    win = folder_window(qtbot, workspace, size=(1100, 700))
    yield win
    if win.search_dock is not None:
        win.search_dock.panel.shutdown()


def panel_of(window: MainWindow) -> FindInFilesPanel:
    assert window.search_dock is not None
    return window.search_dock.panel


def search(qtbot: QtBot, panel: FindInFilesPanel, text: str | None = None) -> None:
    if text is not None:
        panel.query_edit.setText(text)
    panel.search_now()
    qtbot.waitUntil(lambda: not panel.running(), timeout=20000)


def grouped(panel: FindInFilesPanel) -> dict[str, list[tuple[int, str]]]:
    """file -> [(line, matched text)] as the rows show them."""
    out: dict[str, list[tuple[int, str]]] = {}
    for i in range(panel.tree.topLevelItemCount()):
        file_item = panel.tree.topLevelItem(i)
        assert file_item is not None
        _kind, result = file_item.data(0, ROLE)
        rows = []
        for j in range(file_item.childCount()):
            _k, path, line, match, preview, offset = file_item.child(j).data(0, ROLE)
            assert path == result.path
            rows.append((line, preview[match.start - offset : match.end - offset]))
        out[result.path] = rows
    return out


def test_ctrl_shift_f_searches_with_toggles_and_globs(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "a.py")
    assert doc is not None
    doc.editor.setSelection(4, 10)  # "params" selected: it seeds the query
    qtbot.keyClick(doc.editor, Qt.Key.Key_F, CTRL_SHIFT)
    panel = panel_of(window)
    assert window.search_dock is not None and window.search_dock.isVisible()
    assert not window.tree.isVisible()  # the explorer steps aside, as in VS Code
    assert panel.query_edit.text() == "params" and panel.query_edit.hasFocus()
    qtbot.waitUntil(lambda: not panel.running() and panel.summary is not None, timeout=20000)
    assert grouped(panel) == {"src/a.py": [(1, "params"), (2, "params")]}
    assert panel.status_text() == "2 results in 1 file · skipped 1 binary"

    search(qtbot, panel, "param")
    rows = grouped(panel)
    assert list(rows) == ["src/a.py", "src/crlf.txt", "src/legacy.txt", "src/pkg/b.js"]
    assert rows["src/pkg/b.js"] == [(1, "param"), (2, "PARAM")]
    assert rows["src/crlf.txt"] == [(1, "param"), (2, "param")]
    assert "build/out.py" not in rows  # .gitignore
    assert panel.status_text() == "9 results in 4 files · skipped 1 binary"

    panel.case_button.click()
    search(qtbot, panel)
    assert grouped(panel)["src/pkg/b.js"] == [(1, "param")]
    assert grouped(panel)["src/a.py"] == [(1, "param"), (1, "param"), (2, "param")]
    panel.word_button.click()
    search(qtbot, panel)
    assert grouped(panel)["src/a.py"] == [(1, "param")]
    panel.word_button.click()
    panel.case_button.click()
    panel.regex_button.click()
    search(qtbot, panel, r"param\b.*$")
    assert grouped(panel)["src/crlf.txt"] == [(1, "param"), (2, "param")]  # no CR in it
    assert grouped(panel)["src/a.py"] == [(1, "param):"), (2, "Param + params")]

    panel.regex_button.click()
    panel.include_edit.setText("*.txt")
    search(qtbot, panel, "param")
    assert list(grouped(panel)) == ["src/crlf.txt", "src/legacy.txt"]
    panel.include_edit.setText("")
    panel.exclude_edit.setText("pkg, legacy.txt")
    search(qtbot, panel)
    assert list(grouped(panel)) == ["src/a.py", "src/crlf.txt"]

    panel.regex_button.click()
    search(qtbot, panel, "(unclosed")
    assert "Invalid regular expression" in panel.status_text()
    assert panel.tree.topLevelItemCount() == 0


def test_typing_searches_after_a_pause(qtbot: QtBot, window: MainWindow) -> None:
    window.find_in_files()
    panel = panel_of(window)
    qtbot.keyClicks(panel.query_edit, "PARAM")
    qtbot.waitUntil(lambda: panel.summary is not None and not panel.running(), timeout=20000)
    assert panel.tree.topLevelItemCount() == 4


def test_click_and_enter_open_the_file_at_the_match(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    window.find_in_files()
    panel = panel_of(window)
    search(qtbot, panel, "param")
    crlf_item = next(
        panel.tree.topLevelItem(i)
        for i in range(panel.tree.topLevelItemCount())
        if panel.tree.topLevelItem(i).data(0, ROLE)[1].path == "src/crlf.txt"
    )
    second = crlf_item.child(1)
    rect = panel.tree.visualItemRect(second)
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    doc = window.current_document()
    assert doc is not None and doc.path == (workspace / "src" / "crlf.txt").resolve()
    editor = doc.editor
    assert editor.caret_line_col() == (2, 10)  # the caret at the match's end, line 2
    assert bytes(editor.getSelText().data()).rstrip(b"\0") == b"param"
    qtbot.waitUntil(editor.hasFocus, timeout=2000)  # the match is the active selection
    start = editor.selectionStart()  # and marked over the text
    assert editor.indicatorValueAt(MATCH_INDICATOR, start) == 1
    assert editor.indicatorEnd(MATCH_INDICATOR, start) == editor.selectionEnd()

    legacy_item = next(
        panel.tree.topLevelItem(i)
        for i in range(panel.tree.topLevelItemCount())
        if panel.tree.topLevelItem(i).data(0, ROLE)[1].path == "src/legacy.txt"
    )
    panel.tree.setFocus()
    panel.tree.setCurrentItem(legacy_item.child(0))
    qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    doc = window.current_document()
    assert doc is not None and doc.title == "legacy.txt"
    # the match's columns are characters: after "© café " (non-ASCII before it)
    assert doc.editor.caret_line_col()[0] == 1
    selected = bytes(doc.editor.getSelText().data()).rstrip(b"\0")
    assert selected == b"param" or doc.read_only_reason  # a read-only legacy view is fine


def _match_items(panel: FindInFilesPanel, path: str) -> list[QTreeWidgetItem]:
    for i in range(panel.tree.topLevelItemCount()):
        item = panel.tree.topLevelItem(i)
        if item.data(0, ROLE)[1].path == path:
            return [item.child(j) for j in range(item.childCount())]
    raise AssertionError(path)


def test_replace_across_files_as_a_reviewed_set(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    # an open, dirty buffer: its unsaved text is what is searched and edited
    doc = window.open_file(workspace / "src" / "a.py")
    assert doc is not None
    doc.editor.set_text("def params(param):\n    return param  # unsaved\n", keep_undo=True)
    assert doc.is_dirty()
    legacy_before = (workspace / "src" / "legacy.txt").read_bytes()
    qtbot.keyClick(doc.editor, Qt.Key.Key_H, CTRL_SHIFT)
    panel = panel_of(window)
    assert panel.replace_visible()
    panel.case_button.setChecked(True)
    panel.word_button.setChecked(True)
    panel.replace_edit.setText("paramètre")
    search(qtbot, panel, "param")
    rows = grouped(panel)
    assert rows == {
        "src/a.py": [(1, "param"), (2, "param")],
        "src/crlf.txt": [(1, "param"), (2, "param")],
        "src/legacy.txt": [(1, "param")],
        "src/pkg/b.js": [(1, "param")],
    }
    # every change is shown with its replacement, each with a tick box
    for items in (_match_items(panel, p) for p in rows):
        for item in items:
            assert item.checkState(0) == Qt.CheckState.Checked
            assert item.data(0, ROLE)[3].replacement == "paramètre"
    qtbot.waitUntil(lambda: panel.replace_all_button.text() == "Replace 6 in 4 files", timeout=2000)
    # the user unticks a whole file and one match of another
    panel.set_ticked("src/pkg/b.js", False)
    _match_items(panel, "src/crlf.txt")[0].setCheckState(0, Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: panel.replace_all_button.text() == "Replace 4 in 3 files", timeout=2000)
    # meanwhile another program changes a file that was searched
    (workspace / "src" / "legacy.txt").write_bytes(legacy_before + b"param\n")
    legacy_changed = (workspace / "src" / "legacy.txt").read_bytes()
    panel.replace_all_button.click()
    qtbot.waitUntil(lambda: panel.outcome_text.startswith("Replaced"), timeout=10000)
    text = panel.outcome_text
    assert "Replaced 3 matches in 2 files" in text
    assert "1 open file changed in the editor" in text
    assert "Skipped, changed since the search: src/legacy.txt" in text
    # the dirty buffer: edited, not saved, one undo step
    assert doc.editor.text() == "def params(paramètre):\n    return paramètre  # unsaved\n"
    assert doc.is_dirty()
    doc.editor.undo()
    assert doc.editor.text() == "def params(param):\n    return param  # unsaved\n"
    assert (workspace / "src" / "a.py").read_text() == (
        "def params(param):\n    return Param + params\n"
    )
    # the closed CRLF file: only the ticked match, CRLF kept
    assert (workspace / "src" / "crlf.txt").read_bytes() == (
        "one param\r\ntwo paramètre\r\n".encode()
    )
    assert (workspace / "src" / "legacy.txt").read_bytes() == legacy_changed  # skipped
    assert (workspace / "src" / "pkg" / "b.js").read_text() == "const param = 1;\n// PARAM\n"


def test_replace_keeps_a_legacy_file_byte_exact(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    legacy = workspace / "src" / "legacy.txt"
    legacy.write_bytes(b"\xa9 caf\xe9 param \x80\r\n\x9c param\r\n")
    window.find_in_files(replace=True)
    panel = panel_of(window)
    panel.include_edit.setText("legacy.txt")
    panel.replace_edit.setText("valeur")
    search(qtbot, panel, "param")
    qtbot.waitUntil(lambda: panel.replace_all_button.isEnabled(), timeout=2000)
    panel.replace_all_button.click()
    qtbot.waitUntil(lambda: panel.outcome_text.startswith("Replaced"), timeout=10000)
    assert legacy.read_bytes() == b"\xa9 caf\xe9 valeur \x80\r\n\x9c valeur\r\n"


def _gaps_while(qtbot: QtBot, condition: object, timeout_ms: int) -> tuple[float, float]:
    """Ticks of a 5 ms timer on the UI thread until ``condition()`` is true: the longest gap
    between two ticks (ms of wall time) and the most CPU time the UI thread itself used
    between two ticks (ms). The second does not grow when a loaded machine merely schedules
    the UI thread late, so it can be bounded tightly; the first catches a thread waiting on
    something (a lock, the GIL) and gets a generous bound."""
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed(), time.thread_time()]
    worst = [0.0, 0.0]

    def tick() -> None:
        now, cpu = clock.elapsed(), time.thread_time()
        worst[0] = max(worst[0], now - last[0])
        worst[1] = max(worst[1], (cpu - last[1]) * 1000)
        last[0], last[1] = now, cpu

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    try:
        qtbot.waitUntil(condition, timeout=timeout_ms)  # type: ignore[arg-type]
    finally:
        timer.stop()
    return worst[0], worst[1]


def _idle_gap(qtbot: QtBot, seconds: float) -> float:
    """The longest wall gap of the same timer with nothing of ours running: what this
    machine's load alone costs (the stall bounds below allow for twice that)."""
    started = time.monotonic()
    return _gaps_while(qtbot, lambda: time.monotonic() - started > seconds, 60000)[0]


def _alive(pid: int) -> bool:
    """False once the process is gone and reaped (the search's own thread reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_catastrophic_regex_never_freezes_the_ui_and_stops(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    (workspace / "src" / "evil.txt").write_text("a" * 40 + "!\n")
    window.find_in_files()
    panel = panel_of(window)
    panel.regex_button.setChecked(True)
    panel.query_edit.setText("(a+)+$")
    panel.search_now()
    assert panel.running()
    qtbot.waitUntil(
        lambda: panel.session is not None and panel.session.pid is not None, timeout=20000
    )
    assert panel.session is not None
    pid = panel.session.pid
    assert pid is not None
    started = time.monotonic()
    wall, cpu = _gaps_while(qtbot, lambda: time.monotonic() - started > 3.5, 20000)
    assert panel.running()  # still backtracking...
    assert "no progress" in panel.status_text()  # ...and the panel says so
    idle = _idle_gap(qtbot, 1.0)
    print(
        f"catastrophic regex: longest UI gap {wall:.0f} ms (UI thread CPU {cpu:.0f} ms; "
        f"idle {idle:.0f} ms)"
    )
    # a search holding the UI thread (or its GIL) would stall it for the whole 3.5 s
    assert wall < min(2500, 800 + 2 * idle) and cpu < 100, (
        f"the UI thread stalled {wall} ms ({cpu} ms CPU; {idle} ms when idle)"
    )
    panel.stop_button.click()
    assert not panel.running()
    assert panel.status_text().startswith("Stopped")
    qtbot.waitUntil(lambda: not _alive(pid), timeout=5000)
    # the next search runs at once in a fresh worker
    panel.regex_button.setChecked(False)
    search(qtbot, panel, "PARAM")
    assert list(grouped(panel)) == ["src/a.py", "src/crlf.txt", "src/legacy.txt", "src/pkg/b.js"]


def test_a_new_search_cancels_the_running_one(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    (workspace / "src" / "evil.txt").write_text("a" * 40 + "!\n")
    window.find_in_files()
    panel = panel_of(window)
    panel.regex_button.setChecked(True)
    panel.query_edit.setText("(a+)+$")
    panel.search_now()
    qtbot.waitUntil(
        lambda: panel.session is not None and panel.session.pid is not None, timeout=20000
    )
    assert panel.session is not None
    old = panel.session
    pid = old.pid
    assert pid is not None
    search(qtbot, panel, "const")
    assert list(grouped(panel)) == ["src/pkg/b.js"]
    assert old.cancelled
    qtbot.waitUntil(lambda: not _alive(pid), timeout=5000)


@pytest.mark.slow
def test_ui_stays_responsive_on_a_10k_file_tree(qtbot: QtBot, tmp_path: Path) -> None:
    from bench.find_in_files import make_tree

    root = make_tree(tmp_path / "big", files=10_000, lines=30)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.open_folder(root)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=30000)
    # as app.main does once the window is up: the start-up heap leaves the collector's walks
    # (here the heap is pytest's too, and a full walk of it would take ~150 ms)
    freeze_startup_heap()
    win.find_in_files()
    panel = panel_of(win)
    idle = _idle_gap(qtbot, 1.0)
    try:
        panel.query_edit.setText("gamma")  # frequent: streams until the 20,000 cap
        panel.search_now()
        wall, cpu = _gaps_while(qtbot, lambda: not panel.running(), 120000)
        print(
            f"10k tree, 20,000 results: longest UI gap {wall:.0f} ms (UI thread CPU {cpu:.0f} ms)"
        )
        assert panel.summary is not None and panel.summary.capped
        total = sum(
            panel.tree.topLevelItem(i).childCount() for i in range(panel.tree.topLevelItemCount())
        )
        assert total == 20_000
        assert "results capped at 20,000" in panel.status_text()
        assert wall < 1500 + 2 * idle and cpu < 200, (
            f"the UI thread stalled {wall} ms ({cpu} ms CPU; {idle} ms when idle)"
        )
        panel.query_edit.setText("needle_")  # rare: the whole tree is searched
        panel.search_now()
        wall, cpu = _gaps_while(qtbot, lambda: not panel.running(), 120000)
        print(
            f"10k tree, whole tree searched: longest UI gap {wall:.0f} ms "
            f"(UI thread CPU {cpu:.0f} ms)"
        )
        assert panel.summary is not None and panel.summary.files_searched == 9_980
        assert panel.status_text().endswith("skipped 20 binary")
        assert panel.tree.topLevelItemCount() == 103
        assert wall < 1500 + 2 * idle and cpu < 200, (
            f"the UI thread stalled {wall} ms ({cpu} ms CPU; {idle} ms when idle)"
        )
    finally:
        panel.shutdown()
        gc.unfreeze()
    QApplication.processEvents()


def test_a_buffer_edited_since_the_search_is_skipped(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "pkg" / "b.js")
    assert doc is not None
    window.find_in_files(replace=True)
    panel = panel_of(window)
    panel.replace_edit.setText("arg")
    panel.case_button.setChecked(True)
    panel.word_button.setChecked(True)
    search(qtbot, panel, "param")
    qtbot.waitUntil(lambda: panel.replace_all_button.text() == "Replace 5 in 4 files", timeout=2000)
    doc.editor.set_text("const param = 2;\n", keep_undo=True)  # typed after the search
    panel.replace_all_button.click()
    qtbot.waitUntil(lambda: panel.outcome_text.startswith("Replaced"), timeout=10000)
    assert "Skipped, changed since the search: src/pkg/b.js" in panel.outcome_text
    assert doc.editor.text() == "const param = 2;\n"
    assert (workspace / "src" / "a.py").read_text() == (
        "def params(arg):\n    return Param + params\n"
    )


def test_results_of_another_folder_are_never_acted_on(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    window.find_in_files()
    panel = panel_of(window)
    search(qtbot, panel, "param")
    other = tmp_path / "other"
    (other / "src").mkdir(parents=True)
    (other / "src" / "a.py").write_text("nothing here\n")
    window.open_folder(other)
    first = panel.tree.topLevelItem(0)
    assert first is not None
    panel._open_item(first.child(0))
    assert window.current_document() is None  # other/src/a.py was not opened at "line 1"
    assert "folder changed" in panel.status_text()
    assert panel.tree.topLevelItemCount() == 0


def test_esc_in_the_panel_stops_the_search(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    (workspace / "src" / "evil.txt").write_text("a" * 40 + "!\n")
    window.find_in_files()
    panel = panel_of(window)
    panel.regex_button.setChecked(True)
    panel.query_edit.setText("(a+)+$")
    panel.search_now()
    assert panel.running()
    qtbot.keyClick(panel.query_edit, Qt.Key.Key_Escape)
    assert not panel.running()
    assert panel.status_text().startswith("Stopped")


def test_keyboard_down_to_the_results_and_closing_brings_the_explorer_back(
    qtbot: QtBot, window: MainWindow
) -> None:
    assert window.tree.isVisible()
    window.find_in_files()
    panel = panel_of(window)
    assert not window.tree.isVisible()
    search(qtbot, panel, "PARAM")
    panel.query_edit.setFocus()
    qtbot.keyClick(panel.query_edit, Qt.Key.Key_Down)
    assert panel.tree.hasFocus()
    current = panel.tree.currentItem()
    assert current is not None and current.data(0, ROLE)[0] == "match"
    qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    doc = window.current_document()
    assert doc is not None and doc.title == current.data(0, ROLE)[1].rsplit("/", 1)[-1]
    assert window.search_dock is not None
    window.search_dock.close()
    assert window.tree.isVisible()


def test_closing_the_window_stops_the_search_processes(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    (workspace / "src" / "evil.txt").write_text("a" * 40 + "!\n")
    window.find_in_files()
    panel = panel_of(window)
    search(qtbot, panel, "param")  # leaves a warm worker
    panel.regex_button.setChecked(True)
    panel.query_edit.setText("(a+)+$")
    panel.search_now()  # and one stuck in backtracking
    qtbot.waitUntil(
        lambda: (
            len(panel.service.worker_pids()) >= 1
            and panel.session is not None
            and panel.session.pid is not None
        ),
        timeout=20000,
    )
    pids = set(panel.service.worker_pids())
    window.close()
    qtbot.waitUntil(lambda: not any(_alive(p) for p in pids), timeout=5000)
    assert panel.service.worker_pids() == []
