"""File operations in the explorer on real files, in a real window: new file/folder, rename
(open tabs follow), delete to a real (temporary) freedesktop trash, the permanent-delete
fallback, reveal and copy path, names checked with clear messages, nothing lost on errors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from forecode_core.workspace.file_names import name_problem

# ----- names -------------------------------------------------------------------------------------


def test_name_problems() -> None:
    taken = {"a.txt", "src"}

    def exists(name: str) -> bool:
        return name in taken

    assert name_problem("b.txt", exists) is None
    assert "must be provided" in (name_problem("", exists) or "")
    assert "must be provided" in (name_problem("   ", exists) or "")
    assert "path separator" in (name_problem("x/y.txt", exists) or "")
    assert "path separator" in (name_problem("x\\y.txt", exists) or "")
    assert "already exists" in (name_problem("a.txt", exists) or "")
    assert "'a.txt'" in (name_problem("a.txt", exists) or "")
    assert "whitespace" in (name_problem(" b.txt", exists) or "")
    assert "not a valid" in (name_problem("..", exists) or "")
    assert "control" in (name_problem("a\nb", exists) or "")
    assert "too long" in (name_problem("x" * 256, exists) or "")
    assert "reserved" in (name_problem("con.txt", exists, windows=True) or "")
    assert ":" in (name_problem("a:b", exists, windows=True) or "")
    # Renaming a file to its own name is no problem; to another existing one is.
    assert name_problem("a.txt", exists, current="a.txt") is None
    assert "already exists" in (name_problem("src", exists, current="a.txt") or "")


# ----- a window on a real folder -----------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "mod.py").write_text("x = 1\n")
    (root / "notes.txt").write_text("notes\n")
    return root


@pytest.fixture
def trash_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A freedesktop trash in tmp_path: Send2Trash moves files there, never to the real one."""
    from send2trash import plat_other

    data = tmp_path / "xdg-data"
    data.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))  # same device as the files: the home trash
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    return data / "Trash"


@pytest.fixture
def window(qtbot, folder: Path):  # type: ignore[no-untyped-def]
    from app.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.open_folder(folder)
    yield win
    win.close()


def answer_names(window, *names: str | None) -> list[str]:  # type: ignore[no-untyped-def]
    """Script the name dialog; returns the prompts it was shown with."""
    queue = list(names)
    prompts: list[str] = []

    def ask(title: str, prompt: str, initial: str, check) -> str | None:  # type: ignore[no-untyped-def]
        prompts.append(f"{title}|{initial}")
        return queue.pop(0)

    window.explorer_ops.ask_name = ask
    return prompts


def answer_confirm(window, *answers: bool) -> list[str]:  # type: ignore[no-untyped-def]
    queue = list(answers)
    asked: list[str] = []

    def confirm(text: str, info: str, button: str) -> bool:
        asked.append(f"{text} | {info} | {button}")
        return queue.pop(0)

    window.explorer_ops.confirm = confirm
    return asked


def test_new_file_and_folder(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    ops = window.explorer_ops
    answer_names(window, "fresh.py")
    path = ops.new_file(folder / "src")
    assert path == folder / "src" / "fresh.py" and path.read_text() == ""
    assert window.current_document().path == path.resolve()  # opened in a tab
    answer_names(window, "pkg")
    window.tree.clearSelection()  # nothing selected: the workspace folder
    assert ops.new_folder() == folder / "pkg" and (folder / "pkg").is_dir()
    # A taken name or a separator: refused with a message; nothing is created or replaced.
    answer_names(window, "notes.txt")
    assert ops.new_file(folder) is None
    assert "already exists" in ops.last_error and (folder / "notes.txt").read_text() == "notes\n"
    answer_names(window, "a/b.txt")
    assert ops.new_file(folder) is None and "path separator" in ops.last_error
    assert not (folder / "a").exists()
    # The palette's command is in the table.
    titles = {c.title for c in window.commands}
    assert {
        "Explorer: New File...",
        "Explorer: New Folder...",
        "Explorer: Rename...",
        "Explorer: Delete",
        "File: Reveal in File Manager",
        "File: Copy Path of Active File",
        "File: Copy Relative Path of Active File",
    } <= titles


def test_the_name_dialog_says_what_is_wrong_while_typing(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """The real dialog: OK is disabled and the reason shown for a taken name or a separator."""
    from app.ui.explorer_ops import NameDialog

    seen: dict[str, tuple[bool, str]] = {}

    def drive() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, NameDialog)
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        for text in ("notes.txt", "x/y", "good.txt"):
            dialog.edit.setText(text)
            seen[text] = (ok.isEnabled(), dialog.problem.text())
        ok.click()

    QTimer.singleShot(100, drive)
    path = window.explorer_ops.new_file(folder)
    assert path == folder / "good.txt" and path.exists()
    assert seen["notes.txt"][0] is False and "already exists" in seen["notes.txt"][1]
    assert seen["x/y"][0] is False and "path separator" in seen["x/y"][1]
    assert seen["good.txt"] == (True, "")


def test_rename_moves_open_tabs_and_keeps_unsaved_text(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    ops = window.explorer_ops
    doc = window.open_file(folder / "notes.txt")
    doc.editor.set_text("unsaved\n", keep_undo=True)
    assert doc.is_dirty()
    prompts = answer_names(window, "renamed.md")
    new = ops.rename(folder / "notes.txt")
    assert prompts == ["Rename|notes.txt"]
    assert new == folder / "renamed.md"
    assert not (folder / "notes.txt").exists() and new.read_text() == "notes\n"
    assert doc.path == new.resolve() and doc.title == "renamed.md"
    assert doc.is_dirty() and doc.editor.text() == "unsaved\n"
    assert doc.editor.language.name == "Markdown"
    assert window.tabs.tabText(window.tabs.indexOf(doc)).endswith("renamed.md")
    # The hot-exit backup moved with it: a crash now restores the text under the new name.
    window.docs.flush()
    backups, _problems = window.docs.backups.load_all()
    assert [(b.path, b.text) for b in backups] == [(str(new.resolve()), "unsaved\n")]
    assert doc.save() and doc.wait_saves() and new.read_text() == "unsaved\n"
    assert not (folder / "notes.txt").exists()
    # A folder: the tabs of files inside it follow.
    inner = window.open_file(folder / "src" / "mod.py")
    answer_names(window, "lib")
    assert ops.rename(folder / "src") == folder / "lib"
    assert inner.path == (folder / "lib" / "mod.py").resolve()
    assert not inner.is_dirty()


def test_rename_onto_an_existing_name_is_refused(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    (folder / "other.txt").write_text("other\n")
    answer_names(window, "other.txt")
    assert window.explorer_ops.rename(folder / "notes.txt") is None
    assert "already exists" in window.explorer_ops.last_error
    assert (folder / "notes.txt").read_text() == "notes\n"
    assert (folder / "other.txt").read_text() == "other\n"


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` (a folder) refuses changes, also to root (the immutable attribute)."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_errors_lose_nothing_and_say_why(qtbot, window, folder: Path, trash_home: Path) -> None:  # type: ignore[no-untyped-def]
    ops = window.explorer_ops
    doc = window.open_file(folder / "src" / "mod.py")
    with unwritable(folder / "src"):
        answer_names(window, "new.py")
        assert ops.rename(folder / "src" / "mod.py") is None
        assert "Could not rename mod.py" in ops.last_error
        assert "not permitted" in ops.last_error or "denied" in ops.last_error
        answer_names(window, "x.py")
        assert ops.new_file(folder / "src") is None and "Could not create" in ops.last_error
        # Delete: the trash cannot take it and a permanent delete is refused too; declining
        # the permanent delete keeps everything.
        asked = answer_confirm(window, True, False)
        ops.delete(folder / "src" / "mod.py")
        qtbot.waitUntil(lambda: ops.pending == 0 and len(asked) == 2, timeout=10000)
    assert "Could not move 'mod.py' to the Trash" in asked[1]
    assert (folder / "src" / "mod.py").read_text() == "x = 1\n"
    assert doc.path == (folder / "src" / "mod.py").resolve()
    assert window.tabs.indexOf(doc) >= 0


def test_delete_to_the_trash_closes_the_tab(qtbot, window, folder: Path, trash_home: Path) -> None:  # type: ignore[no-untyped-def]
    ops = window.explorer_ops
    threads: list[threading.Thread] = []
    real_trash = ops.trash

    def trash(path: Path) -> None:
        threads.append(threading.current_thread())
        real_trash(path)

    ops.trash = trash
    doc = window.open_file(folder / "notes.txt")
    doc.editor.set_text("unsaved\n", keep_undo=True)
    # A dirty tab: the confirmation says so; Cancel keeps everything.
    asked = answer_confirm(window, False)
    ops.delete(folder / "notes.txt")
    assert "unsaved changes in notes.txt" in asked[0] and "Move to Trash" in asked[0]
    assert (folder / "notes.txt").exists() and window.tabs.indexOf(doc) >= 0
    answer_confirm(window, True)
    ops.delete(folder / "notes.txt")
    qtbot.waitUntil(lambda: ops.pending == 0, timeout=10000)
    assert not (folder / "notes.txt").exists()
    assert (trash_home / "files" / "notes.txt").read_text() == "notes\n"
    assert (trash_home / "info" / "notes.txt.trashinfo").exists()
    assert all(d.path != (folder / "notes.txt").resolve() for d in window.documents())
    assert threads and threads[0] is not threading.main_thread()
    # A folder with an open file goes to the trash whole.
    inner_path = window.open_file(folder / "src" / "mod.py").path
    answer_confirm(window, True)
    ops.delete(folder / "src")
    qtbot.waitUntil(lambda: ops.pending == 0, timeout=10000)
    assert (trash_home / "files" / "src" / "mod.py").exists() and not (folder / "src").exists()
    assert inner_path not in [d.path for d in window.documents()]


def test_no_trash_asks_before_a_permanent_delete(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    ops = window.explorer_ops

    def no_trash(path: Path) -> None:
        raise OSError(95, "Operation not supported", str(path))

    ops.trash = no_trash
    asked = answer_confirm(window, True, False)
    ops.delete(folder / "notes.txt")
    qtbot.waitUntil(lambda: len(asked) == 2 and ops.pending == 0, timeout=10000)
    assert "Could not move 'notes.txt' to the Trash: Operation not supported" in asked[1]
    assert "permanently" in asked[1] and (folder / "notes.txt").exists()
    asked = answer_confirm(window, True, True)
    ops.delete(folder / "notes.txt")
    qtbot.waitUntil(lambda: not (folder / "notes.txt").exists() and ops.pending == 0, timeout=10000)
    # Shift+Delete's permanent delete asks once, saying it cannot be undone.
    asked = answer_confirm(window, True)
    ops.delete(folder / "src", permanent=True)
    qtbot.waitUntil(lambda: ops.pending == 0, timeout=10000)
    assert "cannot be undone" in asked[0] and not (folder / "src").exists()


def test_copy_paths_and_reveal(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    ops = window.explorer_ops
    target = folder / "src" / "mod.py"
    assert ops.copy_path(target) == str(target)
    assert QApplication.clipboard().text() == str(target)
    assert ops.copy_path(target, relative=True) == os.path.join("src", "mod.py")
    opened: list[str] = []
    ops.open_url = lambda url: opened.append(url.toLocalFile())
    ops.reveal(target)
    assert opened == [str(folder / "src")]
    # From the editor, the window's keys (Ctrl+Alt+C, Ctrl+Shift+Alt+C): the active file;
    # the editor does not take them as text.
    from PySide6.QtTest import QTest

    window.show()
    window.activateWindow()
    doc = window.open_file(target)
    qtbot.waitUntil(doc.editor.hasFocus, timeout=5000)
    QApplication.clipboard().setText("")
    ctrl_alt = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
    QTest.keyClick(doc.editor, Qt.Key.Key_C, ctrl_alt)
    assert QApplication.clipboard().text() == str(target.resolve())
    QTest.keyClick(doc.editor, Qt.Key.Key_C, ctrl_alt | Qt.KeyboardModifier.ShiftModifier)
    assert QApplication.clipboard().text() == os.path.join("src", "mod.py")
    assert doc.editor.text() == "x = 1\n" and not doc.is_dirty()


def test_rename_never_replaces_a_name_taken_meanwhile(folder: Path) -> None:
    """The rename itself refuses an existing target (renameat2 RENAME_NOREPLACE on Linux), so
    a file created between the name check and the rename is not overwritten."""
    from app.ui.explorer_ops import rename_no_replace

    (folder / "taken.txt").write_text("precious\n")
    with pytest.raises(FileExistsError):
        rename_no_replace(folder / "notes.txt", folder / "taken.txt")
    assert (folder / "taken.txt").read_text() == "precious\n"
    assert (folder / "notes.txt").read_text() == "notes\n"
    rename_no_replace(folder / "notes.txt", folder / "free.txt")
    assert (folder / "free.txt").read_text() == "notes\n" and not (folder / "notes.txt").exists()


def test_context_menu_and_keys_in_the_explorer(qtbot, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtTest import QTest

    tree = window.tree
    window.show()
    qtbot.waitUntil(lambda: tree.index_for(folder / "notes.txt") is not None, timeout=10000)
    menu = window.explorer_ops.build_menu(folder / "notes.txt")
    texts = [a.text().split("\t")[0] for a in menu.actions() if a.text()]
    assert texts == [
        "New File...",
        "New Folder...",
        "Reveal in File Manager",
        "Copy Path",
        "Copy Relative Path",
        "Rename...",
        "Delete",
    ]
    tree.setFocus()
    tree.setCurrentIndex(tree.index_for(folder / "notes.txt"))
    qtbot.waitUntil(tree.hasFocus, timeout=5000)
    prompts = answer_names(window, "keyed.txt")
    QTest.keyClick(tree, Qt.Key.Key_F2)
    assert prompts == ["Rename|notes.txt"] and (folder / "keyed.txt").exists()
    qtbot.waitUntil(lambda: tree.index_for(folder / "keyed.txt") is not None, timeout=10000)
    tree.setCurrentIndex(tree.index_for(folder / "keyed.txt"))
    asked = answer_confirm(window, False)
    QTest.keyClick(tree, Qt.Key.Key_Delete)
    assert len(asked) == 1 and "'keyed.txt'" in asked[0]
    # Nothing selected in the focused explorer: F2 renames nothing (not the active editor's
    # file either).
    window.open_file(folder / "src" / "mod.py")
    tree.setFocus()
    tree.clearSelection()
    qtbot.waitUntil(tree.hasFocus, timeout=5000)
    prompts.clear()
    QTest.keyClick(tree, Qt.Key.Key_F2)
    assert prompts == []
