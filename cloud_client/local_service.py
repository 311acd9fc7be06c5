"""``LocalService``: the Forecode service as a child process on loopback, for the run command.

When no remote service is configured, the editor starts ``python -m cloud_server`` on
127.0.0.1 with a port the OS picks and a token made for this run (``secrets.token_urlsafe``).
The token reaches the child through its environment only (``FORECODE_CLOUD_TOKEN``), never
argv, which every user can read with ``ps``. The child prints ``forecode-cloud listening on
HOST:PORT`` once it serves; that line gives the target.

The service must not outlive the editor, however the editor ends. ``stop()`` sends SIGTERM
(graceful drain) and kills after a timeout; and the child runs with ``--exit-on-stdin-eof`` and
a pipe on stdin that only this process holds: when the editor dies — even by SIGKILL — the
kernel closes the pipe and the service exits on its own.

``start()`` blocks until the service listens (loading the model takes seconds, minutes on a
busy 2-core machine); its ``timeout`` is a stall limit, not a total: every line the service
writes to stderr (it logs each slot's load and warm-up) restarts the clock, so a slow load that
shows signs of life is waited for and only a silent one is stopped. The editor's
UI thread uses ``start_async(on_ready, on_error)`` instead, which runs it on a thread and calls
back from there. The service's stderr is drained continuously into a bounded tail, quoted in
error messages (it never holds the token: the service does not log it).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from forecode_core.entrypoints import child_command
from forecode_core.windowless import no_window

__all__ = ["LISTENING_RE", "TOKEN_ENV", "LocalService", "LocalServiceError"]

TOKEN_ENV = "FORECODE_CLOUD_TOKEN"
LISTENING_RE = re.compile(r"^forecode-cloud listening on (?P<host>\S+):(?P<port>\d+)\s*$")
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_TAIL_LINES = 40


class LocalServiceError(RuntimeError):
    """The service did not start; the message ends with the last lines it wrote."""


class LocalService:
    """One service child process; ``start()`` it, ``stop()`` it (also on ``with`` exit)."""

    def __init__(
        self,
        *,
        python: str = sys.executable,
        model_path: str | None = None,
        slots: int | None = None,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        extra_args: tuple[str, ...] = (),
        index_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """``index_dir``: where the service keeps the codebase index (``--index-dir``); None
        leaves it to the service's default (``index`` in Forecode's data folder)."""
        self._python = python
        self._index_dir = None if index_dir is None else os.fspath(index_dir)
        self._model_path = model_path
        self._slots = slots
        self._env = dict(env) if env is not None else None
        self._port = port
        self._extra_args = tuple(extra_args)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._last_sign = 0.0  # when the child last showed a sign of life (stderr)
        self._target: str | None = None

    def __repr__(self) -> str:
        return f"LocalService(target={self._target!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    @property
    def alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def target(self) -> str | None:
        """ "HOST:PORT" while running (after ``start()`` returned)."""
        return self._target

    @property
    def returncode(self) -> int | None:
        proc = self._proc
        return proc.poll() if proc is not None else None

    def stderr_tail(self) -> list[str]:
        """The last lines the service wrote to stderr."""
        with self._lock:
            return list(self._tail)

    def start(self, timeout: float = 120.0, *, token: str | None = None) -> tuple[str, str]:
        """Spawn the service and wait until it listens; returns ``(target, token)``.

        ``token``: the one to accept (a restart keeps the clients' token); None makes a new
        one. Raises LocalServiceError (with the service's last words) if it exits or does not
        listen and writes nothing to stderr for ``timeout`` seconds (a stall: each stderr line
        restarts the clock); the child is stopped then."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                raise RuntimeError("the local service is already running")
            self._tail.clear()
            self._target = None
        if token is None:
            token = secrets.token_urlsafe(32)
        env = dict(os.environ if self._env is None else self._env)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
        env[TOKEN_ENV] = token
        args = child_command(
            "cloud_server", ["--port", str(self._port), "--exit-on-stdin-eof"], python=self._python
        )
        if self._model_path is not None:
            args += ["--model", str(self._model_path)]
        if self._slots is not None:
            args += ["--slots", str(self._slots)]
        if self._index_dir is not None:
            args += ["--index-dir", self._index_dir]
        args += list(self._extra_args)
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                close_fds=True,
                **no_window(),
            )
        except OSError as exc:
            raise LocalServiceError(
                f"could not start the Forecode service ({self._python}): {exc}"
            ) from exc
        with self._lock:
            self._proc = proc
        listening = threading.Event()
        found: list[str] = []
        threading.Thread(
            target=self._read_stdout,
            args=(proc, listening, found),
            daemon=True,
            name="forecode-service-stdout",
        ).start()
        threading.Thread(
            target=self._read_stderr, args=(proc,), daemon=True, name="forecode-service-stderr"
        ).start()
        with self._lock:
            self._last_sign = time.monotonic()
        while not listening.wait(0.05):
            if proc.poll() is not None:
                listening.wait(0.2)  # the line may still be in the pipe
                if found:
                    break
                time.sleep(0.2)  # let the stderr reader catch the last lines
                self.stop()
                raise LocalServiceError(
                    self._describe_failure(
                        f"the Forecode service exited with code {proc.returncode} before it "
                        "was ready"
                    )
                )
            with self._lock:
                silent = time.monotonic() - self._last_sign
            if silent > timeout:
                self.stop()
                raise LocalServiceError(
                    self._describe_failure(
                        f"the Forecode service did not start listening: nothing from it "
                        f"within {timeout:g} s"
                    )
                )
        target = found[0]
        with self._lock:
            self._target = target
        return target, token

    def start_async(
        self,
        on_ready: Callable[[str, str], None],
        on_error: Callable[[str], None],
        timeout: float = 120.0,
    ) -> threading.Thread:
        """``start()`` on a thread of its own; calls ``on_ready(target, token)`` or
        ``on_error(message)`` from that thread (the editor re-emits them as Qt signals)."""

        def run() -> None:
            try:
                target, token = self.start(timeout)
            except (LocalServiceError, RuntimeError) as exc:
                on_error(str(exc))
                return
            on_ready(target, token)

        thread = threading.Thread(target=run, daemon=True, name="forecode-service-start")
        thread.start()
        return thread

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code (None if it
        never ran). Safe to call twice, and after the service died by itself."""
        with self._lock:
            proc = self._proc
            self._target = None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        return proc.returncode

    def __enter__(self) -> LocalService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -----------------------------------------------------------------------------------------

    def _read_stdout(
        self, proc: subprocess.Popen[bytes], listening: threading.Event, found: list[str]
    ) -> None:
        """Find the listening line, then keep draining stdout so the child never blocks."""
        assert proc.stdout is not None
        with proc.stdout:
            for raw in proc.stdout:
                if listening.is_set():
                    continue
                match = LISTENING_RE.match(raw.decode("utf-8", "replace"))
                if match:
                    found.append(f"{match['host']}:{match['port']}")
                    listening.set()

    def _read_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                with self._lock:
                    self._tail.append(line[:500])
                    self._last_sign = time.monotonic()

    def _describe_failure(self, what: str) -> str:
        lines = [line for line in self.stderr_tail() if line.strip()][-8:]
        return what + (":\n" + "\n".join(lines) if lines else "")
