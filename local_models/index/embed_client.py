"""The editor's side of the embedding process (``embed_worker``): spawn, embed, cancel, close.

``EmbedWorker.embed(texts, progress=..., cancelled=...)`` blocks until the vectors are back, so
the caller runs it on a background thread (the index's sync task), never on the UI thread. It
polls ``cancelled()`` while it waits and forwards a cancel to the process, which stops between
batches; ``EmbedCancelled`` then carries the vectors already computed. If the process dies, the
call raises ``EmbedWorkerError`` with its last words and the next call starts a fresh process.

No Qt and no llama.cpp here: llama.cpp lives only in the worker process.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import itertools
import json
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from forecode_core.entrypoints import child_command
from forecode_core.index.embed_protocol import EmbedEvent, EmbedOp
from forecode_core.windowless import no_window

__all__ = ["EmbedCancelled", "EmbedWorker", "EmbedWorkerError"]

_POLL_S = 0.05


class EmbedWorkerError(RuntimeError):
    """The embedding process could not start, failed a request or died."""


class EmbedCancelled(Exception):
    """An embedding request stopped between batches because it was cancelled; ``vectors``
    holds the embeddings of the first ``len(vectors)`` texts. (Raised by ``EmbedWorker.embed``
    and, inside the worker, by ``embedder.Embedder.embed``.)"""

    def __init__(self, vectors: npt.NDArray[np.float32]) -> None:
        super().__init__(f"embedding cancelled after {len(vectors)} texts")
        self.vectors = vectors


@dataclass
class _Call:
    rid: int
    total: int
    vectors: npt.NDArray[np.float32]
    done: int = 0
    outcome: EmbedEvent | None = None  # DONE, CANCELLED or FAILED
    error: str = ""
    updated: threading.Condition = field(default_factory=threading.Condition)


class EmbedWorker:
    """One ``embed_worker`` process, started on first use; see the module docstring."""

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        nice: int = 10,
        start_timeout: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> None:
        args = child_command("local_models.index.embed_worker", ["--nice", str(nice)])
        if model is not None:
            args += ["--model", str(Path(model))]
        if threads is not None:
            args += ["--threads", str(threads)]
        if batch_size is not None:
            args += ["--batch-size", str(batch_size)]
        self._args = args
        self._env = env
        self._start_timeout = start_timeout
        self._lock = threading.Lock()  # one embed at a time
        self._state = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready: dict[str, Any] | None = None
        self._failure = ""
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._call: _Call | None = None
        self._ids = itertools.count(1)
        self._readers: list[threading.Thread] = []
        self.dim = 0
        self.converting: tuple[int, int] | None = None  # (done, total) while the GGUF is written

    # --- public API ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process (if not running) and wait until its model is loaded."""
        with self._state:
            if self._proc is not None and self._proc.poll() is None and self._ready:
                return
        self._kill()  # a process that died or never got ready
        with self._state:
            self._spawn()
            ok = self._state.wait_for(
                lambda: self._ready is not None or self._exited(), self._start_timeout
            )
            ready = self._ready
            reason = (
                self._failure
                or self._last_words()
                or ("it did not start in time" if not ok else "it exited")
            )
        if ready is None:
            self._kill()
            raise EmbedWorkerError(f"the embedding process failed to start: {reason}")
        self.dim = int(ready["dim"])

    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]:
        """``(len(texts), dim)`` float32 vectors, computed in the worker; blocks."""
        with self._lock:
            self.start()
            call = _Call(
                rid=next(self._ids),
                total=len(texts),
                vectors=np.zeros((len(texts), self.dim), dtype=np.float32),
            )
            with self._state:
                self._call = call
            self._send({"op": EmbedOp.EMBED, "id": call.rid, "texts": list(texts)})
            sent_cancel = False
            reported = 0
            try:
                while True:
                    done, outcome = self._wait(call, reported)
                    if progress is not None and done != reported:
                        progress(done, call.total)
                    reported = done
                    if outcome is not None:
                        break
                    if not sent_cancel and cancelled is not None and cancelled():
                        self._send({"op": EmbedOp.CANCEL, "id": call.rid})
                        sent_cancel = True
            finally:
                with self._state:
                    self._call = None
            if outcome == EmbedEvent.DONE:
                return call.vectors
            if outcome == EmbedEvent.CANCELLED:
                raise EmbedCancelled(call.vectors[: call.done].copy())
            raise EmbedWorkerError(call.error)

    def close(self) -> None:
        """Ask the process to stop; kill it if it does not within a few seconds."""
        with self._state:
            proc = self._proc
            self._proc = None
            self._ready = None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                shutdown = json.dumps({"op": EmbedOp.SHUTDOWN}, separators=(",", ":"))
                proc.stdin.write(shutdown.encode() + b"\n")
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._reap(proc)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> EmbedWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    @staticmethod
    def _wait(call: _Call, reported: int) -> tuple[int, str | None]:
        """Until the call moves on from ``reported`` texts or ends (or a poll interval)."""
        with call.updated:
            call.updated.wait_for(
                lambda: call.outcome is not None or call.done != reported, _POLL_S
            )
            return call.done, call.outcome

    def _spawn(self) -> None:
        self._ready, self._failure = None, ""
        self._stderr.clear()
        env = dict(os.environ if self._env is None else self._env)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                self._args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                **no_window(),
            )
        except OSError as exc:
            raise EmbedWorkerError(f"cannot start the embedding process: {exc}") from None
        self._proc = proc
        for target, name in (
            (self._read_events, "embed-events"),
            (self._read_stderr, "embed-stderr"),
        ):
            thread = threading.Thread(target=target, args=(proc,), name=name, daemon=True)
            self._readers.append(thread)
            thread.start()

    def _exited(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._reap(proc)

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        """After ``proc`` exited: let the readers reach EOF, then close the pipes."""
        readers, self._readers = self._readers, []
        for thread in readers:
            if thread is not threading.current_thread():
                thread.join(5.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _last_words(self) -> str:
        return self._stderr[-1] if self._stderr else ""

    def _send(self, msg: dict[str, Any]) -> None:
        proc = self._proc
        try:
            assert proc is not None and proc.stdin is not None
            proc.stdin.write(json.dumps(msg).encode() + b"\n")
            proc.stdin.flush()
        except (OSError, AssertionError):
            self._fail_call("the embedding process is gone")

    def _fail_call(self, error: str) -> None:
        with self._state:
            call = self._call
        if call is not None:
            with call.updated:
                if call.outcome is None:
                    call.outcome, call.error = EmbedEvent.FAILED, error
                call.updated.notify_all()

    def _read_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)

    def _read_events(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            self._on_event(ev)
        code = proc.wait()
        with self._state:
            if self._proc is proc:
                self._ready = None
            self._state.notify_all()
        self._fail_call(
            f"the embedding process exited (status {code})"
            + (f": {self._last_words()}" if self._last_words() else "")
        )

    def _on_event(self, ev: dict[str, Any]) -> None:
        try:
            kind = EmbedEvent(str(ev.get("event")))
        except ValueError:
            return  # (an event this client does not know: ignored, as before)
        if kind == EmbedEvent.READY:
            with self._state:
                self._ready = ev
                self.converting = None
                self._state.notify_all()
            return
        if kind == EmbedEvent.CONVERTING:
            self.converting = (int(ev["done"]), int(ev["total"]))
            return
        if kind == EmbedEvent.FAILED and "id" not in ev:
            with self._state:
                self._failure = str(ev.get("error", ""))
                self._state.notify_all()
            return
        with self._state:
            call = self._call
        if call is None or ev.get("id") != call.rid:
            return
        with call.updated:
            if kind == EmbedEvent.VECTORS:
                data = np.frombuffer(base64.b64decode(ev["data"]), dtype="<f4")
                block = data.reshape(-1, call.vectors.shape[1])
                start = int(ev["start"])
                call.vectors[start : start + len(block)] = block
            elif kind == EmbedEvent.PROGRESS:
                call.done = int(ev["done"])
            elif kind.ends_request:
                if kind == EmbedEvent.CANCELLED:
                    call.done = int(ev["done"])
                call.outcome = kind
                call.error = str(ev.get("error", ""))
            call.updated.notify_all()
