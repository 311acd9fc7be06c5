"""Chat conversations, kept per workspace.

Each workspace has a folder ``data_dir()/chats/<first 16 hex of sha256(workspace path)>``
(``no-workspace`` before a folder is opened); each conversation is one JSON file in it, named
by the conversation's id and written with ``atomic_write``, so a crash leaves the previous
complete version. ``load_all`` never raises: a file that cannot be read back is moved to
``corrupt/`` (never deleted) and reported, and the panel starts a fresh conversation.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from forecode_core.chat.types import ChatMessage, FinishReason, Role
from forecode_core.store.atomic import TEMP_SUFFIX
from forecode_core.store.json_store import (
    CorruptDocument,
    read_document,
    workspace_folder,
    write_document,
)
from forecode_core.store.private import private_folder
from forecode_core.store.settings import data_dir

__all__ = [
    "FORMAT_VERSION",
    "MESSAGE_ROLES",
    "Conversation",
    "ConversationStore",
    "Finish",
    "MessageRole",
    "NoticeKind",
    "StoredMessage",
    "new_conversation",
    "title_from",
]

FORMAT_NAME = "forecode-chat"
FORMAT_VERSION = 1
CORRUPT_DIR = "corrupt"
NO_WORKSPACE = "no-workspace"


class MessageRole(StrEnum):
    """Who a stored message is from. ``NOTICE`` entries are the inline notices (fallback to
    the local model, errors): shown again on restore, never sent to the model. The values are
    the stored files' strings."""

    USER = "user"
    ASSISTANT = "assistant"
    NOTICE = "notice"


MESSAGE_ROLES: tuple[str, ...] = tuple(MessageRole)


class Finish(StrEnum):
    """How a stored message ended (``StoredMessage.finish``): an assistant reply's
    ``FinishReason``, or ``ERROR`` (the reply broke off); a notice with ``ERROR`` reports a
    failure. ``NONE`` for a user message and an informational notice. A value read from a
    file that is none of these is kept as the string it is."""

    NONE = ""
    STOP = FinishReason.STOP.value
    LENGTH = FinishReason.LENGTH.value
    CANCELLED = FinishReason.CANCELLED.value
    ERROR = "error"


class NoticeKind(StrEnum):
    """What an inline notice is: information (a fallback, no hits) or an error."""

    INFO = "info"
    ERROR = "error"


_ID = re.compile(r"^[0-9a-f]{32}$")
_TITLE_CHARS = 60


@dataclass(frozen=True)
class StoredMessage:
    role: MessageRole
    content: str
    context: tuple[str, ...] = ()  # user: labels of the context that went along
    model: str = ""  # assistant: the model that answered
    source: str = ""  # assistant: "cloud" | "local"
    finish: str = Finish.NONE  # a ``Finish`` (assistant: how it ended; notice: an error)

    @staticmethod
    def notice(text: str, kind: NoticeKind) -> StoredMessage:
        """An inline notice as stored: an error notice has the finish ``ERROR``."""
        finish = Finish.ERROR if kind == NoticeKind.ERROR else Finish.NONE
        return StoredMessage(MessageRole.NOTICE, text, finish=finish)

    @property
    def notice_kind(self) -> NoticeKind:
        """A notice's kind (``notice``'s inverse)."""
        return NoticeKind.ERROR if self.finish == Finish.ERROR else NoticeKind.INFO


@dataclass(frozen=True)
class Conversation:
    id: str  # 32 hex digits; also the service's conversation id (its KV cache key)
    title: str
    created_at: float
    updated_at: float
    messages: tuple[StoredMessage, ...] = ()

    def with_message(self, message: StoredMessage, now: float | None = None) -> Conversation:
        """A copy with ``message`` appended; the first user message names the conversation."""
        title = self.title
        first = not any(m.role == MessageRole.USER for m in self.messages)
        if message.role == MessageRole.USER and first:
            title = title_from(message.content) or title
        return replace(
            self,
            title=title,
            messages=(*self.messages, message),
            updated_at=time.time() if now is None else now,
        )

    def chat_messages(self) -> tuple[ChatMessage, ...]:
        """The turns to send to the model: user and assistant messages with text, in order."""
        out: list[ChatMessage] = []
        for m in self.messages:
            if m.role == MessageRole.USER and m.content:
                out.append(ChatMessage(Role.USER, m.content))
            elif m.role == MessageRole.ASSISTANT and m.content:
                out.append(ChatMessage(Role.ASSISTANT, m.content))
        return tuple(out)


def title_from(text: str) -> str:
    """A conversation title from its first question: the first non-blank line, shortened."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"
    return ""


def new_conversation(now: float | None = None) -> Conversation:
    stamp = time.time() if now is None else now
    return Conversation(uuid.uuid4().hex, "New chat", stamp, stamp)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _document(conv: Conversation, workspace: str) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "id": conv.id,
        "title": conv.title,
        "workspace": workspace,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "context": list(m.context),
                "model": m.model,
                "source": m.source,
                "finish": m.finish,
            }
            for m in conv.messages
        ],
    }


def _decode_message(i: int, m: object) -> StoredMessage:
    if not isinstance(m, dict):
        raise CorruptDocument(f"messages[{i}] is not an object")
    d: dict[str, Any] = m
    if d.get("role") not in MESSAGE_ROLES:
        raise CorruptDocument(f"messages[{i}]: unknown role {d.get('role')!r}")
    if not isinstance(d.get("content"), str):
        raise CorruptDocument(f"messages[{i}]: bad or missing content")
    context = d.get("context", [])
    if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
        raise CorruptDocument(f"messages[{i}]: bad context")
    extras: dict[str, str] = {}
    for name in ("model", "source", "finish"):
        value = d.get(name, "")
        if not isinstance(value, str):
            raise CorruptDocument(f"messages[{i}]: bad {name}")
        extras[name] = value
    return StoredMessage(
        MessageRole(d["role"]),
        d["content"],
        tuple(context),
        extras["model"],
        extras["source"],
        extras["finish"],
    )


def _decode(data: bytes, expected_id: str) -> Conversation:
    d = read_document(data, FORMAT_NAME, FORMAT_VERSION, "conversation")
    if d.get("id") != expected_id:
        raise CorruptDocument("its id does not match its file name")
    if not isinstance(d.get("title"), str):
        raise CorruptDocument("bad or missing title")
    for name in ("created_at", "updated_at"):
        if not _is_number(d.get(name)):
            raise CorruptDocument(f"bad or missing {name}")
    messages = d.get("messages")
    if not isinstance(messages, list):
        raise CorruptDocument("bad or missing messages")
    return Conversation(
        expected_id,
        d["title"],
        float(d["created_at"]),
        float(d["updated_at"]),
        tuple(_decode_message(i, m) for i, m in enumerate(messages)),
    )


class ConversationStore:
    """The conversations of one workspace: one JSON file per conversation under ``root``."""

    def __init__(self, root: Path, workspace: str = "") -> None:
        self.root = Path(root)
        self.workspace = workspace

    @classmethod
    def for_workspace(
        cls, workspace: str | os.PathLike[str] | None, base: Path | None = None
    ) -> ConversationStore:
        """The store for ``workspace`` (None: no folder open) under ``base``, by default
        ``data_dir()/"chats"``."""
        if base is None:
            base = data_dir() / "chats"
        if workspace is None:
            return cls(Path(base) / NO_WORKSPACE, "")
        resolved, folder = workspace_folder(workspace)
        return cls(Path(base) / folder, resolved)

    def file_for(self, conv_id: str) -> Path:
        if not _ID.match(conv_id):
            raise ValueError(f"not a conversation id: {conv_id!r}")
        return self.root / f"{conv_id}.json"

    def save(self, conv: Conversation) -> None:
        """Write ``conv`` atomically. Raises OSError (the caller reports it)."""
        write_document(self.file_for(conv.id), _document(conv, self.workspace), indent=1)

    def delete(self, conv_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file_for(conv_id).unlink()

    def load_all(self) -> tuple[list[Conversation], list[str]]:
        """Every readable conversation, most recently updated first, and the problems to show.

        Never raises: an unreadable folder is reported; a corrupt file is moved to
        ``root/corrupt/`` and reported."""
        try:
            entries = sorted(self.root.iterdir()) if self.root.is_dir() else []
        except OSError as e:
            return [], [f"Chat history could not be read ({e.strerror or e})"]
        convs: list[Conversation] = []
        problems: list[str] = []
        for entry in entries:
            if entry.name.endswith(TEMP_SUFFIX) or entry.suffix != ".json":
                continue
            conv_id = entry.stem
            try:
                if not _ID.match(conv_id):
                    raise CorruptDocument("not named by a conversation id")
                convs.append(_decode(entry.read_bytes(), conv_id))
            except (CorruptDocument, OSError) as e:
                why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                problems.append(
                    f"Chat history: {entry.name} could not be read ({why}); {self._aside(entry)}"
                )
        convs.sort(key=lambda c: c.updated_at, reverse=True)
        return convs, problems

    def _aside(self, entry: Path) -> str:
        target = self.root / CORRUPT_DIR / f"{entry.name}.{int(time.time() * 1000)}"
        try:
            private_folder(target.parent)
            os.replace(entry, target)
        except OSError as e:
            return f"it could not be moved aside ({e.strerror or e})"
        return f"it was moved to {target}"
