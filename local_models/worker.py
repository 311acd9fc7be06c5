"""The engine worker: ``python -m local_models.worker --model PATH [--n-ctx N] [--threads N]``.

It loads one model and serves the protocol of ``forecode_core.protocol`` on stdin/stdout, so a
crash or hang inside llama.cpp takes down only this process; ``EngineClient`` restarts it.

Threads: a reader thread parses stdin and owns cancellation (a Cancel, or a newer request of
the kind that supersedes it, sets the older requests' flags at once, and the engine checks its
flag before every decode step); the main thread runs the engine over a queue of requests.
Events are written under one lock, one flushed line each, to a private duplicate of the
original stdout: file descriptor 1 itself is pointed at stderr, so nothing a native library
prints can corrupt the protocol.

Chat requests (the router's local fallback when the service is unreachable) are rendered with
``forecode_core.chat.prompt_formats`` in the model's chat format, fitted to the context, and decoded
greedily with the format's stop strings through the reply guard (``forecode_core.chat.repetition``:
a loop stops with a note, the system prompt never shows); their chunks stream like a
completion's.

Next-edit requests (``NextEdit``) are served by ``local_models.next_edit.predict``: the
editable region rewritten with its own text as the speculative draft; one Done, no Chunks.
The engine is made with ``NEXT_EDIT_MAX_OUTPUTS`` rows of logits per verify batch for it.
Predictions run on the engine's ``sibling`` where it has one (the real engine: the same
weights, a context and KV cache of their own, made at the first prediction), so completions
and warms never evict the prediction's prompt from the cache (stable parts first: the next
prediction re-evaluates only what changed).

Which request cancels which (``_supersedes``): a Complete cancels older Completes and Warms; a
NextEdit cancels older NextEdits and Warms; a Warm older Warms; a Chat older Chats. A
completion never cancels a next-edit prediction that is running (both are wanted: the ghost
text now, the next edit after it), and a prediction never cancels a completion the user is
waiting for; each waits its turn on the one engine.

Exit codes: 0 after Shutdown or EOF on stdin; 3 (``EXIT_FATAL``) when the model cannot be
loaded, after a ``Failed(None, message, fatal=True)``.

``FORECODE_FAKE_ENGINE=module:callable`` builds the engine with that callable (tests use a
scripted fake) instead of ``local_models.engine.Engine``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from pathlib import PurePath
from typing import IO, Any

from forecode_core.chat.prompt_formats import ChatTooLong, fit_chat, system_text
from forecode_core.chat.repetition import complete_guarded
from forecode_core.chat.types import params_from_json
from forecode_core.completion.healing import MAX_HEAL_TOKENS, heal_count
from forecode_core.completion.model import CompletionModel
from forecode_core.completion.prompt import CompletionInput, render_prompt
from forecode_core.profiles import DEFAULT_FORMAT, ChatFormat, FimTokens, profile_for, profile_of
from forecode_core.protocol import (
    EXIT_FATAL,
    Cancel,
    Chat,
    Chunk,
    Complete,
    Done,
    Event,
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

FAKE_ENGINE_ENV = "FORECODE_FAKE_ENGINE"
DEFAULT_N_CTX = 4096
DEFAULT_CHAT_MAX_TOKENS = 512
ORPHAN_GRACE_S = 5.0
"""After EOF on stdin (the editor is gone) the worker exits even if the engine is stuck."""


class _Output:
    """Serialised, flushed writes of events; a vanished reader ends the process quietly."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = encode_message(event)
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                os._exit(0)  # the editor is gone: nobody is left to serve


@dataclasses.dataclass
class _Job:
    request: Complete | Chat | NextEdit | Warm | Score
    flag: threading.Event


class _Inbox:
    """Requests from the reader thread to the main thread, with their cancel flags."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._flags: dict[int, tuple[str, threading.Event]] = {}
        # Set by every new request: stops background work (warming the full context).
        self.arrived = threading.Event()

    def add(self, request: Complete | Chat | NextEdit | Warm | Score) -> None:
        flag = threading.Event()
        self.arrived.set()
        with self._lock:
            # The editor only wants the newest completion: a Complete cancels older Completes
            # and Warms; a NextEdit older NextEdits and Warms; a Warm cancels older Warms (not
            # a completion the user is waiting for); a Chat cancels older Chats. Typing never
            # cancels a chat reply, and a completion never a running next-edit prediction.
            for kind, old in self._flags.values():
                if _supersedes(request, kind):
                    old.set()
            self._flags[request.id] = (request.TYPE, flag)
        self.jobs.put(_Job(request, flag))

    def cancel(self, request_id: int) -> None:
        with self._lock:
            entry = self._flags.get(request_id)
        if entry is not None:
            entry[1].set()

    def cancel_all(self) -> None:
        with self._lock:
            for _, flag in self._flags.values():
                flag.set()

    def finished(self, request_id: int) -> None:
        with self._lock:
            self._flags.pop(request_id, None)

    def stop(self) -> None:
        self.cancel_all()
        self.arrived.set()
        self.jobs.put(None)

    def idle(self) -> bool:
        """No request waits: background work may start (``arrived`` cleared; it stops it)."""
        self.arrived.clear()
        return self.jobs.empty()


def _supersedes(request: Complete | Chat | NextEdit | Warm | Score, older_kind: str) -> bool:
    if isinstance(request, Complete | NextEdit):
        return older_kind in (request.TYPE, Warm.TYPE)
    return older_kind == request.TYPE


def _exit_if_orphaned(loaded: threading.Event, fd: int = 0) -> None:
    """While the model loads (a native call of tens of seconds on a busy CPU, which nothing
    interrupts), leave at once if the editor goes: its end of our stdin hangs up. The pipe is
    polled for the hang-up only, so no request the editor already sent is consumed. Where
    ``poll`` is missing (Windows) the worker notices after the load, as before."""
    import select

    if not hasattr(select, "poll"):
        return
    poller = select.poll()
    poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are always reported
    while not loaded.is_set():
        try:
            events = poller.poll(200)
        except OSError:
            return
        if any(mask & (select.POLLHUP | select.POLLERR) for _, mask in events):
            if not loaded.is_set():
                os._exit(0)
            return
        if any(mask & select.POLLNVAL for _, mask in events):
            return  # no stdin at all: nothing to watch


def _read_requests(stdin: IO[bytes], inbox: _Inbox, out: _Output) -> None:
    while True:
        try:
            line = read_line(stdin)
        except ProtocolError as exc:
            out.emit(Failed(None, f"ignored a bad message: {exc}", fatal=False))
            continue
        except (OSError, ValueError):
            line = None
        if line is None:
            break  # EOF: the editor closed our stdin or died
        try:
            message = decode_message(line)
        except ProtocolError as exc:
            out.emit(Failed(None, f"ignored a bad message: {exc}", fatal=False))
            continue
        if isinstance(message, Complete | Chat | NextEdit | Warm | Score):
            inbox.add(message)
        elif isinstance(message, Cancel):
            inbox.cancel(message.id)
        elif isinstance(message, Shutdown):
            inbox.stop()
            return
        else:
            out.emit(
                Failed(
                    None,
                    f"ignored a {message.TYPE!r} message: the worker takes only requests",
                    fatal=False,
                )
            )
    inbox.stop()
    # The main thread should now exit at its next decode step; if the engine is stuck inside
    # llama.cpp nobody will ever kill us, so do it ourselves.
    time.sleep(ORPHAN_GRACE_S)
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# engine construction


def _model_error_types(extra: Any = None) -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    for module_name in ("local_models.engine", "local_models.gguf_info"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        error = getattr(module, "ModelError", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            types.append(error)
    error = getattr(extra, "ModelError", None)
    if isinstance(error, type) and issubclass(error, BaseException):
        types.append(error)
    return tuple(types)


def _engine_factory() -> tuple[Callable[..., Any], tuple[type[BaseException], ...], bool]:
    """The engine constructor, the exceptions that mean "bad model", and whether it is fake."""
    spec = os.environ.get(FAKE_ENGINE_ENV, "").strip()
    if spec:
        module_name, _, attr = spec.partition(":")
        module = importlib.import_module(module_name)
        factory = getattr(module, attr or "make")
        return factory, _model_error_types(module), True
    from local_models.engine import Engine

    return Engine, _model_error_types(), False


def _profile_context(model_path: str, *, fake: bool) -> int:
    """The n_ctx the model's profile asks for, read from the GGUF header before loading it."""
    if fake:
        return DEFAULT_N_CTX
    from local_models.gguf_info import read_model_info  # raises ModelError for a bad file

    return profile_of(read_model_info(model_path)).max_context


def _jsonable(value: Any) -> Any:
    """Plain JSON values for dataclasses / paths / odd floats (NaN and inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, PurePath | os.PathLike):
        return os.fspath(value)
    return str(value)


def _fim_tokens(engine: CompletionModel, info: Any) -> FimTokens | None:
    """The GGUF's own FIM marker strings, when its tokenizer declares all three."""
    ids = (
        getattr(info, "fim_prefix_id", None),
        getattr(info, "fim_suffix_id", None),
        getattr(info, "fim_middle_id", None),
    )
    present = [i for i in ids if i is not None]
    if len(present) < len(ids):
        return None
    try:
        prefix, suffix, middle = (engine.detokenize([i]) for i in present)
        return FimTokens(prefix, suffix, middle)
    except Exception:  # an odd vocabulary: the profile's defaults apply
        return None


# ---------------------------------------------------------------------------------------------
# serving


# The editor's UI thread comes first: see llama_runtime.lower_priority.
DEFAULT_NICE = 10
_PIECE_CACHE_SIZE = 20_000  # lines and blocks whose token counts the worker keeps
# A completion whose full context would evaluate more than this many tokens first answers from
# a smaller context near the cursor (at the least 8 to 15 lines above it, 4 below, with the same
# head and snippets, so its start is cached), then warms larger ones in the background.
FIRST_ANSWER_TOKENS = 64
FIRST_PROMPT: dict[str, Any] = {"near_lines": 8, "grid": 8, "suffix_lines": 4, "far": False}
# The prompts a completion may use, smallest first: the first answer's, windows that grow
# (each the same stable start, so one step costs only the lines it adds), the full context.
# A request takes the largest whose uncached part is at most FIRST_ANSWER_TOKENS (else the
# cheapest); while nothing waits, the worker warms the next larger ones in turn, so the
# context grows while the user types and pauses, and a cancelled step keeps the last one.
PROMPT_LADDER: tuple[dict[str, Any], ...] = (
    FIRST_PROMPT,
    {"near_lines": 24, "grid": 8, "suffix_lines": 4, "far": False},
    {"near_lines": 56, "grid": 16, "suffix_lines": 8, "far": False},
    {},  # the full context (prompt.SUFFIX_LINES below the cursor)
)
# Why the suffix is short: a FIM prompt's suffix comes after the cursor, so every keystroke
# changes what it follows; its cells are evaluated again each time (``fresh_from``: cells moved
# from the old cache still carry the old text before the cursor, and the model then answers
# for that text: measured on Qwen2.5-Coder 1.5B, "co|dec = codec" typed on to "cod|" was still
# completed "dec = codec").


class _Server:
    def __init__(
        self,
        engine: CompletionModel,
        profile: Any,
        out: _Output,
        inbox: _Inbox,
        chat_format: ChatFormat | None = None,
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.chat_format = chat_format or DEFAULT_FORMAT
        self.out = out
        self.inbox = inbox
        # Token counts of the lines and snippet blocks seen lately: they steer render_prompt's
        # search for what fits the budget (most lines are the same from one request to the next).
        self._piece_tokens: OrderedDict[str, int] = OrderedDict()
        self._suffix_marker: int | bool | None = False  # False: not looked up yet

    def _estimate_tokens(self, piece: str) -> int:
        cache = self._piece_tokens
        n = cache.get(piece)
        if n is None:
            n = len(self.engine.tokenize(piece))
            cache[piece] = n
            if len(cache) > _PIECE_CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(piece)
        return n

    def _input(self, input_json: dict[str, Any]) -> CompletionInput:
        try:
            return CompletionInput.from_json(input_json)
        except (ValueError, TypeError, KeyError) as exc:
            raise _RequestError(f"bad completion input: {exc}") from None

    def _render(
        self, inp: CompletionInput, *, near_only: bool = False, shape: dict[str, Any] | None = None
    ) -> list[int]:
        """The prompt's tokens: the full context, ``shape`` (a ``PROMPT_LADDER`` rung), or
        (``near_only``) the small first-answer prompt: the same start (head, snippets) and
        only the lines near the cursor."""
        add_bos = bool(self.profile.add_bos)
        counted: dict[str, list[int]] = {}

        bos = self.engine.info.bos_id

        def count(text: str) -> int:  # the text's own tokens; the BOS is not the budget's
            toks = counted[text] = self.engine.tokenize(text, add_bos=add_bos)
            return len(toks) - (1 if add_bos and toks and toks[0] == bos else 0)

        rendered = render_prompt(
            inp,
            self.profile,
            count,
            self.profile.prompt_budget,
            estimate_tokens=self._estimate_tokens,
            **(FIRST_PROMPT if near_only else shape or {}),
        )
        tokens = counted.get(rendered.text)
        if tokens is None:
            tokens = self.engine.tokenize(rendered.text, add_bos=add_bos)
        return tokens

    def _fresh_from(self, tokens: list[int]) -> int | None:
        """Where a FIM prompt's suffix starts (its marker token): cells from there on are
        never moved from the old cache (see ``PROMPT_LADDER``). None without FIM."""
        if self._suffix_marker is False:
            fim = getattr(self.profile, "fim", None)
            marker = self.engine.tokenize(fim.suffix) if fim is not None else []
            self._suffix_marker = marker[0] if len(marker) == 1 else None
        if self._suffix_marker is None:
            return None
        for i in range(len(tokens) - 1, -1, -1):
            if tokens[i] == self._suffix_marker:
                return i
        return None

    def _healed(self, tokens: list[int], prefix: str) -> tuple[list[int], int | None, str]:
        """Token healing (``forecode_core.completion.healing``): the prompt without the tokens
        that end at the caret and cover the line's last unit, where the FIM suffix starts in
        it, and their text, which the answer must start with (``force_prefix``). The caret is
        before the suffix marker in a FIM prompt, at the end of a prefix-only one; nothing is
        taken back where the tokens there do not spell the prefix's end."""
        fresh = self._fresh_from(tokens)
        ready = getattr(self.engine, "healing_ready", None)
        if ready is None or not ready():  # a fake engine, or the index not built yet
            return tokens, fresh, ""
        caret = len(tokens) if fresh is None else fresh
        pieces = [
            self.engine.detokenize([t]) for t in tokens[max(0, caret - MAX_HEAL_TOKENS) : caret]
        ]
        k = heal_count(pieces, prefix)
        if k == 0:
            return tokens, fresh, ""
        healed = tokens[: caret - k] + tokens[caret:]
        return healed, None if fresh is None else fresh - k, "".join(pieces[-k:])

    def _prompt_tokens(self, input_json: dict[str, Any]) -> list[int]:
        return self._render(self._input(input_json))

    def _choose_prompt(
        self, input_json: dict[str, Any]
    ) -> tuple[list[int], list[list[int]], dict[str, Any]]:
        """``(prompt, larger prompts to warm afterwards, facts)``: the largest rung of
        ``PROMPT_LADDER`` whose uncached part is small, else the cheapest one."""
        inp = self._input(input_json)
        cost = self.engine.reuse_cost
        full = self._render(inp, shape=PROMPT_LADDER[-1])
        rungs: list[list[int]] = []
        costs: list[int] = []
        names: list[str] = []
        for level in range(len(PROMPT_LADDER) - 1, -1, -1):  # the full context first
            shape = PROMPT_LADDER[level]
            tokens = full if level == len(PROMPT_LADDER) - 1 else self._render(inp, shape=shape)
            if rungs and tokens == rungs[-1]:
                continue  # a small file: this rung is the one above
            rungs.append(tokens)
            costs.append(int(cost(tokens, self._fresh_from(tokens))))
            names.append(
                "full"
                if level == len(PROMPT_LADDER) - 1
                else "near"
                if level == 0
                else f"window{level}"
            )
            if costs[-1] <= FIRST_ANSWER_TOKENS:
                break
        pick = next(
            (i for i, c in enumerate(costs) if c <= FIRST_ANSWER_TOKENS),
            min(range(len(costs)), key=costs.__getitem__),
        )
        facts: dict[str, Any] = {
            "context": names[pick],
            "full_cost_tokens": costs[0],
            "cost_tokens": costs[pick],
        }
        # To warm next: the rungs above the pick, smallest first (those not rendered, when
        # the search stopped early, are the full context's own: it is always rung 0).
        return rungs[pick], rungs[:pick][::-1], facts

    def _warm_in_background(self, prompts: list[list[int]]) -> None:
        """Evaluate the larger prompts in turn while nothing else waits; a new request stops
        a step within one decode step, and the cache keeps the last prompt completed (or the
        one that was answered)."""
        for tokens in prompts:
            if not self.inbox.idle():
                return
            self.engine.warm(
                tokens,
                should_stop=self.inbox.arrived.is_set,
                keep_on_cancel=True,
                fresh_from=self._fresh_from(tokens),
            )
            if self.inbox.arrived.is_set():
                return

    def run(self) -> None:
        while True:
            job = self.inbox.jobs.get()
            if job is None:
                return
            try:
                self._serve(job)
            except _RequestError as exc:
                self.out.emit(Failed(job.request.id, str(exc), fatal=False))
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                self.out.emit(Failed(job.request.id, _one_line(exc), fatal=False))
            finally:
                self.inbox.finished(job.request.id)

    def _chat_tokens(self, request: Chat) -> tuple[list[int], int, str]:
        """The chat prompt's tokens, the reply's token cap and the system text (which the
        reply guard keeps out of the reply)."""
        try:
            params = params_from_json(request.params)
        except ValueError as exc:
            raise _RequestError(f"bad chat params: {exc}") from None
        n_ctx = self.engine.n_ctx
        max_tokens = min(
            request.max_tokens or params.max_tokens or DEFAULT_CHAT_MAX_TOKENS, n_ctx // 2
        )
        fmt = self.chat_format
        try:
            rendered = fit_chat(
                params,
                fmt,
                lambda s: len(self.engine.tokenize(s, add_bos=fmt.add_bos)),
                n_ctx - max_tokens - 1,
            )
        except ValueError as exc:  # ChatTooLong, or no user message
            kind = "too long" if isinstance(exc, ChatTooLong) else "bad chat"
            raise _RequestError(f"{kind}: {exc}") from None
        tokens: list[int] = self.engine.tokenize(rendered.text, add_bos=fmt.add_bos)
        return tokens, max_tokens, system_text(params)

    def _serve(self, job: _Job) -> None:
        request, flag = job.request, job.flag
        if isinstance(request, Warm):
            if flag.is_set():
                self.out.emit(Warmed(request.id, {}))
                return
            # The lines near the cursor first (what the next request needs soonest), then
            # the full context, which a request that arrives meanwhile may stop.
            tokens, larger, facts = self._choose_prompt(request.input)
            metrics = self.engine.warm(
                tokens, should_stop=flag.is_set, fresh_from=self._fresh_from(tokens)
            )
            self.out.emit(Warmed(request.id, {**_jsonable(metrics), **facts}))
            if not flag.is_set():
                self._warm_in_background(larger)
            return
        if flag.is_set():  # superseded or cancelled while queued
            self.out.emit(Done(request.id, "", "cancelled", {}))
            return
        request_id = request.id

        def on_text(text: str) -> None:
            if text and not flag.is_set():
                self.out.emit(Chunk(request_id, text))

        if isinstance(request, NextEdit):
            self._next_edit(request, flag, on_text)
            return
        if isinstance(request, Score):
            self._score(request, flag)
            return
        if isinstance(request, Chat):
            tokens, max_tokens, system = self._chat_tokens(request)
            reply = complete_guarded(
                self.engine,
                tokens,
                max_tokens=max_tokens,
                stop=self.chat_format.stop,
                system_prompt=system,
                should_stop=flag.is_set,
                on_text=on_text,
            )
            self.out.emit(
                Done(request_id, reply.text, reply.stop_reason, _jsonable(reply.completion.metrics))
            )
            return
        tokens, larger, facts = self._choose_prompt(request.input)
        tokens, fresh_from, force = self._healed(tokens, self._input(request.input).prefix)
        completion = self.engine.complete(
            tokens,
            max_tokens=request.max_tokens or self.profile.max_tokens,
            stop=tuple(self.profile.stop),
            speculative=request.speculative,
            should_stop=flag.is_set,
            on_text=on_text,
            fresh_from=fresh_from,
            force_prefix=force,
        )
        self.out.emit(
            Done(
                request_id,
                completion.text,
                completion.stop_reason,
                {**_jsonable(completion.metrics), **facts},
            )
        )
        self._warm_in_background(larger)

    def _next_edit(
        self, request: NextEdit, flag: threading.Event, on_text: Callable[[str], None]
    ) -> None:
        """Its text streams as chunks (the client reads them as signs of life only: a slow
        rewrite on a loaded machine once went 30 s without a message and was killed as hung)."""
        from forecode_core.next_edit.input import NextEditInput
        from local_models.next_edit import NextEditModel, predict

        try:
            inp = NextEditInput.from_json(request.input)
        except (ValueError, TypeError, KeyError) as exc:
            raise _RequestError(f"bad next-edit input: {exc}") from None
        engine = self._prediction_engine()
        if not isinstance(engine, NextEditModel):
            raise _RequestError("this engine cannot predict edits (no rewrite)")
        try:
            prediction = predict(
                engine,
                self.profile,
                inp,
                max_tokens=request.max_tokens,
                should_stop=flag.is_set,
                on_text=on_text,
            )
        except ValueError as exc:
            raise _RequestError(f"next edit: {exc}") from None
        self.out.emit(
            Done(request.id, prediction.text, prediction.stop_reason, _jsonable(prediction.metrics))
        )

    def _score(self, request: Score, flag: threading.Event) -> None:
        """The bug finder's score on the main engine (it asks only while the editor is idle):
        the log-probabilities of the continuation's tokens in Done's metrics."""
        score = getattr(self.engine, "score", None)
        if not callable(score):
            raise _RequestError("this engine cannot score text")
        prompt = self.engine.tokenize(request.prefix, add_bos=True)
        continuation = self.engine.tokenize(request.continuation)
        try:
            scores = score(prompt, continuation, flag.is_set)
        except ValueError as exc:
            raise _RequestError(f"score: {exc}") from None
        if scores is None:
            self.out.emit(Done(request.id, "", "cancelled", {}))
            return
        rows = [[float(lp), float(top)] for lp, top in scores]
        self.out.emit(Done(request.id, "", "stop", {"scores": rows}))

    def _prediction_engine(self) -> CompletionModel:
        """The engine predictions run on: the main engine's sibling (module doc), made once;
        the main engine itself where it has none (the tests' fake)."""
        twin = getattr(self, "_twin", None)
        if twin is None:
            from local_models.next_edit import NEXT_EDIT_FLASH_ATTN

            make = getattr(self.engine, "sibling", None)
            twin = self._twin = (
                make(n_ctx=NEXT_EDIT_CONTEXT, flash_attn=NEXT_EDIT_FLASH_ATTN)
                if callable(make)
                else self.engine
            )
        return twin


# The prediction engine's context: next-edit's prompt budget (1,024 tokens), the region's
# draft and the answer's slack fit with room to spare; less KV memory than the model's whole
# context.
NEXT_EDIT_CONTEXT = 2048


class _RequestError(Exception):
    """A request the worker can explain without a traceback (bad input)."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_models.worker", description="Forecode's llama.cpp engine worker."
    )
    parser.add_argument("--model", required=True, help="path to a GGUF model")
    parser.add_argument(
        "--n-ctx",
        type=int,
        default=None,
        help="context length in tokens (default: the model profile's)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for llama.cpp")
    parser.add_argument(
        "--no-fim",
        action="store_true",
        help="prefix-only completion prompts even for a model with FIM tokens "
        "(benchmarks compare the two)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=DEFAULT_NICE,
        help=f"CPU priority offset below the editor's (default {DEFAULT_NICE})",
    )
    args = parser.parse_args(argv)

    # The editor owns our lifetime: Ctrl+C in its terminal must not print a traceback here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Protocol output goes to a private copy of stdout; fd 1 (and sys.stdout) now go to stderr.
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = _Output(os.fdopen(proto_fd, "wb", buffering=0))
    if args.nice > 0:
        from local_models.llama_runtime import lower_priority

        lower_priority(args.nice)

    loaded = threading.Event()
    threading.Thread(
        target=_exit_if_orphaned, args=(loaded,), name="forecode-worker-orphan", daemon=True
    ).start()
    try:
        factory, model_errors, fake = _engine_factory()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        out.emit(Failed(None, f"could not start the engine: {_one_line(exc)}", fatal=True))
        return EXIT_FATAL
    try:
        n_ctx = args.n_ctx or _profile_context(args.model, fake=fake)
        from local_models.next_edit import NEXT_EDIT_MAX_OUTPUTS

        # Long verify batches for next-edit, at the prior's costs (no timing at start).
        engine = factory(
            args.model,
            n_ctx=n_ctx,
            n_threads=args.threads,
            max_outputs=NEXT_EDIT_MAX_OUTPUTS,
            measure_batches=False,
        )
    except model_errors as exc:
        out.emit(Failed(None, " ".join(str(exc).split()) or type(exc).__name__, fatal=True))
        return EXIT_FATAL
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        out.emit(
            Failed(None, f"could not load the model {args.model}: {_one_line(exc)}", fatal=True)
        )
        return EXIT_FATAL

    try:
        info = engine.info
        fim = _fim_tokens(engine, info)
        fim_ids_present = all(
            getattr(info, f"fim_{part}_id", None) is not None
            for part in ("prefix", "suffix", "middle")
        )
        profile = profile_for(
            str(getattr(info, "architecture", "") or ""),
            getattr(info, "name", "") or "",
            fim_ids_present=fim_ids_present,
            fim_token_strings=fim,
            chat_template=getattr(info, "chat_template", None),
        )
        if args.no_fim and profile.fim is not None:
            profile = dataclasses.replace(profile, fim=None)
        inbox = _Inbox()
        server = _Server(engine, profile, out, inbox, profile.chat)
        prepare = getattr(engine, "prepare_healing", None)  # token healing's index
        if prepare is not None:
            threading.Thread(target=prepare, name="forecode-vocab", daemon=True).start()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        out.emit(Failed(None, f"could not set up the model: {_one_line(exc)}", fatal=True))
        return EXIT_FATAL

    out.emit(
        Ready(model=_jsonable(info), profile=str(getattr(profile, "id", profile)), pid=os.getpid())
    )
    reader = threading.Thread(
        target=_read_requests,
        args=(sys.stdin.buffer, inbox, out),
        name="forecode-worker-stdin",
        daemon=True,
    )
    reader.start()
    loaded.set()  # from here the reader sees EOF itself
    server.run()
    try:
        engine.close()
    except Exception:
        traceback.print_exc(file=sys.stderr)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Skip interpreter teardown: the reader thread may be blocked in a read, and native
    # destructors have nothing left to do for a process that is exiting.
    os._exit(code)
