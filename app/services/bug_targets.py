"""The bug finder's pass before the model, in a process of its own (issue 15: "the UI never
stalls more than 16 ms"; issue 16's tier 2).

Why a process
    A pass reads HEAD's copy of the file (``git show``), parses the buffer and HEAD's copy with
    ``ast`` and diffs them with ``difflib`` (``forecode_core.bugs.targets.prepare``). On the
    ``forecode-bugs`` thread that shared the GIL with the UI thread: ``ast.parse`` is one C call
    holding the GIL to its end (argparse.py, 2,600 lines: 25 ms whole; parsed in pieces, its
    986-line class alone still 9 ms), the ``git show`` spawn forks the editor's whole process,
    and the UI thread waited for them: ``bench next_edit_ui`` saw 19.6 and 19.3 ms stalls with
    0.2 ms of the UI thread's own work while the pass ran. Cutting every C call under a few
    milliseconds cannot be done for every file (one 1,000-line class or a big literal is one
    statement), and deferring the pass while keys arrive cannot stop a pass already running when
    the user starts typing. So the pass runs in a long-lived worker process (``python -m
    app.services.bug_targets``, nice +10, started at the first pass and kept), fed by a pipe;
    the UI process's thread only writes the buffer's text in pieces (each write releases the
    GIL) and reads back a few functions, their context and HEAD's versions (small JSON). The
    model's questions stay on the thread (the engine client lives in the UI process).

The protocol: a JSON header line ``{"root", "path", "limit", "chunks"}``, then ``chunks``
pieces of the text, each ``<byte count>\\n`` and its UTF-8 bytes (surrogates passed); the answer
is one JSON line, ``{"targets": [Prepared...]}`` or ``{"error": text}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from app.services.git_status import run_git
from forecode_core.bugs.targets import Prepared, prepare
from forecode_core.entrypoints import child_command, child_env
from forecode_core.windowless import no_window

__all__ = ["PIECE_CHARS", "TargetsError", "TargetsProcess", "head_text", "main", "text_pieces"]

PIECE_CHARS = 1 << 18  # the text is encoded and written in pieces of this many characters
TIMEOUT_S = 60.0  # a pass's answer (git show is bounded at 5 s; a 20 MiB file parses in ~10 s)
GIT_TIMEOUT_S = 5.0


class TargetsError(RuntimeError):
    """The worker process did not answer (it could not start, died, timed out or failed)."""


def text_pieces(text: str, size: int = PIECE_CHARS) -> list[bytes]:
    """``text`` as UTF-8 in pieces of ``size`` characters: one ``str.encode`` of a 20 MiB
    buffer would be one C call holding the GIL for milliseconds."""
    return [
        text[i : i + size].encode("utf-8", "surrogatepass") for i in range(0, len(text), size)
    ] or [b""]


class TargetsProcess:
    """One worker process, started at the first ``prepare`` and kept for the next; one pass at
    a time. ``prepare`` blocks the calling (worker) thread, never the UI thread."""

    def __init__(self, python: str = sys.executable, timeout_s: float = TIMEOUT_S) -> None:
        self._python = python
        self._timeout_s = timeout_s
        self._lock = threading.Lock()  # one pass at a time
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._closed = False

    def prepare(self, root: Path, path: Path, text: str, limit: int) -> list[Prepared]:
        """``forecode_core.bugs.targets.prepare`` of ``path``'s buffer ``text`` against HEAD's
        copy (read by the worker under ``root``), in the worker process. Raises
        ``TargetsError``. A worker that died is replaced once."""
        with self._lock:
            if self._closed:
                raise TargetsError("closed")
            try:
                return self._ask(root, path, text, limit)
            except (OSError, ValueError):
                self._kill()  # a dead pipe: one fresh worker (none after close)
            try:
                return self._ask(root, path, text, limit)
            except (OSError, ValueError) as exc:
                self._kill()
                raise TargetsError(f"the bug finder's process failed: {exc}") from exc

    def _ask(self, root: Path, path: Path, text: str, limit: int) -> list[Prepared]:
        proc = self._started()
        stdin = proc.stdin
        assert stdin is not None
        pieces = text_pieces(text)
        header = {"root": str(root), "path": str(path), "limit": limit, "chunks": len(pieces)}
        stdin.write(json.dumps(header).encode() + b"\n")
        for piece in pieces:
            stdin.write(b"%d\n" % len(piece))
            stdin.write(piece)
        stdin.flush()
        try:
            line = self._lines.get(timeout=self._timeout_s)
        except queue.Empty:
            self._kill()
            raise TargetsError(f"no answer in {self._timeout_s:.0f} s") from None
        if not line:
            raise OSError("the bug finder's process exited")
        reply = json.loads(line)
        if "error" in reply:
            raise TargetsError(str(reply["error"]))
        return [Prepared.from_json(item) for item in reply["targets"]]

    def _started(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise TargetsError("closed")
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._kill()
        env = child_env()
        proc = subprocess.Popen(
            child_command("app.services.bug_targets", python=self._python),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # nothing goes there but a crash: the pipe's end says it
            env=env,
            **no_window(),
        )
        self._proc, self._lines = proc, queue.Queue()
        threading.Thread(
            target=_read_lines,
            args=(proc, self._lines),
            name="forecode-bugs-reader",
            daemon=True,
        ).start()
        return proc

    def _kill(self) -> None:
        """Kill the worker; its reader thread reaps it (nobody here waits on a process)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()

    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self) -> None:
        """Stop the worker (a pass in flight gets ``TargetsError``); nothing starts again."""
        self._closed = True
        self._kill()  # a pass waiting on it is answered by the pipe's end


def _read_lines(proc: subprocess.Popen[bytes], lines: queue.Queue[bytes]) -> None:
    """The reader thread: each answer line into ``lines``; ``b""`` at the pipe's end, then
    the process reaped."""
    stdout = proc.stdout
    try:
        if stdout is not None:
            for line in stdout:
                lines.put(line)
    except (OSError, ValueError):
        pass
    finally:
        lines.put(b"")
        with contextlib.suppress(OSError, ValueError):
            if stdout is not None:
                stdout.close()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc.wait(timeout=5)


# ----- the worker process ---------------------------------------------------------------------


def head_text(root: Path, path: Path) -> str | None:
    """HEAD's copy of ``path`` (bounded ``git show``), or None when it has none."""
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    try:
        out = run_git(["show", f"HEAD:./{rel}"], root, timeout=GIT_TIMEOUT_S)
    except FileNotFoundError:
        return None
    if out.returncode != 0 or out.truncated:
        return None
    return out.stdout.decode("utf-8", "replace")


def _read_request(stdin: IO[bytes]) -> tuple[dict[str, Any], str] | None:
    """One request's header and text; None at the end of input."""
    raw = stdin.readline()
    if not raw:
        return None
    header = json.loads(raw)
    parts: list[bytes] = []
    for _ in range(int(header["chunks"])):
        size = int(stdin.readline())
        data = stdin.read(size)
        if len(data) != size:
            return None
        parts.append(data)
    return header, b"".join(parts).decode("utf-8", "surrogatepass")


def _answer(header: dict[str, Any], text: str) -> dict[str, Any]:
    path = Path(str(header["path"]))
    try:
        head = head_text(Path(str(header["root"])), path)
        found = prepare(path.name, text, head, int(header["limit"]))
    except Exception as exc:  # a file the parser chokes on (recursion, memory): said, not raised
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"targets": [item.to_json() for item in found]}


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The worker's loop: one request at a time, one answer line each, until stdin ends."""
    while True:
        try:
            request = _read_request(stdin)
        except (ValueError, KeyError, TypeError) as exc:
            stdout.write(json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
            stdout.flush()
            return  # the stream is out of step: the client starts a fresh worker
        if request is None:
            return
        answer = _answer(*request)
        stdout.write(json.dumps(answer, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        stdout.write(b"\n")
        stdout.flush()


def main() -> None:
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(10)  # the UI thread and the engine win a core first
    _serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
