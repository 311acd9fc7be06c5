"""app.services.dbbranch on real databases: SQLite files (WAL included) and a throwaway
PostgreSQL cluster (tests/helpers/pg.py), through the product's own calls (detect ->
open_branch -> run_tests -> preview -> drop). A test script (a real process) changes the
branch; the preview's counts are checked, and the dev database's checksums after."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path

import psycopg
import pytest
from helpers.pg import make_dev, pg_cluster  # noqa: F401 (a fixture)

from app.services.dbbranch import (
    BranchError,
    branch_for_run,
    open_branch,
    run_tests,
    sqlite_checksums,
)
from app.services.pg_cluster import Cluster
from forecode_core.dbbranch import Change, DbKind, detect, from_url

SQLITE_SCRIPT = """\
import os, sqlite3
url = os.environ["DATABASE_URL"]
conn = sqlite3.connect(url[len("sqlite:///"):])
conn.execute("INSERT INTO items (name, qty) VALUES ('new', 1)")
conn.execute("UPDATE items SET qty = -1 WHERE id IN (1, 2)")
conn.execute("DELETE FROM items WHERE id = 5")
conn.execute("CREATE TABLE made (x)")
conn.execute("INSERT INTO made VALUES (7)")
conn.execute("UPDATE notes SET body = 'edited' WHERE body = 'two'")
conn.execute("DELETE FROM notes WHERE body = 'three'")
conn.commit()
print("3 passed in 0.01s")
"""

PG_SCRIPT = """\
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as c:
    c.execute("INSERT INTO items (name, qty) VALUES ('new', 1), ('new2', 2)")
    c.execute("UPDATE items SET qty = 0 WHERE id <= 3")
    c.execute("DELETE FROM items WHERE id = 50")
    c.execute("INSERT INTO log VALUES ('run')")
    c.execute("DELETE FROM log WHERE msg = 'old'")
    c.execute("DELETE FROM tags WHERE name = 'b'")
    c.execute("UPDATE tags SET uses = 9 WHERE name = 'c'")
    if os.environ.get("MIGRATE"):
        c.execute("CREATE TABLE made (x int)")
        c.execute("INSERT INTO made VALUES (1), (2)")
        c.execute("DROP TABLE log")
assert os.environ["PGDATABASE"].startswith("fc_br_")
print("2 passed, 1 failed in 0.02s")
raise SystemExit(1)
"""


def sqlite_workspace(root: Path, wal_row: bool = False) -> sqlite3.Connection:
    """A workspace with ``data/dev.sqlite3`` (WAL) holding ``items``; the connection stays
    open with auto-checkpoints off, so the last commit is only in the ``-wal`` file."""
    (root / "data").mkdir(parents=True)
    conn = sqlite3.connect(root / "data" / "dev.sqlite3")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INT)")
    conn.executemany(
        "INSERT INTO items (name, qty) VALUES (?, ?)", [(f"n{i}", i) for i in range(10)]
    )
    conn.execute("CREATE TABLE notes (body TEXT)")  # no primary key: keyed on the rowid
    conn.executemany("INSERT INTO notes VALUES (?)", [("one",), ("two",), ("three",)])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if wal_row:
        conn.execute("INSERT INTO items (name, qty) VALUES ('only-in-wal', 99)")
        conn.commit()
    (root / "test_script.py").write_text(SQLITE_SCRIPT)
    return conn


@pytest.mark.parametrize("method", ["backup", "vacuum", "copy"])
def test_sqlite_branch_has_the_wal_rows_and_main_is_untouched(tmp_path: Path, method: str):
    ws, shadow = tmp_path / "ws", tmp_path / "shadow"
    writer = sqlite_workspace(ws, wal_row=True)
    db = ws / "data" / "dev.sqlite3"
    wal = Path(str(db) + "-wal")
    assert wal.stat().st_size > 0
    # the reason for the backup API: a copy of the main file alone loses the row in the WAL
    shutil.copy(db, tmp_path / "plain.sqlite3")
    plain = sqlite3.connect(tmp_path / "plain.sqlite3")
    assert plain.execute("SELECT count(*) FROM items WHERE name = 'only-in-wal'").fetchone() == (0,)
    plain.close()
    before = sqlite_checksums(db)
    assert set(before) == {"dev.sqlite3", "dev.sqlite3-wal"}

    found = detect(ws, {}).best
    assert found is not None and found.kind is DbKind.SQLITE
    branch = open_branch(found, shadow, method=method)
    assert Path(branch.location) == shadow / "data" / "dev.sqlite3"
    copy = sqlite3.connect(branch.location)
    assert copy.execute("SELECT qty FROM items WHERE name = 'only-in-wal'").fetchone() == (99,)
    copy.close()

    run = run_tests(f"{sys.executable} test_script.py", ws, branch.env)
    assert (run.exit_code, run.summary) == (0, "3 passed in 0.01s")
    preview = branch.preview()
    by = {t.table: t for t in preview.tables}
    items = by["items"]
    assert (items.inserted, items.updated, items.deleted) == (1, 2, 1)
    assert {s.change for s in items.samples} == set(Change)
    assert ("12", "new", "1") in [s.cells for s in items.samples if s.change is Change.INSERTED]
    assert [s.cells for s in items.samples if s.change is Change.DELETED] == [("5", "n4", "4")]
    assert (by["made"].inserted, by["made"].note) == (1, "new table")
    notes = by["notes"]
    assert (notes.inserted, notes.updated, notes.deleted) == (0, 1, 1)
    assert sorted(s.cells for s in notes.samples) == [("edited",), ("three",)]
    assert branch.main_unchanged() is True
    assert sqlite_checksums(db) == before
    assert writer.execute("SELECT count(*) FROM items").fetchone() == (11,)
    branch.drop()
    assert not Path(branch.location).exists()
    writer.close()


def test_sqlite_keep_and_outside(tmp_path: Path):
    ws, shadow = tmp_path / "ws", tmp_path / "shadow"
    sqlite_workspace(ws).close()
    branch = branch_for_run(ws, shadow)
    assert branch is not None
    conn = sqlite3.connect(branch.location)
    conn.execute("DELETE FROM items WHERE id = 1")
    conn.commit()
    conn.close()
    kept = Path(branch.keep())
    branch.close()  # kept: nothing more happens
    assert kept.parent == tmp_path / "kept-branches"  # beside the shadow, not in it
    assert not Path(branch.location).exists()  # the tree's copy is gone
    copy = sqlite3.connect(kept)
    assert copy.execute("SELECT count(*) FROM items").fetchone() == (9,)
    copy.close()
    sqlite3.connect(tmp_path / "elsewhere.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BranchError, match="outside the workspace"):
        branch_for_run(ws, shadow, choice=str(tmp_path / "elsewhere.db"))
    assert branch_for_run(tmp_path / "shadow" / "nothing-here", shadow) is None


def test_sqlite_django_override(tmp_path: Path):
    ws, shadow = tmp_path / "ws", tmp_path / "shadow"
    sqlite_workspace(ws).close()
    (ws / "manage.py").write_text("")
    (ws / "mysite").mkdir()
    (ws / "mysite" / "__init__.py").write_text("")
    (ws / "mysite" / "settings.py").write_text(
        "DEBUG = True\nDATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3',"
        " 'NAME': 'data/dev.sqlite3'}}\n"
    )
    shutil.copytree(ws, shadow, ignore=shutil.ignore_patterns("*.sqlite3*"))
    branch = branch_for_run(ws, shadow)
    assert branch is not None and branch.env["DJANGO_SETTINGS_MODULE"] == "forecode_branch_settings"
    probe = (
        "import importlib, os; m = importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE']);"
        " print(m.DEBUG, m.DATABASES['default']['NAME'])"
    )
    run = run_tests(f'{sys.executable} -c "{probe}"', shadow, branch.env)
    assert run.exit_code == 0, run.output
    assert run.output.split() == ["True", str(shadow / "data" / "dev.sqlite3")]
    assert (
        oct(os.stat(shadow / ".forecode-dbbranch" / "forecode_branch_settings.py").st_mode)[-3:]
        == "600"
    )


def pg_workspace(root: Path, url: str) -> None:
    root.mkdir(parents=True)
    (root / ".env").write_text(f"DATABASE_URL={url}\n")
    (root / "test_script.py").write_text(PG_SCRIPT)


def test_postgres_branch_from_template(tmp_path: Path, pg_cluster: Cluster):  # noqa: F811
    url = make_dev(pg_cluster, "shop")
    pg_workspace(tmp_path / "ws", url)
    branch = branch_for_run(tmp_path / "ws", tmp_path / "shadow")
    assert branch is not None
    assert branch.method == "template" and branch.notes == []
    run = run_tests(f"{sys.executable} test_script.py", tmp_path / "ws", branch.env)
    assert (run.exit_code, run.summary) == (1, "2 passed, 1 failed in 0.02s")
    by = {t.table: t for t in branch.preview().tables}
    items = by["public.items"]
    assert (items.inserted, items.updated, items.deleted) == (2, 3, 1)
    assert sorted(s.cells for s in items.samples if s.change is Change.UPDATED) == [
        ("1", "n1", "0"), ("2", "n2", "0"), ("3", "n3", "0"),
    ]  # fmt: skip
    assert [s.cells for s in items.samples if s.change is Change.DELETED] == [("50", "n50", "50")]
    log, tags = by["public.log"], by["public.tags"]
    assert (log.inserted, log.deleted) == (1, 1)
    assert sorted((s.change, s.cells) for s in log.samples) == [
        (Change.DELETED, ("old",)), (Change.INSERTED, ("run",)),
    ]  # fmt: skip
    assert (tags.inserted, tags.updated, tags.deleted) == (0, 1, 1)
    assert sorted((s.change, s.cells) for s in tags.samples) == [
        (Change.DELETED, ("b", "2")), (Change.UPDATED, ("c", "9")),
    ]  # fmt: skip
    assert branch.main_unchanged() is True
    with psycopg.connect(url) as dev:
        assert dev.execute("SELECT count(*), sum(qty) FROM items").fetchone() == (100, 5050)
    branch.close()
    with psycopg.connect(pg_cluster.url()) as admin:
        names = [r[0] for r in admin.execute("SELECT datname FROM pg_database").fetchall()]
    assert branch.location not in names


def test_postgres_open_session_falls_back_with_a_message(tmp_path: Path, pg_cluster: Cluster):  # noqa: F811
    url = make_dev(pg_cluster, "busy")
    pg_workspace(tmp_path / "ws", url)
    session = psycopg.connect(url)  # a dev server's connection
    try:
        branch = branch_for_run(tmp_path / "ws", tmp_path / "shadow")
        assert branch is not None
        assert branch.method == "dump"
        assert "1 session(s) connected to busy" in branch.notes[0]
        assert "pg_dump and pg_restore" in branch.notes[0]
        assert branch.preview().totals() == (0, 0, 0)  # the restore's rows are not the run's
        run = run_tests(f"{sys.executable} test_script.py", tmp_path / "ws", branch.env)
        assert run.exit_code == 1
        items = {t.table: t for t in branch.preview().tables}["public.items"]
        assert (items.inserted, items.updated, items.deleted) == (2, 3, 1)
        assert branch.main_unchanged() is True
        kept = branch.keep()
        branch.close()
        with psycopg.connect(kept) as conn:  # kept: still there, with the run's rows
            assert conn.execute("SELECT count(*) FROM items").fetchone() == (101,)
        branch.drop()
    finally:
        session.close()


def test_postgres_checksums_see_a_change(pg_cluster: Cluster, tmp_path: Path):  # noqa: F811
    url = make_dev(pg_cluster, "touched")
    pg_workspace(tmp_path / "ws", url)
    branch = branch_for_run(tmp_path / "ws", tmp_path / "shadow")
    assert branch is not None
    with psycopg.connect(url, autocommit=True) as dev:
        dev.execute("UPDATE items SET name = 'changed' WHERE id = 7")
    assert branch.main_unchanged() is False
    branch.drop()


def test_run_tests_stops_on_cancel(tmp_path: Path):
    import threading

    cancel = threading.Event()
    started = threading.Event()

    def on_start(_proc: object) -> None:
        started.set()
        cancel.set()

    run = run_tests(f"{sys.executable} -c 'import time; time.sleep(60)'", tmp_path, {},
                    cancel=cancel, on_start=on_start)  # fmt: skip
    assert started.is_set() and run.exit_code is None and run.summary == "stopped"
    missing = run_tests("no-such-program-here --x", tmp_path, {})
    assert missing.exit_code is None and missing.summary.startswith("did not start")


def test_postgres_django_settings_over_a_socket(tmp_path: Path, pg_cluster: Cluster):  # noqa: F811
    make_dev(pg_cluster, "djshop")
    ws = tmp_path / "ws"
    (ws / "shop").mkdir(parents=True)
    (ws / "manage.py").write_text("")
    (ws / "shop" / "__init__.py").write_text("")
    (ws / "shop" / "settings.py").write_text(
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'djshop',"
        f" 'USER': 'postgres', 'HOST': {str(pg_cluster.socket)!r}, 'PORT': '5432'}}}}\n"
    )
    shadow = tmp_path / "shadow"
    shutil.copytree(ws, shadow)
    branch = branch_for_run(ws, shadow)
    assert branch is not None and branch.method == "template"
    probe = (
        "import importlib, os, psycopg; d = importlib.import_module("
        "os.environ['DJANGO_SETTINGS_MODULE']).DATABASES['default'];"
        " c = psycopg.connect(dbname=d['NAME'], host=d['HOST'], port=d['PORT'], user=d['USER']);"
        " c.execute('DELETE FROM items WHERE id <= 4'); c.commit(); print(d['NAME'])"
    )
    run = run_tests(f'{sys.executable} -c "{probe}"', shadow, branch.env)
    assert run.exit_code == 0, run.output
    assert run.output.strip() == branch.location
    items = {t.table: t for t in branch.preview().tables}["public.items"]
    assert (items.inserted, items.updated, items.deleted) == (0, 0, 4)
    assert branch.main_unchanged() is True
    branch.drop()


def test_postgres_errors_are_branch_errors(tmp_path: Path, pg_cluster: Cluster):  # noqa: F811
    make_dev(pg_cluster, "guarded")
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS weak")
        admin.execute("CREATE ROLE weak LOGIN")  # no CREATEDB
    url = pg_cluster.url("guarded").replace("postgres@", "weak@", 1)
    found = from_url(url, ".env", 1, "DATABASE_URL in .env")
    assert found is not None
    with pytest.raises(BranchError, match="permission denied"):
        open_branch(found, tmp_path, checksums=False)
    gone = from_url("postgresql://u@/x?host=/nonexistent-folder", ".env", 1, "test")
    assert gone is not None
    with pytest.raises(BranchError, match="nonexistent-folder"):
        open_branch(gone, tmp_path)


def test_sqlite_migration_in_the_branch(tmp_path: Path):
    """A run that migrates (a column added, a table dropped): the preview says so and still
    counts the rows over the columns both sides have."""
    ws, shadow = tmp_path / "ws", tmp_path / "shadow"
    sqlite_workspace(ws).close()
    branch = branch_for_run(ws, shadow)
    assert branch is not None
    conn = sqlite3.connect(branch.location)
    conn.execute("ALTER TABLE items ADD COLUMN sku TEXT")
    conn.execute("UPDATE items SET sku = 'x', qty = 100 WHERE id = 3")
    conn.execute("DROP TABLE notes")
    conn.commit()
    conn.close()
    by = {t.table: t for t in branch.preview().tables}
    items, notes = by["items"], by["notes"]
    assert (items.updated, items.note, items.columns[-1]) == (1, "schema changed", "sku")
    assert (notes.deleted, notes.note) == (3, "dropped")
    assert branch.main_unchanged() is True
    branch.drop()


def test_restore_errors_that_pg_restore_ignored_are_a_note():
    from app.services.dbbranch import _run_tool

    script = (
        "import sys; sys.stderr.write('pg_restore: error: could not execute query: x\\n"
        "pg_restore: warning: errors ignored on restore: 1\\n'); sys.exit(1)"
    )
    note = _run_tool([sys.executable, "-c", script], dict(os.environ))
    assert note.startswith("pg_restore reported errors, ignored (pg_restore: error: could not")
    with pytest.raises(BranchError, match="failed \\(2\\)"):
        _run_tool([sys.executable, "-c", "import sys; sys.exit(2)"], dict(os.environ))


def test_postgres_migration_in_the_branch(tmp_path: Path, pg_cluster: Cluster):  # noqa: F811
    url = make_dev(pg_cluster, "migrated")
    pg_workspace(tmp_path / "ws", url)
    branch = branch_for_run(tmp_path / "ws", tmp_path / "shadow")
    assert branch is not None
    run = run_tests(
        f"{sys.executable} test_script.py", tmp_path / "ws", {**branch.env, "MIGRATE": "1"}
    )
    assert run.exit_code == 1, run.output
    by = {t.table: t for t in branch.preview().tables}
    made, log = by["public.made"], by["public.log"]
    assert (made.inserted, made.note, sorted(s.cells for s in made.samples)) == (
        2, "new table", [("1",), ("2",)],
    )  # fmt: skip
    assert (log.deleted, log.note) == (1, "dropped")
    assert branch.main_unchanged() is True
    branch.drop()


def test_a_session_that_just_closed_is_waited_out(
    tmp_path: Path,
    pg_cluster: Cluster,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    """A test run's connection closed a moment ago is still listed while its backend exits
    (about half the time, measured): the branch waits for it rather than falling back."""
    from app.services import dbbranch

    monkeypatch.setattr(dbbranch, "SESSIONS_GONE_S", 30.0)  # generous: a loaded machine
    url = make_dev(pg_cluster, "justclosed")
    pg_workspace(tmp_path / "ws", url)
    found = detect(tmp_path / "ws", {}).best
    assert found is not None
    for _ in range(3):
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")
        branch = open_branch(found, tmp_path / "shadow", checksums=False)
        assert (branch.method, branch.notes) == ("template", [])
        branch.drop()


@pytest.mark.parametrize("method", ["backup", "copy"])
def test_sqlite_branch_while_a_writer_commits(tmp_path: Path, method: str):
    """A dev server writing all along: each branch is a whole database (integrity_check ok),
    its rows a prefix of what the writer committed (no torn transaction)."""
    import threading

    ws = tmp_path / "ws"
    sqlite_workspace(ws).close()
    db = ws / "data" / "dev.sqlite3"
    stop, first = threading.Event(), threading.Event()
    committed = [0]

    def write() -> None:
        conn = sqlite3.connect(db, timeout=30)
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO items (name, qty) VALUES ('w', 1)")
            conn.execute("INSERT INTO items (name, qty) VALUES ('w', 2)")  # a pair a commit
            conn.commit()
            committed[0] += 1
            first.set()
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert first.wait(60)  # the writer is committing before the first branch
        found = detect(ws, {}).best
        assert found is not None
        for i in range(5):
            branch = open_branch(found, tmp_path / f"shadow{i}", method=method, checksums=False)
            copy = sqlite3.connect(branch.location)
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            pairs = copy.execute("SELECT count(*) FROM items WHERE name = 'w'").fetchone()[0]
            copy.close()
            assert pairs % 2 == 0  # both rows of a commit or neither
            branch.drop()
    finally:
        stop.set()
        writer.join()
    assert committed[0] > 0
