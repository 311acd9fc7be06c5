"""``EngineClient``: the editor's handle on the engine worker process (no Qt here).

The client spawns ``python -m local_models.worker`` and speaks ``forecode_core.protocol`` to it.
The worker may die (a crash inside llama.cpp, a SIGKILL) or hang; the editor never does:

- a request whose worker dies gets ``on_error(id, "the completion engine stopped (...);
  restarting")`` exactly once, and the worker is restarted after a backoff (0.2 s, 0.5 s, 1 s,
  2 s, then every 5 s), up to ``max_restarts`` crashes in a row (a successful request resets
  the count); then the state is "failed";
- a worker that sends nothing for ``request_timeout_s`` while it owes an answer is hung: it is
  killed and treated as a crash; one that has not loaded the model within ``start_timeout_s``
  likewise;
- a model the worker cannot load (it says ``Failed(fatal=True)`` and exits with code 3) puts
  the client in state "failed" with the worker's message, and there is no restart loop;
- requests made while the worker is starting or restarting wait and are sent on Ready; only
  the newest Complete (and newest Warm, NextEdit and Chat) is kept, as only the newest one
  matters to the editor.

Chats (``chat``: the router's local fallback when the service is unreachable) stream like
completions; a chat supersedes older chats only, and a completion never supersedes a chat.
Next-edit predictions (``next_edit``) answer with one Done (no chunks); one supersedes older
predictions and warms, and a completion never supersedes a prediction (nor it a completion):
the worker's ``_supersedes`` keeps the same rules.

States (``forecode_core.engine_state.EngineState``), reported through ``on_state(state,
detail)``: "stopped" (not started, or closed), "starting", "ready", "crashed" (the detail says
why, and when it restarts), "failed".

Threading: every method may be called from any thread and none waits for the worker. All
callbacks (``on_state``, ``on_chunk``, ``on_done``, ``on_error``) run on the client's single
event thread, one at a time, in order; they must be quick and must not wait for the thread
that calls the client (the editor re-emits them as Qt signals, which queues them to the UI
thread). Once ``cancel(id)`` returns — or a newer ``complete`` supersedes request ``id`` — no
callback for ``id`` starts any more: its late events are dropped. A superseded or cancelled
request gets no ``on_error`` either.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from forecode_core.chat.types import ChatParams, params_to_json
from forecode_core.engine_state import EngineState
from forecode_core.entrypoints import child_command
from forecode_core.protocol import (
    EXIT_FATAL,
    PROTOCOL_VERSION,
    Cancel,
    Chat,
    Chunk,
    Complete,
    Done,
    Failed,
    NextEdit,
    ProtocolError,
    Ready,
    Score,
    Shutdown,
    Warm,
    Warmed,
    decode_message,
    encode_message,
    read_line,
)
from forecode_core.windowless import no_window

__all__ = ["BACKOFF_S", "STATES", "EngineClient", "EngineState"]

log = logging.getLogger(__name__)

STATES = tuple(EngineState)
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Delay before restart number 1, 2, 3, …; the last value repeats."""

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class _Inbox(Enum):
    """What the event thread's inbox carries (the first item of each tuple)."""

    CLOSE = "close"  # (CLOSE, timeout): shut the worker down, end the thread
    WAKE = "wake"  # (WAKE,): check the timers and the pending requests
    EVENT = "event"  # (EVENT, worker, event): a message from a worker
    EXIT = "exit"  # (EXIT, worker, return code): a worker's process ended
    UNAVAILABLE = "unavailable"  # (UNAVAILABLE, request, why): a request to a failed engine


class _HasToJson(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def _ignore_state(state: EngineState, detail: str) -> None:
    pass


@dataclass(eq=False)
class _Request:
    id: int
    kind: str  # Complete.TYPE, Chat.TYPE, NextEdit.TYPE or Warm.TYPE
    line: bytes  # the encoded request
    on_chunk: Callable[[int, str], None] | None = None
    on_done: Callable[[int, Done], None] | None = None
    on_error: Callable[[int, str], None] | None = None
    live: bool = True  # False once cancelled or superseded: nothing more is delivered
    sent_gen: int | None = None  # the worker generation it was sent to; None while pending


BUSY_WAITS = 3  # request timeouts forgiven in a row to a silent worker using CPU
_BUSY_CPU_S = 0.01  # one clock tick: a niced worker on a loaded machine gets ~3 % of a core


def _cpu_seconds(pid: int) -> float | None:
    """The process's user + system CPU time from ``/proc`` (None where that cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass(eq=False)
class _Worker:
    gen: int
    proc: subprocess.Popen[bytes]
    started: float
    outbox: queue.Queue[bytes | None] = field(default_factory=queue.Queue)
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=50)
    )
    stderr_done: threading.Event = field(default_factory=threading.Event)
    ready: bool = False
    activity: float = 0.0  # last event, or the moment it started owing an answer
    cpu_s: float = 0.0  # its CPU time when last looked at (``_still_working``)
    busy_waits: int = 0  # silences forgiven since its last event: it was computing
    fatal_message: str | None = None
    kill_reason: str | None = None
    closing: bool = False

    def last_stderr_line(self) -> str:
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return ""


_Call = tuple["_Request | None", Callable[..., None], tuple[Any, ...], bool]
"""(request or None for on_state, callback, arguments, is the request's last callback)"""


class EngineClient:
    """Runs the engine worker and its requests; see the module docstring for the behaviour."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        on_state: Callable[[EngineState, str], None] = _ignore_state,
        python: str = sys.executable,
        extra_args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        request_timeout_s: float = 30.0,
        max_restarts: int = 5,
        start_timeout_s: float = 120.0,
    ) -> None:
        self._model_path = os.fspath(model_path)
        self._on_state = on_state
        self._python = python
        self._extra_args = tuple(extra_args)
        self._env = dict(env) if env is not None else None
        self._request_timeout_s = request_timeout_s
        self._start_timeout_s = start_timeout_s
        self._max_restarts = max_restarts

        self._lock = threading.Lock()  # guards the fields below
        self._deliver = threading.RLock()  # held while a callback runs (see cancel)
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._ids = itertools.count(1)
        self._requests: dict[int, _Request] = {}
        self._state = EngineState.STOPPED
        self._detail = ""
        self._info: dict[str, Any] | None = None
        self._profile: str | None = None
        self._worker: _Worker | None = None
        self._last_worker: _Worker | None = None  # for worker_log() after it is gone
        self._gen = 0
        self._crashes = 0
        self._restart_at: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -----------------------------------------------------------------------------------------
    # public API

    @property
    def state(self) -> EngineState:
        return self._state

    def pending(self) -> int:
        """How many requests are in flight (the bug finder starts only when none is)."""
        with self._lock:
            return sum(1 for r in self._requests.values() if r.live)

    @property
    def state_detail(self) -> str:
        return self._detail

    @property
    def info(self) -> dict[str, Any] | None:
        """The model's ModelInfo fields from the last Ready (None before the first one)."""
        return self._info

    @property
    def model_path(self) -> str:
        """The GGUF file the worker loads."""
        return self._model_path

    @property
    def profile(self) -> str | None:
        return self._profile

    @property
    def pid(self) -> int | None:
        """The worker's process id while one runs."""
        worker = self._worker
        return worker.proc.pid if worker is not None else None

    def worker_log(self) -> list[str]:
        """The last lines the current (or last) worker wrote to stderr (llama.cpp's log)."""
        worker = self._worker or self._last_worker
        return list(worker.stderr_tail) if worker is not None else []

    def start(self) -> None:
        """Spawn the worker (without waiting for it). Also restarts a "failed" client."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this EngineClient is closed")
            if self._worker is None and self._state.startable:
                self._crashes = 0
                self._restart_at = time.monotonic()
                # The event thread spawns the worker and reports "starting"; the property
                # says so at once.
                self._state, self._detail = EngineState.STARTING, ""
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="forecode-engine-client", daemon=True
                )
                self._thread.start()
        self._wake()

    def complete(
        self,
        inp: _HasToJson | Mapping[str, Any],
        *,
        on_chunk: Callable[[int, str], None],
        on_done: Callable[[int, Done], None],
        on_error: Callable[[int, str], None],
        max_tokens: int | None = None,
        speculative: bool = True,
    ) -> int:
        """Ask for a completion of ``inp`` (a CompletionInput); returns the request id.

        Supersedes every older completion and warm (not chats, not next-edit predictions).
        Exactly one of ``on_done`` / ``on_error`` follows, unless the request is cancelled or
        superseded first. Raises ProtocolError if the input is too big to send
        (MAX_MESSAGE_BYTES).
        """
        input_json = inp.to_json() if hasattr(inp, "to_json") else dict(inp)
        with self._deliver, self._lock:
            if self._closed:
                raise RuntimeError("this EngineClient is closed")
            rid = next(self._ids)
            line = encode_message(Complete(rid, input_json, max_tokens, speculative))
            self._supersede(lambda r: r.kind in (Complete.TYPE, Warm.TYPE))
            self._add(_Request(rid, Complete.TYPE, line, on_chunk, on_done, on_error))
        self._wake()
        return rid

    def chat(
        self,
        params: ChatParams,
        *,
        on_chunk: Callable[[int, str], None],
        on_done: Callable[[int, Done], None],
        on_error: Callable[[int, str], None],
        max_tokens: int | None = None,
    ) -> int:
        """Ask the local model to answer the chat ``params``; returns the request id.

        Chunks stream to ``on_chunk``; ``on_done`` gets the whole reply and the engine's
        metrics (``stop_reason`` "eos"/"stop": the model ended its turn, "length": the cap).
        Supersedes older chats only. Exactly one of ``on_done`` / ``on_error`` follows unless
        the request is cancelled or superseded first. Raises ProtocolError if the params are
        too big to send (MAX_MESSAGE_BYTES)."""
        with self._deliver, self._lock:
            if self._closed:
                raise RuntimeError("this EngineClient is closed")
            rid = next(self._ids)
            line = encode_message(Chat(rid, params_to_json(params), max_tokens))
            self._supersede(lambda r: r.kind == Chat.TYPE)
            self._add(_Request(rid, Chat.TYPE, line, on_chunk, on_done, on_error))
        self._wake()
        return rid

    def score(
        self,
        prefix: str,
        continuation: str,
        *,
        on_done: Callable[[int, Done], None],
        on_error: Callable[[int, str], None],
    ) -> int:
        """Ask for the model's log-probability of each token of ``continuation`` after
        ``prefix`` (the bug finder's score; ``Done.metrics["scores"]``: ``[[logp, top_logp],
        ...]``); returns the request id. Supersedes older scores only. Exactly one of
        ``on_done`` / ``on_error`` follows unless the request is cancelled or superseded."""
        with self._deliver, self._lock:
            if self._closed:
                raise RuntimeError("this EngineClient is closed")
            rid = next(self._ids)
            line = encode_message(Score(rid, prefix, continuation))
            self._supersede(lambda r: r.kind == Score.TYPE)
            self._add(_Request(rid, Score.TYPE, line, None, on_done, on_error))
        self._wake()
        return rid

    def next_edit(
        self,
        inp: _HasToJson | Mapping[str, Any],
        *,
        on_done: Callable[[int, Done], None],
        on_error: Callable[[int, str], None],
        max_tokens: int | None = None,
    ) -> int:
        """Ask for the next edit at ``inp`` (a ``NextEditInput``); returns the request id.

        ``on_done`` gets the model's rewrite of the editable region (``Done.text``; finished
        when ``stop_reason`` is "stop"/"eos") and its figures (``local_models.next_edit``).
        Supersedes older next-edit requests and warms, not completions or chats. Exactly one of
        ``on_done`` / ``on_error`` follows unless the request is cancelled or superseded first.
        Raises ProtocolError if the input is too big to send (MAX_MESSAGE_BYTES)."""
        input_json = inp.to_json() if hasattr(inp, "to_json") else dict(inp)
        with self._deliver, self._lock:
            if self._closed:
                raise RuntimeError("this EngineClient is closed")
            rid = next(self._ids)
            line = encode_message(NextEdit(rid, input_json, max_tokens))
            self._supersede(lambda r: r.kind in (NextEdit.TYPE, Warm.TYPE))
            self._add(_Request(rid, NextEdit.TYPE, line, None, on_done, on_error))
        self._wake()
        return rid

    def warm(self, inp: _HasToJson | Mapping[str, Any]) -> int:
        """Ask the worker to pre-evaluate the prompt for ``inp`` (no callbacks; best effort).

        Supersedes older warms, not completions."""
        input_json = inp.to_json() if hasattr(inp, "to_json") else dict(inp)
        with self._deliver, self._lock:
            if self._closed:
                raise RuntimeError("this EngineClient is closed")
            rid = next(self._ids)
            line = encode_message(Warm(rid, input_json))
            self._supersede(lambda r: r.kind == Warm.TYPE)
            self._add(_Request(rid, Warm.TYPE, line))
        self._wake()
        return rid

    def cancel(self, request_id: int) -> None:
        """Stop request ``request_id``; no callback for it starts after this returns."""
        with self._deliver, self._lock:
            req = self._requests.get(request_id)
            if req is None or not req.live:
                return
            req.live = False
            if req.sent_gen is None:
                del self._requests[request_id]
            else:
                worker = self._worker
                if worker is not None and worker.gen == req.sent_gen:
                    worker.outbox.put(encode_message(Cancel(request_id)))

    def close(self, timeout: float = 3.0) -> None:
        """Shut the worker down (Shutdown, then terminate, then kill) and stop the client."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is None:
            self._state, self._detail = EngineState.STOPPED, ""
            return
        self._inbox.put((_Inbox.CLOSE, timeout))
        if thread is not threading.current_thread():
            thread.join(timeout + 5.0)

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # requests (called with self._lock held)

    def _supersede(self, which: Callable[[_Request], bool]) -> None:
        for old in list(self._requests.values()):
            if old.live and which(old):
                old.live = False  # the worker cancels it itself on the newer Complete/Warm
                if old.sent_gen is None:
                    del self._requests[old.id]

    def _add(self, req: _Request) -> None:
        self._requests[req.id] = req
        worker = self._worker
        if self._state is EngineState.READY and worker is not None and worker.ready:
            self._send(worker, req)
        elif self._state is EngineState.FAILED and self._worker is None:
            self._inbox.put((_Inbox.UNAVAILABLE, req, self._detail))
        # otherwise it waits for Ready

    def _send(self, worker: _Worker, req: _Request) -> None:
        if not self._owes_answer(worker):
            worker.activity = time.monotonic()
        req.sent_gen = worker.gen
        worker.outbox.put(req.line)

    def _owes_answer(self, worker: _Worker) -> bool:
        return any(r.sent_gen == worker.gen for r in self._requests.values())

    # -----------------------------------------------------------------------------------------
    # the event thread

    def _wake(self) -> None:
        self._inbox.put((_Inbox.WAKE,))

    def _run(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._wait_time())
            except queue.Empty:
                item = (_Inbox.WAKE,)
            calls: list[_Call] = []
            if item[0] is _Inbox.CLOSE:
                self._close_worker(item[1], calls)
                self._deliver_calls(calls)
                return
            spawn = False
            with self._lock:
                self._handle(item, calls)
                spawn = self._check_timers(calls)
            if spawn:
                self._spawn(calls)
            self._deliver_calls(calls)

    def _wait_time(self) -> float | None:
        with self._lock:
            now = time.monotonic()
            deadlines = []
            if self._restart_at is not None and self._worker is None:
                deadlines.append(self._restart_at)
            worker = self._worker
            if worker is not None and worker.kill_reason is None:
                if not worker.ready:
                    deadlines.append(worker.started + self._start_timeout_s)
                elif self._owes_answer(worker):
                    deadlines.append(worker.activity + self._request_timeout_s)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now) + 0.001

    def _check_timers(self, calls: list[_Call]) -> bool:
        """Kill a hung worker; True when it is time to spawn one."""
        now = time.monotonic()
        worker = self._worker
        if worker is None:
            return self._restart_at is not None and now >= self._restart_at
        if worker.kill_reason is not None:
            return False
        if not worker.ready and now - worker.started >= self._start_timeout_s:
            self._kill(worker, f"it did not load the model within {self._start_timeout_s:g} s")
        elif (
            worker.ready
            and self._owes_answer(worker)
            and now - worker.activity >= self._request_timeout_s
            and not self._still_working(worker, now)
        ):
            self._kill(worker, f"no response for {self._request_timeout_s:g} s; killed")
        return False

    def _still_working(self, worker: _Worker, now: float) -> bool:
        """A silent worker that used CPU since the last look is computing, not hung: on a
        loaded machine a long prompt's prefill at nice +10 took over 30 s (a user run at load
        8-12 on 2 cores saw the worker killed every 30 s, so no completion ever came). Its
        silence is forgiven ``BUSY_WAITS`` times in a row (a loop that never answers is still
        killed); where the CPU time cannot be read (not Linux), never."""
        cpu = _cpu_seconds(worker.proc.pid)
        busy = cpu is not None and cpu - worker.cpu_s >= _BUSY_CPU_S
        if cpu is not None:
            worker.cpu_s = cpu
        if not busy or worker.busy_waits >= BUSY_WAITS:
            return False
        worker.busy_waits += 1
        worker.activity = now
        return True

    def _kill(self, worker: _Worker, reason: str) -> None:
        worker.kill_reason = reason
        log.warning("killing engine worker %s: %s", worker.proc.pid, reason)
        with contextlib.suppress(OSError):  # already gone: its exit is on the way
            worker.proc.kill()

    def _handle(self, item: tuple[Any, ...], calls: list[_Call]) -> None:
        kind = item[0]
        if kind is _Inbox.EVENT:
            self._on_event(item[1], item[2], calls)
        elif kind is _Inbox.EXIT:
            self._on_exit(item[1], item[2], calls)
        elif kind is _Inbox.UNAVAILABLE:
            req, why = item[1], item[2]
            self._finish(
                req, calls, req.on_error, (req.id, f"the completion engine is not available: {why}")
            )

    def _on_event(self, worker: _Worker, event: Any, calls: list[_Call]) -> None:
        if worker is not self._worker:
            return  # from a worker already given up on
        worker.activity = time.monotonic()
        worker.busy_waits = 0
        if isinstance(event, Chunk):
            req = self._requests.get(event.id)
            if req is not None and req.live and req.on_chunk is not None:
                calls.append((req, req.on_chunk, (event.id, event.text), False))
        elif isinstance(event, Done | Warmed):
            req = self._requests.get(event.id)
            if req is not None and req.sent_gen == worker.gen:
                self._crashes = 0
                done = event if isinstance(event, Done) else None
                self._finish(req, calls, req.on_done, (event.id, done))
        elif isinstance(event, Failed):
            if event.id is None:
                if event.fatal:
                    worker.fatal_message = event.message
                else:
                    log.warning("engine worker: %s", event.message)
                return
            req = self._requests.get(event.id)
            if req is not None and req.sent_gen == worker.gen:
                self._finish(req, calls, req.on_error, (event.id, event.message))
        elif isinstance(event, Ready):
            if worker.kill_reason is not None:
                return  # too late: it is being killed
            if event.protocol != PROTOCOL_VERSION:
                worker.fatal_message = (
                    f"the engine worker speaks protocol {event.protocol}, the editor "
                    f"{PROTOCOL_VERSION}; reinstall Forecode"
                )
                self._kill(worker, worker.fatal_message)
                return
            worker.ready = True
            self._info = dict(event.model)
            self._profile = event.profile
            name = str(event.model.get("name") or Path(self._model_path).name)
            self._set_state(EngineState.READY, f"{name} ({event.profile})", calls)
            for req in sorted(self._requests.values(), key=lambda r: r.id):
                if req.sent_gen is None:
                    self._send(worker, req)
        else:
            log.warning("engine worker sent an unexpected %r message", event.TYPE)

    def _on_exit(self, worker: _Worker, code: int, calls: list[_Call]) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self._last_worker = worker
        if worker.closing:
            return
        if code == EXIT_FATAL or worker.fatal_message:
            message = (
                worker.fatal_message
                or worker.last_stderr_line()
                or f"the engine worker exited with code {code}"
            )
            self._fail_all(message, calls)
            self._set_state(EngineState.FAILED, message, calls)
            return
        reason = worker.kill_reason or _describe_exit(code, worker.last_stderr_line())
        self._crashes += 1
        giving_up = self._crashes > self._max_restarts
        then = "not restarting" if giving_up else "restarting"
        for req in sorted(self._requests.values(), key=lambda r: r.id):
            if req.sent_gen == worker.gen:
                self._finish(
                    req,
                    calls,
                    req.on_error,
                    (req.id, f"the completion engine stopped ({reason}); {then}"),
                )
        if giving_up:
            message = (
                f"the completion engine stopped {self._crashes} times in a row "
                f"(last: {reason}); not restarting"
            )
            self._fail_all(message, calls)
            self._set_state(EngineState.FAILED, message, calls)
            return
        delay = BACKOFF_S[min(self._crashes, len(BACKOFF_S)) - 1]
        self._restart_at = time.monotonic() + delay
        self._set_state(
            EngineState.CRASHED,
            f"the completion engine stopped ({reason}); restarting in {delay:g} s",
            calls,
        )

    def _finish(
        self,
        req: _Request,
        calls: list[_Call],
        callback: Callable[..., None] | None,
        args: tuple[Any, ...],
    ) -> None:
        """Request ``req`` is over: forget it and (if still wanted) deliver its last callback."""
        self._requests.pop(req.id, None)
        if req.live and callback is not None:
            calls.append((req, callback, args, True))

    def _fail_all(self, message: str, calls: list[_Call]) -> None:
        self._restart_at = None
        for req in sorted(self._requests.values(), key=lambda r: r.id):
            self._finish(
                req,
                calls,
                req.on_error,
                (req.id, f"the completion engine is not available: {message}"),
            )

    def _set_state(self, state: EngineState, detail: str, calls: list[_Call]) -> None:
        self._state, self._detail = state, detail
        calls.append((None, self._on_state, (state, detail), False))

    def _deliver_calls(self, calls: list[_Call]) -> None:
        for req, callback, args, last in calls:
            with self._deliver:
                if req is not None:
                    with self._lock:
                        if not req.live:
                            continue  # cancelled or superseded since: stale
                        if last:
                            req.live = False
                try:
                    callback(*args)
                except Exception:
                    log.exception("an EngineClient callback raised")

    # -----------------------------------------------------------------------------------------
    # worker processes

    def _spawn(self, calls: list[_Call]) -> None:
        env = dict(os.environ if self._env is None else self._env)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
        args = child_command(
            "local_models.worker",
            ["--model", self._model_path, *self._extra_args],
            python=self._python,
        )
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                **no_window(),
            )
        except OSError as exc:
            with self._lock:
                self._restart_at = None
                message = f"could not start the engine worker ({self._python}): {exc}"
                self._fail_all(message, calls)
                self._set_state(EngineState.FAILED, message, calls)
            return
        with self._lock:
            self._gen += 1
            worker = _Worker(self._gen, proc, started=time.monotonic())
            self._worker = worker
            self._restart_at = None
            self._set_state(EngineState.STARTING, f"loading {Path(self._model_path).name}", calls)
        for target, name in (
            (self._read_events, "events"),
            (self._write_requests, "requests"),
            (self._read_stderr, "stderr"),
        ):
            threading.Thread(
                target=target,
                args=(worker,),
                daemon=True,
                name=f"forecode-engine-{name}-{worker.gen}",
            ).start()

    def _read_events(self, worker: _Worker) -> None:
        stream = worker.proc.stdout
        assert stream is not None
        while True:
            try:
                line = read_line(stream)
            except ProtocolError as exc:
                log.warning("engine worker: %s", exc)
                continue
            except (OSError, ValueError):
                line = None
            if line is None:
                break
            try:
                event = decode_message(line)
            except ProtocolError as exc:
                log.warning("engine worker sent a bad line: %s", exc)
                continue
            self._inbox.put((_Inbox.EVENT, worker, event))
        with contextlib.suppress(OSError):
            stream.close()
        try:
            code = worker.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # closed its stdout but lives on: not usable
            worker.proc.kill()
            code = worker.proc.wait()
        worker.outbox.put(None)  # ends the requests thread, which closes stdin
        worker.stderr_done.wait(1.0)  # so the crash report can quote its last words
        self._inbox.put((_Inbox.EXIT, worker, code))

    def _write_requests(self, worker: _Worker) -> None:
        stream = worker.proc.stdin
        assert stream is not None
        while True:
            line = worker.outbox.get()
            if line is None:
                break
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                break  # the worker is gone; the events thread reports it
        with contextlib.suppress(OSError, ValueError):
            stream.close()

    def _read_stderr(self, worker: _Worker) -> None:
        stream = worker.proc.stderr
        assert stream is not None
        try:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                worker.stderr_tail.append(line)
                log.debug("engine worker: %s", line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                stream.close()
            worker.stderr_done.set()

    def _close_worker(self, timeout: float, calls: list[_Call]) -> None:
        with self._lock:
            worker = self._worker
            self._worker = None
            self._restart_at = None
            for req in self._requests.values():
                req.live = False
            self._requests.clear()
            self._set_state(EngineState.STOPPED, "", calls)
        if worker is None:
            return
        self._last_worker = worker
        worker.closing = True
        worker.outbox.put(encode_message(Shutdown()))
        worker.outbox.put(None)  # then EOF
        proc = worker.proc
        try:
            proc.wait(timeout=max(0.0, timeout * 0.7))
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=max(0.1, timeout * 0.3))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _describe_exit(code: int, last_line: str) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == 0:
        return "exited unexpectedly"
    return f"exited with code {code}" + (f": {last_line[:200]}" if last_line else "")
