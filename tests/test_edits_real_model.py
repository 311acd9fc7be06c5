"""Multi-file edits with the real service model (Qwen2.5-Coder-1.5B-Instruct, the loopback
service's default) over the real gRPC service: the product's guarantee, not the model's text.
Whatever the model writes, the editor gets either a well-formed set (each file new, deleted or
modified as the parser and the apply pipeline define: a modified file's new text is a whole
file, no placeholder left, different from what was sent; a new file is not one that was sent)
or a clear refusal ("incomplete", a sentence ending "Nothing was changed."). Fails, never
skips, when the engine is broken."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from forecode_core.apply.block import is_elision
from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, ContextKind, Role
from forecode_core.edits.events import EditsDone, FileChangeKind
from forecode_core.streams import Delta, StreamError

pytestmark = pytest.mark.slow

GEOMETRY = """\
import math


def area(radius):
    return math.pi * radius * radius
"""

REPORT = """\
from geometry import area


def report(radius):
    print("area:", area(radius))
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from cloud_client.client import CloudClient
    from cloud_server.backends import LlamaBackend
    from cloud_server.config import ServerConfig
    from cloud_server.service import start_server
    from local_models.model_store import SERVICE_MODEL, ensure_model

    token = secrets.token_urlsafe(32)
    config = ServerConfig(
        tokens=(token,), slots=1, n_ctx=4096, model_path=str(ensure_model(SERVICE_MODEL))
    )
    backend = LlamaBackend(config)
    server = start_server(config, backend=backend)
    cloud = CloudClient(server.address, token)
    try:
        yield cloud
    finally:
        cloud.close()
        server.stop(grace=1.0)
        backend.close()


@pytest.mark.timeout(900)
def test_the_real_model_gives_a_well_formed_set_or_a_clear_refusal(client: Any) -> None:
    sent = {"geometry.py": GEOMETRY, "report.py": REPORT}
    params = ChatParams(
        f"edits-{secrets.token_hex(4)}",
        (
            ChatMessage(
                Role.USER,
                "Rename the function area to circle_area in geometry.py and update its use "
                "in report.py.",
            ),
        ),
        tuple(
            ContextItem(ContextKind.FILE, path, text, language="python")
            for path, text in sent.items()
        ),
        max_tokens=600,
    )
    answer = ""
    try:
        for event in client.edits(params, timeout=800.0):
            if isinstance(event, Delta):
                answer += event.text
            elif isinstance(event, EditsDone):
                done = event
    except StreamError as exc:
        # a clear refusal: the parser's or the pipeline's reason, nothing offered
        assert exc.code == "incomplete", (exc.code, exc.message, answer)
        assert exc.message.endswith("Nothing was changed."), exc.message
        print(f"refused: {exc.message}\n--- answer ---\n{answer}")
        return
    assert answer, "the model wrote nothing"
    assert done.files, answer
    for change in done.files:
        assert change.path, change
        if change.kind is FileChangeKind.MODIFIED:
            assert change.path in sent and change.original == sent[change.path]
            assert change.new_text and change.new_text != change.original
            assert not any(is_elision(line) for line in change.new_text.splitlines()), change
        elif change.kind is FileChangeKind.NEW:
            assert change.path not in sent
        elif change.kind is FileChangeKind.DELETED:
            assert change.original == sent[change.path]
        else:
            assert change.kind is FileChangeKind.FAILED and change.error, change
    print(
        "set:",
        [(c.path, c.kind, c.source, c.error) for c in done.files],
        "\n--- answer ---\n",
        answer,
    )
