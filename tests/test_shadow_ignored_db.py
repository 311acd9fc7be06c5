"""Files a tool may rewrite in place inside IGNORED folders (issue 16's shadow workspace): an
ignored folder is referenced by a symlink to the user's, so before this a SQLite database in
Flask's ``instance/`` or a fixture in an ignored ``data/`` was reachable for writing from the
copy. Now such a folder is a real folder of the copy whose entries are links to the user's,
except those files (snapshotted) and the folders on the way to them; the virtual environment
is still referenced whole. Real SQLite (WAL mode, rows still in the ``-wal``), real files,
sha256 of the user's bytes before and after writing through the copy's paths."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.shadow import ShadowWorkspace
from app.ui.main_window import MainWindow
from forecode_core.workspace.shadow_plan import Kind, Source, Step, guarded_entries

FIXTURE = '{"users": [{"name": "ada"}]}\n'


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    """A Flask-like workspace: ``instance/app.db`` (WAL, a committed row still in the wal, the
    writer's connection open), ``data/fixture.json`` (a fixture by the setting), a venv."""
    root = tmp_path / "ws"
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("NAME = 'app'\n")
    (root / ".gitignore").write_text(".venv/\ninstance/\ndata/\n")
    (root / "instance").mkdir()
    (root / "instance" / "config.py").write_text("SECRET_KEY = 'dev'\n")
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "fixture.json").write_text(FIXTURE)
    (root / "data" / "readme.txt").write_text("how the data was made\n")
    (root / "data" / "sub" / "deep.sqlite").write_bytes(b"by its suffix, not a real db\n")
    venv = root / ".venv"
    (venv / "lib" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "site-packages" / "cache.db").write_text("a venv is never searched\n")
    conn = sqlite3.connect(root / "instance" / "app.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.execute("INSERT INTO users VALUES ('ada'), ('grace')")
    conn.commit()  # the connection stays open: the rows are in app.db-wal
    assert (root / "instance" / "app.db-wal").stat().st_size > 0
    yield root
    conn.close()


@pytest.fixture
def shadow(ws: Path, tmp_path: Path) -> Iterator[ShadowWorkspace]:
    s = ShadowWorkspace(
        ws,
        base=tmp_path / "data-dir" / "shadow",
        fixtures=["data/*.json"],
        scan_every_s=None,
        check_timeout_s=300,
    )
    yield s
    s.close()


def user_bytes(ws: Path) -> dict[str, str]:
    names = ("instance/app.db", "instance/app.db-wal", "data/fixture.json", "data/sub/deep.sqlite")
    return {rel: sha(ws / rel) for rel in names}


def test_a_database_in_an_ignored_folder_is_a_snapshot_never_the_users_file(
    ws: Path, shadow: ShadowWorkspace
) -> None:
    before = user_bytes(ws)
    shadow.sync()
    tree = shadow.tree
    # the ignored folders that hold such files are real folders of the copy ...
    for rel in ("instance", "data", "data/sub"):
        assert (tree / rel).is_dir() and not (tree / rel).is_symlink(), rel
    # ... whose other entries are the user's, by reference
    for rel in ("instance/config.py", "data/readme.txt"):
        assert os.readlink(tree / rel) == str(ws / rel)
    # the database: a file of the copy's own holding the rows still in the user's wal; the
    # user's wal is neither linked nor copied (SQLite would write it through a link)
    copy = tree / "instance" / "app.db"
    assert not copy.is_symlink() and copy.stat().st_nlink == 1
    assert copy.stat().st_ino != (ws / "instance" / "app.db").stat().st_ino
    assert not os.path.lexists(tree / "instance" / "app.db-wal")
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT name FROM users ORDER BY name").fetchall() == [
            ("ada",),
            ("grace",),
        ]
    for rel in ("data/fixture.json", "data/sub/deep.sqlite"):
        assert (
            not (tree / rel).is_symlink() and (tree / rel).read_bytes() == (ws / rel).read_bytes()
        )
    # the venv is still referenced whole, never searched nor copied
    assert os.readlink(tree / ".venv") == str(ws / ".venv")
    assert shadow.sync() == []  # in step: nothing to do

    # a tool run in the copy writes the copy's paths: the user's bytes never change
    with sqlite3.connect(copy) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("INSERT INTO users VALUES ('shadow only')")
        db.execute("DELETE FROM users WHERE name = 'ada'")
    with open(copy, "r+b") as raw:  # even a raw rewrite of the file
        raw.seek(100)
        raw.write(b"\xff" * 64)
    (tree / "data" / "fixture.json").write_text('{"users": []}\n')
    with open(tree / "data" / "sub" / "deep.sqlite", "ab") as raw:
        raw.write(b"appended in the copy")
    assert user_bytes(ws) == before
    with sqlite3.connect(ws / "instance" / "app.db") as user:
        assert user.execute("SELECT count(*) FROM users").fetchone() == (2,)


def test_an_event_for_an_ignored_file_keeps_its_copy(ws: Path, shadow: ShadowWorkspace) -> None:
    shadow.sync()
    (ws / "data" / "fixture.json").write_text('{"users": [{"name": "new"}]}\n')
    shadow.note_changed(["data/fixture.json", "instance/app.db"]).result(timeout=30)
    copy = shadow.tree / "data" / "fixture.json"
    assert Path(os.path.realpath(copy)).is_relative_to(shadow.tree.resolve())  # the copy's own
    assert copy.read_text() == '{"users": [{"name": "new"}]}\n'
    assert (shadow.tree / "instance" / "app.db").is_file()


def test_a_database_made_later_turns_the_reference_into_a_folder_and_back(
    ws: Path, tmp_path: Path
) -> None:
    (ws / "cache").mkdir()
    (ws / "cache" / "notes.txt").write_text("n\n")
    (ws / ".gitignore").write_text((ws / ".gitignore").read_text() + "cache/\n")
    shadow = ShadowWorkspace(ws, base=tmp_path / "d" / "shadow", scan_every_s=None)
    try:
        shadow.sync()
        assert (shadow.tree / "cache").is_symlink()  # nothing rewritten in place: referenced
        db = ws / "cache" / "store"  # a database found by its header, named without a suffix
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (v)")
            conn.execute("INSERT INTO t VALUES (1)")
        conn.close()
        before = sha(db)
        steps = {(a.step, a.rel) for a in shadow.sync()}
        assert (Step.REMOVE, "cache") in steps and (Step.SNAPSHOT, "cache/store") in steps
        assert not (shadow.tree / "cache").is_symlink()
        assert os.readlink(shadow.tree / "cache" / "notes.txt") == str(ws / "cache" / "notes.txt")
        with sqlite3.connect(shadow.tree / "cache" / "store") as copy:
            copy.execute("INSERT INTO t VALUES (2)")
        assert sha(db) == before
        db.unlink()
        shadow.sync()
        assert os.readlink(shadow.tree / "cache") == str(ws / "cache")  # referenced again
    finally:
        shadow.close()
    # a later session finds the copy in step (the links and the files by their stats)
    again = ShadowWorkspace(ws, base=tmp_path / "d" / "shadow", scan_every_s=None)
    try:
        # (a database in WAL mode is snapshotted again: its snapshot holds the wal's rows, so
        # its size is not the user's main file's)
        assert [(a.step, a.rel) for a in again.sync()] == [(Step.SNAPSHOT, "instance/app.db")]
    finally:
        again.close()


def test_guarded_entries_table(tmp_path: Path) -> None:
    top = tmp_path / "ws"
    for rel, data in {
        "out/a.txt": b"a",
        "out/x/app.sqlite3": b"",
        "out/x/app.sqlite3-wal": b"w",
        "out/x/y/z.txt": b"z",
        "out/__pycache__/m.pyc": b"c",
        "out/node_modules/dep/cache.db": b"",
        "out/env/pyvenv.cfg": b"home = /usr\n",
        "out/env/state.db": b"",
        "plain/a.txt": b"a",
        "fix/seed.yaml": b"k: v\n",
    }.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)
    got = guarded_entries(str(top), "out")
    ref = {r: Source(Kind.REFERENCE, target=str(top / r)) for r in ("out/a.txt", "out/x/y")}
    ref |= {r: Source(Kind.REFERENCE, target=str(top / r)) for r in ("out/node_modules", "out/env")}
    assert {r: s for r, s in got.items() if s.kind is Kind.REFERENCE} == ref
    assert [r for r, s in got.items() if s.kind is Kind.DATABASE] == ["out/x/app.sqlite3"]
    assert guarded_entries(str(top), "plain") == {}  # referenced whole
    assert guarded_entries(str(top), "fix") == {}
    assert list(guarded_entries(str(top), "fix", ["*.yaml"])) == ["fix/seed.yaml"]
    # the search is bounded (breadth first): past the bound the folder stays referenced
    assert guarded_entries(str(top), "out", budget=3) == {}


def test_the_windows_shadow_takes_the_fixtures_setting(
    qtbot: QtBot, tmp_path: Path, ws: Path
) -> None:
    """The editor's own shadow (the review owner's, as a review makes it) with
    ``shadow.fixtures`` from the settings file: the fixture and the database are the copy's
    own, the rest of the ignored folders the user's by reference."""
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "completion.enabled": False,
                "cloud.autostart": False,
                "shadow.fixtures": ["data/*.json"],
            }
        )
    )
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    shadow = win.review.workspace_shadow()
    assert shadow is not None and shadow.fixtures == ("data/*.json",)
    tree = shadow.tree
    qtbot.waitUntil(lambda: (tree / "data" / "fixture.json").exists(), timeout=30_000)
    qtbot.waitUntil(lambda: (tree / "instance" / "app.db").exists(), timeout=30_000)
    before = user_bytes(ws)
    fixture = tree / "data" / "fixture.json"
    assert not fixture.is_symlink() and not (tree / "data").is_symlink()
    assert os.readlink(tree / "data" / "readme.txt") == str(ws / "data" / "readme.txt")
    fixture.write_text("{}\n")
    with sqlite3.connect(tree / "instance" / "app.db") as db:
        db.execute("DELETE FROM users")
    db.close()
    assert user_bytes(ws) == before
    assert (ws / "data" / "fixture.json").read_text() == FIXTURE
