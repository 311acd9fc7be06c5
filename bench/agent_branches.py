"""Database branches for AI test runs (issue 17): how long a branch of a ~300 MB database
takes, and whether the dev database stays byte-identical. ``measure() -> dict`` is what
``bench agent`` reports (keys ``branch_s`` {``sqlite`` (the backup API, the default),
``sqlite_vacuum_into``, ``sqlite_file_copy``, ``postgres``, ``postgres_fallback``},
``main_db_unchanged``); ``python -m bench.agent_branches --json PATH``
runs it alone.

The databases are made once into a cache folder (``$FORECODE_BENCH_CACHE``, default
``/tmp/forecode-bench-cache``; never in git): a SQLite file of 300 k rows with a 1 KB blob each
(its last 1,000 rows committed but left in the ``-wal``), and a PostgreSQL cluster (Unix
socket only, ``app.services.pg_cluster``) with ``pgbench -i -s 20`` (~300 MB). Each branch
goes through the product's call (``app.services.dbbranch.open_branch``), then a write into the
branch, its preview, and its drop; the dev database's checksums (sha256 of the file and
``-wal``; per table the md5 of its rows' md5s) are taken before the first branch and after the
last. Times are medians of ``rounds``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from app.services.dbbranch import Branch, open_branch, pg_tool, sqlite_checksums
from app.services.pg_cluster import SERVICE_USER, Cluster
from forecode_core.dbbranch.detect import detect
from forecode_core.dbbranch.preview import SAMPLES, Change, TableChange

from ._common import metadata, write_result

SQLITE_ROWS = 300_000
WAL_ROWS = 1_000
PGBENCH_SCALE = 20  # ~15 MB a unit of scale
DEV = "benchdev"


def cache_dir() -> Path:
    folder = Path(os.environ.get("FORECODE_BENCH_CACHE", "/tmp/forecode-bench-cache"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 1)


def sqlite_workspace(folder: Path) -> tuple[Path, sqlite3.Connection]:
    """``folder/ws/dev.sqlite3`` (made once), and a connection that keeps the WAL's last rows
    uncheckpointed while the branches are made."""
    ws = folder / "sqlite-ws"
    db = ws / "dev.sqlite3"
    if not db.exists():
        ws.mkdir(parents=True, exist_ok=True)
        tmp = ws / "making.sqlite3"
        conn = sqlite3.connect(tmp)
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)")
        conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
            "INSERT INTO items SELECT x, 'item ' || x, randomblob(1000) FROM c",
            (SQLITE_ROWS,),
        )
        conn.commit()
        conn.close()
        tmp.rename(db)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("DELETE FROM items WHERE id > ?", (SQLITE_ROWS,))  # an earlier run's
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.executemany(
        "INSERT INTO items VALUES (?, 'in the wal', randomblob(1000))",
        [(SQLITE_ROWS + i + 1,) for i in range(WAL_ROWS)],
    )
    conn.commit()
    return ws, conn


def _timed(
    make: Callable[[], Branch], after: Callable[[Branch], float], rounds: int
) -> tuple[float, float]:
    """Medians of the branch's making and of its preview after ``after``'s writes."""
    made, previews = [], []
    for _ in range(rounds):
        branch = make()
        made.append(branch.branch_s)
        previews.append(after(branch))
        branch.drop()
    return round(statistics.median(made), 3), round(statistics.median(previews), 3)


def _preview_s(branch: Branch) -> tuple[dict[str, TableChange], float]:
    start = time.perf_counter()
    tables = {t.table: t for t in branch.preview().tables}
    return tables, time.perf_counter() - start


def _touch_sqlite(branch: Branch) -> float:
    conn = sqlite3.connect(branch.location)
    conn.execute("UPDATE items SET name = 'touched' WHERE id <= 10")
    conn.commit()
    conn.close()
    tables, took = _preview_s(branch)
    items = tables["items"]
    assert (items.inserted, items.updated, items.deleted) == (0, 10, 0), items
    return took


def measure_sqlite(rounds: int = 3) -> dict[str, Any]:
    folder = cache_dir()
    ws, writer = sqlite_workspace(folder)
    with tempfile.TemporaryDirectory(prefix="fc-bench-shadow-") as shadow_dir:
        try:
            return _sqlite_rounds(ws, Path(shadow_dir), rounds)
        finally:
            writer.close()


def _sqlite_rounds(ws: Path, shadow: Path, rounds: int) -> dict[str, Any]:
    db = ws / "dev.sqlite3"
    before = sqlite_checksums(db)
    found = detect(ws, {}).best
    assert found is not None
    backup, preview = _timed(
        lambda: open_branch(found, shadow, method="backup", checksums=False), _touch_sqlite, rounds
    )
    vacuum, _ = _timed(
        lambda: open_branch(found, shadow, method="vacuum", checksums=False), _touch_sqlite, rounds
    )
    copy, _ = _timed(
        lambda: open_branch(found, shadow, method="copy", checksums=False), _touch_sqlite, rounds
    )
    unchanged = sqlite_checksums(db) == before
    branch_s = {"sqlite": backup, "sqlite_vacuum_into": vacuum, "sqlite_file_copy": copy}
    return {"branch_s": branch_s, "preview_s": preview,
            "db_mb": _mb(db) + _mb(Path(str(db) + "-wal")), "unchanged": unchanged}  # fmt: skip


def _pg_dev(cluster: Cluster) -> None:
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEV,)).fetchone()
        for (name,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'fc_br_%'"
        ).fetchall():
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if exists:
            return
        admin.execute(f"CREATE DATABASE {DEV}")
    argv = [pg_tool("pgbench"), "-i", "-q", "-s", str(PGBENCH_SCALE), "-h", str(cluster.socket),
            "-p", "5432", "-U", "postgres", DEV]  # fmt: skip
    if os.geteuid() == 0:
        argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
    subprocess.run(argv, check=True, capture_output=True)


def _touch_pg(branch: Branch) -> float:
    """A few writes, one of them in the big table (its preview merges all its rows)."""
    with psycopg.connect(branch.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("UPDATE pgbench_branches SET filler = 'touched' WHERE bid <= 3")
        conn.execute("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 10")
        conn.execute("INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 5)")
    tables, took = _preview_s(branch)
    got = (
        tables["public.pgbench_branches"].updated,  # one row per unit of scale
        tables["public.pgbench_accounts"].updated,
        tables["public.pgbench_history"].inserted,
        len([s for s in tables["public.pgbench_accounts"].samples if s.change is Change.UPDATED]),
    )
    assert got == (min(3, PGBENCH_SCALE), 10, 1, SAMPLES), got
    return took


def measure_postgres(rounds: int = 3) -> dict[str, Any]:
    with Cluster(folder=cache_dir() / "pg") as cluster:
        _pg_dev(cluster)
        with tempfile.TemporaryDirectory(prefix="fc-bench-pg-") as folder:
            return _pg_rounds(cluster, Path(folder), rounds)


def _pg_rounds(cluster: Cluster, folder: Path, rounds: int) -> dict[str, Any]:
    ws, shadow = folder / "ws", folder / "shadow"
    ws.mkdir()
    (ws / ".env").write_text(f"DATABASE_URL={cluster.url(DEV)}\n")
    found = detect(ws, {}).best
    assert found is not None
    with psycopg.connect(cluster.url(DEV)) as dev:
        size = dev.execute("SELECT pg_database_size(current_database())").fetchone()
    first = open_branch(found, shadow)  # with the dev database's checksums
    before = first.main_before
    first.drop()
    made, preview = _timed(lambda: open_branch(found, shadow, checksums=False), _touch_pg, rounds)
    out = {"postgres": made}
    session = psycopg.connect(cluster.url(DEV))  # a dev server's open connection
    try:
        notes: list[str] = []

        def fallback() -> Branch:
            branch = open_branch(found, shadow, checksums=False)
            assert branch.method == "dump", branch.method
            notes[:] = branch.notes
            return branch

        out["postgres_fallback"], _ = _timed(fallback, _touch_pg, max(1, rounds - 1))
    finally:
        session.close()
    last = open_branch(found, shadow)
    unchanged = last.main_before == before
    last.drop()
    mb = round(int(size[0]) / 1e6, 1) if size else 0.0
    return {"branch_s": out, "preview_s": preview, "db_mb": mb, "unchanged": unchanged,
            "fallback_note": notes}  # fmt: skip


def measure(rounds: int = 3) -> dict[str, Any]:
    """``branch_s`` (seconds, medians), ``main_db_unchanged`` and the databases' sizes."""
    sqlite = measure_sqlite(rounds)
    pg = measure_postgres(rounds)
    return {
        "branch_s": {**sqlite["branch_s"], **pg["branch_s"]},
        "branch_db_mb": {"sqlite": sqlite["db_mb"], "postgres": pg["db_mb"]},
        # the preview after 10 rows of the big table changed (SQLite: 300 k rows; PostgreSQL:
        # pgbench_accounts, 100 k rows a unit of scale), medians
        "branch_preview_s": {"sqlite": sqlite["preview_s"], "postgres": pg["preview_s"]},
        "main_db_unchanged": bool(sqlite["unchanged"] and pg["unchanged"]),
        "branch_notes": pg["fallback_note"],
        "branch_targets_s": {"sqlite": 1.5, "postgres": 1.5, "postgres_fallback": 10.0},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_branches")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    write_result({**metadata("agent_branches"), **measure(args.rounds)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
