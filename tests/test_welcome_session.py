"""The basics a VS Code user expects from the window, with real widgets offscreen: the welcome
page with recent folders, File: Quit (Ctrl+Q) through hot exit, a clear word for VS Code keys
whose features are not built yet, and hot exit reopening every tab with its caret and scroll."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.not_yet import NOT_YET, message
from forecode_core.store.hotexit import BackupStore, Session, TabState
from forecode_core.workspace.recent import RecentFolders

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    for name in ("a.py", "b.py", "c.py"):
        (ws / name).write_text("".join(f"line_{i} = {i}  # {name}\n" for i in range(300)))
    return ws


def new_window(qtbot: QtBot) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    return win


# ----- recent folders (pure) --------------------------------------------------------------
def test_recent_folders_newest_first_bounded_and_never_raise(tmp_path: Path) -> None:
    store = RecentFolders(tmp_path / "recent.json", limit=3)
    assert store.load() == []
    for name in ("a", "b", "c", "d", "b"):
        (tmp_path / name).mkdir(exist_ok=True)
        store.add(tmp_path / name)
    assert [Path(f).name for f in store.load()] == ["b", "d", "c"]
    store.remove(str((tmp_path / "d").resolve()))
    assert [Path(f).name for f in store.load()] == ["b", "c"]
    (tmp_path / "recent.json").write_text("{garbage")
    assert store.load() == []  # a broken file is no list, not a crash


# ----- welcome page -------------------------------------------------------------------------
def test_welcome_page_lists_recent_folders_and_opens_one(qtbot: QtBot, workspace: Path) -> None:
    first = new_window(qtbot)
    assert first.welcome.isVisible() and not first.tabs.isVisible()
    assert first.welcome.no_recent.isVisible()
    first.open_folder(workspace)  # remembered in the data dir
    assert not first.welcome.isVisible()
    first.close()

    second = new_window(qtbot)
    assert second.welcome.isVisible()
    buttons = second.welcome.recent_buttons
    assert len(buttons) == 1 and workspace.name in buttons[0].text()
    assert buttons[0].toolTip() == str(workspace.resolve())
    qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert second.root == workspace.resolve()
    assert not second.welcome.isVisible() and second.tabs.isVisible()


def test_a_recent_folder_that_is_gone_says_so_and_leaves_the_list(
    qtbot: QtBot, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    RecentFolders().add(gone)
    gone.rmdir()
    win = new_window(qtbot)
    [button] = win.welcome.recent_buttons
    assert "not found" in button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert win.root is None
    assert "no longer exists" in win.statusBar().currentMessage()
    assert win.welcome.recent_buttons == [] and RecentFolders().load() == []


def test_welcome_page_new_file_hides_it(qtbot: QtBot) -> None:
    win = new_window(qtbot)
    qtbot.mouseClick(win.welcome.new_file_button, Qt.MouseButton.LeftButton)
    assert win.tabs.count() == 1 and not win.welcome.isVisible()
    win.close_tab(0)
    assert win.welcome.isVisible()


# ----- quit -----------------------------------------------------------------------------------
def test_ctrl_q_quits_through_hot_exit_and_the_palette_lists_it(
    qtbot: QtBot, workspace: Path
) -> None:
    win = new_window(qtbot)
    win.open_folder(workspace)
    doc = win.open_file(workspace / "a.py")
    assert doc is not None
    win.activateWindow()
    doc.editor.focus()
    qtbot.waitUntil(lambda: doc.editor.hasFocus())
    qtbot.keyClicks(doc.editor, "draft ")
    qtbot.keyClick(doc.editor, Qt.Key.Key_Q, CTRL)
    assert not win.isVisible()  # closed, no prompt
    backups, _ = BackupStore.for_workspace(workspace).load_all()
    assert [b.text[:6] for b in backups] == ["draft "]
    assert any(c.title == "File: Quit" and c.shortcut == "Ctrl+Q" for c in win.commands)


# ----- keys whose features are not built yet -----------------------------------------------
@pytest.mark.parametrize(
    ("key", "mods", "title"),
    [
        (Qt.Key.Key_F12, CTRL, "Go to Implementations"),
        (Qt.Key.Key_O, CTRL | SHIFT, "Go to Symbol in Editor"),
        (Qt.Key.Key_J, CTRL, "Toggle Panel"),
        (Qt.Key.Key_T, CTRL, "Go to Symbol in Workspace"),
    ],
)
def test_a_vs_code_key_without_its_feature_says_so(
    qtbot: QtBot, workspace: Path, key: Qt.Key, mods: Qt.KeyboardModifier, title: str
) -> None:
    win = new_window(qtbot)
    win.open_folder(workspace)
    doc = win.open_file(workspace / "a.py")
    assert doc is not None
    win.activateWindow()
    doc.editor.focus()
    qtbot.waitUntil(lambda: doc.editor.hasFocus())
    qtbot.waitUntil(lambda: any(a.objectName().startswith("notYet:") for a in win.actions()))
    before = doc.editor.text()
    qtbot.keyClick(doc.editor, key, mods)  # pressed in the editor, as a user would
    shown = win.statusBar().currentMessage()
    assert f"{title} is not in Forecode yet" in shown, shown
    assert doc.editor.text() == before


def test_not_yet_keys_never_take_a_key_a_command_owns(qtbot: QtBot) -> None:
    win = new_window(qtbot)
    qtbot.waitUntil(lambda: any(a.objectName().startswith("notYet:") for a in win.actions()))
    owners: dict[str, list[str]] = {}
    for action in win.actions():
        for seq in action.shortcuts():
            owners.setdefault(seq.toString(), []).append(action.objectName() or action.text())
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    assert clashes == {}
    # every row has words; a key a command owns (Find in Files, once built) is left to it
    for entry in NOT_YET:
        assert entry.why and message(entry, entry.keys).endswith(")."), entry
    taken_by_commands = {
        QKeySequence(s).toString()
        for c in win.commands
        if c.shortcut
        for s in c.shortcut.split(" or ")
    }
    not_yet_bound = {
        a.shortcut().toString() for a in win.actions() if a.objectName().startswith("notYet:")
    }
    assert not (taken_by_commands & not_yet_bound)


# ----- hot exit: every tab, its caret and scroll ----------------------------------------------
def test_hot_exit_restores_every_tab_with_caret_and_scroll(qtbot: QtBot, workspace: Path) -> None:
    first = new_window(qtbot)
    first.open_folder(workspace)
    docs = {name: first.open_file(workspace / name) for name in ("a.py", "b.py", "c.py")}
    views = {}
    for i, (name, doc) in enumerate(docs.items()):
        assert doc is not None
        first.tabs.setCurrentWidget(doc)
        ed = doc.editor
        line = 100 + 50 * i
        ed.setSelection(ed.positionFromLine(line) + 3, ed.positionFromLine(line))
        ed.setFirstVisibleLine(line - 10)
        views[name] = (ed.anchor(), ed.currentPos(), line - 10)
    qtbot.keyClicks(docs["b.py"].editor, "X")  # b.py unsaved; a.py and c.py clean
    ed_b = docs["b.py"].editor
    views["b.py"] = (ed_b.anchor(), ed_b.currentPos(), ed_b.firstVisibleLine())
    first.tabs.setCurrentWidget(docs["c.py"])
    first.close()

    second = new_window(qtbot)
    second.open_folder(workspace)
    restored = second.documents()
    assert [d.title for d in restored] == ["a.py", "b.py", "c.py"]  # all, in order
    assert second.current_document() is restored[2]
    assert restored[1].is_dirty() and not restored[0].is_dirty()
    for doc in restored:
        second.tabs.setCurrentWidget(doc)
        qtbot.wait(10)
        ed = doc.editor
        assert (ed.anchor(), ed.currentPos(), ed.firstVisibleLine()) == views[doc.title], doc.title


def test_a_killed_editor_reopens_at_the_last_caret(qtbot: QtBot, workspace: Path) -> None:
    """No close, no hot exit at quit (SIGKILL, a crash, a power cut): the caret moved a moment
    before is what the store holds, so the file reopens there, not at line 1."""
    first = new_window(qtbot)
    first.open_folder(workspace)
    doc = first.open_file(workspace / "a.py")
    assert doc is not None
    ed = doc.editor
    store = BackupStore.for_workspace(workspace)
    qtbot.waitUntil(lambda: store.load_session()[0] is not None, timeout=5000)
    ed.setSelection(ed.positionFromLine(180), ed.positionFromLine(180))
    first.activateWindow()
    ed.focus()
    qtbot.keyClick(ed, Qt.Key.Key_Down)  # the caret moved by a key, nothing typed
    line_181 = ed.positionFromLine(181)
    assert ed.currentPos() == line_181

    def stored_caret() -> int | None:
        session = store.load_session()[0]
        return session.tabs[0].caret if session is not None and session.tabs else None

    qtbot.waitUntil(lambda: stored_caret() == line_181, timeout=5000)
    # What the store holds now is what a killed editor leaves behind: reopen from it.
    second = new_window(qtbot)
    second.open_folder(workspace)
    (again,) = second.documents()
    assert again.editor.currentPos() == line_181


def test_a_broken_session_file_is_reported_and_the_backups_still_come_back(
    qtbot: QtBot, workspace: Path
) -> None:
    store = BackupStore.for_workspace(workspace)
    store.write_session(Session((TabState("k", str(workspace / "a.py"), 5, 5),), 0))
    assert store.load_session()[0] is not None
    (store.root / "session.tabs").write_text("{not json")
    session, problems = store.load_session()
    assert session is None and "unusable" in problems[0]
    assert not (store.root / "session.tabs").exists()  # set aside, not deleted
    assert list((store.root / "corrupt").iterdir())
    win = new_window(qtbot)
    win.open_folder(workspace)  # nothing to restore, no crash
    assert win.documents() == []


def test_started_without_a_folder_the_window_shows_the_welcome_page(tmp_path: Path) -> None:
    """``forecode`` with no folder argument opens no folder (it used to open the current
    directory): the welcome page with the recent folders."""
    import os
    import shutil
    import subprocess
    import sys

    xvfb = shutil.which("xvfb-run")
    assert xvfb, "xvfb-run is missing: apt-get install xvfb (as .ci/run does)"
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(
        PYTHONPATH=str(repo),
        FORECODE_CONFIG_DIR=str(tmp_path / "c"),
        FORECODE_DATA_DIR=str(tmp_path / "d"),
    )
    proc = subprocess.Popen(
        [xvfb, "-a", sys.executable, "-m", "app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("forecode: no folder"), line
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, 9)
        proc.communicate(timeout=10)


def test_after_a_crash_the_tabs_of_the_session_come_back(qtbot: QtBot, workspace: Path) -> None:
    """The tabs are stored a second after they change, not only at close: a window that never
    closed (killed) still has its tabs reopened."""
    first = new_window(qtbot)
    first.open_folder(workspace)
    first.open_file(workspace / "c.py")
    first.open_file(workspace / "a.py")
    store = BackupStore.for_workspace(workspace)

    def stored() -> list[str]:
        session = store.load_session()[0]
        return [Path(t.path or "").name for t in session.tabs] if session else []

    qtbot.waitUntil(lambda: stored() == ["c.py", "a.py"], timeout=5000)
    second = new_window(qtbot)  # the first one is never closed: as after a kill
    second.open_folder(workspace)
    assert [d.title for d in second.documents()] == ["c.py", "a.py"]
    assert second.current_document() is second.documents()[1]


def test_every_not_yet_key_speaks_from_the_editor_and_changes_nothing(
    qtbot: QtBot, workspace: Path
) -> None:
    """Each key of the table, pressed in the editor (Scintilla must not eat it), shows its words
    and leaves text and caret alone; keys a command owns (Find in Files) run that command."""
    win = new_window(qtbot)
    win.open_folder(workspace)
    doc = win.open_file(workspace / "a.py")
    assert doc is not None
    win.activateWindow()
    doc.editor.focus()
    qtbot.waitUntil(lambda: doc.editor.hasFocus())
    qtbot.waitUntil(lambda: any(a.objectName().startswith("notYet:") for a in win.actions()))
    owned = {
        QKeySequence(s).toString()
        for c in win.commands
        if c.shortcut
        for s in c.shortcut.split(" or ")
    }
    checked = 0
    for entry in NOT_YET:
        for keys in entry.keys.split(" or "):
            if QKeySequence(keys).toString() in owned:
                continue
            win.statusBar().clearMessage()
            doc.editor.focus()
            text, caret = doc.editor.text(), doc.editor.currentPos()
            QTest.keySequence(doc.editor, QKeySequence(keys))
            assert entry.title in win.statusBar().currentMessage(), keys
            assert (doc.editor.text(), doc.editor.currentPos()) == (text, caret), keys
            checked += 1
    assert checked >= 15  # the list shrinks as features are built (language servers: 4 keys)
