"""The editor's own data is owner-only (``forecode_core.store.private``): after the stores
write (chats, hot-exit backups and the session, recent folders, terminal history, next-edit
outcomes, the shadow workspace, the window layout of a real window), no file or folder under
the data folder has a group or other bit, and a file or folder an older version made readable
(0644 / 0755) is closed at the next write or start. Real files under a 022 umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.command_history import HistoryStore
from app.services.next_edit_outcomes import OutcomeLog
from app.services.shadow import CliChecker, ShadowWorkspace
from forecode_core.chat.conversations import (
    Conversation,
    ConversationStore,
    MessageRole,
    StoredMessage,
)
from forecode_core.next_edit.acceptance import Features
from forecode_core.store.atomic import atomic_write
from forecode_core.store.hotexit import Backup, BackupStore, Session, TabState
from forecode_core.store.private import PRIVATE_FILE, private_at_start
from forecode_core.store.settings import data_dir
from forecode_core.terminal.predict import CommandHistory
from forecode_core.workspace.recent import RecentFolders

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX mode bits")


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: without care files come out 0644, folders 0755
    try:
        yield
    finally:
        os.umask(old)


def _open_to_others(top: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            mode = stat.S_IMODE(path.lstat().st_mode)
            if not path.is_symlink() and mode & 0o077:
                found.append(f"{path.relative_to(top)} {oct(mode)}")
    if stat.S_IMODE(top.stat().st_mode) & 0o077:
        found.append(f". {oct(stat.S_IMODE(top.stat().st_mode))}")
    return found


def _conversation() -> Conversation:
    conv = Conversation("0" * 32, "t", 1.0, 1.0)
    return conv.with_message(StoredMessage(MessageRole.USER, "a secret question"), now=2.0)


def _write_all_stores(ws: Path) -> None:
    ConversationStore.for_workspace(ws).save(_conversation())
    backups = BackupStore.for_workspace(ws)
    path = str(ws / "a.py")
    key = BackupStore.key_for_path(path)
    backups.write(Backup(key, path, "unsaved text", "utf-8", "\n", None, None, 1.0))
    backups.write_session(Session((TabState(key, path),), 0))
    RecentFolders().add(ws)
    HistoryStore(data_dir()).save(ws, CommandHistory(["make test"]))
    log = OutcomeLog()
    log.record("accepted", Features(0.9, 0.7, 2, 1, "replacement", False, 0), probability=0.5)
    assert log.flush(timeout=120)
    log.close()
    shadow = ShadowWorkspace(ws, checker=CliChecker(), scan_every_s=None)
    try:
        shadow.sync()
    finally:
        shadow.close()


def test_the_stores_leave_nothing_open_to_others(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("X = 1\n")
    _write_all_stores(ws)
    data = data_dir()
    made = {p.name for p in data.iterdir()}
    assert {"chats", "backups", "terminal-history", "next-edit", "shadow"} <= made, made
    assert _open_to_others(data) == []


def test_what_an_older_version_left_open_is_closed_at_the_next_write(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    store = ConversationStore.for_workspace(ws)
    conv = _conversation()
    target = store.file_for(conv.id)
    target.parent.mkdir(parents=True)
    os.chmod(target.parent, 0o755)
    target.write_text("{}")
    os.chmod(target, 0o644)
    store.save(conv)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    # the top folders are closed at start, without a walk
    (data_dir() / "old").mkdir(mode=0o755)
    os.chmod(data_dir(), 0o755)
    private_at_start()
    assert stat.S_IMODE(data_dir().stat().st_mode) == 0o700


def test_atomic_write_with_a_mode_sets_it_and_without_keeps_the_users(tmp_path: Path) -> None:
    users = tmp_path / "script.sh"
    users.write_text("old")
    os.chmod(users, 0o755)
    atomic_write(users, b"new")  # a user's file: its mode is kept
    assert stat.S_IMODE(users.stat().st_mode) == 0o755
    atomic_write(users, b"newer", mode=PRIVATE_FILE)
    assert stat.S_IMODE(users.stat().st_mode) == 0o600


def test_a_real_windows_layout_and_session_stay_private(qtbot: QtBot) -> None:
    from app.ui.main_window import MainWindow
    from app.ui.window_layout import WindowLayout

    win = MainWindow()
    qtbot.addWidget(win)
    win.layout_store = WindowLayout()
    win.show()
    qtbot.waitExposed(win)
    win.close()  # stores the layout
    assert (data_dir() / "window-layout.json").is_file()
    assert _open_to_others(data_dir()) == []
