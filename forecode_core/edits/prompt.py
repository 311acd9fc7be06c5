"""The multi-file edit's prompt: the files the client sent, the user's request and the answer
format that ``forecode_core.edits.answer`` parses, as the last user turn of a chat.

The files come as the request's context items: a whole file (``file`` or ``current_file``,
no line range, not truncated) may be edited, created over nothing or deleted; a selection, a
line range or a truncated file is read-only context (its edit would be resolved against text
the client did not send whole). An editable excerpt (``forecode_core.edits.excerpt``: a file
too big for the budget, its whole text with the excerpt's lines as its range) shows only those
lines, marked as lines a-b of the file, and may be edited with elisions; the block is resolved
against the whole text. The answer format is described in the user turn, not in a
system message: the reply guard stops a reply that repeats 32 characters of the system
prompt, and a well-formed answer repeats the format's words.

Versioned (``EDITS_PROMPT_VERSION``, golden-tested in tests/test_edits_prompt.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from forecode_core.chat.prompt_formats import render_context_item
from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, ContextKind, Role
from forecode_core.edits.excerpt import excerpt_note, excerpt_range, excerpt_text
from forecode_core.text.prompt_text import fence_for

__all__ = [
    "DEFAULT_EDITS_MAX_TOKENS",
    "EDITS_PROMPT_VERSION",
    "SentFile",
    "edits_chat_params",
    "render_edits_turn",
    "sent_files",
]

EDITS_PROMPT_VERSION = 4
"""Bumped whenever the rendered text of any input changes."""

DEFAULT_EDITS_MAX_TOKENS = 1536
"""The answer's budget when the request names none: several files' blocks."""

_FORMAT = (
    "Reply with one or two sentences saying what you change. Then, for each file you change, "
    "write the line FILE: <path> and below it a code block with the changed lines and a few "
    "lines around them (write # ... existing code ... for the lines you leave out). For a file "
    "that does not exist yet, write NEW FILE: <path> and below it a code block with the whole "
    "file. To delete a file, write DELETE FILE: <path> and no code block. <path> is a path "
    "exactly as shown above."
)
"""One paragraph with the keywords as templates: as a bulleted list, or after a worked
example, Qwen2.5-Coder-1.5B echoed the list or the example's files into its answer (tried on
a rename across two files and a move into a new file; this wording answered the rename
cleanly)."""


@dataclass(frozen=True)
class SentFile:
    """A file the client sent: its workspace path, text and language; ``editable`` when the
    text is the whole file (a range or a truncated file is context only); ``excerpt``: the
    lines (1-based, inclusive) the prompt shows of an editable excerpt, None when whole."""

    path: str
    text: str
    language: str = ""
    editable: bool = True
    excerpt: tuple[int, int] | None = None


def _whole_file(item: ContextItem) -> bool:
    return (
        item.kind in (ContextKind.FILE, ContextKind.CURRENT_FILE)
        and item.start_line == 0
        and not item.truncated
        and bool(item.path)
    )


def sent_files(context: Sequence[ContextItem]) -> dict[str, SentFile]:
    """The request's files by path (the first item of a path wins; a whole file wins over a
    part of it)."""
    out: dict[str, SentFile] = {}
    for item in context:
        if not item.path:
            continue
        whole = _whole_file(item)
        excerpt = None if whole else excerpt_range(item)
        sent = SentFile(item.path, item.text, item.language, whole or bool(excerpt), excerpt)
        known = out.get(item.path)
        if known is None or _rank(sent) > _rank(known):
            out[item.path] = sent
    return out


def _rank(sent: SentFile) -> int:
    """Which of two items of a path wins: a whole file, then an excerpt, then a part."""
    return 0 if not sent.editable else 1 if sent.excerpt else 2


def _render_file(item: SentFile) -> str:
    body = item.text.replace("\r\n", "\n")
    note = ""
    if item.excerpt is not None:
        first, last = item.excerpt
        total = body.count("\n") + 1
        body = excerpt_text(body, first, last)
        note = excerpt_note(first, last, total)
    if body and not body.endswith("\n"):
        body += "\n"
    fence = fence_for(body)
    return f"{note}{item.path}\n{fence}{item.language}\n{body}{fence}"


def render_edits_turn(
    question: str, files: Mapping[str, SentFile], context: Sequence[ContextItem] = ()
) -> str:
    """The user turn: the editable files, read-only context, the answer format, and the task
    last (a small model given the format last continued its list instead of answering)."""
    parts: list[str] = []
    editable = [f for f in files.values() if f.editable]
    if editable:
        parts.append("Files of the project (you may change, delete or add files):")
        parts.extend(_render_file(f) for f in editable)
    else:
        parts.append("No file of the project was sent; you may only create new files.")
    others = [c for c in context if not (c.path in files and files[c.path].editable)]
    if others:
        parts.append("Read-only context (do not change these):")
        parts.extend(render_context_item(c) for c in others)
    parts.append(_FORMAT)
    parts.append(f"Task: {question.strip()}")
    return "\n\n".join(parts)


def edits_chat_params(
    params: ChatParams, *, default_max_tokens: int = DEFAULT_EDITS_MAX_TOKENS
) -> tuple[ChatParams, dict[str, SentFile]]:
    """The chat the model answers for a multi-file edit request ``params`` (its last message
    is the user's task, its context the files), and the files it may touch. ValueError when
    the request has no user turn at its end."""
    if not params.messages or params.messages[-1].role != Role.USER:
        raise ValueError("a multi-file edit request ends with the user's task")
    files = sent_files(params.context)
    turn = render_edits_turn(params.messages[-1].content, files, params.context)
    messages = (*params.messages[:-1], ChatMessage(Role.USER, turn))
    chat = replace(
        params,
        messages=messages,
        context=(),
        max_tokens=params.max_tokens or default_max_tokens,
    )
    return chat, files
