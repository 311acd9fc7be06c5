"""The window keeps the shadow copy in step (issue 16): a real window offscreen, the real
documents owner (save, file watcher, closing a tab) and the review owner's wiring to the real
``ShadowWorkspace``: a save in the editor reaches the copy (``note_saved``), a change made on
disk by another program reaches it (``note_changed``), and an unsaved buffer pushed into the
copy is dropped when its editor is closed without saving. The shadow's periodic scan is off,
so only the window's calls can bring the copy in step; each step is checked on the copy's
bytes. The checker is a stub: no diagnostics are needed here (the real servers have their
own tests in test_shadow.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.services.shadow import ShadowWorkspace
from app.ui.main_window import MainWindow
from forecode_core.states import SaveChoice
from forecode_core.workspace.diagnostics_diff import Diagnostic

GREET = 'def greet(name: str) -> str:\n    return "hello " + name\n'
SHOUT = "from pkg.greet import greet\n\n\ndef shout(name: str) -> str:\n    return greet(name)\n"


class NoDiagnostics:
    """A checker that finds nothing, at once."""

    available = True

    def diagnostics(self, root: Path, paths: Sequence[str], deadline: float) -> list[Diagnostic]:
        return []


class Recorder:
    """Wraps one of the shadow's methods, recording the paths it was called with."""

    def __init__(self, shadow: ShadowWorkspace, name: str) -> None:
        self.paths: list[str] = []
        self._inner = getattr(shadow, name)
        setattr(shadow, name, self)

    def __call__(self, rels: Any) -> Any:
        rels = rels if isinstance(rels, str) else list(rels)
        self.paths.extend([rels] if isinstance(rels, str) else rels)
        return self._inner(rels)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "greet.py").write_text(GREET)
    (root / "pkg" / "shout.py").write_text(SHOUT)
    return root


def test_saves_disk_changes_and_closed_buffers_reach_the_copy(
    qtbot: QtBot, tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    win.review.make_shadow = lambda root: ShadowWorkspace(
        root,
        rules=lambda: win.workspace.rules,
        base=tmp_path / "data" / "shadow",
        checker=NoDiagnostics(),
        scan_every_s=None,  # no idle scan: only the window's calls sync the copy
    )
    shadow = win.review.workspace_shadow()
    assert shadow is not None
    copy = shadow.tree / "pkg"
    qtbot.waitUntil(lambda: (copy / "shout.py").is_file(), timeout=30_000)  # the first build
    saved = Recorder(shadow, "note_saved")
    changed = Recorder(shadow, "note_changed")
    dropped = Recorder(shadow, "drop_buffer")

    # a save in the editor reaches the copy
    greet = win.open_file(ws / "pkg" / "greet.py")
    assert greet is not None
    greet.editor.insertText(0, "SAVED = 1\n")
    assert win.docs.save(greet) and greet.wait_saves()
    qtbot.waitUntil(lambda: (ws / "pkg" / "greet.py").read_text() == "SAVED = 1\n" + GREET)
    qtbot.waitUntil(
        lambda: (copy / "greet.py").read_text() == "SAVED = 1\n" + GREET, timeout=10_000
    )
    assert "pkg/greet.py" in saved.paths

    # another program changes an open file on disk: the watcher's event reaches the copy
    shout = win.open_file(ws / "pkg" / "shout.py")
    assert shout is not None
    outside = SHOUT + "\n\nLOUD = True\n"
    (ws / "pkg" / "shout.py").write_text(outside)
    qtbot.waitUntil(lambda: (copy / "shout.py").read_text() == outside, timeout=10_000)
    assert "pkg/shout.py" in changed.paths

    # an unsaved buffer overlays its file in the copy (a review pushes the other dirty
    # buffers); closed without saving, the copy goes back to the file on disk
    greet.editor.insertText(0, "UNSAVED = 2\n")
    review = win.start_review(shout, "LOUD = False\n")
    assert review is not None
    qtbot.waitUntil(
        lambda: (copy / "greet.py").read_text().startswith("UNSAVED = 2\n"), timeout=10_000
    )
    review.close_review()
    monkeypatch.setattr(win.docs, "ask_save", lambda doc: SaveChoice.DISCARD)
    assert win.docs.close_tab(win.docs.tabs.indexOf(greet))
    qtbot.waitUntil(
        lambda: (copy / "greet.py").read_text() == "SAVED = 1\n" + GREET, timeout=10_000
    )
    assert "pkg/greet.py" in dropped.paths
    # the user's files hold what the user saved or the other program wrote, nothing else
    assert (ws / "pkg" / "greet.py").read_text() == "SAVED = 1\n" + GREET
    assert (ws / "pkg" / "shout.py").read_text() == outside
