"""Ctrl+click Go to Definition with the real basedpyright in a real window offscreen: the
name under the pointer is underlined while Ctrl is held, a Ctrl+click on a name imported
from another file opens that file at its definition (and adds no caret), Alt+Left comes
back; a Ctrl+click on whitespace stays Scintilla's (one more caret)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.ui.definition_link import LINK_INDICATOR, DefinitionLink, identifier_span
from app.ui.editor import CodeEditor
from app.ui.main_window import MainWindow
from tests.helpers.window import folder_window

pytestmark = pytest.mark.slow

SERVER_WAIT_MS = 120_000  # a cold basedpyright took 20-40 s at load 25 on two cores


@pytest.fixture(autouse=True)
def servers_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORECODE_LSP", raising=False)  # conftest turns them off elsewhere


@pytest.fixture
def lsp_window(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path]
) -> tuple[MainWindow, Path]:
    values = {"completion.enabled": False, "cloud.autostart": False, "lsp.enabled": True}
    (isolated_dirs["config"] / "settings.json").write_text(json.dumps(values))
    ws = tmp_path / "ws"
    ws.mkdir()
    return folder_window(qtbot, ws), ws


def _point(editor: CodeEditor, position: int) -> QPoint:
    """The viewport point in the middle of the character at ``position``."""
    x = editor.pointXFromPosition(position) + 2
    y = editor.pointYFromPosition(position) + editor.textHeight(0) // 2
    return QPoint(x, y)


def _underlined(editor: CodeEditor) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < editor.textLength():
        if editor.indicatorValueAt(LINK_INDICATOR, pos):
            end = editor.indicatorEnd(LINK_INDICATOR, pos)
            spans.append((pos, end))
            pos = end
        else:
            nxt = editor.indicatorEnd(LINK_INDICATOR, pos)
            pos = nxt if nxt > pos else editor.textLength()
    return spans


def test_ctrl_click_on_an_imported_name_opens_its_definition(
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
    editor = doc.editor
    win.show()
    qtbot.waitExposed(win)
    assert editor.findChild(DefinitionLink) is not None
    editor.gotoPos(0)
    viewport = editor.viewport()
    call = editor.text().rindex("helper(1)")
    point = _point(editor, call + 2)
    assert editor.positionFromPointClose(point.x(), point.y()) == call + 2

    # Ctrl held, the pointer over the name: the name is underlined; moved off with no Ctrl: gone.
    QTest.mouseMove(viewport, point)
    QTest.keyPress(editor, Qt.Key.Key_Control, Qt.KeyboardModifier.ControlModifier)
    link = editor.findChild(DefinitionLink)
    assert link is not None
    link.eventFilter(viewport, _move(point, Qt.KeyboardModifier.ControlModifier))
    assert _underlined(editor) == [(call, call + len("helper"))]
    link.eventFilter(viewport, _move(point, Qt.KeyboardModifier.NoModifier))
    assert _underlined(editor) == []

    # Ctrl+click: the definition in helpers.py, and no extra caret left behind.
    QTest.mouseClick(
        viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, point
    )

    def in_helpers() -> bool:
        current = win.current_document()
        return current is not None and current.path == (ws / "helpers.py").resolve()

    qtbot.waitUntil(in_helpers, timeout=SERVER_WAIT_MS)
    target = win.current_document()
    assert target is not None
    assert target.editor.caret_line_col() == (4, 5)  # def helper: the name, 1-based
    assert editor.selections() == 1
    win.actions_by_id["nav.back"].trigger()
    assert win.current_document() is doc and editor.currentPos() == call + 2


def _move(point: QPoint, modifiers: Qt.KeyboardModifier) -> QMouseEvent:
    return QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(point),
        QPointF(point),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        modifiers,
    )


def test_ctrl_click_off_a_name_adds_a_caret_as_before(qtbot: QtBot, tmp_path: Path) -> None:
    """No server needed: the link only takes presses over identifiers."""
    editor = CodeEditor()
    qtbot.addWidget(editor)
    editor.set_text("alpha   beta\n1234 gamma\n")
    went: list[int] = []
    DefinitionLink(editor, went.append)
    editor.show()
    qtbot.waitExposed(editor)
    assert identifier_span(editor, editor.text().index("1234") + 1) is None
    assert identifier_span(editor, 2) == (0, 5)
    editor.gotoPos(0)
    viewport = editor.viewport()
    gap = _point(editor, 6)  # between alpha and beta
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, gap)
    assert went == [] and editor.selections() == 2
    word = _point(editor, editor.text().index("gamma") + 1)
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, word)
    assert went == [editor.text().index("gamma") + 1]
    assert editor.selections() == 1 and editor.currentPos() == went[0]
