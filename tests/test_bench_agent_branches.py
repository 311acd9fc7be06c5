"""bench/agent_branches.py end to end at a small size (2,000 SQLite rows, pgbench scale 1):
the keys ``bench agent`` reads, the fallback's note, and the dev databases unchanged."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import agent_branches


@pytest.fixture
def cache() -> Iterator[Path]:
    """A cache folder the ``postgres`` user can reach (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="fc-bench-cache-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_measure_small(cache: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORECODE_BENCH_CACHE", str(cache))
    monkeypatch.setattr(agent_branches, "SQLITE_ROWS", 2000)
    monkeypatch.setattr(agent_branches, "WAL_ROWS", 10)
    monkeypatch.setattr(agent_branches, "PGBENCH_SCALE", 1)
    result = agent_branches.measure(rounds=1)
    assert set(result["branch_s"]) == {
        "sqlite",
        "sqlite_vacuum_into",
        "sqlite_file_copy",
        "postgres",
        "postgres_fallback",
    }
    assert all(v > 0 for v in result["branch_s"].values())
    assert result["main_db_unchanged"] is True
    assert "pg_dump and pg_restore" in result["branch_notes"][0]
    assert result["branch_db_mb"]["sqlite"] > 1
