"""A file event or a save that reaches the shadow workspace after it closed (the window's
signals can still fire during teardown) is a cancelled future, not an exception raised in the
Qt event loop (seen: `RuntimeError: cannot schedule new futures after shutdown` from
``ReviewOwner._on_disk_changed``)."""

from __future__ import annotations

from pathlib import Path

from app.services.shadow import ShadowWorkspace


def test_work_after_close_is_a_cancelled_future(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("A = 1\n")
    shadow = ShadowWorkspace(ws, base=tmp_path / "data", scan_every_s=None)
    shadow.sync()
    shadow.close()
    for future in (shadow.note_changed(["a.py"]), shadow.note_saved("a.py")):
        assert future.cancelled()
