"""Apply through the service: ``CloudClient.apply`` against the real service (in-process
``start_server`` on loopback, the ``llama`` backend with the real default model), and the
router's entry.

The deterministic path answers without a slot; the model path streams the file from a slot
with speculative edits; cancelling frees the slot; a file too large for the context and a
request without a block are refused with errors a user can read; nothing of the code reaches
the service's log. Plus the pure conversions of the apply messages.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.apply_samples import ENCODING_BLOCK, LOAD_SAVE

from bench.apply_cases import Case, build_cases
from cloud_client.client import CloudApplyCall, CloudClient
from cloud_client.convert import apply_event_from_pb
from cloud_client.router import Router
from cloud_server.config import ServerConfig
from cloud_server.convert import apply_event_to_pb
from cloud_server.service import RunningServer, start_server
from forecode_core.apply.block import ApplyInput, find_rewrite_defect
from forecode_core.apply.events import ApplyDone
from forecode_core.chat.types import ChatDelta, ChatError, ChatStarted
from forecode_core.streams import StreamError
from local_models.model_store import ensure_small_model
from proto.forecode.v1 import forecode_pb2 as pb

pytestmark = pytest.mark.slow

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    config = ServerConfig(
        tokens=(TOKEN,), slots=1, n_ctx=4096, model_path=str(ensure_small_model()), grace_s=1.0
    )
    running = start_server(config)
    yield running
    running.stop(0)


@pytest.fixture
def client(server: RunningServer) -> Iterator[CloudClient]:
    c = CloudClient(f"127.0.0.1:{server.port}", TOKEN)
    yield c
    c.close()


def reprlib_case() -> Case:
    cases = build_cases(files=("reprlib.py",), per_kind=1, max_lines=25, min_lines=8)
    return next(c for c in cases if c.kind == "import_addition")


def start(
    client: CloudClient, case: Case, block: str | None = None, instruction: str = ""
) -> CloudApplyCall:
    return client.apply(
        ApplyInput(
            path=case.path,
            language="python",
            original=case.original,
            block=case.block if block is None else block,
            instruction=instruction,
        )
    )


def test_the_deterministic_path_answers_without_a_slot(
    client: CloudClient, caplog: pytest.LogCaptureFixture
) -> None:
    case = reprlib_case()
    with caplog.at_level(logging.INFO, logger="forecode.cloud"):
        events = list(start(client, case))
    assert not any(isinstance(e, ChatStarted) for e in events)
    deltas = [e for e in events if isinstance(e, ChatDelta)]
    assert "".join(d.text for d in deltas) == case.expected
    done = events[-1]
    assert isinstance(done, ApplyDone)
    assert done.source == "deterministic" and done.finish_reason == "stop"
    log_text = caplog.text
    assert "apply" in log_text and "deterministic" in log_text
    assert "_possibly_sorted" not in log_text and "logging.getLogger" not in log_text


def test_the_model_path_streams_a_complete_file_from_a_slot(
    client: CloudClient, caplog: pytest.LogCaptureFixture
) -> None:
    case = reprlib_case()
    events: list[Any] = []
    incomplete: ChatError | None = None
    with caplog.at_level(logging.INFO, logger="forecode.cloud"):
        try:
            for event in start(client, case, instruction="Apply the edit."):
                events.append(event)
        except ChatError as exc:
            incomplete = exc
    assert isinstance(events[0], ChatStarted) and events[0].source == "cloud"
    text = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert text and "```" not in text
    log_text = caplog.text
    assert "apply on slot 0: model" in log_text
    for secret in ("_possibly_sorted", "Apply the edit", "logging.getLogger"):
        assert secret not in log_text
    if incomplete is not None:
        # Which way the small model goes depends on how the CPU's rounding tips it: it may
        # not finish the file, or close it with a placeholder (``# ... existing code ...``)
        # where code should be. Then the text is never sent as a finished file.
        assert incomplete.code == "incomplete" and "nothing was changed" in incomplete.message
        assert not any(isinstance(e, ApplyDone) for e in events)
        return
    done = events[-1]
    assert isinstance(done, ApplyDone) and done.source == "model"
    assert done.finish_reason == "stop"  # an unfinished file raises "incomplete" instead
    assert text.endswith("\n")
    assert find_rewrite_defect(case.original, case.block, text) is None
    kept = set(text.splitlines())  # the file rewritten, not some other text
    assert sum(line in kept for line in case.original.splitlines()) * 2 >= len(
        case.original.splitlines()
    )
    assert 0 < done.accepted_tokens <= done.drafted_tokens
    assert done.batches >= 1 and done.usage["completion_tokens"] >= done.batches
    assert done.usage["prompt_tokens"] > 0 and done.prefill_ms >= 0


def test_cancel_mid_apply_frees_the_only_slot(client: CloudClient) -> None:
    case = reprlib_case()
    call = start(client, case, instruction="Apply the edit.")
    seen: list[Any] = []
    for event in call:
        seen.append(event)
        if isinstance(event, ChatDelta):
            call.cancel()
    assert isinstance(seen[-1], ApplyDone) and seen[-1].finish_reason == "cancelled"
    # The one slot is free again: the next apply on it is served, not queued for ever.
    served: list[Any] = []

    def again() -> None:
        with contextlib.suppress(ChatError):  # "incomplete" is still an answer from the slot
            for event in start(client, case, instruction="Apply it."):
                served.append(event)

    worker = threading.Thread(target=again)
    worker.start()
    worker.join(120)
    assert not worker.is_alive()
    assert served and isinstance(served[0], ChatStarted)


def test_refusals_are_readable(client: CloudClient) -> None:
    case = reprlib_case()
    with pytest.raises(ChatError) as err:
        list(start(client, case, block="  \n"))
    assert err.value.code == "invalid" and "no code block" in err.value.message
    big = "".join(f"value_{i} = {i} * {i}\n" for i in range(900))
    with pytest.raises(ChatError) as err:
        list(
            client.apply(
                ApplyInput(
                    path="big.py",
                    language="python",
                    original=big,
                    block="print(value_1)\n",
                    instruction="Print it.",
                )
            )
        )
    assert err.value.code == "too_large" and "context" in err.value.message


def test_apply_needs_the_token(server: RunningServer) -> None:
    wrong = CloudClient(f"127.0.0.1:{server.port}", secrets.token_urlsafe(32))
    try:
        with pytest.raises(ChatError) as err:
            list(start(wrong, reprlib_case()))
        assert err.value.code == "unauthenticated"
    finally:
        wrong.close()


def test_the_router_sends_apply_to_the_service(client: CloudClient) -> None:
    case = reprlib_case()
    with Router(client, None) as router:
        assert router.route("apply") == "cloud"
        events = list(router.apply(ApplyInput(case.path, "python", case.original, case.block)))
        assert isinstance(events[-1], ApplyDone) and events[-1].source == "deterministic"
    with Router(None, None) as offline, pytest.raises(ChatError) as err:
        offline.apply(ApplyInput(case.path, "", case.original, case.block))
    assert err.value.code == "unavailable"


# ---------------------------------------------------------------------------------------------
# a rewrite that is not the whole file: the service never sends it as a finished file


class LazyEngine:
    """An engine at the backend's seam whose rewrite answers ``answer`` and closes the file's
    fence (the stop string, not part of the text); the tests set the file's first line and
    the block's elision marker, what a small model answered on a 2-core machine."""

    def __init__(self, model_path: str, *, n_ctx: int, **_kw: object) -> None:
        from types import SimpleNamespace

        self.n_ctx = n_ctx
        self.info = SimpleNamespace(
            architecture="qwen2", chat_template=None, name="lazy", has_fim=False
        )
        self.answer = ""

    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        return list(range(len(text.split()) + int(add_bos)))

    def rewrite(
        self,
        prompt: list[int],
        draft: list[int],
        *,
        max_tokens: int,
        stop: tuple[str, ...] = (),
        on_text: Any = None,
        should_stop: Any = None,
        max_batch: int | None = None,
        alt: Any = (),
        margins: Any = None,
    ) -> Any:
        from local_models.engine import Completion, RewriteMetrics

        if on_text is not None:
            on_text(self.answer)
        return Completion(self.answer, [1, 2, 3], RewriteMetrics(generated_tokens=3), "stop")

    def close(self) -> None:
        pass


def test_the_lazy_engine_takes_every_argument_the_real_rewrite_takes() -> None:
    """The fake cannot drift from the seam it stands in for (a new keyword of
    ``Engine.rewrite`` once turned these tests into a TypeError inside the service)."""
    import inspect

    from local_models.engine import Engine

    real = set(inspect.signature(Engine.rewrite).parameters)
    fake = set(inspect.signature(LazyEngine.rewrite).parameters)
    assert real <= fake, f"LazyEngine.rewrite lacks {sorted(real - fake)}"


def test_a_rewrite_with_a_placeholder_is_refused_by_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cloud_server.backends import LlamaBackend

    config = ServerConfig(tokens=(TOKEN,), slots=1, n_ctx=4096, model_path="lazy.gguf", grace_s=1.0)
    backend = LlamaBackend(config, engine_factory=LazyEngine)
    engine = backend._engines[0]
    running = start_server(config, backend)
    client = CloudClient(f"127.0.0.1:{running.port}", TOKEN)
    try:
        lazy = "def load(path):\n    # ... existing code ...\n"
        engine.answer = lazy
        events: list[Any] = []
        with (
            caplog.at_level(logging.INFO, logger="forecode.cloud"),
            pytest.raises(ChatError) as err,
        ):
            for event in client.apply(ApplyInput("files.py", "python", LOAD_SAVE, ENCODING_BLOCK)):
                events.append(event)
        # The text streamed, then no finished file: "incomplete", nothing to apply.
        assert err.value.code == "incomplete" and "nothing was changed" in err.value.message
        assert "".join(e.text for e in events if isinstance(e, ChatDelta)).startswith(lazy)
        assert not any(isinstance(e, ApplyDone) for e in events)
        assert ", elision," in caplog.text and "existing code" not in caplog.text
        # The same engine's whole file is a finished apply.
        whole = LOAD_SAVE.replace(
            "with open(path) as f:", 'with open(path, encoding="utf-8") as f:'
        )
        engine.answer = whole
        events = list(client.apply(ApplyInput("files.py", "python", LOAD_SAVE, ENCODING_BLOCK)))
        assert "".join(e.text for e in events if isinstance(e, ChatDelta)) == whole
        assert isinstance(events[-1], ApplyDone) and events[-1].finish_reason == "stop"
        assert events[-1].source == "model"
    finally:
        client.close()
        running.stop(0)
        backend.close()


def test_the_pipeline_refuses_a_placeholder_and_never_returns_it() -> None:
    """The editor's pipeline (``PipelineCall`` + ``consume_apply``) with the engine's model
    path in-process: a rewrite that leaves a placeholder is "incomplete", never a result."""
    from helpers.engine_apply import run_apply

    engine = LazyEngine("lazy.gguf", n_ctx=4096)
    engine.answer = "def load(path):\n    # ... existing code ...\n"
    streamed: list[object] = []
    with pytest.raises(StreamError) as err:
        run_apply(
            engine,
            ApplyInput("files.py", "python", LOAD_SAVE, ENCODING_BLOCK),
            on_event=streamed.append,
        )
    assert err.value.code == "incomplete"
    assert "line 2 is the placeholder '# ... existing code ...'" in err.value.message
    assert streamed  # the text streamed; the result was refused


# ---------------------------------------------------------------------------------------------
# conversions


class _Scripted:
    """A finished gRPC stream: the messages, then the end (for the client's conversions)."""

    def __init__(self, messages: list[pb.ApplyEvent]) -> None:
        self._messages = messages
        self.cancelled = False

    def __iter__(self) -> Iterator[pb.ApplyEvent]:
        return iter(self._messages)

    def cancel(self) -> None:
        self.cancelled = True


def test_apply_events_round_trip() -> None:
    done = ApplyDone(
        "stop",
        {
            "prompt_tokens": 9,
            "cached_tokens": 2,
            "completion_tokens": 5,
            "queue_ms": 1,
            "first_token_ms": 3,
            "total_ms": 7,
        },
        source="model",
        drafted_tokens=8,
        accepted_tokens=6,
        batches=2,
        rejoins=1,
        prefill_ms=4,
        decode_ms=5,
    )
    for event in (ChatStarted(model="m", source="cloud", queued_ms=3), ChatDelta("x\n"), done):
        message = apply_event_to_pb(event)
        assert message is not None
        assert apply_event_from_pb(message) == event
    assert apply_event_to_pb(ApplyDone("cancelled")) is None  # not on the wire
    with pytest.raises(ValueError):
        apply_event_from_pb(pb.ApplyEvent())


def test_an_unfinished_file_is_an_error_not_a_result() -> None:
    length = apply_event_to_pb(ApplyDone("length", {"completion_tokens": 40}, source="model"))
    assert length is not None
    stream = _Scripted([pb.ApplyEvent(delta=pb.ChatDelta(text="import os\n")), length])
    call = CloudApplyCall(stream, "127.0.0.1:1")
    with pytest.raises(ChatError) as err:
        list(call)
    assert err.value.code == "incomplete" and "40 tokens" in err.value.message
    # A done without a finish reason is not taken for a finished file either.
    stream = _Scripted([pb.ApplyEvent(done=pb.ApplyDone(source="model"))])
    with pytest.raises(ChatError):
        list(CloudApplyCall(stream, "127.0.0.1:1"))
