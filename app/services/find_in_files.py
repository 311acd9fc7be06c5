"""Find in files' worker process and its client: the Search panel's (Ctrl+Shift+F) searches run
here, in a process of their own; what a search is and does (queries, globs, matching lines,
the walk, replace in closed files) is ``forecode_core.workspace.search_text``.

Why a process
    A user's regex can backtrack catastrophically (``(a+)+$`` on a line of 40 ``a``: hours), and
    Python's ``re`` holds the GIL for the whole match, so a search on a *thread* would freeze the
    UI and could not be stopped. The search runs in a worker process (``python -m
    app.services.find_in_files``, nice +10): the UI thread never shares a GIL with it, and cancel
    kills the process at once. ``SearchService`` keeps one idle worker warm between searches (no
    start-up cost for the next one) and starts a fresh one after a cancel. Results stream back as
    JSON lines; ``SearchSession.poll`` hands them to the UI in batches.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from app.services.threads import UiThread
from forecode_core.entrypoints import child_command, child_env
from forecode_core.windowless import no_window
from forecode_core.workspace.search_text import (
    FileResult,
    QueryError,
    SearchItem,
    SearchRequest,
    SearchSummary,
    search_tree,
)

__all__ = ["SearchService", "SearchSession", "main"]

# ----- the worker process and its client -----------------------------------------------------


class SearchSession:
    """One search running in a worker process. ``poll`` returns what arrived: ``FileResult``s,
    ``SearchSummary`` progress (``t == "progress"``) and, last, the final ``SearchSummary``
    (``done`` is then True). ``cancel`` kills the worker at once (a regex stuck in
    backtracking included)."""

    def __init__(self, service: SearchService, request: SearchRequest) -> None:
        self._service = service
        self.request = request
        self._events: queue.Queue[FileResult | tuple[SearchItem, SearchSummary]] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.cancelled = False
        self.done = False
        self.summary: SearchSummary | None = None
        self.last_event = time.monotonic()
        self._thread = UiThread(target=self._run, name="forecode-find-in-files", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            proc = self._service._take_worker()
        except OSError as exc:
            self._finish(SearchSummary(error=f"The search process could not start: {exc}"))
            return
        with self._lock:
            if self.cancelled:
                self._service._kill(proc)
                self._finish(SearchSummary(cancelled=True))
                return
            self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(self.request.to_json()).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            pass
        summary: SearchSummary | None = None
        for raw in proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            kind = obj.get("t")
            self.last_event = time.monotonic()
            if kind == SearchItem.FILE:
                self._events.put(FileResult.from_json(obj))
            elif kind == SearchItem.PROGRESS:
                self._events.put(
                    (
                        SearchItem.PROGRESS,
                        SearchSummary.from_json({k: v for k, v in obj.items() if k != "t"}),
                    )
                )
            elif kind == SearchItem.DONE:
                summary = SearchSummary.from_json(obj)
                break
        with self._lock:
            self._proc = None
            cancelled = self.cancelled
        if summary is None:
            self._service._kill(proc)
            if cancelled:
                summary = SearchSummary(cancelled=True)
            else:
                summary = SearchSummary(
                    error="The search process stopped unexpectedly "
                    f"(exit status {proc.returncode})."
                )
        elif cancelled:
            self._service._kill(proc)
        else:
            self._service._give_back(proc)
        self._finish(summary)

    def _finish(self, summary: SearchSummary) -> None:
        self._events.put((SearchItem.DONE, summary))

    def cancel(self) -> None:
        """Stop the search now; a last ``SearchSummary`` with ``cancelled`` follows. Only
        sends the kill: the session's thread reaps the process (the caller never waits)."""
        with self._lock:
            self.cancelled = True
            proc = self._proc
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()

    def poll(self, max_items: int = 1000) -> list[FileResult | tuple[SearchItem, SearchSummary]]:
        out: list[FileResult | tuple[SearchItem, SearchSummary]] = []
        while len(out) < max_items:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple) and item[0] == SearchItem.DONE:
                self.done = True
                self.summary = item[1]
            out.append(item)
        return out

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the worker finished (for tests and the benchmark; never the UI)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None


class SearchService:
    """Starts searches in worker processes; one at a time (a new one cancels the old), one
    idle worker kept warm for the next."""

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python
        self._lock = threading.Lock()
        self._idle: subprocess.Popen[bytes] | None = None
        self._current: SearchSession | None = None
        self._closed = False
        self._all: set[subprocess.Popen[bytes]] = set()

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = child_env()
        # stderr is not read (a full pipe would block the worker): nothing goes there but a
        # crash, which the client reports by its exit status
        proc = subprocess.Popen(
            child_command("app.services.find_in_files", python=self._python),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            **no_window(),
        )
        with self._lock:
            self._all.add(proc)
        return proc

    def _take_worker(self) -> subprocess.Popen[bytes]:
        with self._lock:
            proc, self._idle = self._idle, None
        if proc is not None and proc.poll() is None:
            return proc
        return self._spawn()

    def _give_back(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._idle is None and not self._closed:
                self._idle = proc
                return
        self._kill(proc)

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc.wait(timeout=2)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        with self._lock:
            self._all.discard(proc)

    def start(self, request: SearchRequest) -> SearchSession:
        """Start ``request``; a search still running is cancelled first. Never blocks on the
        search (the worker is started on the session's thread)."""
        with self._lock:
            old, self._current = self._current, None
        if old is not None and not old.done:
            old.cancel()
        session = SearchSession(self, request)
        with self._lock:
            self._current = session
        return session

    def warm(self) -> None:
        """Start the idle worker now (on a thread), so the next search starts at once."""

        def run() -> None:
            with self._lock:
                if self._idle is not None or self._closed:
                    return
            try:
                proc = self._spawn()
            except OSError:
                return
            self._give_back(proc)

        UiThread(target=run, name="forecode-find-warm", daemon=True).start()

    def close(self) -> None:
        """Cancel the running search and stop every worker."""
        with self._lock:
            self._closed = True
            current, self._current = self._current, None
            procs = list(self._all)
            self._idle = None
        if current is not None:
            current.cancel()
        for proc in procs:
            self._kill(proc)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._all]


class _Writer:
    """The worker's output: JSON lines, flushed at the first result, on progress and at the
    end, else at most every 50 ms."""

    def __init__(self, stdout: IO[bytes]) -> None:
        self.stdout = stdout
        self.last_flush = time.monotonic()
        self.first = True

    def write(self, obj: Mapping[str, Any], force: bool = False) -> None:
        self.stdout.write(
            json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"
        )
        now = time.monotonic()
        if force or now - self.last_flush > 0.05:
            self.stdout.flush()
            self.last_flush = now

    def emit(self, result: FileResult) -> None:
        self.write(result.to_json(), force=self.first)
        self.first = False

    def progress(self, summary: SearchSummary) -> None:
        self.write({**summary.to_json(), "t": SearchItem.PROGRESS}, force=True)


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The worker's loop: one JSON request per line, events back as JSON lines."""
    for raw in stdin:
        writer = _Writer(stdout)
        try:
            request = SearchRequest.from_json(json.loads(raw))
            summary = search_tree(request, writer.emit, progress=writer.progress)
        except QueryError as exc:
            summary = SearchSummary(error=str(exc))
        except (ValueError, TypeError, KeyError) as exc:
            summary = SearchSummary(error=f"bad request: {exc}")
        writer.write(summary.to_json(), force=True)


def main() -> None:
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(10)  # the UI thread wins a core first
    _serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
