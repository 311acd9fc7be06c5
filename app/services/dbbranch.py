"""Database branches for AI test runs (issue 17): the project's development database copied
into a branch, the tests run against the branch, the preview of what they changed. No Qt
(the services contract): every call here blocks, and the editor makes them on a worker.

``open_branch(found, shadow_root) -> Branch``
    SQLite: a consistent copy by SQLite's backup API (or ``VACUUM INTO``: ``method``), read
    through a read-only connection (so nothing in the dev file or its ``-wal`` changes, and
    rows still in the ``-wal`` come along), placed at the database's own relative path inside
    ``shadow_root`` (a stale ``-wal``/``-shm`` there is removed first).
    PostgreSQL: ``CREATE DATABASE <branch> TEMPLATE <dev> STRATEGY FILE_COPY`` over psycopg 3
    (a maintained driver whose binary wheel carries libpq, so nothing needs the system's
    client; it runs the queries of the preview and the checksums too). PostgreSQL refuses a
    template that other sessions are connected to, after retrying for 5 s; so the sessions are
    counted first, and with any (a running dev server), or on that refusal, the branch is made
    by ``pg_dump -Fc`` and ``pg_restore -j 2`` instead (the CLI tools: a dump has no driver
    API), and ``Branch.notes`` says so.
``Branch.env``
    The test process's environment: ``DATABASE_URL``, the ``PG*`` variables, and for a Django
    project a generated settings module that imports the project's and overrides
    ``DATABASES['default']`` (``DJANGO_SETTINGS_MODULE``; the module's folder on
    ``PYTHONPATH``).
``Branch.preview()``
    PostgreSQL: the branch's own ``pg_stat_user_tables`` counters (a new database starts at
    zero; the values at creation are subtracted anyway, since a restore counts its rows) and
    sample rows from a merge of both databases' (key digest, row digest) streams. SQLite: the
    dev file ATTACHed read-only, ``EXCEPT`` keyed on the primary key (else the rowid).
``Branch.keep()`` / ``Branch.drop()``; ``Branch.main_checksums()``
    SQLite: sha256 of the file and its ``-wal``; PostgreSQL: per table, the row count and the
    md5 of its rows' md5s in order.
``run_tests(command, cwd, env)``; ``branch_for_run(workspace_root, shadow_root)`` for the
agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecode_core.dbbranch.detect import Detection, detect, found_from_setting
from forecode_core.dbbranch.found import DbKind, FoundDatabase, with_database
from forecode_core.dbbranch.preview import (
    SAMPLES,
    Change,
    Preview,
    Sample,
    TableChange,
    TestRun,
    branch_name,
    cell_text,
    merge_diff,
    quote_ident,
    summary_line,
)
from forecode_core.windowless import no_window
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.shadow_plan import DATABASE_SIDE_FILES

__all__ = [
    "Branch",
    "BranchError",
    "PostgresBranch",
    "SqliteBranch",
    "branch_for_run",
    "default_test_command",
    "open_branch",
    "run_tests",
]

OUTPUT_TAIL = 64 * 1024  # characters of a test run's output kept
SETTINGS_MODULE = "forecode_branch_settings"
GENERATED = ".forecode-dbbranch"  # the generated settings' folder inside the shadow


class BranchError(Exception):
    """No branch could be made (the message says why, for the user)."""


# ----- the branch ------------------------------------------------------------------------------


@dataclass
class Branch:
    """A branch of ``found``: where it is (``location``: a file or a database name), how it
    was made (``method``) and in how long (``branch_s``), the environment for the tests, and
    what the user should know (``notes``)."""

    found: FoundDatabase
    location: str
    method: str
    branch_s: float
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    main_before: dict[str, str] = field(default_factory=dict)
    kept: bool = False
    dropped: bool = False

    def preview(self) -> Preview:
        raise NotImplementedError

    def keep(self) -> str:
        """Keep the branch (it is not dropped); where it is, for the user."""
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

    def main_checksums(self) -> dict[str, str]:
        raise NotImplementedError

    def main_unchanged(self) -> bool | None:
        """Whether the dev database is as it was when the branch was made (None: no
        checksums were taken then)."""
        if not self.main_before:
            return None
        return self.main_checksums() == self.main_before

    def close(self) -> None:
        """After the run: dropped unless kept."""
        if not self.kept and not self.dropped:
            self.drop()


def open_branch(
    found: FoundDatabase,
    shadow_root: str | os.PathLike[str],
    *,
    method: str = "",
    checksums: bool = True,
) -> Branch:
    """A branch of ``found`` for a test run in ``shadow_root``; see the module docstring.
    ``method``: SQLite ``backup`` (default), ``vacuum`` (``VACUUM INTO``) or ``copy`` (the
    files as bytes under a read transaction); PostgreSQL ``template`` (default)
    or ``dump`` (the fallback, forced). ``checksums``: take the dev database's first (for
    ``Branch.main_unchanged``)."""
    shadow = Path(shadow_root)
    if found.kind is DbKind.SQLITE:
        return SqliteBranch.open(found, shadow, method or "backup", checksums)
    if found.kind is not DbKind.POSTGRES:
        raise BranchError(f"no branch can be made of {found.label}")
    try:
        return PostgresBranch.open(found, shadow, method or "template", checksums)
    except _psycopg().Error as e:  # refused, no CREATEDB right, server gone, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BranchError(f"{found.label}: {first}") from e


def branch_for_run(
    workspace_root: str | os.PathLike[str],
    shadow_root: str | os.PathLike[str],
    *,
    choice: str = "",
    environ: Mapping[str, str] | None = None,
) -> Branch | None:
    """The agent's call: the project's development database (the user's ``choice`` first,
    then what ``detect`` finds) branched for a run in ``shadow_root``; None when the project
    names none. Raises ``BranchError`` when one is named but cannot be branched."""
    found = find_database(workspace_root, choice=choice, environ=environ)
    return None if found is None else open_branch(found, shadow_root)


def find_database(
    workspace_root: str | os.PathLike[str],
    *,
    choice: str = "",
    environ: Mapping[str, str] | None = None,
) -> FoundDatabase | None:
    """The database a branch is made of: the user's ``choice``, else the best found."""
    root = os.path.abspath(os.fspath(workspace_root))
    chosen = found_from_setting(choice, root)
    if chosen is not None:
        return chosen
    return detect_in(root, environ).best


def detect_in(
    workspace_root: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Detection:
    """Everything ``detect`` finds in the folder (with its ignore rules), and its notes."""
    root = os.path.abspath(os.fspath(workspace_root))
    rules = IgnoreRules.for_folder(root)
    return detect(root, os.environ if environ is None else environ, rules)


# ----- SQLite ----------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _sqlite_source(found: FoundDatabase) -> tuple[Path, str]:
    """The dev file (absolute, resolved) and its path relative to the workspace."""
    root = Path(found.root).resolve() if found.root else None
    path = Path(found.path)
    if not path.is_absolute():
        if root is None:
            raise BranchError(f"{found.path}: relative, and no workspace to resolve it in")
        path = root / path
    path = path.resolve()
    if root is None or not _inside(path, root):
        raise BranchError(f"{found.path} is outside the workspace: no branch is made of it")
    if not path.is_file():
        raise BranchError(f"{found.path}: no such database file")
    return path, path.relative_to(root).as_posix()


def _read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened read-only: it cannot checkpoint or change the file or its WAL."""
    return sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=5.0)


def _remove_with_side_files(path: Path) -> None:
    for p in (path, *(Path(str(path) + s) for s in DATABASE_SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def copy_sqlite(src: Path, dst: Path, method: str) -> None:
    """A consistent copy of ``src`` (its WAL's committed rows included) at ``dst``, made
    beside it and renamed into place, owner-only."""
    tmp = dst.with_name(dst.name + ".fc-branch")
    _remove_with_side_files(tmp)
    source = _read_only(src)
    try:
        if method == "vacuum":
            source.execute("VACUUM INTO ?", (str(tmp),))
        elif method == "backup":
            target = sqlite3.connect(tmp)
            try:
                source.backup(target, pages=-1)
            finally:
                target.close()
        elif method == "copy":
            _copy_files_under_read(source, src, tmp)
        else:
            raise BranchError(f"unknown SQLite branch method {method!r} (backup, vacuum, copy)")
    except (sqlite3.Error, OSError) as e:
        _remove_with_side_files(tmp)
        raise BranchError(f"{src.name}: not copied ({e})") from e
    finally:
        source.close()
    os.chmod(tmp, 0o600)
    _remove_with_side_files(dst)  # a stale -wal beside the new copy would be replayed into it
    os.replace(tmp, dst)


def _copy_files_under_read(source: sqlite3.Connection, src: Path, tmp: Path) -> None:
    """The file and its ``-wal`` copied as bytes while ``source`` holds a read transaction
    (no writer can then reset the WAL, and a checkpoint only writes into the file pages the
    copied WAL also holds); the copy's WAL is then checkpointed into it, so the branch is one
    file. Rows committed while the copy ran may come along: still a consistent state."""
    source.execute("BEGIN")
    source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the read lock
    try:
        shutil.copyfile(src, tmp)
        wal = Path(str(src) + "-wal")
        if wal.exists() and wal.stat().st_size:
            shutil.copyfile(wal, Path(str(tmp) + "-wal"))
    finally:
        source.execute("ROLLBACK")
    copy = sqlite3.connect(tmp)
    try:
        copy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        copy.close()  # the last connection: the WAL is folded in and removed


def sqlite_checksums(path: Path) -> dict[str, str]:
    """sha256 of the database file and of its ``-wal`` when that holds anything (a reader of a
    WAL database, ours included, leaves an empty ``-wal`` and the ``-shm`` where there were
    none: no content, and never removed, since a running app may have them open)."""
    out: dict[str, str] = {}
    for name in (path, Path(str(path) + "-wal")):
        if name.exists() and (name == path or name.stat().st_size > 0):
            digest = hashlib.sha256()
            with open(name, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            out[name.name] = digest.hexdigest()
    return out


@dataclass
class SqliteBranch(Branch):
    source: Path = Path()
    path: Path = Path()
    had_copy: bool = False  # the shadow held its own snapshot here before the branch
    shadow: Path = Path()

    @classmethod
    def open(cls, found: FoundDatabase, shadow: Path, method: str, checksums: bool) -> Branch:
        src, rel = _sqlite_source(found)
        dst = shadow / rel
        before = sqlite_checksums(src) if checksums else {}
        had = dst.exists()
        dst.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        copy_sqlite(src, dst, method)
        took = time.perf_counter() - start
        branch = cls(found, str(dst), method, took, main_before=before, source=src, path=dst)
        branch.had_copy = had
        branch.shadow = shadow
        branch.env = _sqlite_env(found, dst, shadow)
        return branch

    def main_checksums(self) -> dict[str, str]:
        return sqlite_checksums(self.source)

    def preview(self) -> Preview:
        conn = sqlite3.connect(self.path.as_uri() + "?mode=ro", uri=True, timeout=5.0)
        try:
            conn.execute("ATTACH DATABASE ? AS dev", (self.source.as_uri() + "?mode=ro",))
            return sqlite_preview(conn)
        finally:
            conn.close()

    def keep(self) -> str:
        """A copy beside the shadow's tree (``kept-branches/``: a file inside the tree would
        be removed by the shadow's next sync), and the tree's copy dropped."""
        folder = self.shadow.parent / "kept-branches"
        folder.mkdir(parents=True, exist_ok=True)
        kept = folder / f"{self.path.stem}-{time.strftime('%Y%m%d-%H%M%S')}{self.path.suffix}"
        copy_sqlite(self.path, kept, "backup")
        self.drop()
        self.kept = True
        self.notes.append(f"kept as {kept}")
        return str(kept)

    def drop(self) -> None:
        _remove_with_side_files(self.path)
        if self.had_copy:  # the shadow's own snapshot goes back where it was
            with contextlib.suppress(BranchError):
                copy_sqlite(self.source, self.path, "backup")
        self.dropped = True


def _sqlite_tables(conn: sqlite3.Connection, schema: str) -> dict[str, list[str]]:
    rows = conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return {r[0]: _sqlite_key(conn, schema, r[0]) for r in rows}


def _sqlite_key(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    info = conn.execute(f"PRAGMA {schema}.table_info({quote_ident(table)})").fetchall()
    pk = sorted((r[5], r[1]) for r in info if r[5])
    return [name for _, name in pk] or ["rowid"]


def sqlite_preview(conn: sqlite3.Connection) -> Preview:
    """The branch (``main``) against the dev database ATTACHed as ``dev``."""
    branch, dev = _sqlite_tables(conn, "main"), _sqlite_tables(conn, "dev")
    tables: list[TableChange] = []
    for table in sorted(branch.keys() | dev.keys()):
        if table not in dev:
            tables.append(_whole_table(conn, "main", table, Change.INSERTED, "new table"))
        elif table not in branch:
            tables.append(_whole_table(conn, "dev", table, Change.DELETED, "dropped"))
        else:
            tables.append(_sqlite_table_diff(conn, table, branch[table]))
    return Preview(tuple(tables))


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> tuple[str, ...]:
    info = conn.execute(f"PRAGMA {schema}.table_info({quote_ident(table)})").fetchall()
    return tuple(r[1] for r in info)


def _whole_table(
    conn: sqlite3.Connection, schema: str, table: str, change: Change, note: str
) -> TableChange:
    t = f"{schema}.{quote_ident(table)}"
    count = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    rows = conn.execute(f"SELECT * FROM {t} LIMIT {SAMPLES}").fetchall()
    samples = tuple(Sample(change, tuple(cell_text(v) for v in r)) for r in rows)
    counts = {change.value: count}
    return TableChange(table, columns=_columns(conn, schema, table), samples=samples,
                       note=note, **counts)  # fmt: skip


def _sqlite_table_diff(conn: sqlite3.Connection, table: str, key: list[str]) -> TableChange:
    """The branch's ``table`` (``a``) against the dev one (``b``), joined on the key: rows only
    in ``a`` (inserted), only in ``b`` (deleted), and in both with a column that differs
    (updated, over the columns both have). Joins on the key are index lookups; an ``EXCEPT``
    of whole rows sorted every row (17 s for 300 k rows of 1 KB, 2026-12-06)."""
    q = quote_ident(table)
    cols = _columns(conn, "main", table)
    dev_cols = _columns(conn, "dev", table)
    common = [c for c in cols if c in dev_cols]
    keys = ["rowid" if c == "rowid" else quote_ident(c) for c in key]
    on = " AND ".join(f"a.{c} = b.{c}" for c in keys)
    differs = " OR ".join(f"a.{quote_ident(c)} IS NOT b.{quote_ident(c)}" for c in common)
    inserted = f"FROM main.{q} a WHERE NOT EXISTS (SELECT 1 FROM dev.{q} b WHERE {on})"
    deleted = f"FROM dev.{q} b WHERE NOT EXISTS (SELECT 1 FROM main.{q} a WHERE {on})"
    updated = f"FROM main.{q} a JOIN dev.{q} b ON {on} WHERE {differs or '0'}"

    def count(rows: str) -> int:
        return int(conn.execute(f"SELECT count(*) {rows}").fetchone()[0])

    def samples(rows: str, alias: str, change: Change) -> list[Sample]:
        found = conn.execute(f"SELECT {alias}.* {rows} LIMIT {SAMPLES}").fetchall()
        return [Sample(change, tuple(cell_text(v) for v in r)) for r in found]

    ins, upd, dele = count(inserted), count(updated), count(deleted)
    found = [
        *(samples(inserted, "a", Change.INSERTED) if ins else []),
        *(samples(updated, "a", Change.UPDATED) if upd else []),
        *(samples(deleted, "b", Change.DELETED) if dele else []),
    ]
    note = "" if cols == dev_cols else "schema changed"
    return TableChange(table, ins, upd, dele, cols, tuple(found), note)


def _sqlite_env(found: FoundDatabase, dst: Path, shadow: Path) -> dict[str, str]:
    env = {"DATABASE_URL": "sqlite:///" + str(dst)}
    if found.django_settings:
        env.update(_django_env(found, shadow, {"NAME": str(dst)}))
    return env


# ----- Django ----------------------------------------------------------------------------------


def _django_env(found: FoundDatabase, shadow: Path, override: Mapping[str, str]) -> dict[str, str]:
    """A settings module that is the project's with ``DATABASES['default']`` pointed at the
    branch, written owner-only under ``shadow/.forecode-dbbranch``, and the variables that
    make Django load it."""
    folder = shadow / GENERATED
    folder.mkdir(parents=True, exist_ok=True)
    module = found.django_settings
    lines = [
        "# Generated by Forecode for a test run on a database branch; not the project's file.",
        f"from {module} import *  # noqa: F401,F403",
        f"from {module} import DATABASES as _PROJECT_DATABASES",
        "import copy as _copy",
        "",
        "DATABASES = _copy.deepcopy(_PROJECT_DATABASES)",
        f'DATABASES["default"].update({dict(override)!r})',
        "",
    ]
    target = folder / f"{SETTINGS_MODULE}.py"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    base = _django_base(found, shadow)
    path = os.pathsep.join(dict.fromkeys([str(folder), str(base), str(shadow)]))
    return {"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE, "PYTHONPATH": path}


def _django_base(found: FoundDatabase, shadow: Path) -> Path:
    """The folder the settings module is named from (its ``manage.py``'s) in the shadow."""
    src = Path(found.source)
    depth = len(found.django_settings.split("."))
    base = src.with_suffix("")
    for _ in range(depth):
        base = base.parent
    return shadow / base


# ----- PostgreSQL ------------------------------------------------------------------------------


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - a dependency of the editor
        raise BranchError("psycopg is not installed: no PostgreSQL branch") from e
    return psycopg


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: the newest Debian-style ``/usr/lib/postgresql/N/bin``
    one (``pg_dump`` must be at least the server's version), else the one on ``PATH``."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return str(versions[-1])
    found = shutil.which(name)
    if found is None:
        raise BranchError(f"{name} not found: install the PostgreSQL client tools")
    return found


def _pg_env(info: Mapping[str, Any]) -> dict[str, str]:
    """libpq's variables for a connection's parameters (passwords never on a command line)."""
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
             "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}  # fmt: skip
    return {env: str(info[key]) for key, env in names.items() if info.get(key)}


@dataclass
class PostgresBranch(Branch):
    url: str = ""  # the dev database's
    dev: str = ""
    name: str = ""
    baseline: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    since_xid: int = 0  # the first transaction id after the branch was made

    @classmethod
    def open(cls, found: FoundDatabase, shadow: Path, method: str, checksums: bool) -> Branch:
        psycopg = _psycopg()
        info = psycopg.conninfo.conninfo_to_dict(found.url)
        dev = info.get("dbname") or info.get("user") or ""
        if not dev:
            raise BranchError(f"{found.label}: no database name")
        name = branch_name(dev, uuid.uuid4().hex)
        branch = cls(found, name, method, 0.0, url=found.url, dev=dev, name=name)
        if checksums:
            branch.main_before = branch.main_checksums()
        start = time.perf_counter()
        if method == "dump":
            branch._dump_restore("asked for")
        elif method == "template":
            branch._from_template()
        else:
            raise BranchError(f"unknown PostgreSQL branch method {method!r} (template, dump)")
        branch.branch_s = time.perf_counter() - start
        branch.baseline = branch._counters()
        branch.since_xid = branch._next_xid()
        branch.env = branch._env(shadow)
        return branch

    # -- connections
    def _connect(self, dbname: str, autocommit: bool = True) -> Any:
        return _psycopg().connect(self.url, dbname=dbname, autocommit=autocommit,
                                  connect_timeout=10)  # fmt: skip

    def _admin(self) -> Any:
        """A session outside the dev database (a session in it would block the template)."""
        errors = []
        for db in ("postgres", "template1"):
            try:
                return self._connect(db)
            except _psycopg().OperationalError as e:
                errors.append(str(e).strip())
        raise BranchError("cannot connect to the server: " + "; ".join(errors))

    # -- making it
    def _from_template(self) -> None:
        with self._admin() as admin:
            others = _sessions(admin, self.dev, SESSIONS_GONE_S)
            if others:
                why = f"{others} session(s) connected to {self.dev}"
            else:
                try:
                    admin.execute(
                        f"CREATE DATABASE {quote_ident(self.name)} TEMPLATE "
                        f"{quote_ident(self.dev)} STRATEGY FILE_COPY"
                    )
                    self.method = "template"
                    return
                except _psycopg().errors.ObjectInUse as e:
                    why = str(e).strip().splitlines()[0]
        self._dump_restore(why)

    def _dump_restore(self, why: str) -> None:
        start = time.perf_counter()
        with self._admin() as admin:
            admin.execute(f"CREATE DATABASE {quote_ident(self.name)} TEMPLATE template0")
        try:
            self._restore()
        except BranchError:
            self.drop()
            raise
        self.method = "dump"
        self.notes.append(
            f"CREATE DATABASE … TEMPLATE {self.dev} was not possible ({why}): the branch was "
            f"copied by pg_dump and pg_restore instead ({time.perf_counter() - start:.1f} s)"
        )
        self._wait_alone()

    def _restore(self) -> None:
        info = _psycopg().conninfo.conninfo_to_dict(self.url)
        env = {**os.environ, **_pg_env({**info, "dbname": self.dev})}
        with tempfile.TemporaryDirectory(prefix="fc-dbbranch-") as folder:  # owner-only
            dump = Path(folder) / f"{self.name}.dump"
            _run_tool([pg_tool("pg_dump"), "-Fc", "-Z0", "-f", str(dump)], env)
            restore = [pg_tool("pg_restore"), "-j", "2", "--no-owner", "--no-acl",
                       "-d", self.name, str(dump)]  # fmt: skip
            env["PGDATABASE"] = self.name
            if note := _run_tool(restore, env):
                self.notes.append(note)

    def _wait_alone(self, timeout_s: float = 10.0) -> None:
        """Until the sessions in the branch have left (a restore's, a test run's: their
        statistics are flushed as they exit)."""
        with self._admin() as admin:
            _sessions(admin, self.name, timeout_s)

    def _env(self, shadow: Path) -> dict[str, str]:
        psycopg = _psycopg()
        url = with_database(self.url, self.name)
        info = psycopg.conninfo.conninfo_to_dict(url)
        env = {"DATABASE_URL": url, **_pg_env(info)}
        if self.found.django_settings:
            keys = {"NAME": self.name}
            for key, param in (("HOST", "host"), ("PORT", "port"), ("USER", "user"),
                               ("PASSWORD", "password")):  # fmt: skip
                if info.get(param):
                    keys[key] = str(info[param])
            env.update(_django_env(self.found, shadow, keys))
        return env

    # -- the preview
    def _next_xid(self) -> int:
        """The next transaction id not yet given out (every row the run writes has an
        ``xmin`` from here on; the copied rows' are older)."""
        with self._connect(self.name) as conn:
            row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
        return int(row[0])

    def _counters(self) -> dict[str, tuple[int, int, int]]:
        with self._connect(self.name) as conn:
            rows = conn.execute(
                "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del "
                "FROM pg_stat_user_tables"
            ).fetchall()
        return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}

    def preview(self) -> Preview:
        # the run's sessions flush their counts as they exit: their exit is waited out
        self._wait_alone()
        now = self._counters()
        tables: list[TableChange] = []
        with self._connect(self.name, False) as branch, self._connect(self.dev, False) as dev:
            for table in sorted(now):
                base = self.baseline.get(table, (0, 0, 0))
                ins, upd, dele = (a - b for a, b in zip(now[table], base, strict=True))
                if not (ins or upd or dele):
                    tables.append(TableChange(table))
                    continue
                new = table not in self.baseline
                found = _pg_samples(dev, branch, table, new, self.since_xid, dele > 0)
                tables.append(TableChange(table, ins, upd, dele, *found))
            for table in sorted(self.baseline.keys() - now.keys()):  # dropped by the run
                rows = dev.execute(f"SELECT count(*) FROM {_split_table(table)}").fetchone()
                tables.append(TableChange(table, deleted=int(rows[0]), note="dropped"))
            dev.rollback()
        return Preview(tuple(sorted(tables, key=lambda t: t.table)))

    def main_checksums(self) -> dict[str, str]:
        with self._connect(self.dev, False) as conn:
            return pg_checksums(conn)

    def keep(self) -> str:
        self.kept = True
        where = with_database(self.url, self.name)
        self.notes.append(f"kept as database {self.name}")
        return where

    def drop(self) -> None:
        with self._admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(self.name)} WITH (FORCE)")
        self.dropped = True


SESSIONS_GONE_S = 1.0  # a client that just closed its connection: its backend is exiting


def _sessions(admin: Any, dbname: str, wait_s: float) -> int:
    """Client sessions connected to ``dbname`` (besides ``admin``'s own), once none are left
    or after ``wait_s`` (a closed connection's backend leaves a moment after the client)."""
    deadline = time.monotonic() + wait_s
    while True:
        n = int(
            admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                (dbname,),
            ).fetchone()[0]
        )
        if not n or time.monotonic() >= deadline:
            return n
        time.sleep(0.05)


def _run_tool(cmd: Sequence[str], env: Mapping[str, str]) -> str:
    """``cmd``'s run; a failure is a ``BranchError``, except pg_restore's "errors ignored on
    restore" (the objects it could make are there): its first error comes back as a note."""
    done = subprocess.run(
        cmd, env=dict(env), capture_output=True, text=True, check=False, **no_window()
    )
    if done.returncode == 0:
        return ""
    text = (done.stderr or done.stdout).strip()
    if "errors ignored on restore" in text:
        first = next((line for line in text.splitlines() if "error" in line.lower()), text)
        return f"pg_restore reported errors, ignored ({first.strip()[:200]})"
    raise BranchError(f"{Path(cmd[0]).name} failed ({done.returncode}): {text[-500:]}")


def _split_table(table: str) -> str:
    schema, _, name = table.partition(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _pg_key(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)",
        (_split_table(table),),
    ).fetchall()
    return [r[0] for r in rows]


NEW_VERSIONS = 50  # row versions the run wrote, read to pick the samples of a table
_INTEGERS = {"smallint", "integer", "bigint"}


def _pg_samples(
    dev: Any, branch: Any, table: str, new: bool, since_xid: int, deleted: bool
) -> tuple[tuple[str, ...], tuple[Sample, ...], str]:
    """Sample rows of what the run changed in ``table``: the row versions it wrote (found by
    their ``xmin``, no comparison), and for deletions the keys only in the dev database."""
    qualified = _split_table(table)
    cur = branch.execute(f"SELECT * FROM {qualified} t LIMIT 0")
    cols = tuple(d.name for d in cur.description or ())
    if new:
        rows = branch.execute(f"SELECT * FROM {qualified} t LIMIT {SAMPLES}").fetchall()
        return cols, tuple(Sample(Change.INSERTED, _cells(r)) for r in rows), "new table"
    key = _pg_key(branch, table)
    samples = _pg_written(dev, branch, qualified, cols, key, since_xid)
    if deleted:
        samples += _pg_deleted(dev, branch, table, key)
    for conn in (dev, branch):
        conn.rollback()
    return cols, tuple(samples), ""


def _pg_written(
    dev: Any, branch: Any, qualified: str, cols: tuple[str, ...], key: list[str], since: int
) -> list[Sample]:
    """Rows whose version the run wrote (``xmin`` at or after ``since``): an update where the
    dev database has the key, else an insert (a keyless table's are inserts)."""
    rows = branch.execute(
        f"SELECT * FROM {qualified} t WHERE age(t.xmin) <= age(%s::text::xid) LIMIT {NEW_VERSIONS}",
        (str(since % (1 << 32)),),
    ).fetchall()
    where = " AND ".join(f"{quote_ident(c)} = %s" for c in key)
    at = [cols.index(c) for c in key]
    picked: dict[Change, list[Sample]] = {Change.INSERTED: [], Change.UPDATED: []}
    for row in rows:
        known = (
            key
            and dev.execute(
                f"SELECT 1 FROM {qualified} WHERE {where}", [row[i] for i in at]
            ).fetchone()
        )
        change = Change.UPDATED if known else Change.INSERTED
        if len(picked[change]) < SAMPLES:
            picked[change].append(Sample(change, _cells(row)))
    return picked[Change.INSERTED] + picked[Change.UPDATED]


def _pg_deleted(dev: Any, branch: Any, table: str, key: list[str]) -> list[Sample]:
    """Up to ``SAMPLES`` dev rows whose key the branch no longer has. An integer key: both
    sides' keys in buckets of ``1 << BUCKET_BITS`` (count and sum of hashes per bucket, one
    aggregate each side), then the keys of the buckets that differ (0.9 s on 2 M rows where
    a merge of every key took 8.9 s, 2026-12-06). Other keys: a merge of both sides' key
    digests in order."""
    qualified = _split_table(table)
    if len(key) == 1 and _column_type(branch, table, key[0]) in _INTEGERS:
        k = quote_ident(key[0])
        keys: list[object] = list(_deleted_integer_keys(dev, branch, qualified, k))
        match = f"{k} = ANY(%s)"
    else:
        k = (
            "md5(ROW(" + ", ".join("t." + quote_ident(c) for c in key) + ")::text)"
            if key
            else "md5(t::text)"
        )
        sql = f'SELECT {k} FROM {qualified} t ORDER BY {k} COLLATE "C"'
        keys = list(merge_diff(_keys(dev, sql), _keys(branch, sql)).keys[Change.DELETED])
        match = f"{k} = ANY(%s)"
    if not keys:
        return []
    rows = dev.execute(
        f"SELECT * FROM {qualified} t WHERE {match} LIMIT {SAMPLES}", (keys,)
    ).fetchall()
    return [Sample(Change.DELETED, _cells(r)) for r in rows]


BUCKET_BITS = 12


def _deleted_integer_keys(dev: Any, branch: Any, qualified: str, k: str) -> Iterator[int]:
    sql = (
        f"SELECT {k}::bigint >> {BUCKET_BITS}, count(*), sum(hashint8({k}::bigint)) "
        f"FROM {qualified} GROUP BY 1"
    )
    before = {r[0]: (r[1], r[2]) for r in dev.execute(sql).fetchall()}
    after = {r[0]: (r[1], r[2]) for r in branch.execute(sql).fetchall()}
    found = 0
    for bucket in sorted(b for b, v in before.items() if after.get(b) != v):
        span = (bucket << BUCKET_BITS, (bucket + 1) << BUCKET_BITS)
        inside = f"SELECT {k} FROM {qualified} WHERE {k} >= %s AND {k} < %s"
        had = {r[0] for r in dev.execute(inside, span).fetchall()}
        has = {r[0] for r in branch.execute(inside, span).fetchall()}
        for key in sorted(had - has):
            yield int(key)
            found += 1
            if found >= SAMPLES:
                return


def _column_type(conn: Any, table: str, column: str) -> str:
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = %s",
        (_split_table(table), column),
    ).fetchone()
    return str(row[0]) if row else ""


def _keys(conn: Any, sql: str) -> Iterator[tuple[str, str]]:
    """A key stream for ``merge_diff`` (the digest is empty: only presence is compared)."""
    with conn.cursor(name=f"fc_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = 10000
        cur.execute(sql)
        for (k,) in cur:
            yield str(k), ""


def _cells(row: Sequence[object]) -> tuple[str, ...]:
    return tuple(cell_text(v) for v in row)


def pg_checksums(conn: Any) -> dict[str, str]:
    """Per user table: ``rows:md5`` of the md5s of its rows in order (order-free)."""
    tables = conn.execute(
        "SELECT schemaname || '.' || relname FROM pg_stat_user_tables ORDER BY 1"
    ).fetchall()
    out: dict[str, str] = {}
    for (table,) in tables:
        count, digest = conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h COLLATE \"C\"), '')) "
            f"FROM (SELECT md5(t::text) AS h FROM {_split_table(table)} t) s"
        ).fetchone()
        out[table] = f"{count}:{digest}"
    conn.rollback()
    return out


# ----- the test run ----------------------------------------------------------------------------


def workspace_python(root: Path) -> str:
    """The project's interpreter: its virtual environment's, else ``python3`` on PATH."""
    for rel in (".venv/bin/python", "venv/bin/python", ".venv/Scripts/python.exe",
                "venv/Scripts/python.exe"):  # fmt: skip
        if (root / rel).exists():
            return str(root / rel)
    return shutil.which("python3") or shutil.which("python") or sys.executable


def default_test_command(root: Path) -> str:
    """``python -m pytest -q`` with the project's interpreter."""
    return f"{shlex.quote(workspace_python(root))} -m pytest -q"


def run_tests(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    *,
    timeout_s: float = 600.0,
    cancel: threading.Event | None = None,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> TestRun:
    """``command`` (split as a shell would, run without one) in ``cwd`` with ``env`` over
    the editor's environment; stopped (its process group killed) on ``cancel`` or after
    ``timeout_s``. The output's last ``OUTPUT_TAIL`` characters come back."""
    argv = shlex.split(command)
    if argv and argv[0] in {"python", "python3"}:
        argv[0] = workspace_python(cwd)
    full_env = {**os.environ, **env}
    if "PYTHONPATH" in env and os.environ.get("PYTHONPATH"):
        full_env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + os.environ["PYTHONPATH"]
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                **no_window())  # fmt: skip
    except OSError as e:
        return TestRun(command, None, f"did not start: {e.strerror}", "")
    if on_start is not None:
        on_start(proc)
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    stopped = ""
    while True:
        try:
            out, _ = proc.communicate(timeout=0.2)
            chunks.append(out or b"")
            break
        except subprocess.TimeoutExpired:
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                stopped = "stopped" if cancel is not None and cancel.is_set() else "timed out"
                _kill_group(proc)
    text = b"".join(chunks).decode("utf-8", errors="replace")[-OUTPUT_TAIL:]
    code = None if stopped else proc.returncode
    return TestRun(command, code, stopped or summary_line(text), text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, AttributeError):
        os.killpg(proc.pid, 9)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
