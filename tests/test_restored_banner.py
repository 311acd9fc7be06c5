"""The "Restored unsaved changes" banner after hot exit (app.ui.document.Document.restore_backup).

Seen by a user: the notice never went away. VS Code restores hot-exit buffers silently;
Forecode says so once and the notice goes when the user acts on it (Dismiss), saves, or starts
editing. The conflict banner (the file also changed on disk) carries a decision: it stays
while the user edits, until a choice or a save. Real widgets, offscreen.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.ui.document import RESTORED_NOTICE, Document
from forecode_core.store.hotexit import Backup
from forecode_core.store.settings import Settings


def restored(qtbot: QtBot, tmp_path: Path, *, disk_changed: bool = False) -> Document:
    path = tmp_path / "notes.py"
    path.write_text("x = 1\n", encoding="utf-8")
    doc = Document.open(path, Settings())
    qtbot.addWidget(doc)
    doc.show()
    st = os.stat(path)
    backup = Backup(
        key=str(path),
        path=str(path),
        text="x = 2\n",
        encoding=doc.encoding,
        eol=doc.eol,
        disk_mtime_ns=st.st_mtime_ns - (10**9 if disk_changed else 0),
        disk_size=st.st_size,
        saved_at=time.time(),
    )
    doc.restore_backup(backup)
    assert doc.editor.text() == "x = 2\n" and doc.is_dirty()
    assert doc.banner.isVisible()
    return doc


def type_at_end(qtbot: QtBot, doc: Document, text: str) -> None:
    doc.editor.gotoPos(doc.editor.textLength())
    qtbot.keyClicks(doc.editor, text)


def test_the_notice_goes_when_the_user_starts_editing(qtbot: QtBot, tmp_path: Path) -> None:
    doc = restored(qtbot, tmp_path)
    assert doc.banner.label.text() == RESTORED_NOTICE
    type_at_end(qtbot, doc, "y")
    assert not doc.banner.isVisible()
    assert doc.editor.text() == "x = 2\ny"  # the edit went in, the restored text kept


def test_the_notice_goes_when_dismissed(qtbot: QtBot, tmp_path: Path) -> None:
    doc = restored(qtbot, tmp_path)
    doc.banner.buttons()["Dismiss"].click()
    assert not doc.banner.isVisible()
    assert doc.is_dirty()  # dismissing changes nothing in the buffer


def test_the_notice_goes_on_save(qtbot: QtBot, tmp_path: Path) -> None:
    doc = restored(qtbot, tmp_path)
    assert doc.save() and doc.wait_saves()
    assert not doc.banner.isVisible()
    assert (tmp_path / "notes.py").read_text(encoding="utf-8") == "x = 2\n"


def test_a_later_banner_is_not_hidden_by_the_notice_rule(qtbot: QtBot, tmp_path: Path) -> None:
    doc = restored(qtbot, tmp_path)
    doc.banner.show_message("Something else", "warning")
    type_at_end(qtbot, doc, "y")
    assert doc.banner.isVisible() and doc.banner.label.text() == "Something else"


def test_the_conflict_banner_stays_while_editing(qtbot: QtBot, tmp_path: Path) -> None:
    doc = restored(qtbot, tmp_path, disk_changed=True)
    assert doc.conflict and doc.banner.kind == "warning"
    type_at_end(qtbot, doc, "y")
    assert doc.banner.isVisible()  # a decision is pending: only a choice or a save ends it
    doc.banner.buttons()["Keep my changes"].click()
    assert not doc.banner.isVisible()
