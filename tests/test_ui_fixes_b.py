"""Four defects a user run found, in real widgets offscreen: the database branch's preview
shows the test run's output (collapsed under "Show output") and gives the samples the dock's
height; the agent's Stop stays in view (the chat's bottom bar) however long the transcript;
the palette leaves out a command that cannot act now ("Database Branch: Stop Test Run",
"Agent: Stop"); the editor's banner follows a theme switch."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.agent_view import StepLine
from app.ui.document import RESTORED_NOTICE, Document
from app.ui.main_window import MainWindow
from app.ui.theme import apply_app_palette, theme_named
from forecode_core.store.settings import Settings
from tests.helpers.agent import project
from tests.helpers.window import folder_window
from tests.test_agent_window import ScriptedChat, start, window
from tests.test_dbbranch_owner import make_owner

WAIT_MS = 60_000

FAILING_TEST = """\
def test_one():
    assert "boom-marker" == "expected"
"""


def test_the_branch_preview_shows_the_runs_output_collapsed(qtbot: QtBot, tmp_path: Path) -> None:
    owner, shadow, _db, _ = make_owner(qtbot, tmp_path)
    (tmp_path / "project" / "test_items.py").write_text(FAILING_TEST)
    assert owner.run_tests()
    qtbot.waitUntil(lambda: not owner.running, timeout=WAIT_MS)
    panel = owner.panel
    assert panel is not None and "exit code 1" in panel.result.text()
    assert not panel.output.isVisibleTo(panel)  # collapsed by default
    assert panel.output_toggle.isEnabled() and panel.output_toggle.text() == "Show output"
    panel.resize(700, 500)
    panel.show()
    qtbot.mouseClick(panel.output_toggle, Qt.MouseButton.LeftButton)
    assert panel.output.isVisible() and panel.output.isReadOnly()
    assert panel.output_toggle.text() == "Hide output"
    assert panel.output.height() >= panel.split.height() // 3  # not squeezed to nothing
    text = panel.output.toPlainText()
    assert "boom-marker" in text and "1 failed" in text  # why it failed, and the summary
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    assert panel.output.font().family() == fixed.family()  # monospace
    panel.grab().save(str(tmp_path / "branch-output.png"))
    qtbot.mouseClick(panel.output_toggle, Qt.MouseButton.LeftButton)
    assert not panel.output.isVisible()
    owner.run_tests()  # the next run starts with no output shown
    assert panel.output.toPlainText() == "" and not panel.output_toggle.isEnabled()
    qtbot.waitUntil(lambda: not owner.running, timeout=WAIT_MS)
    shadow.close()


def test_the_branch_samples_get_the_docks_height(qtbot: QtBot, tmp_path: Path) -> None:
    """Beside the terminal's tab (a third of the window), the samples had ~4 rows: the dock
    takes 2/5 of the window, and empty lines above the samples take no height."""
    ws = tmp_path / "ws"
    ws.mkdir()
    win = folder_window(qtbot, ws, size=(1000, 800))
    win.terminal.new_terminal()
    win.db_branch.show_found()
    dock, panel = win.db_branch.dock, win.db_branch.panel
    assert dock is not None and panel is not None
    qtbot.waitUntil(lambda: panel.database.text() == "No database found", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: dock.height() >= 800 * 0.35, timeout=5000)
    assert not panel.result.isVisible() and not panel.notes.isVisible()  # empty: no height
    assert panel.tables.height() >= panel.height() * 0.6
    win.grab().save(str(tmp_path / "branch-dock.png"))


def _palette_titles(win: MainWindow, query: str) -> list[str]:
    win.command_palette()
    win.picker.query_edit.setText(query)
    titles = [item.label for item in win.picker.items()]
    win.picker.close_picker()
    return titles


def test_the_palette_leaves_out_stop_when_nothing_runs(qtbot: QtBot, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    win = folder_window(qtbot, ws)
    titles = _palette_titles(win, "stop")
    assert "Database Branch: Stop Test Run" not in titles
    assert "Agent: Stop" not in titles
    assert "Database Branch: Show Found Database" in _palette_titles(win, "database branch")


def test_stop_test_run_is_available_only_while_a_run_goes(qtbot: QtBot, tmp_path: Path) -> None:
    owner, shadow, _db, _ = make_owner(qtbot, tmp_path)
    slow = tmp_path / "project" / "test_items.py"
    slow.write_text("import time\n\ndef test_slow():\n    time.sleep(60)\n")
    stop = next(c for c in owner.commands() if c.id == "dbBranch.stop")
    assert not stop.available()
    assert owner.run_tests()
    assert stop.available()
    stop.handler()
    qtbot.waitUntil(lambda: not owner.running, timeout=WAIT_MS)
    assert not stop.available()
    shadow.close()


def test_the_agents_stop_stays_in_view_in_a_long_run(qtbot: QtBot, tmp_path: Path) -> None:
    ws = project(tmp_path)
    chat = ScriptedChat("RUN: python test_calc.py\nWHY: see it fail")
    win = window(qtbot, tmp_path, chat, ws)
    stop_button = win.agent.stop_button
    assert not stop_button.isVisible()  # no agent: no Stop
    start(win, "fix the failing command")
    panel = win.chat_panel
    qtbot.waitUntil(lambda: stop_button.isVisible(), timeout=WAIT_MS)
    for i in range(80):  # a long transcript, followed to its end
        panel.add_view(StepLine("model", f"step {i}: thinking about the failing test"))
    bar = panel.scroll_area.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=5000)
    assert not stop_button.visibleRegion().isEmpty()  # not scrolled away with the transcript
    assert not panel.scroll_area.isAncestorOf(stop_button)
    assert stop_button.width() >= stop_button.sizeHint().width()  # its text not cut
    assert "Agent: Stop" in _palette_titles(win, "agent stop")
    panel.grab().save(str(tmp_path / "agent-stop.png"))
    qtbot.mouseClick(stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.agent.run is None, timeout=WAIT_MS)
    assert not stop_button.isVisible()
    assert "Agent: Stop" not in _palette_titles(win, "agent stop")


def _text_colour(doc: Document) -> str:
    return doc.banner.label.palette().color(QPalette.ColorRole.WindowText).name()


def test_the_banner_follows_a_theme_switch(qtbot: QtBot, tmp_path: Path) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = app.palette()
    dark, light = theme_named("dark"), theme_named("light")
    apply_app_palette(app, dark)
    try:
        path = tmp_path / "notes.py"
        path.write_text("x = 1\n")
        doc = Document.open(path, Settings())
        qtbot.addWidget(doc)
        doc.resize(600, 200)
        doc.show()
        doc.banner.show_message(RESTORED_NOTICE, "info")
        assert _text_colour(doc) == dark.ui_text.lower()
        apply_app_palette(app, light)
        qtbot.waitUntil(lambda: _text_colour(doc) == light.ui_text.lower(), timeout=5000)
        window_colour = doc.banner.palette().color(QPalette.ColorRole.Window).name()
        assert window_colour == light.ui_window.lower()
        doc.banner.grab().save(str(tmp_path / "banner-light.png"))
        doc.banner.show_message("Could not save", "error")  # another kind, still the theme's
        assert _text_colour(doc) == light.ui_text.lower()
    finally:
        app.setPalette(before)
