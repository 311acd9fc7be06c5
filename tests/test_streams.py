"""The one event contract (``forecode_core.streams``): the failure table's words, the events'
grammar through the apply pipeline (``forecode_core.apply.pipeline``) on scripted model paths,
and that every real call and a test's fake satisfy ``Call[E]`` (checked by mypy)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import APPLY, ApplyDone, ApplyEvent
from forecode_core.apply.pipeline import (
    PipelineCall,
    as_apply_done,
    consume_apply,
    first_step,
)
from forecode_core.chat.types import CHAT, ChatDone, ChatError, ChatStarted
from forecode_core.streams import (
    FAILURES,
    UNKNOWN_FAILURE,
    Delta,
    Done,
    Event,
    Failed,
    FailureCode,
    FinishReason,
    Notice,
    Started,
    StreamError,
    describe_failure,
)

REPO = Path(__file__).resolve().parent.parent

# ----- the failure table ----------------------------------------------------------------------

TOKEN_HINT = "Set it with “Cloud: Set Service Token”."

FAILURE_WORDS = [
    # (code, stream, the user's words for the message "M.")
    ("unavailable", "chat", "The chat service is not reachable: M."),
    ("unavailable", "apply", "The apply service is not reachable: M."),
    ("unauthenticated", "chat", f"The chat service refused the token: M. {TOKEN_HINT}"),
    ("unauthenticated", "apply", f"The apply service refused the token: M. {TOKEN_HINT}"),
    ("deadline", "chat", "The chat service did not answer in time: M."),
    ("deadline", "apply", "The apply service did not answer in time: M."),
    ("busy", "chat", "The chat service is busy with other requests; try again in a moment. M."),
    ("busy", "apply", "The apply service is busy with other requests; try again in a moment. M."),
    ("too_large", "chat", "The question and its context are too large for the service: M."),
    ("too_large", "apply", "The file is too large for the apply service: M."),
    ("invalid", "chat", "The chat service rejected the request: M."),
    ("invalid", "apply", "The apply service rejected the request: M."),
    ("cancelled", "chat", "The reply was cancelled: M."),
    ("cancelled", "apply", "The apply was cancelled: M."),
    ("no_model", "apply", "M."),
    ("incomplete", "apply", "M."),
    ("internal", "chat", "The chat failed (internal): M."),
    ("internal", "apply", "The apply failed (internal): M."),
    ("weird", "chat", "The chat failed (weird): M."),
]


@pytest.mark.parametrize(("code", "stream", "words"), FAILURE_WORDS)
def test_the_failure_table_words_each_code_for_each_stream(
    code: str, stream: str, words: str
) -> None:
    subject = {"chat": CHAT, "apply": APPLY}[stream]
    assert describe_failure(code, "M.", subject) == words


@pytest.mark.parametrize(("code", "stream", "words"), FAILURE_WORDS)
def test_a_code_as_a_member_has_the_same_words(code: str, stream: str, words: str) -> None:
    if code not in set(FailureCode):
        return  # a code from elsewhere stays a string
    subject = {"chat": CHAT, "apply": APPLY}[stream]
    member = FailureCode(code)
    assert describe_failure(member, "M.", subject) == words
    assert StreamError(member, "M.").to_json() == {
        "code": code,
        "message": "M.",
        "retryable": False,
    }


def test_the_members_are_the_strings_the_wire_carries() -> None:
    assert set(FailureCode) == {*FAILURES, "internal"}
    assert [str(r) for r in FinishReason] == ["stop", "length", "cancelled"]
    assert json.dumps(Done(FinishReason.LENGTH).finish_reason) == '"length"'


def test_every_code_keeps_the_message_and_the_table_covers_both_streams() -> None:
    covered = {code for code, _, _ in FAILURE_WORDS}
    assert set(FAILURES) <= covered
    for template in (*FAILURES.values(), UNKNOWN_FAILURE):
        assert "{m}" in template  # the stream's own sentence is never dropped


def test_the_ui_speaks_the_one_table() -> None:
    from app.ui.apply_backend import describe_apply_failure
    from app.ui.chat_panel import describe_failure as describe_chat_failure

    for code, stream, words in FAILURE_WORDS:
        describe = describe_chat_failure if stream == "chat" else describe_apply_failure
        assert describe(code, "M.") == words


def test_a_failure_is_one_value_across_threads() -> None:
    err = StreamError("busy", "try later", retryable=True)
    assert err.failed == Failed("busy", "try later", True)
    back = err.failed.error()
    assert (back.code, back.message, back.retryable) == ("busy", "try later", True)
    assert ChatError is StreamError and ChatDone is Done and ChatStarted is Started
    assert err.to_json() == {"code": "busy", "message": "try later", "retryable": True}


# ----- the events through the apply pipeline --------------------------------------------------

ORIGINAL = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
NEW = ORIGINAL.replace("return 2", "return 3")
ANCHORED = ApplyInput("m.py", "python", ORIGINAL, "def g():\n    return 3\n")
INLINE = ApplyInput("m.py", "python", ORIGINAL, "    return 2\n", "return three")


class Scripted:
    """A scripted model path's call: yields ``events``, then raises ``error`` if given."""

    def __init__(self, *events: Event, error: StreamError | None = None) -> None:
        self.events = events
        self.error = error
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def __iter__(self) -> Iterator[ApplyEvent]:
        yield from self.events
        if self.error is not None:
            raise self.error


def test_the_first_step_is_the_deterministic_path_unless_an_instruction_asks() -> None:
    step = first_step(ANCHORED)
    assert not isinstance(step, str) and step.text == NEW
    assert first_step(INLINE) == "An inline edit is written by the model"
    refused = first_step(ApplyInput("m.py", "python", ORIGINAL, "    return 9\n"))
    assert isinstance(refused, str) and refused.startswith("The block does not match m.py")


PIPELINE_CASES = [
    # (name, request, the model path's events, the pipeline's events after its notice)
    (
        "a chat-style stream: the source is where it started",
        INLINE,
        (ChatStarted("m", "cloud"), Delta(NEW[:9]), Delta(NEW[9:]), ChatDone("stop")),
        [Delta(NEW[:9]), Delta(NEW[9:]), ApplyDone("stop", source="cloud")],
    ),
    (
        "the service's apply says its own path",
        INLINE,
        (Started("m", "local"), Delta(NEW), ApplyDone("stop", source="model", batches=2)),
        [Delta(NEW), ApplyDone("stop", source="model", batches=2)],
    ),
    (
        "a model path's notice passes; events after the done do not",
        INLINE,
        (Notice("fallback"), Delta(NEW), ApplyDone("stop"), Delta("late")),
        [Notice("fallback"), Delta(NEW), ApplyDone("stop", source="model")],
    ),
]


@pytest.mark.parametrize(
    ("request_", "model_events", "expected"),
    [case[1:] for case in PIPELINE_CASES],
    ids=[case[0] for case in PIPELINE_CASES],
)
def test_the_pipeline_streams_the_model_path_as_apply_events(
    request_: ApplyInput, model_events: tuple[Event, ...], expected: list[Event]
) -> None:
    events = list(PipelineCall(request_, lambda r: Scripted(*model_events)))
    notice, *rest = events
    assert isinstance(notice, Notice) and "the model rewrites" in notice.text
    assert rest == expected


def test_the_deterministic_path_never_asks_the_model() -> None:
    asked: list[ApplyInput] = []

    def model(request: ApplyInput) -> Scripted:
        asked.append(request)
        return Scripted()

    events = list(PipelineCall(ANCHORED, model))
    assert events == [Delta(NEW), ApplyDone("stop", source="deterministic", placements=1)]
    assert asked == []


def test_without_a_model_path_the_refusal_is_no_model() -> None:
    with pytest.raises(StreamError) as err:
        list(PipelineCall(INLINE, None))
    assert err.value.code == "no_model" and "inline edit" in err.value.message

    def gone(request: ApplyInput) -> Scripted:
        raise StreamError("no_model", "the service is gone")

    with pytest.raises(StreamError) as err:
        list(PipelineCall(INLINE, gone))
    assert err.value.message == "An inline edit is written by the model, and the service is gone"


def test_a_model_path_that_did_not_finish_is_incomplete() -> None:
    """A "length" end (the file not finished, or what was closed is not the file) is never a
    result: the pipeline says so as the client does for the service's answer."""
    model_events = (Delta(NEW[:9]), ApplyDone("length", {"completion_tokens": 7}, source="model"))
    with pytest.raises(StreamError) as err:
        list(PipelineCall(INLINE, lambda r: Scripted(*model_events)))
    assert err.value.code == "incomplete"
    assert err.value.message == (
        "The model did not finish writing the file (it stopped after 7 tokens); nothing was changed"
    )


def test_cancel_reaches_the_model_paths_call() -> None:
    inner = Scripted(Delta(NEW), ApplyDone("stop"))
    call = PipelineCall(INLINE, lambda r: inner)
    it = iter(call)
    next(it)  # the notice
    next(it)  # the model path's first delta: its call exists
    call.cancel()
    assert inner.cancelled.is_set()
    assert list(it) == []  # nothing after the cancel


def test_a_plain_done_becomes_the_applys() -> None:
    assert as_apply_done(ChatDone("stop", {"total_ms": 3}), "cloud") == ApplyDone(
        "stop", {"total_ms": 3}, source="cloud"
    )
    own = ApplyDone("stop", source="deterministic")
    assert as_apply_done(own, "cloud") is own


END_CASES = [
    # (name, the call's events, error, the result's source or the failure's code)
    ("a finished file", (Delta(NEW), ApplyDone("stop", source="model")), None, "model"),
    ("no done", (Delta(NEW),), None, "internal"),
    (
        "a placeholder the buffer does not have",
        (Delta("def g():\n    # ... existing code ...\n"), ApplyDone("stop", source="model")),
        None,
        "incomplete",
    ),
    ("the call's own failure", (Delta(NEW[:5]),), StreamError("busy", "later"), "busy"),
]


@pytest.mark.parametrize(
    ("events", "error", "outcome"), [c[1:] for c in END_CASES], ids=[c[0] for c in END_CASES]
)
def test_the_end_of_an_apply_stream(
    events: tuple[Event, ...], error: StreamError | None, outcome: str
) -> None:
    seen: list[Event] = []
    try:
        result = consume_apply(Scripted(*events, error=error), ANCHORED, on_event=seen.append)
    except StreamError as exc:
        assert exc.code == outcome
        return
    assert result is not None and result.source == outcome and result.text == NEW
    assert [e for e in seen if isinstance(e, Delta)] == [e for e in events if isinstance(e, Delta)]


def test_an_unfinished_answer_says_which_placeholder_it_left() -> None:
    lazy = "def f():\n    return 1\n\n\ndef g():\n    # ... existing code ...\n"
    call = Scripted(Delta(lazy), error=StreamError("incomplete", "did not finish"))
    with pytest.raises(StreamError) as err:
        consume_apply(call, ANCHORED)
    assert err.value.code == "incomplete"
    assert "existing code" in err.value.message and "Nothing was changed" in err.value.message


# ----- every call satisfies Call[E] -----------------------------------------------------------

CONFORMANCE = textwrap.dedent(
    """
    from collections.abc import Iterator

    from app.ui.apply_backend import PipelineApplyBackend, ServiceApply
    from app.ui.cloud import DeferredBackend, LocalFallback
    from cloud_client.client import CloudApplyCall, CloudChatCall, CloudClient
    from cloud_client.local_chat import LocalChatCall
    from cloud_client.router import Router
    from forecode_core.apply.block import ApplyInput
    from forecode_core.apply.events import ApplyCall, ApplyDone, ApplyEvent
    from forecode_core.apply.pipeline import ModelPath, PipelineCall
    from forecode_core.chat.types import ChatCall, ChatParams
    from forecode_core.streams import Delta, FinishReason


    class Fake:
        def cancel(self) -> None: ...

        def __iter__(self) -> Iterator[ApplyEvent]:
            yield Delta("x")
            yield ApplyDone(FinishReason.STOP)


    def chat(
        a: CloudChatCall, b: LocalChatCall, r: Router, d: DeferredBackend, p: ChatParams,
        f: LocalFallback,
    ) -> list[ChatCall]:
        return [a, b, r.chat(p), d.chat(p), f.chat(p), Fake()]


    def apply(
        a: CloudApplyCall, b: PipelineCall, r: Router, c: CloudClient, i: ApplyInput,
        s: ServiceApply,
    ) -> list[ApplyCall]:
        model: ModelPath = s
        return [a, b, r.apply(i), c.apply(i), model(i), PipelineApplyBackend(s).apply(i), Fake()]
    """
)

NOT_A_CALL = textwrap.dedent(
    """
    from collections.abc import Iterator

    from forecode_core.chat.types import ChatCall
    from forecode_core.streams import Delta


    class NoCancel:
        def __iter__(self) -> Iterator[Delta]:
            yield Delta("x")


    class Strings:
        def cancel(self) -> None: ...

        def __iter__(self) -> Iterator[str]:
            yield "x"


    calls: list[ChatCall] = [NoCancel(), Strings()]
    """
)


def _mypy(tmp_path: Path, name: str, code: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / f"{name}.py"
    source.write_text(code)
    return subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")),
            *("--strict", "--follow-imports=silent", str(source)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )


@pytest.mark.slow
def test_every_call_and_a_fake_satisfy_the_protocol(tmp_path: Path) -> None:
    """mypy (strict, the project's config) accepts every real call and a test's fake as
    ``Call[E]``, and rejects an object without ``cancel`` or with events of another type."""
    good = _mypy(tmp_path, "conformance", CONFORMANCE)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _mypy(tmp_path, "not_a_call", NOT_A_CALL)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, bad.stdout  # both entries refused
    assert '"NoCancel"' in errors[0] and '"Strings"' in errors[1]
