"""The engine worker and its protocol: message round trips, every malformed input, and the worker
process itself (with the scripted fake engine, then with the real default model)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from forecode_core import protocol
from forecode_core.completion.prompt import CompletionInput
from forecode_core.protocol import (
    EXIT_FATAL,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Cancel,
    Chunk,
    Complete,
    Done,
    Failed,
    Message,
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
from local_models.worker import DEFAULT_NICE

FAKE = "tests.helpers.fake_engine:make"


def inp(prefix: str, suffix: str = "") -> dict[str, Any]:
    return CompletionInput("src/a.py", "python", prefix, suffix).to_json()


# ---------------------------------------------------------------------------------------------
# protocol

ALL_MESSAGES: list[Message] = [
    Complete(1, inp("x = "), None, False),
    Complete(2, inp("x = ", "\n"), 16, True),
    Warm(3, inp("def f():\n")),
    Score(9, "def f(x):\n", "    return x\n"),
    Cancel(4),
    Shutdown(),
    Ready({"name": "m", "architecture": "gemma3", "fim_prefix_id": None}, "gemma3", 123),
    Chunk(5, 'héllo\n\t"quoted" \u2028 \U0001f600'),
    Done(5, "héllo", "eos", {"prompt_tokens": 3, "total_ms": 1.5}),
    Done(6, "", "cancelled", {}),
    Warmed(7, {"evaluated_tokens": 10}),
    Failed(None, "bad line", False),
    Failed(8, "boom", False),
    Failed(None, "not a GGUF file", True),
]


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    line = encode_message(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_message(line) == message
    assert decode_message(line.decode().rstrip("\n")) == message  # str, no newline
    assert json.loads(line)["type"] == message.TYPE


def test_ready_carries_the_protocol_version() -> None:
    assert json.loads(encode_message(Ready({}, "p", 1)))["protocol"] == PROTOCOL_VERSION
    ready = decode_message(b'{"type":"ready","protocol":99,"model":{},"profile":"p","pid":1}')
    assert isinstance(ready, Ready) and ready.protocol == 99  # the client judges versions


def test_lone_surrogates_and_control_characters_survive() -> None:
    text = "a\ud800b\x00c\r\n"
    line = encode_message(Chunk(1, text))
    assert line.isascii()
    assert decode_message(line) == Chunk(1, text)


def test_optional_fields_default_and_extra_fields_are_ignored() -> None:
    message = decode_message(b'{"type":"complete","id":1,"input":{},"future":[1,2]}')
    assert message == Complete(1, {}, None, False)
    assert decode_message(b'{"type":"shutdown","why":"x"}\r\n') == Shutdown()


def test_non_finite_numbers_are_not_encoded() -> None:
    with pytest.raises(ProtocolError, match="cannot be encoded"):
        encode_message(Done(1, "", "eos", {"x": float("nan")}))


MALFORMED: list[tuple[bytes, str]] = [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"not json\n", "not valid JSON"),
    (b'{"type": "cancel", "id": 1\n', "not valid JSON"),
    (b"\xff\xfe{}\n", "not UTF-8"),
    (b"[1, 2]\n", "must be a JSON object, not a list"),
    (b"42\n", "must be a JSON object, not an integer"),
    (b'"complete"\n', "must be a JSON object, not a string"),
    (b"{}\n", "no 'type'"),
    (b'{"type": 7}\n', "'type' must be a string, not an integer"),
    (b'{"type": "explode"}\n', "unknown message type 'explode'"),
    (b'{"type": "cancel"}\n', "missing the field 'id'"),
    (b'{"type": "cancel", "id": "7"}\n', "'id' must be an integer, not a string"),
    (b'{"type": "cancel", "id": true}\n', "'id' must be an integer, not a boolean"),
    (b'{"type": "cancel", "id": 1.0}\n', "'id' must be an integer, not a number"),
    (b'{"type": "cancel", "id": -1}\n', "must not be negative"),
    (b'{"type": "complete", "id": 1}\n', "missing the field 'input'"),
    (b'{"type": "complete", "id": 1, "input": []}\n', "'input' must be an object, not a list"),
    (
        b'{"type": "complete", "id": 1, "input": {}, "max_tokens": "9"}\n',
        "'max_tokens' must be an integer or null",
    ),
    (b'{"type": "complete", "id": 1, "input": {}, "max_tokens": 0}\n', "must be positive"),
    (
        b'{"type": "complete", "id": 1, "input": {}, "speculative": 1}\n',
        "'speculative' must be a boolean, not an integer",
    ),
    (b'{"type": "warm", "id": 1, "input": null}\n', "'input' must be an object, not null"),
    (b'{"type": "ready", "model": {}, "profile": "p", "pid": 1}\n', "missing the field 'protocol'"),
    (
        b'{"type": "ready", "protocol": 1, "model": {}, "profile": 3, "pid": 1}\n',
        "'profile' must be a string",
    ),
    (b'{"type": "chunk", "id": 1, "text": null}\n', "'text' must be a string, not null"),
    (
        b'{"type": "done", "id": 1, "text": "", "stop_reason": "tired", "metrics": {}}\n',
        "unknown stop_reason 'tired'",
    ),
    (
        b'{"type": "done", "id": 1, "text": "", "stop_reason": "eos", "metrics": []}\n',
        "'metrics' must be an object",
    ),
    (b'{"type": "warmed", "id": 1}\n', "missing the field 'metrics'"),
    (
        b'{"type": "failed", "id": "x", "message": "m", "fatal": false}\n',
        "'id' must be an integer or null",
    ),
    (
        b'{"type": "failed", "id": null, "message": "m", "fatal": "yes"}\n',
        "'fatal' must be a boolean, not a string",
    ),
    (b'{"type": "failed", "id": null, "fatal": true}\n', "missing the field 'message'"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "not valid JSON"),
]


@pytest.mark.parametrize(("line", "error"), MALFORMED, ids=[e for _, e in MALFORMED])
def test_malformed_lines_raise_a_clear_protocol_error(line: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error.replace("(", r"\(").replace(")", r"\)")):
        decode_message(line)


def test_a_line_over_the_limit_is_refused() -> None:
    big = b'{"type":"chunk","id":1,"text":"' + b"x" * MAX_MESSAGE_BYTES + b'"}\n'
    with pytest.raises(ProtocolError, match="longer than the limit"):
        decode_message(big)
    with pytest.raises(ProtocolError, match="longer than the limit"):
        encode_message(Chunk(1, "x" * MAX_MESSAGE_BYTES))


def test_read_line_skips_an_overlong_line_and_stays_in_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(protocol, "MAX_MESSAGE_BYTES", 16)
    stream = io.BytesIO(b"short\n" + b"y" * 50 + b"\n" + b"x" * 16 + b"\nlast")
    assert read_line(stream) == b"short\n"
    with pytest.raises(ProtocolError, match="at least 51 bytes"):
        read_line(stream)
    assert read_line(stream) == b"x" * 16 + b"\n"  # exactly the limit is fine
    assert read_line(stream) == b"last"  # a last line without newline
    assert read_line(stream) is None


# ---------------------------------------------------------------------------------------------
# the worker process


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FORECODE_FAKE_ENGINE", None)
    env.update(extra)
    return env


class Worker:
    """A worker process with a thread turning its stdout into decoded events."""

    def __init__(self, model: str | Path, *, fake: bool = True, args: tuple[str, ...] = ()) -> None:
        env = worker_env(**({"FORECODE_FAKE_ENGINE": FAKE} if fake else {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "local_models.worker", "--model", str(model), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
        )
        self.events: queue.Queue[Message | None] = queue.Queue()
        self.bad_lines: list[bytes] = []
        self.stderr = b""
        self._threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(decode_message(line))
            except ProtocolError:
                self.bad_lines.append(line)
        self.events.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def send(self, *messages: Message) -> None:
        self.send_raw(b"".join(encode_message(m) for m in messages))

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def next(self, timeout: float = 10.0) -> Message | None:
        return self.events.get(timeout=timeout)

    def until(self, pred: Callable[[Message], bool], timeout: float = 10.0) -> list[Message]:
        """Events up to and including the first one matching ``pred``."""
        seen: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            assert event is not None, f"worker exited; saw {seen}; stderr: {self.stderr[-2000:]!r}"
            seen.append(event)
            if pred(event):
                return seen

    def ready(self) -> Ready:
        event = self.next(timeout=60.0)
        assert isinstance(event, Ready), (event, self.stderr[-2000:])
        return event

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return code

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


@pytest.fixture
def spawn(tmp_path: Path):  # type: ignore[no-untyped-def]
    workers: list[Worker] = []

    def make(model: str | Path | None = None, **kwargs: Any) -> Worker:
        worker = Worker(model if model is not None else tmp_path / "model.gguf", **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.cleanup()
        assert worker.bad_lines == [], "the worker wrote a non-protocol line to stdout"


def is_end(request_id: int) -> Callable[[Message], bool]:
    return lambda e: isinstance(e, Done | Warmed | Failed) and e.id == request_id


def test_worker_says_ready_with_its_model_profile_and_pid(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    ready = worker.ready()
    assert ready.protocol == PROTOCOL_VERSION
    assert ready.pid == worker.proc.pid
    assert ready.model["architecture"] == "fake" and ready.model["name"] == "model.gguf"
    assert ready.profile == "generic"


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_the_worker_runs_below_the_editors_cpu_priority(spawn: Callable[..., Worker]) -> None:
    """On two cores a model decoding on both would otherwise delay the editor's repaints."""
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    worker = spawn()
    worker.ready()
    assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) == min(19, mine + DEFAULT_NICE)
    same = spawn(args=("--nice", "0"))
    same.ready()
    assert os.getpriority(os.PRIO_PROCESS, same.proc.pid) == mine


def test_complete_streams_chunks_then_done(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("x = @@chunks=4"), None, True))
    events = worker.until(is_end(1))
    chunks = [e.text for e in events if isinstance(e, Chunk)]
    assert chunks == ["t0 ", "t1 ", "t2 ", "t3 "]
    done = events[-1]
    assert isinstance(done, Done)
    assert done.text == "".join(chunks) and done.stop_reason == "eos"
    assert done.metrics["generated_tokens"] == 4 and done.metrics["prompt_tokens"] > 0


def test_max_tokens_caps_the_completion(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("x = @@chunks=10"), 2, False))
    done = worker.until(is_end(1))[-1]
    assert isinstance(done, Done) and done.text == "t0 t1 " and done.stop_reason == "length"


def test_cancel_takes_effect_within_a_step(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("x = @@chunks=1000 @@delay=0.05"), 1000, False))
    assert isinstance(worker.next(), Chunk)
    worker.send(Cancel(1))
    sent = time.monotonic()
    events = worker.until(is_end(1))
    assert time.monotonic() - sent < 0.5
    done = events[-1]
    assert isinstance(done, Done) and done.stop_reason == "cancelled"
    assert sum(isinstance(e, Chunk) for e in events) <= 1  # at most the step under way
    worker.send(Cancel(1), Cancel(999))  # finished and unknown ids are ignored
    worker.send(Complete(2, inp("x = @@chunks=1"), None, False))
    assert isinstance(worker.until(is_end(2))[-1], Done)


def test_a_newer_complete_supersedes_older_ones(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("x = @@chunks=1000 @@delay=0.05"), 1000, False))
    assert worker.next() == Chunk(1, "t0 ")
    # 2 is superseded while queued, 3 is the newest: only 3 runs.
    worker.send(
        Complete(2, inp("y = @@chunks=5"), None, False),
        Complete(3, inp("z = @@chunks=2"), None, False),
    )
    events = worker.until(is_end(3))
    ends = {e.id: e for e in events if isinstance(e, Done)}
    assert ends[1].stop_reason == "cancelled"
    assert ends[2] == Done(2, "", "cancelled", {})
    assert ends[3].text == "t0 t1 " and ends[3].stop_reason == "eos"
    assert [e.id for e in events if isinstance(e, Chunk)] in ([3, 3], [1, 3, 3])


def test_warm_reports_warmed_and_a_complete_cancels_it(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Warm(1, inp("import os\n")))
    warmed = worker.until(is_end(1))[-1]
    assert isinstance(warmed, Warmed) and warmed.metrics["prompt_tokens"] > 0
    worker.send(Warm(2, inp("@@warm_delay=30")))
    time.sleep(0.1)
    started = time.monotonic()
    worker.send(Complete(3, inp("@@chunks=1"), None, False))
    events = worker.until(is_end(3))
    assert time.monotonic() - started < 1.0
    assert [type(e).__name__ for e in events] == ["Warmed", "Chunk", "Done"]


def test_request_failures_are_reported_and_the_worker_goes_on(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, {"prefix": "x"}, None, False))
    failed = worker.next()
    assert isinstance(failed, Failed) and failed.id == 1 and not failed.fatal
    assert failed.message.startswith("bad completion input: ")
    assert "missing key(s)" in failed.message
    worker.send(Complete(2, inp("@@raise"), None, False))
    assert worker.next() == Failed(2, "RuntimeError: fake engine failure", False)
    worker.send(Warm(3, {"prefix": 1}))
    failed = worker.next()
    assert isinstance(failed, Failed) and failed.id == 3
    worker.send(Complete(4, inp("@@chunks=1"), None, False))
    assert isinstance(worker.until(is_end(4))[-1], Done)


def test_malformed_lines_do_not_kill_the_worker(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    bad = [
        b"garbage\n",
        b"[]\n",
        b"\n",
        b'{"type":"explode"}\n',
        b'{"type":"cancel"}\n',
        b"\xff\xff\n",
        b'{"type":"chunk","id":1,"text":"x"}\n',
        b'{"type":"ready","protocol":1,"model":{},"profile":"p","pid":1}\n',
    ]
    messages = []
    for line in bad:
        worker.send_raw(line)
        failed = worker.next()
        assert isinstance(failed, Failed), line
        assert failed.id is None and not failed.fatal, line
        messages.append(failed.message)
    assert "unknown message type 'explode'" in messages[3]
    assert "takes only requests" in messages[-1]
    worker.send_raw(
        b'{"type":"complete","id":1,"input":' + b'"' + b"x" * MAX_MESSAGE_BYTES + b'"}\n'
    )
    failed = worker.next()
    assert isinstance(failed, Failed) and "longer than the limit" in failed.message
    worker.send(Complete(2, inp("@@chunks=2"), None, False))
    assert isinstance(worker.until(is_end(2))[-1], Done)


def test_eof_on_stdin_exits_cleanly(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.close_stdin()
    assert worker.wait() == 0


def test_shutdown_exits_cleanly_even_mid_request(spawn: Callable[..., Worker]) -> None:
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("@@chunks=1000 @@delay=0.05"), 1000, False))
    assert isinstance(worker.next(), Chunk)
    worker.send(Shutdown())
    started = time.monotonic()
    assert worker.wait() == 0
    assert time.monotonic() - started < 2.0
    assert b"Traceback" not in worker.stderr


def test_an_orphaned_worker_stuck_in_the_engine_still_exits(spawn: Callable[..., Worker]) -> None:
    """The editor died (EOF) while the engine hangs: the worker must not live on."""
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("@@chunks=5 @@hang_after=1"), None, False))
    assert isinstance(worker.next(), Chunk)
    worker.close_stdin()
    assert worker.wait(timeout=15) == 0


def test_a_bad_model_is_a_fatal_failure_with_exit_code_3(
    spawn: Callable[..., Worker], tmp_path: Path
) -> None:
    worker = spawn(tmp_path / "bad.gguf")
    failed = worker.next()
    assert failed == Failed(None, f"{tmp_path / 'bad.gguf'}: not a GGUF file (fake engine)", True)
    assert worker.wait() == EXIT_FATAL
    assert worker.next() is None  # nothing else, no Ready
    assert b"Traceback" not in worker.stderr


def test_native_prints_to_stdout_cannot_corrupt_the_protocol(spawn: Callable[..., Worker]) -> None:
    """fd 1 is pointed at stderr: only protocol lines reach the editor (checked in cleanup)."""
    worker = spawn()
    worker.ready()
    worker.send(Complete(1, inp("@@chunks=1"), None, False))
    worker.until(is_end(1))
    worker.close_stdin()
    assert worker.wait() == 0


# ---------------------------------------------------------------------------------------------
# the worker with the real default model


def real_model() -> Path:
    """The real small model: a broken engine or a missing model fails the test, never skips it."""
    from local_models.model_store import ensure_small_model

    return ensure_small_model()


@pytest.mark.slow
def test_real_worker_completes_python(spawn: Callable[..., Worker]) -> None:
    worker = spawn(real_model(), fake=False)
    ready = worker.ready()
    assert ready.model["architecture"] == "gemma3"
    assert ready.profile == "gemma3"
    prefix = 'def add(a, b):\n    """Return the sum of a and b."""\n    return'
    worker.send(Complete(1, inp(prefix), 8, False))
    events = worker.until(is_end(1), timeout=60)
    done = events[-1]
    assert isinstance(done, Done), done
    chunks = [e.text for e in events if isinstance(e, Chunk)]
    assert "".join(chunks) == done.text
    assert done.stop_reason in ("eos", "stop", "length")
    generated = done.metrics["generated_tokens"]
    assert generated <= 8 and (generated == 8 or done.stop_reason != "length"), done
    assert done.metrics["prompt_tokens"] > 10
    assert done.metrics["evaluated_tokens"] == done.metrics["prompt_tokens"]  # cold cache
    # Whatever the model wrote, greedy decoding gives it again, from the cache (replayed).
    worker.send(Complete(2, inp(prefix), 8, False))
    again = worker.until(is_end(2), timeout=60)[-1]
    assert isinstance(again, Done), again
    assert (again.text, again.stop_reason) == (done.text, done.stop_reason)
    assert again.metrics["evaluated_tokens"] == 0
    worker.send(Shutdown())
    assert worker.wait(timeout=30) == 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["text", "truncated"])
def test_real_worker_refuses_a_bad_model_file(
    spawn: Callable[..., Worker], tmp_path: Path, kind: str
) -> None:
    model = real_model()
    bad = tmp_path / "x.gguf"
    if kind == "text":
        bad.write_text("this is not a model\n")
    else:
        with model.open("rb") as src:
            bad.write_bytes(src.read(model.stat().st_size // 3))
    worker = spawn(bad, fake=False)
    failed = worker.next(timeout=60)
    assert isinstance(failed, Failed) and failed.fatal and failed.id is None, failed
    assert "x.gguf" in failed.message or "GGUF" in failed.message, failed.message
    assert "\n" not in failed.message and len(failed.message) < 500
    assert worker.wait(timeout=30) == EXIT_FATAL
    assert b"Traceback" not in worker.stderr


# ---------------------------------------------------------------------------------------------
# chat requests (the router's local fallback), with the real model


def chat_params(text: str, max_tokens: int = 0) -> dict[str, Any]:
    from forecode_core.chat.types import ChatMessage, ChatParams, params_to_json

    return params_to_json(ChatParams("conv", (ChatMessage("user", text),), max_tokens=max_tokens))


@pytest.mark.slow
def test_real_worker_answers_a_chat_in_the_models_format(spawn: Callable[..., Worker]) -> None:
    from forecode_core.protocol import Chat

    worker = spawn(real_model(), fake=False)
    worker.ready()
    worker.send(Chat(1, chat_params("Write a Python function that adds two numbers."), 16))
    events = worker.until(is_end(1), timeout=60)
    done = events[-1]
    assert isinstance(done, Done), done
    chunks = [e.text for e in events if isinstance(e, Chunk)]
    assert "".join(chunks) == done.text
    assert done.stop_reason in ("eos", "stop", "length")
    assert done.metrics["generated_tokens"] <= 16
    assert "<end_of_turn>" not in done.text and "<start_of_turn>" not in done.text
    # The same conversation again: its prompt is in the KV cache already, and greedy decoding
    # gives the same reply (its first 4 tokens, replayed without a decode), whatever the model
    # wrote: the same text, unless the reply guard stopped the longer reply (an echo of the
    # instructions is cut only once it is long enough to tell).
    worker.send(Chat(2, chat_params("Write a Python function that adds two numbers."), 4))
    again = worker.until(is_end(2), timeout=60)[-1]
    assert isinstance(again, Done)
    assert again.metrics["reused_prefix_tokens"] >= done.metrics["prompt_tokens"] - 1
    assert again.metrics["evaluated_tokens"] == 0, again.metrics
    from forecode_core.chat.repetition import GUARD_NOTES

    guarded = any(note in done.text for note in GUARD_NOTES)
    assert done.text.startswith(again.text) or guarded, (done.text, again.text)
    worker.send(Shutdown())
    assert worker.wait(timeout=30) == 0


@pytest.mark.slow
def test_real_worker_chat_superseding_and_bad_params(spawn: Callable[..., Worker]) -> None:
    """Typing (a Complete) never cancels a chat reply; a newer Chat does; bad params and a
    chat too long for the context fail that request only."""
    from forecode_core.protocol import Chat

    worker = spawn(real_model(), fake=False)
    worker.ready()
    worker.send(Chat(1, chat_params("Tell a very long story about a whale."), 200))
    worker.send(Complete(2, inp("def add(a, b):\n    return"), 4, False))
    worker.send(Chat(3, chat_params("Say hi."), 4))
    events = worker.until(is_end(3), timeout=120)
    ends = {e.id: e for e in events if isinstance(e, Done | Failed)}
    assert isinstance(ends[1], Done) and ends[1].stop_reason == "cancelled"
    assert isinstance(ends[2], Done) and ends[2].stop_reason != "cancelled"
    assert isinstance(ends[3], Done) and ends[3].stop_reason != "cancelled"

    worker.send(Chat(4, {"messages": "not a list"}, 4))
    failed = worker.until(is_end(4), timeout=30)[-1]
    assert isinstance(failed, Failed) and not failed.fatal
    assert "bad chat params" in failed.message
    worker.send(Chat(5, chat_params("word " * 5000), 4))
    failed = worker.until(is_end(5), timeout=60)[-1]
    assert isinstance(failed, Failed) and "too long" in failed.message
    worker.send(Chat(6, chat_params("Say yes."), 4))
    assert isinstance(worker.until(is_end(6), timeout=60)[-1], Done)
    worker.send(Shutdown())
    assert worker.wait(timeout=30) == 0


# ---------------------------------------------------------------------------------------------
# completions in a big file: a small first answer, then the full context in the background


def big_file_input(line: int, typed: str = "") -> dict[str, Any]:
    """The editor's input (``input_at``) at the start of line ``line`` of a 3,000-line module,
    after typing ``typed``."""
    from forecode_core.completion.prompt import input_at

    parts = ['"""Helpers."""\n\nimport math\nfrom dataclasses import dataclass\n\n\n']
    parts += [
        f"def compute_{i}(values, scale={i % 7 + 1}):\n"
        f"    total = 0\n"
        f"    for v in values:\n"
        f"        total += v * scale + {i}\n"
        f"    return total\n\n\n"
        for i in range(430)
    ]
    text = "".join(parts)
    offset = sum(len(x) + 1 for x in text.split("\n")[:line])
    text = text[:offset] + typed + text[offset:]
    return input_at(text, offset + len(typed), path="pkg/helpers.py", language="python").to_json()


@pytest.mark.slow
def test_real_worker_answers_a_jump_in_a_big_file_from_the_lines_near_the_caret(
    spawn: Callable[..., Worker],
) -> None:
    """At a new place in a big file the full context costs ~1.5k tokens; the first answer
    comes from the file's head (cached from the last place) and a few lines near the caret,
    and the next keystroke there costs a few tokens whether or not the full context finished
    warming meanwhile."""
    worker = spawn(real_model(), fake=False)
    worker.ready()
    worker.send(Complete(1, big_file_input(700), 4, False))  # somewhere: the head is cached
    assert isinstance(worker.until(is_end(1), timeout=120)[-1], Done)
    worker.send(Complete(2, big_file_input(2400), 4, False))  # the jump
    jumped = worker.until(is_end(2), timeout=120)[-1]
    assert isinstance(jumped, Done)
    m = jumped.metrics
    assert m["context"] == "near", m
    assert m["full_cost_tokens"] > 1000 and m["evaluated_tokens"] <= m["cost_tokens"] + 1
    assert m["reused_prefix_tokens"] >= 40  # the head and the file header
    assert m["evaluated_tokens"] < 300, m
    worker.send(Complete(3, big_file_input(2400, "d"), 4, False))  # typing at the caret
    typed = worker.until(is_end(3), timeout=120)[-1]
    assert isinstance(typed, Done)
    assert typed.metrics["evaluated_tokens"] <= 8, typed.metrics
