"""Model slots and their queue: ``SlotPool`` as plain logic, then the real service with two
slots over the real default model — several conversations at once, each conversation's KV
cache reused on its next turn, and a full queue refused with a "busy" answer.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cloud_client.client import CloudClient
from cloud_server.config import ServerConfig
from cloud_server.service import RunningServer, start_server
from cloud_server.slots import QueueFull, SlotPool
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatParams,
    ChatStarted,
)
from local_models.model_store import ensure_small_model
from proto.forecode.v1 import forecode_pb2 as pb

TOKEN = secrets.token_urlsafe(32)


def never() -> bool:
    return False


# ---------------------------------------------------------------------------------------------
# SlotPool (no model)


def _take(
    pool: SlotPool,
    conversation: str,
    got: list[tuple[str, int | None]],
    stop: threading.Event | None = None,
) -> threading.Thread:
    def run() -> None:
        got.append((conversation, pool.acquire(conversation, stop.is_set if stop else never)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_queued(pool: SlotPool, n: int) -> None:
    deadline = time.monotonic() + 10
    while pool.queued() != n:
        assert time.monotonic() < deadline, f"{pool.queued()} queued, expected {n}"
        time.sleep(0.005)


def test_free_slots_are_taken_at_once_and_released() -> None:
    pool = SlotPool(2, max_queue=0)
    a, b = pool.acquire("a", never), pool.acquire("b", never)
    assert {a, b} == {0, 1} and pool.busy() == 2
    pool.release(a)  # type: ignore[arg-type]
    assert pool.busy() == 1
    with pytest.raises(RuntimeError, match="released twice"):
        pool.release(a)  # type: ignore[arg-type]


def test_a_conversation_returns_to_the_slot_that_holds_its_cache() -> None:
    pool = SlotPool(2, max_queue=4)
    x = pool.acquire("x", never)
    y = pool.acquire("y", never)
    pool.release(x)  # type: ignore[arg-type]
    pool.release(y)  # type: ignore[arg-type]
    # The least recently used slot is x's; y still goes back to its own.
    assert pool.acquire("y", never) == y
    assert pool.acquire("x", never) == x


def test_a_new_conversation_takes_the_least_recently_used_slot() -> None:
    pool = SlotPool(3, max_queue=4)
    slots = [pool.acquire(c, never) for c in ("a", "b", "c")]
    for s in (slots[1], slots[0], slots[2]):  # b's slot is released first: least recent
        pool.release(s)  # type: ignore[arg-type]
    assert pool.acquire("new", never) == slots[1]


def test_waiters_are_served_first_come_first_served() -> None:
    pool = SlotPool(1, max_queue=8)
    slot = pool.acquire("holder", never)
    got: list[tuple[str, int | None]] = []
    threads = []
    for name in ("first", "second", "third"):
        threads.append(_take(pool, name, got))
        _wait_queued(pool, len(threads))
    for expected in ("first", "second", "third"):
        pool.release(slot)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while not got or got[-1][0] != expected:
            assert time.monotonic() < deadline, got
            time.sleep(0.005)
        slot = got[-1][1]
    assert [name for name, _ in got] == ["first", "second", "third"]


def test_a_waiter_that_stops_leaves_the_queue() -> None:
    pool = SlotPool(1, max_queue=1)
    slot = pool.acquire("holder", never)
    stop = threading.Event()
    got: list[tuple[str, int | None]] = []
    thread = _take(pool, "quitter", got, stop)
    _wait_queued(pool, 1)
    with pytest.raises(QueueFull, match="1 model slots are busy and 1 requests are waiting"):
        pool.acquire("one too many", never)
    stop.set()
    thread.join(10)
    assert got == [("quitter", None)] and pool.queued() == 0
    pool.release(slot)  # type: ignore[arg-type]
    assert pool.acquire("next", never) == slot  # the queue is not stuck on the quitter


def test_no_queue_means_busy_is_refused_at_once() -> None:
    pool = SlotPool(1, max_queue=0)
    pool.acquire("a", never)
    with pytest.raises(QueueFull):
        pool.acquire("b", never)


# ---------------------------------------------------------------------------------------------
# the real service, two slots


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    config = ServerConfig(
        tokens=(TOKEN,),
        slots=2,
        max_queue=1,
        n_ctx=1024,
        default_max_tokens=32,
        model_path=str(ensure_small_model()),
        grace_s=1.0,
    )
    running = start_server(config)
    yield running
    running.stop(0)


@pytest.fixture
def client(server: RunningServer) -> Iterator[CloudClient]:
    with CloudClient(f"127.0.0.1:{server.port}", TOKEN) as c:
        yield c


CODE_X = "def area(width, height):\n    return width * height\n\n" * 6
CODE_Y = "class Stack:\n    def __init__(self):\n        self.items = []\n\n" * 6


def reply_to(
    client: CloudClient, conversation: str, messages: list[ChatMessage], max_tokens: int = 12
) -> tuple[str, ChatDone]:
    events = list(client.chat(ChatParams(conversation, tuple(messages), max_tokens=max_tokens)))
    done = events[-1]
    assert isinstance(done, ChatDone) and done.finish_reason in ("stop", "length"), events
    return "".join(e.text for e in events if isinstance(e, ChatDelta)), done


@pytest.mark.slow
def test_each_conversation_reuses_its_own_kv_cache(
    client: CloudClient, server: RunningServer
) -> None:
    """X and Y start on the two slots; Y's follow-up comes first (so the least recently used
    slot is X's): it still goes back to Y's slot and reuses everything of its first turn."""
    x1 = [ChatMessage("user", "What does this code do?\n" + CODE_X)]
    y1 = [ChatMessage("user", "Explain this class:\n" + CODE_Y)]
    x_reply, x_done = reply_to(client, "conv-x", x1)
    y_reply, y_done = reply_to(client, "conv-y", y1)
    assert x_done.usage["prompt_tokens"] > 100 and y_done.usage["prompt_tokens"] > 100
    follow = ChatMessage("user", "Now say it in one sentence.")
    _, y2 = reply_to(client, "conv-y", [*y1, ChatMessage("assistant", y_reply), follow])
    _, x2 = reply_to(client, "conv-x", [*x1, ChatMessage("assistant", x_reply), follow])
    for first, second in ((y_done, y2), (x_done, x2)):
        # The whole first turn (its prompt, and the reply it generated) was still cached.
        assert second.usage["cached_tokens"] >= first.usage["prompt_tokens"], (first, second)
        assert second.usage["prompt_tokens"] > first.usage["prompt_tokens"]
    # A new conversation shares only the system prompt with what the slots hold.
    _, z = reply_to(client, "conv-z", [ChatMessage("user", "What is a tuple?")])
    assert z.usage["cached_tokens"] < x_done.usage["prompt_tokens"] // 2


def _stream(
    client: CloudClient,
    conversation: str,
    text: str,
    max_tokens: int,
    events: list[Any],
    started: threading.Event | None = None,
) -> threading.Thread:
    def run() -> None:
        try:
            for event in client.chat(
                ChatParams(conversation, (ChatMessage("user", text),), max_tokens=max_tokens)
            ):
                events.append(event)
                if isinstance(event, ChatStarted) and started is not None:
                    started.set()
        except ChatError as exc:
            events.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_several_conversations_share_two_slots(client: CloudClient, server: RunningServer) -> None:
    """Three at once over two slots (queue of one): all are answered in full, one of them
    after waiting for a slot."""
    results: list[list[Any]] = [[], [], []]
    threads = [
        _stream(client, f"many-{i}", f"Say the number {i} in French.", 12, results[i])
        for i in range(3)
    ]
    for t in threads:
        t.join(120)
    for events in results:
        assert isinstance(events[0], ChatStarted), events
        assert isinstance(events[-1], ChatDone), events
        assert events[-1].finish_reason in ("stop", "length")
    waited = max(events[0].queued_ms for events in results)
    assert waited > 0
    pool = server.backend.pool  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10  # a slot is released just after its Done is sent
    while pool.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.busy() == 0 and pool.queued() == 0


@pytest.mark.slow
def test_a_full_queue_is_refused_as_busy_and_the_queue_moves_on(
    client: CloudClient, server: RunningServer
) -> None:
    pool = server.backend.pool  # type: ignore[attr-defined]
    story = "Tell a very long story about a dragon who collects teapots."
    a_events: list[Any] = []
    b_events: list[Any] = []
    c_events: list[Any] = []
    with (
        CloudClient(f"127.0.0.1:{server.port}", TOKEN) as a_client,
        CloudClient(f"127.0.0.1:{server.port}", TOKEN) as b_client,
    ):
        a_call = a_client.chat(ChatParams("full-a", (ChatMessage("user", story),), max_tokens=400))
        a_thread = threading.Thread(target=lambda: a_events.extend(a_call), daemon=True)
        a_thread.start()
        b_call = b_client.chat(ChatParams("full-b", (ChatMessage("user", story),), max_tokens=400))
        b_thread = threading.Thread(target=lambda: b_events.extend(b_call), daemon=True)
        b_thread.start()
        deadline = time.monotonic() + 60
        while pool.busy() < 2:  # both slots decoding
            assert time.monotonic() < deadline
            time.sleep(0.01)
        c_thread = _stream(client, "full-c", "Say hi.", 4, c_events)
        _wait_queued(pool, 1)  # C waits for a slot: the queue (of one) is full
        with pytest.raises(ChatError) as err:
            list(client.chat(ChatParams("full-d", (ChatMessage("user", "Say hi."),), max_tokens=4)))
        assert err.value.code == "busy" and err.value.retryable
        assert "is busy" in err.value.message and "try again" in err.value.message
        assert not c_events  # still waiting
        a_call.cancel()
        c_thread.join(60)
        assert isinstance(c_events[0], ChatStarted) and isinstance(c_events[-1], ChatDone)
        b_call.cancel()
        a_thread.join(30)
        b_thread.join(30)
    assert a_events[-1] == ChatDone(finish_reason="cancelled")
    assert b_events[-1] == ChatDone(finish_reason="cancelled")


def test_busy_is_resource_exhausted_on_the_wire(server: RunningServer) -> None:
    """The status a non-Forecode client sees for a full queue (with the same words)."""
    pool = server.backend.pool  # type: ignore[attr-defined]
    held = [pool.acquire("hold-1", never), pool.acquire("hold-2", never)]
    stop = threading.Event()
    got: list[tuple[str, int | None]] = []
    waiter = _take(pool, "hold-3", got, stop)
    try:
        _wait_queued(pool, 1)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            stream = ch.unary_stream(
                "/forecode.v1.Chat/Stream",
                request_serializer=pb.ChatRequest.SerializeToString,
                response_deserializer=pb.ChatEvent.FromString,
            )
            request = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
            with pytest.raises(grpc.RpcError) as err:
                list(stream(request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=30))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.value.details().startswith("the service is busy")
    finally:
        stop.set()
        waiter.join(10)
        for slot in held:
            pool.release(slot)
