"""The References panel's line texts for files that are not open are read on a worker
thread, never on the UI thread: the rows show at once (open buffers' lines at once, "…" for
the others) and each file's lines go in as it is read; a newer answer drops an older one's
reads. A real window offscreen (servers off: the answer is given as the language owner
would hand it over)."""

from __future__ import annotations

import builtins
import threading
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.lsp.navigation import Place
from forecode_core.lsp.positions import Position
from tests.helpers.window import folder_window


class _Reads:
    """Every file read through ``Path.read_text``/``open``: (path, on the UI thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.held = "held.py"  # a file whose read waits for the gate
        real_read_text = Path.read_text
        real_open = builtins.open

        def read_text(path: Path, *args: Any, **kwargs: Any) -> str:
            self._saw(str(path))
            return real_read_text(path, *args, **kwargs)

        def open_(file: Any, *args: Any, **kwargs: Any) -> Any:
            self._saw(str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", read_text)
        monkeypatch.setattr(builtins, "open", open_)

    def _saw(self, path: str) -> None:
        on_ui = threading.current_thread() is threading.main_thread()
        self.seen.append((path, on_ui))
        if path.endswith(self.held) and not on_ui:
            assert self.gate.wait(30)

    def of(self, name: str) -> list[bool]:
        return [on_ui for path, on_ui in self.seen if path.endswith(name)]


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> tuple[MainWindow, Path]:
    ws = tmp_path / "ws"
    ws.mkdir()
    return folder_window(qtbot, ws), ws


def test_lines_of_files_not_open_are_read_off_the_ui_thread_and_fill_in(
    qtbot: QtBot, window: tuple[MainWindow, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    win, ws = window
    main = ws / "main.py"
    main.write_text("from lib import helper\nhelper()\n")
    (ws / "lib.py").write_text("import os\n\ndef helper() -> None:\n    pass\n")
    (ws / "held.py").write_text("from lib import helper\nx = helper\n")
    doc = win.open_file(main)
    assert doc is not None
    reads = _Reads(monkeypatch)
    reads.gate.clear()
    found = [
        (main.as_uri(), Position(1, 0)),
        ((ws / "lib.py").as_uri(), Position(2, 4)),
        ((ws / "held.py").as_uri(), Position(1, 4)),
    ]
    win.lsp_actions.show_references(Place(str(main), doc.editor.currentPos()), found)
    dock = win.lsp_actions.dock
    assert dock is not None
    # At once: the open buffer's line; the others wait for their reads.
    texts = dock.visible_texts()
    assert "2:  helper()" in texts and "2:  …" in texts
    qtbot.waitUntil(lambda: "3:  def helper() -> None:" in dock.visible_texts(), timeout=10_000)
    assert "2:  …" in dock.visible_texts()  # held.py still being read
    reads.gate.set()
    qtbot.waitUntil(lambda: "2:  x = helper" in dock.visible_texts(), timeout=10_000)
    assert reads.of("lib.py") == [False] and reads.of("held.py") == [False]
    assert not any(on_ui for path, on_ui in reads.seen if path.startswith(str(ws)))
    assert all(row.text is not None for row in dock.rows)


def test_a_newer_answer_drops_the_older_ones_lines(
    qtbot: QtBot, window: tuple[MainWindow, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    win, ws = window
    main = ws / "main.py"
    main.write_text("value = 1\n")
    (ws / "held.py").write_text("old line\n")
    (ws / "other.py").write_text("new line\n")
    doc = win.open_file(main)
    assert doc is not None
    reads = _Reads(monkeypatch)
    reads.gate.clear()
    origin = Place(str(main), 0)
    win.lsp_actions.show_references(origin, [((ws / "held.py").as_uri(), Position(0, 0))])
    win.lsp_actions.show_references(origin, [((ws / "other.py").as_uri(), Position(0, 0))])
    dock = win.lsp_actions.dock
    assert dock is not None
    qtbot.waitUntil(lambda: "1:  new line" in dock.visible_texts(), timeout=10_000)
    reads.gate.set()
    qtbot.wait(200)
    assert "1:  old line" not in dock.visible_texts()
    assert [r.uri for r in dock.rows] == [(ws / "other.py").as_uri()]
