"""Multi-file edits over the real gRPC service on loopback (``Edits/Propose``), with a fake
model at the backend seam: the scripted answer touches three files (one new, one modified,
one deleted); the modified one is resolved by the real apply pipeline against the text the
client sent. Also: token auth, a malformed answer refused whole, the router's path, a block
that cannot be placed shown as a failed file beside the others."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cloud_client.client import CloudClient
from cloud_client.router import Router
from cloud_server.config import ServerConfig
from cloud_server.service import start_server
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.pipeline import PipelineCall
from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, ContextKind, Role
from forecode_core.edits.events import EditsDone, FileChangeKind
from forecode_core.streams import Delta, Done, FinishReason, Notice, Started, StreamError

TOKEN = secrets.token_urlsafe(24)

MAIN = """\
import os


def greet(name):
    return "hello " + name


def main():
    print(greet("world"))
"""

UTIL = "def unused():\n    pass\n"

ANSWER = """\
I add a shout helper in a new module, use it in main.py and delete the unused util.py.

FILE: app/main.py
```python
import os
from app.greeting import shout

# ... existing code ...

def main():
    print(shout(greet("world")))
```

NEW FILE: app/greeting.py
```python
def shout(text):
    return text.upper()
```

DELETE FILE: app/util.py
"""


class _ScriptedBackend:
    """The model at the seam: ``answer`` for every chat; apply is the real pipeline's
    deterministic path (no model path: a block it cannot place is a refusal)."""

    def __init__(self, answer: str, finish: FinishReason = FinishReason.STOP) -> None:
        self.answer = answer
        self.finish = finish
        self.asked: list[ChatParams] = []
        self.applied: list[ApplyInput] = []

    def info(self) -> dict[str, Any]:
        return {"backend": "scripted", "models": ["scripted"], "slots": 1}

    def stream_chat(self, params: ChatParams, *, should_stop: Any) -> Iterator[Any]:
        self.asked.append(params)
        yield Started(model="scripted")
        for i in range(0, len(self.answer), 40):
            yield Delta(self.answer[i : i + 40])
        yield Done(self.finish, {"completion_tokens": 99})

    def stream_apply(self, request: ApplyInput, *, should_stop: Any) -> Iterator[Any]:
        self.applied.append(request)
        yield from PipelineCall(request, None)

    def close(self) -> None:
        pass


def _params(*files: tuple[str, str], task: str = "Move greet to its own module") -> ChatParams:
    context = tuple(
        ContextItem(
            ContextKind.CURRENT_FILE if i == 0 else ContextKind.FILE, path, text, language="python"
        )
        for i, (path, text) in enumerate(files)
    )
    return ChatParams("edits-1", (ChatMessage(Role.USER, task),), context)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Any] = []

    def start(backend: _ScriptedBackend) -> CloudClient:
        running = start_server(ServerConfig(tokens=(TOKEN,)), backend=backend)  # type: ignore[arg-type]
        servers.append(running)
        client = CloudClient(f"127.0.0.1:{running.port}", TOKEN)
        servers.append(client)
        return client

    yield start
    for item in reversed(servers):
        if isinstance(item, CloudClient):
            item.close()
        else:
            item.stop(0)


def _run(call: Any) -> tuple[list[Any], EditsDone]:
    events = list(call)
    done = events[-1]
    assert isinstance(done, EditsDone)
    return events, done


def test_three_files_new_modified_deleted_over_loopback(serve: Any) -> None:
    backend = _ScriptedBackend(ANSWER)
    client = serve(backend)
    events, done = _run(client.edits(_params(("app/main.py", MAIN), ("app/util.py", UTIL))))
    assert isinstance(events[0], Started)
    assert "".join(e.text for e in events if isinstance(e, Delta)) == ANSWER
    assert any(isinstance(e, Notice) and "app/main.py" in e.text for e in events)
    assert done.finish_reason == FinishReason.STOP
    by_path = {f.path: f for f in done.files}
    assert [f.path for f in done.files] == ["app/main.py", "app/greeting.py", "app/util.py"]
    main = by_path["app/main.py"]
    assert main.kind is FileChangeKind.MODIFIED
    assert main.original == MAIN  # what was sent
    assert main.source == "deterministic"
    assert main.new_text == MAIN.replace(
        "import os\n", "import os\nfrom app.greeting import shout\n"
    ).replace('print(greet("world"))', 'print(shout(greet("world")))')
    assert by_path["app/greeting.py"].kind is FileChangeKind.NEW
    assert by_path["app/greeting.py"].new_text == "def shout(text):\n    return text.upper()\n"
    assert by_path["app/util.py"].kind is FileChangeKind.DELETED
    assert by_path["app/util.py"].original == UTIL
    # the model saw the files and the format; the apply got the text the client sent
    (asked,) = backend.asked
    turn = asked.messages[-1].content
    assert "app/main.py" in turn and "def greet(name):" in turn and "NEW FILE:" in turn
    assert asked.context == ()
    assert [r.original for r in backend.applied] == [MAIN]


@pytest.mark.parametrize(
    ("answer", "finish", "words"),
    [
        ("I would do it like this:\n```python\nx = 1\n```\n", FinishReason.STOP, "no file"),
        ("FILE: app/other.py\n```\nx = 1\n```\n", FinishReason.STOP, "was not sent"),
        ("FILE: app/main.py\n```python\nimport os\n", FinishReason.LENGTH, "cut off"),
        ("FILE: app/main.py\n```python\nimport os\n", FinishReason.STOP, "never closes"),
    ],
)
def test_a_malformed_answer_is_refused_with_its_reason(
    serve: Any, answer: str, finish: FinishReason, words: str
) -> None:
    client = serve(_ScriptedBackend(answer, finish))
    with pytest.raises(StreamError) as info:  # two files sent: a block names its own
        list(client.edits(_params(("app/main.py", MAIN), ("app/util.py", UTIL))))
    assert info.value.code == "incomplete"
    assert words in info.value.message
    assert info.value.message.endswith("Nothing was changed.")


def test_with_one_file_sent_a_headerless_block_is_its_edit(serve: Any) -> None:
    """A small model's slip (a user run): prose, a block with no FILE: line, then the file's
    header alone. With one file sent, the block is that file's edit, reviewed as any other."""
    answer = (
        "The changed function is:\n```python\ndef greet(name):\n"
        '    return "hello, " + name\n```\nFILE: app/main.py\n'
    )
    client = serve(_ScriptedBackend(answer))
    _events, done = _run(client.edits(_params(("app/main.py", MAIN))))
    (change,) = done.files
    assert change.path == "app/main.py" and change.kind is FileChangeKind.MODIFIED
    assert 'return "hello, " + name' in change.new_text and "def main" in change.new_text


def test_a_block_that_does_not_place_is_a_failed_file_beside_the_others(serve: Any) -> None:
    answer = (
        "FILE: app/main.py\n```python\ndef nowhere():\n    pass\n# ... existing code ...\n"
        "def elsewhere():\n    pass\n```\n\nNEW FILE: b.py\n```\nB = 1\n```\n"
    )
    client = serve(_ScriptedBackend(answer))
    _events, done = _run(client.edits(_params(("app/main.py", MAIN))))
    kinds = {f.path: f.kind for f in done.files}
    assert kinds == {"app/main.py": FileChangeKind.FAILED, "b.py": FileChangeKind.NEW}
    failed = done.files[0]
    assert failed.error and failed.new_text == "" and failed.original == MAIN


def test_a_wrong_token_is_refused_before_the_model_runs(serve: Any) -> None:
    backend = _ScriptedBackend(ANSWER)
    client = serve(backend)
    with (
        CloudClient(client.target, "not-the-token") as stranger,
        pytest.raises(StreamError) as info,
    ):
        list(stranger.edits(_params(("app/main.py", MAIN))))
    assert info.value.code == "unauthenticated"
    assert backend.asked == []


def test_the_router_sends_edits_to_the_service_and_cancel_stops(serve: Any) -> None:
    backend = _ScriptedBackend(ANSWER)
    client = serve(backend)
    router = Router(client, None)
    try:
        _events, done = _run(router.edits(_params(("app/main.py", MAIN), ("app/util.py", UTIL))))
        assert len(done.files) == 3
        call = router.edits(_params(("app/main.py", MAIN), ("app/util.py", UTIL)))
        first = next(iter(call))
        assert isinstance(first, Started)
        threading.Thread(target=call.cancel).start()
        rest = list(call)
        assert not rest or rest[-1].finish_reason in (FinishReason.CANCELLED, FinishReason.STOP)
    finally:
        router.close()
    without = Router(None, None)
    with pytest.raises(StreamError) as info:
        without.edits(_params(("app/main.py", MAIN)))
    assert info.value.code == "unavailable"
    without.close()
