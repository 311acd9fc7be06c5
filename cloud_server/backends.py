"""What answers a chat: backends behind one interface, chosen by name in a registry.

* ``llama`` (the embedded default): llama.cpp in this process, one ``Engine`` per slot.
  Every engine maps the same GGUF file, so the weights sit once in the page cache; each slot
  has its own context and KV cache. ``SlotPool`` queues requests and sends a conversation back
  to the slot that holds its cache. Decoding is greedy (``temperature`` is ignored: answers
  are reproducible, and a code answer wants the likeliest tokens), through a reply guard
  (``forecode_core.chat.repetition``) that stops a loop and never shows the system prompt.
* ``openai``: an OpenAI-compatible HTTP server (vLLM, llama.cpp's server, a cluster behind a
  load balancer) — how a team scales past one machine. Streams ``/v1/chat/completions`` as
  server-sent events, parsed with the standard library.

A backend's ``stream_chat`` yields ``ChatStarted``, ``ChatDelta``s, then one ``ChatDone``, or
raises ``ChatError``. Both backends also apply code blocks (``stream_apply``: the
deterministic path, else ``local_models.apply_model``'s model path on a slot: the windows the
block or selection addresses rewritten, by the in-process engine with speculative edits or by
the upstream's streamed chat completions; ``ChatStarted``, ``ChatDelta``s, one ``ApplyDone``;
a rewrite that is not the whole file, with a placeholder like ``# ... existing code ...`` left
in it, most of the file dropped or a window's context copied, ends with finish "length" like
an unfinished one: not a file to apply). The work runs on a thread
of its own that also owns the slot: when ``should_stop`` turns true (the call was cancelled or its
deadline passed) the engine stops within one decode step — or the HTTP connection is shut —
and the slot is free again, whether or not anyone still reads the iterator. A stopped request
ends with ``ChatDone(finish_reason="cancelled")`` (``ApplyDone`` for an apply).

Nothing here logs prompt or reply text, only sizes, counts and timings.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cloud_server.config import BackendName, ServerConfig
from cloud_server.slots import QueueFull, SlotPool
from forecode_core.apply.block import Applied, ApplyInput
from forecode_core.apply.events import ApplyDone, ApplyEvent
from forecode_core.apply.pipeline import deterministic_done, first_step
from forecode_core.apply.rewrite_stop import RewriteStop
from forecode_core.chat.prompt_formats import (
    DEFAULT_SYSTEM_PROMPT,
    ChatTooLong,
    fit_chat,
    system_text,
    user_content,
)
from forecode_core.chat.repetition import complete_guarded
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatEvent,
    ChatParams,
    ChatStarted,
    Role,
)
from forecode_core.profiles import profile_of
from forecode_core.streams import Delta, FailureCode, FinishReason

__all__ = ["BACKENDS", "Backend", "LlamaBackend", "OpenAIBackend", "create_backend"]

log = logging.getLogger("forecode.cloud")

# The engine's stop reasons (``forecode_core.protocol.STOP_REASONS``) as a chat's finish.
_STOP_REASONS = {
    "eos": FinishReason.STOP,
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "cancelled": FinishReason.CANCELLED,
}


@contextlib.contextmanager
def closed_on_stop(
    conn: http.client.HTTPConnection, stop: Callable[[], bool], name: str
) -> Iterator[None]:
    """While the block runs, a watcher thread shuts ``conn``'s socket down as soon as
    ``stop()`` says so: a cancelled call leaves a blocking read at once."""
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            if stop():
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    threading.Thread(target=watch, name=name, daemon=True).start()
    try:
        yield
    finally:
        finished.set()


class Backend(Protocol):
    def info(self) -> dict[str, Any]:
        """``{"backend": name, "models": [...], "slots": n}``, and ``"n_ctx"``: the tokens of
        context a slot holds, where the backend knows it (0 or absent: unknown)."""
        ...

    def stream_chat(
        self, params: ChatParams, *, should_stop: Callable[[], bool]
    ) -> Iterator[ChatEvent]: ...

    def stream_apply(
        self, request: ApplyInput, *, should_stop: Callable[[], bool]
    ) -> Iterator[ApplyEvent]: ...

    def close(self) -> None:
        """Stop every request and free the models; later requests get ChatError."""
        ...


# ---------------------------------------------------------------------------------------------
# the thread that owns a request


_END = object()
Emit = Callable[[ChatEvent], None]


class _Jobs:
    """Request threads of one backend: started, tracked, stopped and joined on close."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self.closing = threading.Event()

    def stream(
        self, run: Callable[[Emit, Callable[[], bool]], None], should_stop: Callable[[], bool]
    ) -> Iterator[ChatEvent]:
        if self.closing.is_set():
            raise ChatError(FailureCode.UNAVAILABLE, "the service is shutting down", retryable=True)
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        abandoned = threading.Event()

        def stop() -> bool:
            return abandoned.is_set() or self.closing.is_set() or should_stop()

        def body() -> None:
            try:
                run(out.put, stop)
            except ChatError as exc:
                out.put(exc)
            except Exception as exc:  # the message may quote input: log the type only
                log.error("a chat request failed: %s", type(exc).__name__)
                out.put(ChatError(FailureCode.INTERNAL, f"the model failed: {type(exc).__name__}"))
            finally:
                out.put(_END)
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=body, name="forecode-cloud-chat", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return self._drain(out, abandoned)

    @staticmethod
    def _drain(out: queue.SimpleQueue[Any], abandoned: threading.Event) -> Iterator[ChatEvent]:
        try:
            while True:
                item = out.get()
                if item is _END:
                    return
                if isinstance(item, ChatError):
                    raise item
                yield item
        finally:
            abandoned.set()  # the reader is gone: stop the work and free the slot

    def close(self, timeout: float = 30.0) -> None:
        self.closing.set()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                log.warning("%d chat requests did not stop in time", len(threads))
                return


def _usage(
    prompt: int,
    cached: int,
    completion: int,
    queue_ms: float,
    first_ms: float | None,
    total_ms: float,
) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "completion_tokens": completion,
        "queue_ms": round(queue_ms),
        "first_token_ms": round(first_ms or 0.0),
        "total_ms": round(total_ms),
    }


class _FirstText:
    """An ``on_text`` for the engine: emits each non-empty text as a ``ChatDelta`` and keeps
    when the first came (``ms``, since ``arrival``)."""

    def __init__(self, emit: Emit, arrival: float) -> None:
        self._emit = emit
        self._arrival = arrival
        self.ms: float | None = None

    def __call__(self, text: str) -> None:
        if text:
            if self.ms is None:
                self.ms = (time.monotonic() - self._arrival) * 1000.0
            self._emit(ChatDelta(text))


class _SlotBackend:
    """What every backend shares: ``slots`` calls at a time (more wait in the FIFO queue; a
    full queue is "busy"), each on its own request thread (``_Jobs``: cancel, deadline and
    shutdown stop it), and ``stream_chat``'s model check. Subclasses set ``name`` and
    ``model`` and implement ``_run``."""

    name = ""
    model = ""
    n_ctx = 0  # a slot's context in tokens; 0: not known (Info says so)

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._pool = SlotPool(config.slots, config.max_queue)
        self._jobs = _Jobs()

    @property
    def pool(self) -> SlotPool:
        return self._pool

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "models": [self.model],
            "slots": self._pool.size,
            "n_ctx": self.n_ctx,
        }

    def stream_chat(
        self, params: ChatParams, *, should_stop: Callable[[], bool]
    ) -> Iterator[ChatEvent]:
        if params.model and params.model != self.model:
            raise ChatError(
                FailureCode.INVALID,
                f"unknown model {params.model!r}: this service serves {self.model!r}",
            )
        arrival = time.monotonic()
        return self._jobs.stream(
            lambda emit, stop: self._run(params, emit, stop, arrival), should_stop
        )

    def _run(
        self, params: ChatParams, emit: Emit, stop: Callable[[], bool], arrival: float
    ) -> None:
        raise NotImplementedError

    def _on_slot(
        self,
        key: str,
        emit: Callable[[Any], None],
        stop: Callable[[], bool],
        arrival: float,
        cancelled: Callable[[dict[str, int]], Any],
        work: Callable[[int, float], None],
    ) -> None:
        """Wait for a slot (preferring the one ``key`` last used), then announce the start
        and run ``work(slot, queue_ms)``; the slot is released however it ends. Stopped while
        queued: ``emit(cancelled(usage))``."""
        try:
            slot = self._pool.acquire(key, stop)
        except QueueFull as exc:
            raise ChatError(
                FailureCode.BUSY, f"the service is busy: {exc}", retryable=True
            ) from None
        queue_ms = (time.monotonic() - arrival) * 1000.0
        if slot is None:
            emit(cancelled(_usage(0, 0, 0, queue_ms, None, queue_ms)))
            return
        try:
            emit(ChatStarted(model=self.model, source="cloud", queued_ms=round(queue_ms)))
            work(slot, queue_ms)
        finally:
            self._pool.release(slot)

    def stream_apply(
        self, request: ApplyInput, *, should_stop: Callable[[], bool]
    ) -> Iterator[ApplyEvent]:
        """The new file for ``request``: the deterministic path when the block anchors
        unambiguously and there is no instruction (no slot needed), else the model path on a
        slot (``local_models.apply_model``: the windows the block or selection addresses,
        rewritten; applies to one path prefer the slot that holds that file's prompt).
        Same cancel and deadline semantics as ``stream_chat``."""
        arrival = time.monotonic()
        return self._jobs.stream(
            lambda emit, stop: self._run_apply(request, emit, stop, arrival), should_stop
        )

    def _run_apply(
        self,
        request: ApplyInput,
        emit: Callable[[Any], None],
        stop: Callable[[], bool],
        arrival: float,
    ) -> None:
        step = first_step(request)  # the editor's pipeline's first step, the same code
        if isinstance(step, Applied):
            total_ms = (time.monotonic() - arrival) * 1000.0
            emit(Delta(step.text))
            log.info("apply: deterministic, %d placements, %.0f ms", len(step.placements), total_ms)
            emit(deterministic_done(step, _usage(0, 0, 0, 0.0, total_ms, total_ms)))
            return
        self._on_slot(
            f"apply:{request.path}",
            emit,
            stop,
            arrival,
            lambda usage: ApplyDone(FinishReason.CANCELLED, usage),
            lambda slot, queue_ms: self._rewrite_on(slot, queue_ms, request, emit, stop, arrival),
        )

    def _rewrite_on(
        self,
        slot: int,
        queue_ms: float,
        request: ApplyInput,
        emit: Callable[[Any], None],
        stop: Callable[[], bool],
        arrival: float,
    ) -> None:
        from local_models.apply_model import ApplyTooLarge

        on_text = _FirstText(emit, arrival)
        try:
            done = self._model_rewrite(slot, request, on_text, stop)
        except ApplyTooLarge as exc:
            raise ChatError(FailureCode.TOO_LARGE, str(exc)) from None
        m = done.metrics
        total_ms = (time.monotonic() - arrival) * 1000.0
        cached = int(m.reused_prefix_tokens) + int(m.reused_shifted_tokens)
        # Not complete: the model did not close the file, or what it closed is not the whole
        # file (``done.defect``: a placeholder left in it, most of it dropped). Either way the
        # text sent is not a file to apply.
        finish = (
            FinishReason.STOP
            if done.complete
            else (
                FinishReason.CANCELLED
                if done.stop_reason == RewriteStop.CANCELLED
                else FinishReason.LENGTH
            )
        )
        log.info(
            "apply on slot %d: model via %s backend, %d prompt tokens (%d cached), "
            "%d generated, %d/%d drafted accepted in %d batches, %d rejoins, %s, %.0f ms",
            slot,
            self.name,
            m.prompt_tokens,
            cached,
            m.generated_tokens,
            m.accepted_tokens,
            m.drafted_tokens,
            m.batches,
            m.rejoins,
            done.stop_reason,
            total_ms,
        )
        emit(
            ApplyDone(
                finish,
                _usage(
                    int(m.prompt_tokens),
                    cached,
                    int(m.generated_tokens),
                    queue_ms,
                    on_text.ms,
                    total_ms,
                ),
                source="model",
                drafted_tokens=int(m.drafted_tokens),
                accepted_tokens=int(m.accepted_tokens),
                batches=int(m.batches),
                rejoins=int(m.rejoins),
                prefill_ms=round(m.prefill_ms),
                decode_ms=round(m.decode_ms),
            )
        )

    def _model_rewrite(
        self,
        slot: int,
        request: ApplyInput,
        on_text: Callable[[str], None],
        stop: Callable[[], bool],
    ) -> Any:
        """The model path's ``ModelRewrite`` for ``request`` on ``slot``."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# llama.cpp in-process


class LlamaBackend(_SlotBackend):
    """N engines over one GGUF, a FIFO queue, conversation affinity (see the module doc)."""

    name = "llama"

    def __init__(
        self, config: ServerConfig, engine_factory: Callable[..., Any] | None = None
    ) -> None:
        if engine_factory is None:
            from local_models.engine import Engine

            engine_factory = Engine
        model_path = config.model_path
        if model_path is None:
            from local_models.model_store import SERVICE_MODEL, ensure_model

            model_path = str(ensure_model(SERVICE_MODEL))
        self._engines: list[Any] = []
        try:
            from local_models.apply_model import APPLY_MAX_OUTPUTS

            # Verify batches of up to APPLY_MAX_OUTPUTS rows for apply's speculative edits
            # (about 128 MiB more per slot than chat alone needs).
            from local_models.engine import Engine

            for slot in range(config.slots):
                # One line per step: the editor's LocalService waits while lines come (a slow
                # load on a busy machine is not a hung one).
                log.info("loading the model into slot %d of %d", slot + 1, config.slots)
                self._engines.append(
                    engine_factory(model_path, n_ctx=config.n_ctx, max_outputs=APPLY_MAX_OUTPUTS)
                )
                if isinstance(self._engines[-1], Engine):
                    # The window prompts' fixed opening, in the cache before the first apply.
                    from local_models.apply_model import warm_for_apply

                    log.info("warming slot %d of %d for apply", slot + 1, config.slots)
                    warm_for_apply(self._engines[-1])
        except BaseException:
            for engine in self._engines:
                engine.close()
            raise
        info = self._engines[0].info
        self._format = profile_of(info).chat
        self.model = info.name or Path(model_path).stem
        self.n_ctx = int(self._engines[0].n_ctx)  # config.n_ctx, capped by the model's own
        super().__init__(config)
        self._closed = False
        log.info(
            "llama backend: %s (%s, chat format %s), %d slots of %d tokens",
            self.model,
            info.architecture,
            self._format.id,
            config.slots,
            self._engines[0].n_ctx,
        )

    def _run(
        self, params: ChatParams, emit: Emit, stop: Callable[[], bool], arrival: float
    ) -> None:
        self._on_slot(
            params.conversation_id,
            emit,
            stop,
            arrival,
            lambda usage: ChatDone(FinishReason.CANCELLED, usage),
            lambda slot, queue_ms: self._chat_on(slot, queue_ms, params, emit, stop, arrival),
        )

    def _chat_on(
        self,
        slot: int,
        queue_ms: float,
        params: ChatParams,
        emit: Emit,
        stop: Callable[[], bool],
        arrival: float,
    ) -> None:
        engine = self._engines[slot]
        n_ctx = int(engine.n_ctx)
        max_tokens = min(params.max_tokens or self._config.default_max_tokens, n_ctx // 2)
        fmt = self._format
        try:
            rendered = fit_chat(
                params,
                fmt,
                lambda s: len(engine.tokenize(s, add_bos=fmt.add_bos)),
                n_ctx - max_tokens - 1,
            )
        except ChatTooLong as exc:
            raise ChatError(FailureCode.TOO_LARGE, str(exc)) from None
        except ValueError as exc:
            raise ChatError(FailureCode.INVALID, str(exc)) from None
        tokens = engine.tokenize(rendered.text, add_bos=fmt.add_bos)
        on_text = _FirstText(emit, arrival)
        # The reply guard stops a loop (and says so) and keeps the system prompt out of it.
        reply = complete_guarded(
            engine,
            tokens,
            max_tokens=max_tokens,
            stop=rendered.stop,
            system_prompt=system_text(params),
            should_stop=stop,
            on_text=on_text,
        )
        m = reply.completion.metrics
        total_ms = (time.monotonic() - arrival) * 1000.0
        cached = int(m.reused_prefix_tokens) + int(m.reused_shifted_tokens)
        log.info(
            "chat on slot %d: %d prompt tokens (%d cached), %d generated, %s%s, %.0f ms",
            slot,
            m.prompt_tokens,
            cached,
            m.generated_tokens,
            reply.completion.stop_reason,
            f" (guard: {reply.tripped})" if reply.tripped else "",
            total_ms,
        )
        emit(
            ChatDone(
                _STOP_REASONS.get(reply.stop_reason, FinishReason.STOP),
                _usage(
                    int(m.prompt_tokens),
                    cached,
                    int(m.generated_tokens),
                    queue_ms,
                    on_text.ms,
                    total_ms,
                ),
            )
        )

    def _model_rewrite(
        self,
        slot: int,
        request: ApplyInput,
        on_text: Callable[[str], None],
        stop: Callable[[], bool],
    ) -> Any:
        from local_models.apply_model import rewrite_file

        return rewrite_file(self._engines[slot], request, on_text=on_text, should_stop=stop)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.close()
        for engine in self._engines:
            engine.close()


# ---------------------------------------------------------------------------------------------
# an OpenAI-compatible HTTP server


def openai_messages(params: ChatParams) -> list[dict[str, str]]:
    """The OpenAI ``messages`` for ``params``: the default system prompt unless the params
    bring their own, the context as fenced blocks in the last user message."""
    messages = list(params.messages)
    last_user = max((i for i, m in enumerate(messages) if m.role == Role.USER), default=-1)
    out: list[dict[str, str]] = []
    if not messages or messages[0].role != Role.SYSTEM:
        out.append({"role": "system", "content": DEFAULT_SYSTEM_PROMPT})
    for i, m in enumerate(messages):
        content = user_content(m.content, params.context) if i == last_user else m.content
        out.append({"role": m.role, "content": content})
    return out


class _SseError(Exception):
    pass


def _sse_events(lines: Iterator[bytes]) -> Iterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined with newlines)."""
    data: list[str] = []
    for raw in lines:
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise _SseError("an event line is not UTF-8") from None
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        elif name not in ("event", "id", "retry"):
            raise _SseError(f"unexpected line in the event stream (field {name[:40]!r})")
    if data:
        yield "\n".join(data)


class OpenAIBackend(_SlotBackend):
    """Streams replies from ``{openai_url}/v1/chat/completions``; ``slots`` caps the calls
    in flight to it (more wait in the queue)."""

    name = "openai"

    def __init__(self, config: ServerConfig) -> None:
        assert config.openai_url and config.openai_model  # ServerConfig.validate checks it
        parts = urlsplit(config.openai_url)
        if not parts.hostname:
            raise ValueError(f"openai_url {config.openai_url!r} names no host")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path.rstrip("/") + "/v1/chat/completions"
        self.model = config.openai_model
        super().__init__(config)

    def _connection(self) -> http.client.HTTPConnection:
        timeout = self._config.openai_timeout_s
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _run(
        self, params: ChatParams, emit: Emit, stop: Callable[[], bool], arrival: float
    ) -> None:
        self._on_slot(
            params.conversation_id,
            emit,
            stop,
            arrival,
            lambda usage: ChatDone(FinishReason.CANCELLED, usage),
            lambda slot, queue_ms: self._call(params, emit, stop, arrival, queue_ms),
        )

    def _call(
        self,
        params: ChatParams,
        emit: Emit,
        stop: Callable[[], bool],
        arrival: float,
        queue_ms: float,
    ) -> None:
        conn = self._connection()
        try:
            with closed_on_stop(conn, stop, "forecode-cloud-http-watch"):
                self._exchange(conn, params, emit, stop, arrival, queue_ms)
        finally:
            conn.close()

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        params: ChatParams,
        emit: Emit,
        stop: Callable[[], bool],
        arrival: float,
        queue_ms: float,
    ) -> None:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(params),
            "stream": True,
            "max_tokens": params.max_tokens or self._config.default_max_tokens,
            "temperature": params.temperature,
            "stream_options": {"include_usage": True},
        }
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = self._config.openai_api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        where = f"the model server at {self._host}:{self._port}"

        def cancelled() -> None:
            total = (time.monotonic() - arrival) * 1000.0
            emit(ChatDone(FinishReason.CANCELLED, _usage(0, 0, 0, queue_ms, None, total)))

        try:
            conn.request("POST", self._path, body=json.dumps(body).encode("utf-8"), headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if stop():
                return cancelled()
            raise ChatError(
                FailureCode.UNAVAILABLE, f"cannot reach {where}: {exc}", retryable=True
            ) from None
        if response.status != 200:
            # The details go back to the caller only (never to the log): they may quote input.
            detail = response.read(300).decode("utf-8", "replace").strip()
            what = f"{where} answered HTTP {response.status} {response.reason}" + (
                f": {detail}" if detail else ""
            )
            if response.status == 429:
                raise ChatError(FailureCode.BUSY, f"the service is busy: {what}", retryable=True)
            if response.status >= 500:
                raise ChatError(FailureCode.UNAVAILABLE, what, retryable=True)
            raise ChatError(FailureCode.INTERNAL, what)
        first: float | None = None
        finish: str | None = None
        usage: dict[str, Any] = {}
        completion_chars = 0
        chunks = 0  # content events: one token each from llama.cpp's server and vLLM
        saw_done = False
        try:
            for data in _sse_events(iter(response.readline, b"")):
                if data.strip() == "[DONE]":
                    saw_done = True
                    break
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    raise _SseError("an event is not JSON") from None
                if not isinstance(chunk, dict):
                    raise _SseError("an event is not a JSON object")
                if isinstance(chunk.get("error"), dict | str):
                    raise ChatError(
                        FailureCode.UNAVAILABLE,
                        f"{where} reported an error mid-stream",
                        retryable=True,
                    )
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                choices = chunk.get("choices")
                if not isinstance(choices, list):
                    raise _SseError("an event has no 'choices' list")
                for choice in choices[:1]:
                    if not isinstance(choice, dict):
                        raise _SseError("a choice is not a JSON object")
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(text, str) and text:
                        if first is None:
                            first = (time.monotonic() - arrival) * 1000.0
                        completion_chars += len(text)
                        chunks += 1
                        emit(ChatDelta(text))
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
        except _SseError as exc:
            raise ChatError(
                FailureCode.INTERNAL, f"{where} sent a malformed event stream: {exc}"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            if stop():
                return cancelled()
            raise ChatError(
                FailureCode.UNAVAILABLE, f"the connection to {where} broke: {exc}", retryable=True
            ) from None
        if stop() and not saw_done:
            return cancelled()
        if not saw_done and finish is None:
            raise ChatError(
                FailureCode.UNAVAILABLE,
                f"{where} ended the stream before the reply was complete",
                retryable=True,
            )
        total = (time.monotonic() - arrival) * 1000.0
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
        log.info(
            "chat via openai backend: %d chars generated, finish %s, %.0f ms",
            completion_chars,
            finish,
            total,
        )
        emit(
            ChatDone(
                FinishReason.LENGTH if finish == "length" else FinishReason.STOP,  # OpenAI's
                _usage(
                    _int(usage.get("prompt_tokens")),
                    _int(cached),
                    # Servers that send no usage (llama.cpp's Python server): count
                    # the content events instead.
                    _int(usage.get("completion_tokens")) or chunks,
                    queue_ms,
                    first,
                    total,
                ),
            )
        )

    def _model_rewrite(
        self,
        slot: int,
        request: ApplyInput,
        on_text: Callable[[str], None],
        stop: Callable[[], bool],
    ) -> Any:
        """The model path through the upstream: the same windows and checks as the ``llama``
        backend (``apply_model.rewrite_with``), each window a streamed chat completion."""
        from local_models.apply_model import rewrite_with

        return rewrite_with(_HttpWindowModel(self), request, on_text=on_text, should_stop=stop)

    def close(self) -> None:
        self._jobs.close()


class _HttpWindowModel:
    """``apply_model.WindowModel`` on an OpenAI-compatible upstream: the prompt as one user
    message, greedy, streamed; the answer's opening fence line is dropped and the closing
    fence ends it (the connection is closed there). No speculative edits: an upstream that
    has them (vLLM's n-gram speculation, llama.cpp's server with a draft model) uses them on
    its own side."""

    def __init__(self, backend: OpenAIBackend) -> None:
        self._b = backend

    def rewrite(
        self,
        user_text: str,
        response_prefix: str,
        stop: tuple[str, ...],
        draft_text: str,
        extra_tokens: int,
        *,
        on_text: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
        alt_text: str = "",
    ) -> Any:
        from local_models.apply_model import WindowAnswer
        from local_models.engine import RewriteMetrics

        b = self._b
        fence = stop[0] if stop else "```"
        body: dict[str, Any] = {
            "model": b.model,
            "stream": True,
            "temperature": 0.0,
            "messages": [{"role": "user", "content": user_text}],
            "max_tokens": len(draft_text) // 2 + extra_tokens + 64,
        }
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if b._config.openai_api_key:
            headers["Authorization"] = f"Bearer {b._config.openai_api_key}"
        where = f"the model server at {b._host}:{b._port}"
        metrics = RewriteMetrics()
        began = time.perf_counter()
        conn = b._connection()
        halted = should_stop or (lambda: False)

        pending = ""  # text after the last newline, held until its line is complete
        lines_seen = 0
        opened: list[bool] = []
        out: list[str] = []
        reason: str = RewriteStop.LENGTH

        def line_done(line: str) -> bool:
            """Take one complete answer line; True at the closing fence."""
            nonlocal lines_seen
            lines_seen += 1
            if lines_seen == 1 and line.lstrip().startswith(fence[:3]):
                opened.append(True)
                return False  # the opening fence (its language may differ)
            if line.strip() == fence:
                return True
            out.append(line + "\n")
            if on_text is not None:
                on_text(line + "\n")
            return False

        try:
            with closed_on_stop(conn, halted, "forecode-apply-http-watch"):
                try:
                    conn.request(
                        "POST", b._path, body=json.dumps(body).encode("utf-8"), headers=headers
                    )
                    response = conn.getresponse()
                except (OSError, http.client.HTTPException) as exc:
                    if halted():
                        return WindowAnswer("".join(out), RewriteStop.CANCELLED, metrics)
                    raise ChatError(
                        FailureCode.UNAVAILABLE, f"cannot reach {where}: {exc}", retryable=True
                    ) from None
                if response.status != 200:
                    detail = response.read(300).decode("utf-8", "replace").strip()
                    raise ChatError(
                        FailureCode.UNAVAILABLE if response.status >= 500 else FailureCode.INTERNAL,
                        f"{where} answered HTTP {response.status} {response.reason}"
                        + (f": {detail}" if detail else ""),
                    )
                try:
                    for data in _sse_events(iter(response.readline, b"")):
                        if data.strip() == "[DONE]":
                            break
                        chunk = json.loads(data)
                        choices = chunk.get("choices") if isinstance(chunk, dict) else None
                        if not isinstance(choices, list) or not choices:
                            continue
                        choice = choices[0]
                        delta = choice.get("delta") or {}
                        text = delta.get("content") if isinstance(delta, dict) else None
                        if isinstance(text, str) and text:
                            metrics.generated_tokens += 1
                            if not metrics.first_token_ms:
                                metrics.first_token_ms = (time.perf_counter() - began) * 1000.0
                            pending += text
                            closed = False
                            while "\n" in pending and not closed:
                                line, pending = pending.split("\n", 1)
                                closed = line_done(line)
                            if closed:
                                reason = RewriteStop.STOP
                                break
                        if choice.get("finish_reason"):
                            finish = str(choice["finish_reason"])
                            if pending.strip() and pending.strip() != fence:
                                line_done(pending)
                            pending = ""
                            # An answer in a fence that ended without closing it ended the
                            # window; one that never opened a fence is not an answer.
                            reason = (
                                RewriteStop.STOP
                                if finish == "stop" and opened
                                else RewriteStop.LENGTH
                                if finish == "length"
                                else RewriteStop.EOS
                            )
                            break
                except (OSError, http.client.HTTPException, json.JSONDecodeError, _SseError) as exc:
                    if halted():
                        return WindowAnswer("".join(out), RewriteStop.CANCELLED, metrics)
                    raise ChatError(
                        FailureCode.UNAVAILABLE,
                        f"the connection to {where} broke: {exc}",
                        retryable=True,
                    ) from None
        finally:
            conn.close()
        if halted():
            reason = RewriteStop.CANCELLED
        metrics.decode_ms = (time.perf_counter() - began) * 1000.0 - metrics.first_token_ms
        metrics.total_ms = (time.perf_counter() - began) * 1000.0
        return WindowAnswer("".join(out), reason, metrics)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---------------------------------------------------------------------------------------------
# registry


BACKENDS: dict[str, Callable[[ServerConfig], Backend]] = {
    BackendName.LLAMA: LlamaBackend,
    BackendName.OPENAI: OpenAIBackend,
}


def create_backend(config: ServerConfig) -> Backend:
    """The backend ``config.backend`` names; an unknown name lists the valid ones."""
    try:
        factory = BACKENDS[config.backend]
    except KeyError:
        raise ValueError(
            f"unknown backend {config.backend!r} (expected one of {', '.join(sorted(BACKENDS))})"
        ) from None
    return factory(config)
