"""One shell on a pseudo-terminal: ptyprocess on Linux/macOS, pywinpty on Windows.

``PtySession.start`` returns at once: the spawn (a fork of this large process) and the reads
run on the session's own thread (``forecode-pty``), which hands every read to ``on_data`` and
the end to ``on_exit`` (both called on that thread; the panel parses there and repaints on
its own timer). ``write`` (queued to a ``forecode-pty-writer`` thread) and ``resize`` (the
kernel sends SIGWINCH to the shell's foreground job) never block on the shell; ``close``
hangs the shell up (SIGHUP: bash and zsh pass it to their jobs; the closed master hangs up
the foreground job) and kills what is left after ``KILL_AFTER_S`` on a thread of its own.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..threads import UiThread
from .launch import Launch

__all__ = ["KILL_AFTER_S", "PtySession"]

KILL_AFTER_S = 2.0
READ_SIZE = 1 << 16


class PtySession:
    def __init__(
        self,
        launch: Launch,
        cwd: Path,
        on_data: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        size: tuple[int, int] = (24, 80),  # rows, columns
    ) -> None:
        self.launch = launch
        self.cwd = cwd
        self._on_data = on_data
        self._on_exit = on_exit
        self._size = size
        self._lock = threading.Lock()
        self._proc: Any = None  # ptyprocess.PtyProcess / winpty.PtyProcess once spawned
        # writes go through a queue to a writer thread: a PTY's input holds ~4 KiB, and a
        # big paste into a program that does not read would block the caller on os.write
        self._writes: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._unwritten = 0  # bytes queued and not yet written
        self._closed = False
        self.spawned = threading.Event()
        self.exited = threading.Event()  # the reader saw the end and reaped the shell
        self.error: str | None = None
        self._thread = UiThread(target=self._run, name="forecode-pty", daemon=True)
        self._writer = UiThread(target=self._write_all, name="forecode-pty-writer", daemon=True)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else int(proc.pid)

    def start(self) -> None:
        self._thread.start()
        self._writer.start()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the shell's input; never blocks."""
        with self._lock:
            if self._closed:
                return
            self._unwritten += len(data)
        self._writes.put(data)

    @property
    def unwritten(self) -> int:
        """Bytes written by ``write`` that the shell's input has not taken yet."""
        return self._unwritten

    def resize(self, rows: int, columns: int) -> None:
        with self._lock:
            self._size = (max(1, rows), max(1, columns))
            proc = self._proc
        if proc is not None and not self._closed:
            with contextlib.suppress(OSError):  # the shell has gone
                proc.setwinsize(*self._size)

    def close(self) -> None:
        """Hang the shell up and kill what is left; returns at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proc = self._proc
        self._writes.put(None)
        if proc is not None:
            threading.Thread(
                target=_hang_up, args=(proc, self.exited), name="forecode-pty-kill"
            ).start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # ----- the session's thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            proc = _spawn(self.launch, self.cwd, self._size)
        except OSError as error:
            self.error = f"cannot start {self.launch.argv[0]}: {error}"
            self.spawned.set()
            self._writes.put(None)
            self._on_exit(None)
            return
        with self._lock:
            self._proc = proc
            closed = self._closed
        self.spawned.set()
        if closed:
            threading.Thread(target=_hang_up, args=(proc, self.exited), daemon=True).start()
        self._read(proc)

    def _write_all(self) -> None:  # the writer thread
        self.spawned.wait()
        while (data := self._writes.get()) is not None:
            proc = self._proc
            if proc is not None and not self.exited.is_set():
                _write(proc, data)
            with self._lock:
                self._unwritten -= len(data)

    def _read(self, proc: Any) -> None:
        while True:
            try:
                data = proc.read(READ_SIZE)
            except (EOFError, OSError):
                break
            if not data:
                break
            self._on_data(data.encode("utf-8") if isinstance(data, str) else data)
        status = _exit_status(proc)
        self.exited.set()
        self._writes.put(None)  # the writer ends
        self._on_exit(status)


def _spawn(launch: Launch, cwd: Path, size: tuple[int, int]) -> Any:
    if sys.platform == "win32":
        import winpty

        return winpty.PtyProcess.spawn(launch.argv, cwd=str(cwd), env=launch.env, dimensions=size)
    from ptyprocess import PtyProcess  # type: ignore[import-untyped]

    return PtyProcess.spawn(
        launch.argv, cwd=str(cwd), env=launch.env, dimensions=size, preexec_fn=_default_signals
    )


# The signals a shell and its jobs must start with at their defaults. An ignored signal stays
# ignored across exec: Python ignores SIGPIPE and SIGXFSZ (``yes | head`` printed "Broken
# pipe"), and an editor started in the background by a script (``forecode &``), or a process
# that ignored SIGINT, handed its shells an ignored SIGINT: Ctrl+C in the terminal did nothing
# (found 2026-12-06: a full test run had SIGINT ignored and a flood's Ctrl+C never landed).
_RESET_SIGNALS = ("SIGPIPE", "SIGXFSZ", "SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGTSTP",
                  "SIGTTIN", "SIGTTOU", "SIGCHLD", "SIGUSR1", "SIGUSR2", "SIGALRM")  # fmt: skip


def _default_signals() -> None:
    """In the child before exec: every job-control and termination signal at its default and
    none blocked (the spawning thread's mask is inherited), whatever the editor's own are."""
    for name in _RESET_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _write(proc: Any, data: bytes) -> None:
    try:
        if sys.platform == "win32":
            proc.write(data.decode("utf-8", "replace"))
        else:
            os.write(proc.fd, data)  # no flush-and-wait: a PTY write of a line never blocks long
    except OSError:
        pass  # the shell has gone; its exit is reported by the reader


def _hang_up(proc: Any, exited: threading.Event) -> None:
    if sys.platform == "win32":
        proc.terminate(force=True)
        return
    pid = int(proc.pid)
    try:
        group = os.getpgid(pid)
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return
    if exited.wait(KILL_AFTER_S):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _exit_status(proc: Any) -> int | None:
    if sys.platform == "win32":
        status = proc.exitstatus
        return None if status is None else int(status)
    try:
        proc.wait()
    except Exception:  # reaped elsewhere: the status is unknown
        return None
    finally:
        proc.delayafterclose = 0  # reaped: no wait for the kernel
        with contextlib.suppress(Exception):
            proc.close()  # the fd closed here, not in __del__ on whatever thread collects it
    status = proc.exitstatus
    return None if status is None else int(status)
