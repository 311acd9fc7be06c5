"""A file too big for the slot edited through its excerpt with the real service model
(Qwen2.5-Coder-1.5B-Instruct over the real gRPC service, n_ctx 4096 as the default service):
the stdlib's textwrap.py (491 lines, ~5,600 tokens) as the current file with the caret in
``indent``, cut by the chat panel's own budget (4,096 - 1,024 - 512). The product's guarantee,
not the model's text: the request fits the slot (no "too large" refusal), and the editor gets
either a modified textwrap.py resolved against the WHOLE file that changes only lines of the
excerpt, or a clear refusal (the whole answer "incomplete", or the file FAILED with its
reason). Fails, never skips, when the engine is broken."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import pytest

from forecode_core.apply.block import is_elision
from forecode_core.chat.context import ContextSource, SourceKind, assemble_context
from forecode_core.chat.types import ChatMessage, ChatParams, Role
from forecode_core.edits.events import EditsDone, FileChangeKind
from forecode_core.edits.excerpt import excerpt_range, outside_excerpt
from forecode_core.streams import Delta, StreamError
from tests.test_edits_real_model import client as client  # the real service, module-scoped

pytestmark = pytest.mark.slow

BUDGET = 4096 - 1024 - 512  # ChatPanel.context_budget in "Edit files" mode, chat.maxTokens 1024


@pytest.mark.timeout(900)
def test_the_real_model_edits_a_big_file_through_its_excerpt(client: object) -> None:
    text = Path(textwrap.__file__).read_text()
    focus = text.split("\n").index("def indent(text, prefix, predicate=None):")
    source = ContextSource(SourceKind.CURRENT_FILE, "textwrap.py", text, "python", 1, focus + 3)
    plan = assemble_context([source], BUDGET, excerpts=True)
    (item,) = plan.items
    span = excerpt_range(item)
    assert span is not None and span[0] <= focus + 1 <= span[1]
    params = ChatParams(
        f"edits-{secrets.token_hex(4)}",
        (
            ChatMessage(
                Role.USER,
                "Add a keyword parameter blank_lines=False to indent: when it is true, "
                "blank lines are indented too (unless a predicate is given).",
            ),
        ),
        plan.items,
        max_tokens=1024,
    )
    answer = ""
    done: EditsDone | None = None
    try:
        for event in client.edits(params, timeout=800.0):  # type: ignore[attr-defined]
            if isinstance(event, Delta):
                answer += event.text
            elif isinstance(event, EditsDone):
                done = event
    except StreamError as exc:
        assert exc.code == "incomplete", (exc.code, exc.message, answer)
        assert exc.message.endswith("Nothing was changed."), exc.message
        print(f"refused: {exc.message}\n--- answer ---\n{answer}")
        return
    assert done is not None and done.files, answer
    for change in done.files:
        assert change.path == "textwrap.py", change
        if change.kind is FileChangeKind.FAILED:
            assert change.error, change
            continue
        assert change.kind is FileChangeKind.MODIFIED, change
        assert change.original == text and change.new_text != text
        assert not any(is_elision(line) for line in change.new_text.splitlines()), change
        assert not outside_excerpt(text, change.new_text, *span)
    print(
        "excerpt:",
        span,
        "set:",
        [(c.path, c.kind, c.source, c.error) for c in done.files],
        "\n--- answer ---\n",
        answer,
    )
