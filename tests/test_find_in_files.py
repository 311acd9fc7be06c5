"""Find in files' worker process (app.services.find_in_files): results streamed, a warm worker
reused, cancel kills a catastrophic regex, a dead worker reported and replaced. The search
itself is tested in test_search_text.py."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pytest
from helpers.search_tree import make_search_tree

from app.services.find_in_files import SearchService, SearchSession
from forecode_core.workspace import search_text as fif
from forecode_core.workspace.search_text import SearchQuery, SearchRequest


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_search_tree(tmp_path)


# ----- the worker process ----------------------------------------------------------------------


def _collect(
    session: SearchSession, timeout: float = 30.0
) -> tuple[list[fif.FileResult], fif.SearchSummary]:
    files: list[fif.FileResult] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in session.poll():
            if isinstance(item, fif.FileResult):
                files.append(item)
        if session.done:
            assert session.summary is not None
            return files, session.summary
        time.sleep(0.01)
    raise AssertionError("the search did not finish")


def test_service_streams_results_and_reuses_its_worker(tree: Path) -> None:
    service = SearchService()
    try:
        files, summary = _collect(service.start(SearchRequest(str(tree), SearchQuery("param"))))
        assert {f.path for f in files} == {
            "src/a.py",
            "src/pkg/b.js",
            "src/legacy.txt",
            "node_modules/lib/x.js",
        }
        assert summary.matches == 8 and summary.skipped_binary == 1 and not summary.error
        pids = service.worker_pids()
        assert len(pids) == 1
        files, _ = _collect(
            service.start(SearchRequest(str(tree), SearchQuery("PARAM", match_case=True)))
        )
        assert [f.path for f in files] == ["src/pkg/b.js"]
        assert service.worker_pids() == pids  # the same warm process
        _files, summary = _collect(
            service.start(SearchRequest(str(tree), SearchQuery("(", regex=True)))
        )
        assert summary.error and "Invalid regular expression" in summary.error
    finally:
        service.close()
    assert service.worker_pids() == []


def _alive(pid: int) -> bool:
    """False once the process is gone and reaped (the search's own thread reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_kills_a_catastrophic_regex_and_a_new_search_replaces_it(tmp_path: Path) -> None:
    (tmp_path / "evil.txt").write_text("a" * 40 + "!\n")
    (tmp_path / "ok.txt").write_text("fine\n")
    service = SearchService()
    try:
        session = service.start(SearchRequest(str(tmp_path), SearchQuery("(a+)+$", regex=True)))
        deadline = time.monotonic() + 20
        while session.pid is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = session.pid
        assert pid is not None
        time.sleep(0.3)
        assert not session.done  # still backtracking
        new = service.start(SearchRequest(str(tmp_path), SearchQuery("fine")))
        files, _ = _collect(new)
        assert [f.path for f in files] == ["ok.txt"]
        _files, summary = _collect(session)
        assert summary.cancelled
        assert not _alive(pid)
    finally:
        service.close()


def test_bench_runs_on_a_small_tree(tmp_path: Path) -> None:
    from bench import find_in_files as bench

    root = bench.make_tree(tmp_path / "tree", files=300)
    out = bench.run(argparse.Namespace(files=300, tree=str(root), pattern="needle_", rounds=1))
    assert out["forecode"]["matching_lines"] == out["grep"]["matching_lines"] == 4
    assert out["in_process"]["matching_lines"] == 4


def test_a_worker_that_dies_is_reported_and_replaced(tree: Path) -> None:
    service = SearchService()
    try:
        _collect(service.start(SearchRequest(str(tree), SearchQuery("param"))))
        (pid,) = service.worker_pids()
        os.kill(pid, 9)  # the idle worker dies (out of memory, killed by the user)
        time.sleep(0.2)
        files, summary = _collect(
            service.start(SearchRequest(str(tree), SearchQuery("PARAM", match_case=True)))
        )
        assert [f.path for f in files] == ["src/pkg/b.js"] and not summary.error
    finally:
        service.close()


def test_a_worker_killed_mid_search_ends_the_search_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "evil.txt").write_text("a" * 40 + "!\n")
    service = SearchService()
    try:
        session = service.start(SearchRequest(str(tmp_path), SearchQuery("(a+)+$", regex=True)))
        deadline = time.monotonic() + 20
        while session.pid is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert session.pid is not None
        os.kill(session.pid, 9)
        _files, summary = _collect(session)
        assert summary.error == "The search process stopped unexpectedly (exit status -9)."
    finally:
        service.close()
