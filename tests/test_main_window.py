"""The main window as a user drives it: explorer, quick open, palette, tabs, settings, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from tests.helpers.window import folder_window


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "build").mkdir()
    (ws / "node_modules" / "lib").mkdir(parents=True)
    (ws / ".gitignore").write_text("build/\nnode_modules/\n*.log\n")
    (ws / "src" / "pkg" / "main_window.py").write_text("class MainWindow:\n    pass\n")
    (ws / "src" / "pkg" / "util.py").write_text("def helper():\n    return 1\n")
    (ws / "src" / "app.js").write_text("const x = 1;\n")
    (ws / "README.md").write_text("# hi\n")
    (ws / "debug.log").write_text("noise\n")
    (ws / "build" / "out.py").write_text("generated\n")
    (ws / "node_modules" / "lib" / "index.js").write_text("module.exports = 1;\n")
    return ws


@pytest.fixture
def window(qtbot: QtBot, workspace: Path) -> MainWindow:
    return folder_window(qtbot, workspace)


def test_quick_open_lists_files_honouring_gitignore_and_opens_one(
    qtbot: QtBot, window: MainWindow
) -> None:
    assert sorted(window.workspace.files) == [
        ".gitignore",
        "README.md",
        "src/app.js",
        "src/pkg/main_window.py",
        "src/pkg/util.py",
    ]
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert window.picker.is_open()
    qtbot.keyClicks(window.picker.query_edit, "mwin")
    first = window.picker.items()[0]
    assert first.data == "src/pkg/main_window.py"
    qtbot.keyClick(window.picker.query_edit, Qt.Key.Key_Return)
    doc = window.current_document()
    assert doc is not None and doc.title == "main_window.py"
    assert doc.editor.language.id == "python"
    assert window.status_language.text() == "Python"


def test_file_tree_hides_ignored_entries(qtbot: QtBot, window: MainWindow) -> None:
    def top_level() -> list[str]:
        return window.tree.visible_paths()

    qtbot.waitUntil(lambda: "src" in top_level(), timeout=5000)
    names = set(top_level())
    assert {".gitignore", "README.md", "src"} <= names
    assert not names & {"build", "node_modules", "debug.log", ".git"}


def test_command_palette_runs_a_command(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClick(
        window,
        Qt.Key.Key_P,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert window.picker.is_open()
    qtbot.keyClicks(window.picker.query_edit, "new untitled")
    assert window.picker.items()[0].label == "File: New Untitled File"
    qtbot.keyClick(window.picker.query_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.tabs.count() == 1, timeout=2000)
    assert window.current_document() is not None
    assert window.current_document().title == "Untitled-1"  # type: ignore[union-attr]


def test_go_to_line_and_status_bar(qtbot: QtBot, window: MainWindow, workspace: Path) -> None:
    big = workspace / "big.py"
    big.write_text("".join(f"x{i} = {i}\n" for i in range(500)))
    doc = window.open_file(big)
    assert doc is not None
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.picker.query_edit, "250:3")
    assert window.picker.items()[0].label == "Go to line 250, character 3"
    qtbot.keyClick(window.picker.query_edit, Qt.Key.Key_Return)
    assert doc.editor.caret_line_col() == (250, 3)
    qtbot.waitUntil(lambda: window.status_position.text() == "Ln 250, Col 3", timeout=2000)
    assert window.status_encoding.text() == "UTF-8"
    assert window.status_eol.text() == "LF"
    assert window.status_model.text()  # the slot the local engine reports into


def test_tabs_ctrl_tab_and_ctrl_w(qtbot: QtBot, window: MainWindow, workspace: Path) -> None:
    a = window.open_file(workspace / "README.md")
    b = window.open_file(workspace / "src" / "app.js")
    assert a is not None and b is not None
    assert window.current_document() is b
    qtbot.keyClick(window, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.current_document() is a
    # opening an already open file focuses its tab instead of a second copy
    assert window.open_file(workspace / "src" / "app.js") is b and window.tabs.count() == 2
    qtbot.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.count() == 1 and window.current_document() is a


def test_closing_a_modified_tab_asks_and_cancel_keeps_it(
    qtbot: QtBot, window: MainWindow, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = window.open_file(workspace / "README.md")
    assert doc is not None
    qtbot.keyClicks(doc.editor, "edit ")
    asked: list[str] = []
    monkeypatch.setattr(window.docs, "ask_save", lambda d: asked.append(d.title) or "cancel")
    assert window.close_tab(0) is False and window.tabs.count() == 1
    monkeypatch.setattr(window.docs, "ask_save", lambda d: "save")
    assert window.close_tab(0) is False  # it closes when the save's result comes back
    qtbot.waitUntil(lambda: window.tabs.count() == 0, timeout=10000)
    assert asked == ["README.md"]
    assert (workspace / "README.md").read_text() == "edit # hi\n"


def test_ctrl_s_saves_and_dirty_marker_follows(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "pkg" / "util.py")
    assert doc is not None
    qtbot.keyClicks(doc.editor, "# note")
    qtbot.keyClick(doc.editor, Qt.Key.Key_Return)
    close = window.docs.close_button(doc)
    assert close is not None and close.text() == "●" and window.tabs.tabText(0) == "util.py"
    qtbot.keyClick(doc.editor, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: close.text() == "×", timeout=10000)  # on disk
    assert (workspace / "src" / "pkg" / "util.py").read_text().startswith("# note\n")


def test_ctrl_slash_comments_through_the_window_shortcut(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "app.js")
    assert doc is not None
    qtbot.keyClick(doc.editor, Qt.Key.Key_Slash, Qt.KeyboardModifier.ControlModifier)
    assert doc.editor.text() == "// const x = 1;\n"


def test_settings_edited_in_a_tab_are_validated_and_applied(
    qtbot: QtBot, window: MainWindow, isolated_dirs: dict[str, Path]
) -> None:
    (isolated_dirs["config"] / "settings.json").unlink()  # opening settings creates the file
    window.prefs.open_settings()
    doc = window.current_document()
    assert doc is not None and doc.path == (isolated_dirs["config"] / "settings.json").resolve()
    data = json.loads(doc.editor.text())
    assert data["workbench.theme"] == "dark"
    data["workbench.theme"] = "light"
    data["completion.enabled"] = False
    data["editor.tabSize"] = 2
    data["editor.fontSize"] = 500  # out of range: reported, default kept
    doc.editor.set_text(json.dumps(data, indent=2), keep_undo=True)
    assert doc.save() and doc.wait_saves()
    assert window.settings.theme == "light" and window.settings.tab_size == 2
    assert window.settings.font_size == 11
    assert "editor.fontSize" in doc.banner.label.text()
    assert doc.editor.tabWidth() == 2


def test_broken_settings_file_never_stops_the_app(
    qtbot: QtBot, isolated_dirs: dict[str, Path]
) -> None:
    isolated_dirs["config"].mkdir(parents=True, exist_ok=True)
    (isolated_dirs["config"] / "settings.json").write_text('{"editor.fontSize": 14,,, oops')
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.settings.font_size == 11
    assert win.prefs.problems and "line 1" in win.prefs.problems[0]


def test_theme_toggle_recolours_open_editors(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "README.md")
    assert doc is not None
    window.prefs.toggle_theme()
    assert window.settings.theme == "light"
    assert doc.editor.theme.name == "light"


def test_file_changed_on_disk_is_noticed_by_the_watcher(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    path = workspace / "src" / "pkg" / "util.py"
    doc = window.open_file(path)
    assert doc is not None
    tmp = path.with_suffix(".new")
    tmp.write_text("def helper():\n    return 2\n")
    tmp.replace(path)  # what most tools do: write elsewhere, rename over
    qtbot.waitUntil(lambda: doc.editor.text() == "def helper():\n    return 2\n", timeout=5000)
    assert not doc.is_dirty()
    # still watched after the rename: a second change is noticed too
    path.write_text("changed again\n")
    qtbot.waitUntil(lambda: doc.editor.text() == "changed again\n", timeout=5000)


def test_closing_the_window_keeps_unsaved_buffers_for_next_time(
    qtbot: QtBot, workspace: Path
) -> None:
    first = MainWindow()
    qtbot.addWidget(first)
    first.open_folder(workspace)
    doc = first.open_file(workspace / "README.md")
    assert doc is not None
    qtbot.keyClicks(doc.editor, "draft ")
    first.close()  # hot exit: no prompt
    assert (workspace / "README.md").read_text() == "# hi\n"
    second = MainWindow()
    qtbot.addWidget(second)
    second.open_folder(workspace)
    restored = second.documents()
    assert [d.title for d in restored] == ["README.md"]
    assert restored[0].editor.text() == "draft # hi\n" and restored[0].is_dirty()


# --- the completion model: chosen by measurement, named in the status bar ----------------------


def _completion_window(
    qtbot: QtBot, settings: dict[str, object], isolated_dirs: dict[str, Path]
) -> MainWindow:
    (isolated_dirs["config"] / "settings.json").write_text(
        json.dumps({"cloud.autostart": False, "completion.enabled": True, **settings})
    )
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    return win


def test_the_status_bar_names_the_measured_model_and_recalibrate_switches_it(
    qtbot: QtBot, isolated_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The measurement's seam gives the rates (a real one runs in tests/test_calibrate.py);
    the tier task, the real engine client and worker process run, the worker with the scripted
    engine so no model loads here."""
    from app.ui.local_engine import LocalEngine
    from local_models import calibrate
    from local_models.calibrate import Rates
    from local_models.model_store import MODELS

    monkeypatch.setenv("FORECODE_FAKE_ENGINE", "tests.helpers.fake_engine:make")
    rates = {  # by model id; predicted (the default request): 5 + 176 tokens + 10 decodes
        # 5 + 3520 + 1000 ms: beyond PATIENCE x the budget, though it is the useful model
        "qwen2.5-coder-1.5b-instruct": Rates(50, 10),
        "qwen2.5-coder-0.5b-instruct": Rates(4000, 60),  # 5 + 44 + 167 ms
        "gemma-3-270m": Rates(8000, 100),  # 5 + 22 + 100 ms
    }
    measured: list[int] = []

    def fake_probe(
        paths: list[Path], should_stop: object, keep_going: object = None, **_: object
    ) -> dict[str, object]:
        measured.append(len(paths))
        by_file = {MODELS[m].file_name: r for m, r in rates.items()}
        return {str(p): by_file[p.name] for p in paths}

    monkeypatch.setattr(calibrate, "run_probe", fake_probe)
    from app.ui.owners.engine import EngineController

    monkeypatch.setattr(EngineController, "MEASURE_AFTER_READY_MS", 0)
    shown: list[tuple[str, str]] = []
    original = MainWindow.set_model_state
    monkeypatch.setattr(
        MainWindow,
        "set_model_state",
        lambda self, text, tip="": (shown.append((text, tip)), original(self, text, tip)),
    )
    win = _completion_window(qtbot, {"completion.latencyBudgetMs": 300}, isolated_dirs)
    # a first run: the smallest model answers at once, then the measurement (issue 18)
    qtbot.waitUntil(
        lambda: (
            measured == [3]
            and win.status_model.text() == "● Gemma 3 270M"
            and "within 10x" in win.status_model.toolTip()
        ),
        timeout=20000,
    )
    measuring = [tip for text, tip in shown if "easuring" in text]
    assert measuring and "first run" in measuring[0]
    tip = win.status_model.toolTip()
    assert "within 10x the 300 ms budget" in tip and "prefill 8000 tok/s, decode 100 tok/s" in tip
    assert "54.8% exact" in tip and "Qwen2.5-Coder 0.5B" in tip
    engine = win.completions.engine
    assert isinstance(engine, LocalEngine)
    assert engine.model_path.name == MODELS["gemma-3-270m"].file_name

    # a GPU build, say: the big model now fits. The palette's command measures again.
    rates["qwen2.5-coder-1.5b-instruct"] = Rates(30000, 250, gpu_offload=True)
    shown.clear()
    qtbot.keyClick(
        win, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.keyClicks(win.picker.query_edit, "recalibrate")
    assert win.picker.items()[0].label == "Completions: Recalibrate Models"
    qtbot.keyClick(win.picker.query_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.status_model.text() == "● Qwen2.5-Coder 1.5B", timeout=20000)
    assert measured == [3, 3]
    assert any("easuring" in t and "recalibrate" in tip for t, tip in shown)
    assert "GPU" in win.status_model.toolTip()
    assert win.completions.engine is not engine

    # a looser budget in the settings re-decides from the cached rates: no measurement
    (isolated_dirs["config"] / "settings.json").write_text(
        json.dumps(
            {
                "cloud.autostart": False,
                "completion.enabled": True,
                "completion.model": "qwen2.5-coder-0.5b-instruct",
            }
        )
    )
    win.prefs.reload()
    qtbot.waitUntil(lambda: win.status_model.text() == "● Qwen2.5-Coder 0.5B", timeout=20000)
    assert measured == [3, 3]
    assert "completion.model is set to qwen2.5-coder-0.5b-instruct" in win.status_model.toolTip()


def test_a_real_model_answers_under_its_title_and_model_path_overrides_it(
    qtbot: QtBot, isolated_dirs: dict[str, Path]
) -> None:
    """The real path: the tier task over the installed models (completion.model names one,
    so nothing is measured), the real worker loading the real GGUF."""
    from local_models.model_store import SMALL_MODEL, ensure_small_model

    win = _completion_window(qtbot, {"completion.model": SMALL_MODEL}, isolated_dirs)
    qtbot.waitUntil(lambda: win.status_model.text() == "● Gemma 3 270M", timeout=60000)
    assert "completion.model is set to gemma-3-270m" in win.status_model.toolTip()
    (isolated_dirs["config"] / "settings.json").write_text(
        json.dumps(
            {
                "cloud.autostart": False,
                "completion.enabled": True,
                "completion.modelPath": str(ensure_small_model()),
            }
        )
    )
    win.prefs.reload()
    # any GGUF: named by its own general.name once the worker has loaded it
    qtbot.waitUntil(lambda: win.status_model.text() == "● Gemma 3 270m", timeout=60000)
    assert "completion.modelPath" in win.status_model.toolTip()
