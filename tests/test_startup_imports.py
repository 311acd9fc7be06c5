"""Issue 18's start-up: the editor's window paints before the heavy parts load.

Importing ``app.main`` and building a ``MainWindow`` (a folder and a Python file open, the way
``python -m app FOLDER FILE`` does it) must not import the libraries only a later step needs:
the engine's (llama.cpp, numpy), the chat service's (gRPC, protobuf), the language servers'
(pygls, lsprotocol: a second to import), the chat's markdown renderer, the index's
tree-sitter, keyring and cryptography. Checked in a fresh interpreter, so what other tests
imported does not hide a regression.

Then ``app.ui.startup``: held, the window's starts (engine, chat service, language servers)
wait for its first paint and run after it; not held (every other test), they run at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui import startup

# What the first frame must not wait for (top-level package names).
DEFERRED = (
    "llama_cpp",
    "numpy",
    "grpc",
    "google.protobuf",
    "lsprotocol",
    "pygls",
    "cattrs",
    "markdown_it",
    "tree_sitter",
    "tree_sitter_language_pack",
    "keyring",
    "cryptography",
    "cloud_client.client",
    "cloud_server",
)

_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    folder = Path(sys.argv[1])
    import app.main
    from PySide6.QtWidgets import QApplication
    from app.ui import startup
    from app.ui.main_window import MainWindow
    qapp = QApplication([])
    startup.hold()
    window = MainWindow(folder / "settings.json")
    window.open_folder(folder)
    window.open_file(folder / "hello.py")
    names = json.loads(sys.argv[2])
    loaded = [n for n in names if n in sys.modules]
    print(json.dumps({"loaded": loaded, "documents": len(window.documents())}))
    """
)


def _probe(tmp_path: Path, names: tuple[str, ...]) -> dict[str, object]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "hello.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FORECODE_DATA_DIR=str(tmp_path / "data"))
    env.pop("FORECODE_LSP", None)  # the servers on, as for a user: they must still wait
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(project), json.dumps(names)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_building_the_window_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    result = _probe(tmp_path, DEFERRED)
    assert result["documents"] == 1  # the file really opened
    assert result["loaded"] == []


def test_the_probe_sees_a_library_that_is_imported(tmp_path: Path) -> None:
    # The check above cannot pass by looking in the wrong place: what the window does
    # import (Qt, Scintilla) is found.
    result = _probe(tmp_path, ("PySide6.QtWidgets", "pyside6_scintilla", "numpy"))
    assert result["loaded"] == ["PySide6.QtWidgets", "pyside6_scintilla"]


@pytest.fixture
def released() -> Iterator[None]:
    yield None
    startup.release()  # never leave the gate held for later tests


def test_held_calls_wait_for_release_and_run_in_order(qtbot: QtBot, released: None) -> None:
    from PySide6.QtCore import QCoreApplication

    ran: list[int] = []
    startup.after_first_paint(lambda: ran.append(0))
    assert ran == [0]  # not held: at once, as before
    startup.hold()
    startup.after_first_paint(lambda: ran.append(1))
    startup.after_first_paint(lambda: ran.append(2))
    QCoreApplication.processEvents()
    assert ran == [0]
    startup.release()
    assert not startup.held()
    qtbot.waitUntil(lambda: ran == [0, 1, 2], timeout=2000)
    startup.after_first_paint(lambda: ran.append(3))
    assert ran == [0, 1, 2, 3]


def test_first_paint_fires_once_after_the_window_paints(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QWidget

    window = QWidget()
    qtbot.addWidget(window)
    fired: list[bool] = []
    startup.FirstPaint(window, lambda: fired.append(True), fallback_ms=60_000)
    assert fired == []
    window.show()
    qtbot.waitUntil(lambda: fired == [True], timeout=5000)
    window.update()
    qtbot.wait(100)
    assert fired == [True]


def test_the_window_starts_the_engine_and_the_service_after_its_first_paint(
    tmp_path: Path, qtbot: QtBot, released: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.ui.main_window import MainWindow
    from app.ui.owners.cloud import CloudController
    from app.ui.owners.engine import EngineController
    from forecode_core.engine_state import EngineState

    started: list[str] = []
    monkeypatch.setattr(EngineController, "start", lambda self: started.append("engine"))
    monkeypatch.setattr(CloudController, "start", lambda self: started.append("service"))
    startup.hold()
    window = MainWindow(tmp_path / "settings.json")
    qtbot.addWidget(window)
    assert window.settings.completion_enabled
    assert started == []  # held: nothing started while the window is built
    startup.FirstPaint(window, startup.release, fallback_ms=60_000)
    window.show()
    qtbot.waitUntil(lambda: started == ["engine"], timeout=5000)
    # the loopback service waits for the completion engine's first answer (after_ready)
    qtbot.wait(200)
    assert started == ["engine"]
    window.completions._on_state(EngineState.READY, "")
    window.completions.engine_changed.emit()
    qtbot.waitUntil(lambda: started == ["engine", "service"], timeout=5000)


def test_a_window_closed_before_its_first_paint_starts_nothing(
    tmp_path: Path, qtbot: QtBot, released: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.ui.main_window import MainWindow
    from app.ui.owners.cloud import CloudController
    from app.ui.owners.engine import EngineController

    started: list[str] = []
    monkeypatch.setattr(EngineController, "start", lambda self: started.append("engine"))
    monkeypatch.setattr(CloudController, "start", lambda self: started.append("service"))
    startup.hold()
    window = MainWindow(tmp_path / "settings.json")
    window.close()
    startup.release()
    qtbot.wait(200)
    assert started == []


class _Done:
    def __init__(self, text: str) -> None:
        self.text = text
        self.metrics = {"generated_tokens": 1}
        self.stop_reason = "eos"


def test_the_trace_names_the_engine_ready_and_the_first_ghost_once(
    tmp_path: Path, qtbot: QtBot
) -> None:
    # What bench package's first_completion_s reads (FORECODE_TRACE_STARTUP).
    from PySide6.QtTest import QTest

    from app.main import _trace_first_ghost
    from app.ui.inline_completion import CompletionEngine
    from app.ui.main_window import MainWindow
    from forecode_core.completion.prompt import CompletionInput

    class Engine(CompletionEngine):
        asked = 0

        def is_ready(self) -> bool:
            return True

        def complete(self, inp: CompletionInput, max_tokens: int) -> int:
            self.asked += 1
            self.done.emit(self.asked, _Done("a * b"))
            return self.asked

        def warm(self, inp: CompletionInput) -> None:
            pass

        def cancel(self, request_id: int) -> None:
            pass

    source = tmp_path / "mul.py"
    source.write_text("def mul(a, b):\n")
    engine = Engine()
    window = MainWindow(tmp_path / "settings.json", engine=engine)
    qtbot.addWidget(window)
    traced: list[str] = []
    _trace_first_ghost(window, traced.append)
    assert traced == ["engine ready"]
    window.show()
    doc = window.open_file(source)
    assert doc is not None
    editor = doc.editor
    editor.gotoPos(editor.length())
    QTest.keyClicks(editor, "    return ")
    qtbot.waitUntil(lambda: "first ghost" in traced, timeout=5000)
    QTest.keyClicks(editor, "z")  # not the ghost's text: asked again, shown again
    qtbot.waitUntil(lambda: engine.asked >= 2, timeout=5000)
    qtbot.wait(100)
    assert traced.count("first ghost") == 1
    assert traced.count("engine ready") == 1
