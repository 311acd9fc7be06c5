"""The "Run Tests on a Database Branch" flow in real Qt widgets (offscreen): a real shadow
workspace, a real SQLite dev database, the project's own pytest run by the owner's worker;
the preview panel's lines, Keep/Discard, the terminal hook; the dev database's bytes
unchanged throughout."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from app.services.dbbranch import sqlite_checksums
from app.services.shadow import ShadowWorkspace
from app.services.terminal import shell_launch
from app.ui.owners.db_branch import DbBranchOwner, export_line
from app.ui.owners.terminal import TerminalOwner
from app.ui.theme import theme_named
from forecode_core.store.settings import Settings
from forecode_core.terminal.records import CommandRecord

PROJECT_TEST = """\
import os, sqlite3

def test_adds_a_row():
    url = os.environ["DATABASE_URL"]
    assert "/shadow/" in url or "shadow" in url
    conn = sqlite3.connect(url[len("sqlite:///"):])
    conn.execute("INSERT INTO items (name) VALUES ('from-test')")
    conn.execute("UPDATE items SET name = 'renamed' WHERE id = 1")
    conn.commit()
"""


def bash_terminal(tmp_path: Path, root: Path, window: QMainWindow, docks: list) -> TerminalOwner:
    """The real terminal owner on bash with an empty rc of the test's own."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("ZDOTDIR", "PROMPT_COMMAND")}
    env["HOME"] = str(home)
    return TerminalOwner(
        lambda: root, lambda: theme_named("dark"), docks.append, window,
        launch=lambda: shell_launch("bash", env),
    )  # fmt: skip


def make_project(root: Path) -> Path:
    root.mkdir()
    db = root / "dev.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",)])
    conn.commit()
    conn.close()
    (root / "test_items.py").write_text(PROJECT_TEST)
    return db


def make_owner(qtbot, tmp_path: Path, real_terminal: bool = False):
    root = tmp_path / "project"
    db = make_project(root)
    window = QMainWindow()
    qtbot.addWidget(window)
    docks: list = []
    terminal = bash_terminal(tmp_path, root, window, docks) if real_terminal else None
    shadow = ShadowWorkspace(root, base=tmp_path / "shadow", scan_every_s=None)
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider test_items.py"
    settings = dataclasses.replace(Settings(), db_branch_test_command=command)
    owner = DbBranchOwner(
        lambda: settings,
        lambda: root,
        lambda: shadow,
        docks.append,
        terminal,
        window,  # type: ignore[arg-type]
    )
    owner.window = window  # type: ignore[attr-defined]  # kept alive: qtbot holds a weakref
    return owner, shadow, db, docks


def test_run_preview_terminal_and_discard(qtbot, tmp_path: Path):
    owner, shadow, db, docks = make_owner(qtbot, tmp_path, real_terminal=True)
    before = sqlite_checksums(db)
    assert "dbBranch.run" in [c.id for c in owner.commands()]
    assert owner.run_tests() is True
    assert owner.run_tests() is False  # one at a time
    qtbot.waitUntil(lambda: not owner.running, timeout=60_000)
    panel = owner.panel
    assert panel is not None and len(docks) == 1
    assert "exit code 0" in panel.result.text() and "1 passed" in panel.result.text()
    assert panel.table_lines() == ["items  +1 ~1 -0"]
    assert "unchanged (checksums match)" in panel.notes.text()
    assert panel.keep.isEnabled() and panel.discard.isEnabled()
    assert sqlite_checksums(db) == before
    branch_file = shadow.tree / "dev.sqlite3"

    # Open in terminal: a real bash tab; its first prompt offers the line, the user takes it
    with qtbot.waitSignal(owner.open_terminal, timeout=5000) as sig:
        panel.terminal.click()
    env, folder = sig.args
    assert folder == shadow.tree and env["DATABASE_URL"].endswith(str(branch_file))
    terminal = owner._terminal
    view = terminal.view
    qtbot.waitUntil(lambda: view.suggestion().startswith("cd "), timeout=30_000)
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_End)
    # the line is in the shell's buffer (this narrow hidden view shows its wrapped tail)
    qtbot.waitUntil(lambda: (view.input_line() or "").endswith("dev.sqlite3"), timeout=30_000)
    assert records == []  # offered and accepted, never run by the editor
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(records) == 1, timeout=30_000)
    assert records[0].exit_code == 0 and records[0].command.startswith(f"cd {shadow.tree} && ")
    view.session.write(b'echo "$PWD $DATABASE_URL"\r')
    qtbot.waitUntil(lambda: len(records) == 2, timeout=30_000)
    assert records[1].output.split() == [str(shadow.tree), env["DATABASE_URL"]]
    terminal.close_all()

    with qtbot.waitSignal(owner.decided, timeout=30_000):
        panel.discard.click()
    assert "discarded" in panel.notes.text()
    # the shadow's own snapshot of the dev database is back in place: no test rows
    conn = sqlite3.connect(branch_file)
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)
    conn.close()
    assert sqlite_checksums(db) == before
    shadow.close()


def test_keep_and_no_folder(qtbot, tmp_path: Path):
    owner, shadow, _db, _ = make_owner(qtbot, tmp_path)
    assert owner.run_tests()
    qtbot.waitUntil(lambda: not owner.running, timeout=60_000)
    with qtbot.waitSignal(owner.decided, timeout=30_000) as sig:
        owner.keep()
    assert sig.args[0].startswith("Branch kept: ")
    kept = Path(sig.args[0].removeprefix("Branch kept: "))
    shadow.sync()  # the shadow's own sync leaves a kept branch alone
    assert kept.exists() and shadow.tree not in kept.parents
    conn = sqlite3.connect(kept)
    assert conn.execute("SELECT name FROM items ORDER BY id").fetchall() == [
        ("renamed",), ("b",), ("from-test",),
    ]  # fmt: skip
    conn.close()
    shadow.close()
    (tmp_path / "project" / ".env").write_bytes(b"\0binary")
    owner.show_found()
    qtbot.waitUntil(lambda: "Skipped: .env: binary" in owner.panel.result.text(), timeout=30_000)
    assert owner.panel.database.text().startswith("Branches are made of: sqlite dev.sqlite3")
    messages: list[str] = []
    lonely = DbBranchOwner(Settings, lambda: None, lambda: None, lambda d: None)
    lonely.message.connect(lambda text, _ms: messages.append(text))
    assert lonely.run_tests() is False and "Open a folder" in messages[0]


def test_export_line_quotes_and_leaves_the_password_out():
    line = export_line({"DATABASE_URL": "postgresql://u:p w@/x", "PGPASSWORD": "s"}, Path("/a b"))
    assert line == "cd '/a b' && export DATABASE_URL='postgresql://u:p w@/x'"


def test_a_failure_after_the_branch_is_made_drops_it(qtbot, tmp_path: Path):
    """The run removes the dev file (so its checksum cannot be taken): the panel says so
    and the branch is not left in the shadow."""
    owner, shadow, db, _ = make_owner(qtbot, tmp_path)
    removal = f'{sys.executable} -c "import os; os.remove({str(db)!r})"'
    owner._settings = lambda: dataclasses.replace(Settings(), db_branch_test_command=removal)
    assert owner.run_tests()
    qtbot.waitUntil(lambda: not owner.running, timeout=60_000)
    assert owner.panel.result.text().startswith("The database branch failed: ")
    assert owner.branch is None and not (shadow.tree / "dev.sqlite3").exists()
    shadow.close()
