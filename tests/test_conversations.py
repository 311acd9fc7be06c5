"""Chat conversations kept per workspace (``forecode_core.chat.conversations``): round trips, one
folder
per workspace, and corrupted files that are reported and set aside without losing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forecode_core.chat.conversations import (
    FORMAT_VERSION,
    Conversation,
    ConversationStore,
    Finish,
    MessageRole,
    NoticeKind,
    StoredMessage,
    new_conversation,
    title_from,
)
from forecode_core.chat.types import ChatMessage, Role


def chat(now: float = 1000.0, *messages: StoredMessage) -> Conversation:
    conv = new_conversation(now)
    for i, m in enumerate(messages):
        conv = conv.with_message(m, now + i + 1)
    return conv


Q = StoredMessage("user", "Why does `parse()` fail?\nIt raises.", ("current file app.py",))
A = StoredMessage("assistant", "Because ```python\nx = 1\n```", (), "Gemma 3 270m", "cloud", "stop")
N = StoredMessage("notice", "The service is not reachable; answering with the local model")


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore.for_workspace(tmp_path / "ws", base=tmp_path / "chats")


def test_round_trip_keeps_every_field(store: ConversationStore) -> None:
    conv = chat(1000.0, Q, N, A, StoredMessage("user", "ünïcödé 🙂 and \u2028 too"))
    store.save(conv)
    loaded, problems = store.load_all()
    assert problems == []
    assert loaded == [conv]


def test_title_and_model_turns() -> None:
    conv = chat(1.0, Q, N, A)
    assert conv.title == "Why does `parse()` fail?"
    assert conv.chat_messages() == (
        ChatMessage("user", Q.content),
        ChatMessage("assistant", A.content),
    )
    assert conv.updated_at == 4.0 and conv.created_at == 1.0


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("", ""),
        ("\n\n   \n", ""),
        ("  first   line  \nsecond", "first line"),
        ("x" * 61, "x" * 59 + "…"),
        ("x" * 60, "x" * 60),
    ],
)
def test_title_from(text: str, title: str) -> None:
    assert title_from(text) == title


def test_listed_most_recent_first(store: ConversationStore) -> None:
    old, new = chat(10.0, Q), chat(20.0, Q)
    store.save(new)
    store.save(old)
    assert [c.id for c in store.load_all()[0]] == [new.id, old.id]


def test_each_workspace_has_its_own_conversations(tmp_path: Path) -> None:
    base = tmp_path / "chats"
    a = ConversationStore.for_workspace(tmp_path / "a", base=base)
    b = ConversationStore.for_workspace(tmp_path / "b", base=base)
    none = ConversationStore.for_workspace(None, base=base)
    assert len({a.root, b.root, none.root}) == 3
    a.save(chat(1.0, Q))
    assert len(a.load_all()[0]) == 1
    assert b.load_all() == ([], [])
    assert none.load_all() == ([], [])
    # the same folder, however it is spelt, is the same workspace
    again = ConversationStore.for_workspace(tmp_path / "x" / ".." / "a", base=base)
    assert again.root == a.root


def test_delete(store: ConversationStore) -> None:
    conv = chat(1.0, Q)
    store.save(conv)
    store.delete(conv.id)
    store.delete(conv.id)  # twice is fine
    assert store.load_all() == ([], [])


def test_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="not a conversation id"):
        ConversationStore(Path("/nowhere")).file_for("../../etc/passwd")


GOOD_DOC = {
    "format": "forecode-chat",
    "version": FORMAT_VERSION,
    "id": "0" * 32,
    "title": "t",
    "workspace": "",
    "created_at": 1,
    "updated_at": 2,
    "messages": [{"role": "user", "content": "hi"}],
}


def doc_with(**changes: object) -> bytes:
    doc = {**GOOD_DOC, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{not json", "invalid JSON at line 1, column 2"),
        (b'{"messages": [', "invalid JSON"),
        (b"\xff\xfe garbage", "not UTF-8 at byte 0"),
        (b"[1, 2]", "not a Forecode conversation"),
        (doc_with(format="something-else"), "not a Forecode conversation"),
        (doc_with(version=99), "unknown version 99 (expected 1)"),
        (doc_with(id="1" * 32), "its id does not match its file name"),
        (doc_with(title=...), "bad or missing title"),
        (doc_with(updated_at="yesterday"), "bad or missing updated_at"),
        (doc_with(created_at=True), "bad or missing created_at"),
        (doc_with(messages={}), "bad or missing messages"),
        (doc_with(messages=["hi"]), "messages[0] is not an object"),
        (doc_with(messages=[{"role": "system", "content": "x"}]), "messages[0]: unknown role"),
        (doc_with(messages=[{"role": "user"}]), "messages[0]: bad or missing content"),
        (
            doc_with(messages=[{"role": "user", "content": "x", "context": "a"}]),
            "messages[0]: bad context",
        ),
        (
            doc_with(messages=[{"role": "assistant", "content": "x", "model": 3}]),
            "messages[0]: bad model",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    ],
)
def test_a_corrupt_file_is_reported_moved_aside_and_loses_nothing_else(
    store: ConversationStore, data: bytes, why: str
) -> None:
    keep = chat(5.0, Q, A)
    store.save(keep)
    bad = store.root / f"{'0' * 32}.json"
    bad.write_bytes(data)
    loaded, problems = store.load_all()
    assert loaded == [keep]  # the good conversation is untouched
    (problem,) = problems
    assert problem.startswith(f"Chat history: {bad.name} could not be read (")
    assert why in problem
    assert "it was moved to" in problem
    assert not bad.exists()
    (aside,) = (store.root / "corrupt").iterdir()
    assert aside.read_bytes() == data  # kept byte for byte, never deleted
    assert str(aside) in problem
    assert store.load_all() == ([keep], [])  # reported once, then out of the way


def test_a_good_document_decodes(store: ConversationStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / f"{'0' * 32}.json").write_bytes(doc_with())
    (conv,), problems = store.load_all()
    assert problems == []
    assert conv.messages == (StoredMessage("user", "hi"),)


def test_only_conversation_files_are_read(store: ConversationStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "notes.txt").write_text("mine")
    (store.root / f"{'a' * 32}.json.forecode-tmp").write_text("half")  # an interrupted save
    (store.root / "not-an-id.json").write_text("{}")
    loaded, problems = store.load_all()
    assert loaded == []
    (problem,) = problems
    assert "not-an-id.json could not be read (not named by a conversation id)" in problem
    assert (store.root / "notes.txt").read_text() == "mine"
    assert (store.root / f"{'a' * 32}.json.forecode-tmp").read_text() == "half"


def test_an_unreadable_folder_is_a_message_not_an_exception(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(chat(1.0, Q))

    def refuse(self: Path) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    assert store.load_all() == ([], ["Chat history could not be read (Permission denied)"])


def test_a_failed_save_raises_for_the_caller_to_show(tmp_path: Path) -> None:
    (tmp_path / "chats").write_text("a file where the folder should be")
    with pytest.raises(OSError):
        ConversationStore(tmp_path / "chats" / "ws").save(chat(1.0, Q))


# ----- roles, finishes and notices are values (StrEnum): the stored strings unchanged --------


@pytest.mark.parametrize(
    ("member", "stored"),
    [
        (MessageRole.USER, "user"),
        (MessageRole.ASSISTANT, "assistant"),
        (MessageRole.NOTICE, "notice"),
        (Finish.NONE, ""),
        (Finish.STOP, "stop"),
        (Finish.LENGTH, "length"),
        (Finish.CANCELLED, "cancelled"),
        (Finish.ERROR, "error"),
    ],
)
def test_members_are_the_stored_strings(member: str, stored: str) -> None:
    assert member == stored and json.dumps(member) == json.dumps(stored)


@pytest.mark.parametrize(
    ("kind", "finish"),
    [(NoticeKind.INFO, ""), (NoticeKind.ERROR, "error")],
)
def test_a_notice_keeps_its_kind_in_its_finish(kind: NoticeKind, finish: str) -> None:
    notice = StoredMessage.notice("the text", kind)
    assert (notice.role, notice.content, notice.finish) == ("notice", "the text", finish)
    assert notice.notice_kind is kind
    # what the panel wrote before these were values reads back the same
    assert StoredMessage("notice", "the text", finish=finish).notice_kind is kind


def test_a_decoded_message_has_its_role_as_a_member(store: ConversationStore) -> None:
    store.save(chat(1000.0, Q, A, N))
    (loaded,), _ = store.load_all()
    assert [m.role for m in loaded.messages] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.NOTICE,
    ]
    assert all(type(m.role) is MessageRole for m in loaded.messages)
    assert [type(m.role) for m in loaded.chat_messages()] == [Role, Role]
