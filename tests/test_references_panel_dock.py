"""The References dock opens as a tab beside the Problems dock (VS Code's panel tabs), raised
when it shows an answer, instead of squeezed into a strip beside Problems (a user run's rows
were elided: "ESCAPE_DCT.setdefa…"); Ctrl+Shift+M brings Problems' tab back. A real window
offscreen (servers off: the answer is handed over as the language owner would)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDockWidget
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.lsp.navigation import Place
from forecode_core.lsp.positions import Position
from tests.helpers.window import folder_window


def _window(qtbot: QtBot, tmp_path: Path) -> tuple[MainWindow, Path]:
    main = tmp_path / "main.py"
    main.write_text("value = 1\nprint(value)\n")
    win = folder_window(qtbot, tmp_path)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_file(main) is not None
    return win, main


def _front(shown: QDockWidget, behind: QDockWidget) -> bool:
    """``shown``'s tab is the one in front (a tab behind keeps isVisible, with nothing seen)."""
    return not shown.visibleRegion().isEmpty() and behind.visibleRegion().isEmpty()


def _references(win: MainWindow, main: Path) -> None:
    found = [(main.as_uri(), Position(0, 0)), (main.as_uri(), Position(1, 6))]
    win.lsp_actions.show_references(Place(str(main), 0), found)


def test_references_open_as_a_raised_tab_beside_problems(qtbot: QtBot, tmp_path: Path) -> None:
    win, main = _window(qtbot, tmp_path)
    win.language.show_problems()
    problems = win.language.dock
    assert problems is not None
    _references(win, main)
    references = win.lsp_actions.dock
    assert references is not None
    assert win.tabifiedDockWidgets(references) == [problems]
    qtbot.waitUntil(lambda: _front(references, problems))
    win.language.show_problems()  # Ctrl+Shift+M: Problems' tab in front again
    qtbot.waitUntil(lambda: _front(problems, references))
    _references(win, main)  # a new answer raises the References tab
    qtbot.waitUntil(lambda: _front(references, problems))


def test_problems_opened_after_references_join_them_as_a_tab(qtbot: QtBot, tmp_path: Path) -> None:
    win, main = _window(qtbot, tmp_path)
    _references(win, main)
    references = win.lsp_actions.dock
    assert references is not None
    win.language.show_problems()
    problems = win.language.dock
    assert problems is not None
    assert win.tabifiedDockWidgets(problems) == [references]
    qtbot.waitUntil(lambda: _front(problems, references))
