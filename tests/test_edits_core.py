"""forecode_core.edits without a service: the prompt, stream_edits over fakes (a file that
changes nothing, a service failure, cancel), and the review's state value (decisions, what
accepting makes of each file)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone
from forecode_core.apply.pipeline import PipelineCall
from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, ContextKind, Role
from forecode_core.edits.events import EditsDone, FileChange, FileChangeKind
from forecode_core.edits.prompt import EDITS_PROMPT_VERSION, edits_chat_params, sent_files
from forecode_core.edits.resolve import stream_edits
from forecode_core.edits.review import EditSetState
from forecode_core.streams import Delta, Done, Event, FinishReason, Notice, StreamError

A = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"


def _params(*items: ContextItem) -> ChatParams:
    return ChatParams("c", (ChatMessage(Role.USER, "make f return 3"),), items)


def test_the_prompt_sends_whole_files_as_editable_and_the_rest_as_context() -> None:
    params = _params(
        ContextItem(ContextKind.CURRENT_FILE, "a.py", A, language="python"),
        ContextItem(ContextKind.SELECTION, "b.py", "x = 1\n", 3, 3, "python"),
        ContextItem(ContextKind.FILE, "c.py", "y", truncated=True),
    )
    chat, files = edits_chat_params(params)
    assert EDITS_PROMPT_VERSION == 4
    assert {p: f.editable for p, f in files.items()} == {"a.py": True, "b.py": False, "c.py": False}
    turn = chat.messages[-1].content
    assert turn.startswith(
        "Files of the project (you may change, delete or add files):\n\na.py\n```python\n"
    )
    assert "Read-only context (do not change these):" in turn
    assert "NEW FILE:" in turn and "DELETE FILE:" in turn
    assert turn.endswith("\n\nTask: make f return 3")  # the task last: the model answers it
    assert chat.context == () and chat.max_tokens == 1536
    with pytest.raises(ValueError, match="ends with the user's task"):
        edits_chat_params(ChatParams("c", (ChatMessage(Role.ASSISTANT, "hi"),)))
    # a whole file wins over a part of the same file
    both = sent_files(
        (
            ContextItem(ContextKind.SELECTION, "a.py", "part", 1, 1),
            ContextItem(ContextKind.FILE, "a.py", A),
        )
    )
    assert both["a.py"].editable and both["a.py"].text == A


def _chat(answer: str, finish: FinishReason = FinishReason.STOP):  # type: ignore[no-untyped-def]
    def chat(params: ChatParams) -> Iterator[Event]:
        yield Delta(answer)
        yield Done(finish, {})

    return chat


def _apply(request: ApplyInput) -> Iterator[Event]:
    yield from PipelineCall(request, None)


def _run(answer: str, stop: bool = False, apply=_apply) -> list[Event]:  # type: ignore[no-untyped-def]
    params = _params(ContextItem(ContextKind.FILE, "a.py", A, language="python"))
    return list(stream_edits(params, chat=_chat(answer), apply=apply, should_stop=lambda: stop))


def test_a_block_that_changes_nothing_is_dropped_with_a_notice() -> None:
    answer = "FILE: a.py\n```\ndef f():\n    return 1\n```\nNEW FILE: b.py\n```\nB = 1\n```\n"
    events = _run(answer)
    assert any(isinstance(e, Notice) and "changes nothing" in e.text for e in events)
    done = events[-1]
    assert isinstance(done, EditsDone)
    assert [(f.path, f.kind) for f in done.files] == [("b.py", FileChangeKind.NEW)]
    with pytest.raises(StreamError, match="changes nothing in the files"):
        _run("FILE: a.py\n```\ndef f():\n    return 1\n```\n")


def test_a_block_the_apply_left_out_is_a_failed_file_not_a_silent_drop() -> None:
    def unchanged(request: ApplyInput) -> Iterator[Event]:  # a model path that kept the file
        yield Delta(request.original)
        yield ApplyDone(FinishReason.STOP, source="model")

    answer = "FILE: a.py\n```\ndef h():\n    return 3\n```\n"
    done = _run(answer, apply=unchanged)[-1]
    assert isinstance(done, EditsDone)
    (failed,) = done.files
    assert failed.kind is FileChangeKind.FAILED and "left the file unchanged" in failed.error


def test_a_service_failure_fails_the_whole_stream_and_cancel_ends_it() -> None:
    def down(request: ApplyInput) -> Iterator[Event]:
        raise StreamError("unavailable", "the service went away")
        yield  # pragma: no cover

    answer = "FILE: a.py\n```\ndef f():\n    return 3\n# ... existing code ...\n```\n"
    with pytest.raises(StreamError) as info:
        _run(answer, apply=down)
    assert info.value.code == "unavailable"
    events = _run(answer, stop=True)
    assert isinstance(events[-1], EditsDone)
    assert events[-1].finish_reason == FinishReason.CANCELLED and events[-1].files == ()


NEW = FileChange("n.py", FileChangeKind.NEW, "", "N = 1\n")
MOD = FileChange("a.py", FileChangeKind.MODIFIED, A, A.replace("1", "3").replace("2", "4"))
DEL = FileChange("d.py", FileChangeKind.DELETED, "D = 1\n")
BAD = FileChange("x.py", FileChangeKind.FAILED, "x\n", error="no anchor")


def test_review_state_decisions_and_results() -> None:
    state = EditSetState.of([BAD, MOD, NEW, DEL])
    assert state.current_file == 1  # the first file with something to decide
    assert [len(f.hunks) for f in state.files] == [0, 2, 1, 1]
    assert not state.ready
    state = state.decide_hunk(True)  # a.py's first hunk; then its second
    assert (state.current_file, state.current_hunk) == (1, 1)
    state = state.decide_hunk(False)  # then n.py
    assert (state.current_file, state.current_hunk) == (2, 0)
    state = state.decide_file(False)  # n.py rejected whole; then d.py
    assert state.current_file == 3
    assert not state.ready
    state = state.decide_rest(True)
    assert state.ready
    accepted = state.accepted_files()
    assert [(a.path, a.kind) for a in accepted] == [
        ("a.py", FileChangeKind.MODIFIED),
        ("d.py", FileChangeKind.DELETED),
    ]
    assert accepted[0].text == A.replace("1", "3")  # only the accepted hunk
    assert accepted[1].text == ""


def test_reject_all_accepts_nothing_and_accept_all_everything() -> None:
    state = EditSetState.of([MOD, NEW, DEL])
    assert state.decide_rest(False).accepted_files() == ()
    everything = state.decide_rest(True).accepted_files()
    assert [a.text for a in everything] == [MOD.new_text, NEW.new_text, ""]
    # a set of only failed files has nothing to decide and is never "ready"
    assert not EditSetState.of([BAD]).decide_rest(True).ready
