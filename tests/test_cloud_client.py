"""CloudClient against the real service (in-process ``start_server``, the real default model):
streaming, the token, deadlines, cancellation, TLS, and errors a user can read.

Plus the pure conversions (``cloud_client.convert``) as tables.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cloud import free_port, self_signed

from cloud_client.client import CloudClient, channel_options, is_loopback, split_target
from cloud_client.convert import (
    chat_error,
    event_from_pb,
    event_to_pb,
    params_from_pb,
    params_to_pb,
)
from cloud_server.config import ServerConfig
from cloud_server.service import RunningServer, start_server
from forecode_core.chat.types import (
    CHAT,
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatParams,
    ChatStarted,
    ContextItem,
)
from forecode_core.streams import describe_failure
from local_models.model_store import ensure_small_model

TOKEN = secrets.token_urlsafe(32)


def ask(text: str, max_tokens: int = 16, conversation: str = "c1") -> ChatParams:
    return ChatParams(
        conversation_id=conversation, messages=(ChatMessage("user", text),), max_tokens=max_tokens
    )


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    config = ServerConfig(
        tokens=(TOKEN,),
        slots=1,
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
    c = CloudClient(f"127.0.0.1:{server.port}", TOKEN)
    yield c
    c.close()


# ---------------------------------------------------------------------------------------------
# the real service


def test_chat_streams_started_deltas_done(client: CloudClient) -> None:
    events = list(client.chat(ask("Say hello.")))
    assert isinstance(events[0], ChatStarted) and events[0].source == "cloud"
    assert events[0].model
    deltas = [e for e in events if isinstance(e, ChatDelta)]
    assert deltas and "".join(d.text for d in deltas).strip()
    assert isinstance(events[-1], ChatDone)
    assert events[-1].finish_reason in ("stop", "length")
    assert events[-1].usage["completion_tokens"] >= 1
    assert sum(isinstance(e, ChatDone) for e in events) == 1


def test_info_and_health(client: CloudClient) -> None:
    info = client.info()
    assert info["backend"] == "llama"
    assert info["slots"] == 1 and info["models"]
    assert info["max_message_bytes"] > 0
    assert client.healthy()


def test_a_wrong_token_is_unauthenticated(server: RunningServer) -> None:
    with CloudClient(f"127.0.0.1:{server.port}", "not-the-token-" + "x" * 20) as bad:
        with pytest.raises(ChatError) as err:
            list(bad.chat(ask("hi")))
        assert err.value.code == "unauthenticated"
        assert "token" in err.value.message
        assert not err.value.retryable
        with pytest.raises(ChatError) as err2:
            bad.info()
        assert err2.value.code == "unauthenticated"


def test_the_token_is_never_in_a_repr(client: CloudClient) -> None:
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(vars(client))


def test_a_passed_deadline_is_a_deadline_error_and_frees_the_slot(client: CloudClient) -> None:
    # 50 ms cannot hold a reply: the prompt alone takes longer to evaluate on this engine.
    with pytest.raises(ChatError) as err:
        list(client.chat(ask("Count from one to one hundred.", max_tokens=32), timeout=0.05))
    assert err.value.code == "deadline"
    assert "did not answer in time" in err.value.message
    # The single slot is free again: the next call is answered.
    assert isinstance(list(client.chat(ask("Say hi.", 4)))[-1], ChatDone)


def test_cancel_from_another_thread_ends_with_cancelled(client: CloudClient) -> None:
    call = client.chat(ask("Write a long story about a robot who learns to paint.", 200))
    seen: list[Any] = []
    for event in call:
        seen.append(event)
        if isinstance(event, ChatDelta) and len(seen) == 2:
            t = threading.Thread(target=call.cancel)
            t.start()
            t.join()
    assert seen[-1] == ChatDone(finish_reason="cancelled")
    assert sum(isinstance(e, ChatDelta) for e in seen) <= 2
    call.cancel()  # again: harmless
    # The slot was freed at once: another reply comes through.
    assert isinstance(list(client.chat(ask("Say hi.", 4)))[-1], ChatDone)


def test_cancel_before_iterating(client: CloudClient) -> None:
    call = client.chat(ask("Say hi.", 8))
    call.cancel()
    assert list(call) == [ChatDone(finish_reason="cancelled")]


def test_an_unreachable_service_is_a_readable_error() -> None:
    port = free_port()
    with CloudClient(f"127.0.0.1:{port}", TOKEN) as c:
        with pytest.raises(ChatError) as err:
            list(c.chat(ask("hi"), timeout=5))
        assert err.value.code == "unavailable" and err.value.retryable
        assert err.value.message.startswith(
            f"The Forecode service at 127.0.0.1:{port} is not reachable"
        )
        assert not c.healthy(timeout=0.5)
        with pytest.raises(ChatError, match="not reachable"):
            c.info(timeout=1.0)


def test_an_invalid_request_is_refused_before_sending(client: CloudClient) -> None:
    bad = ChatParams("c", (ChatMessage("robot", "hi"),))  # type: ignore[arg-type]
    with pytest.raises(ChatError) as err:
        client.chat(bad)
    assert err.value.code == "invalid" and "robot" in err.value.message


def test_a_request_over_the_service_limit_is_too_large(
    client: CloudClient, server: RunningServer
) -> None:
    huge = "x" * (server.config.max_message_bytes + 10)
    with pytest.raises(ChatError) as err:
        list(client.chat(ask(huge)))
    assert err.value.code == "too_large"


# ---------------------------------------------------------------------------------------------
# plaintext only on loopback; TLS elsewhere


@pytest.mark.parametrize(
    "target",
    ["10.0.0.5:50051", "forecode.example.com:443", "[2001:db8::1]:443", "192.168.1.20:50051"],
)
def test_plaintext_to_another_machine_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match="clear text"):
        CloudClient(target, TOKEN, tls=False)
    with CloudClient(target, TOKEN) as c:  # tls=None: TLS is chosen (no connection yet)
        assert c.tls


@pytest.mark.parametrize(
    "target", ["127.0.0.1:1234", "localhost:1234", "[::1]:1234", "127.0.0.2:80"]
)
def test_loopback_is_plain_by_default(target: str) -> None:
    with CloudClient(target, TOKEN) as c:
        assert not c.tls


@pytest.mark.parametrize(
    "target,expected",
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("[::1]:9", ("::1", 9)),
        ("dns:///example.com:443", ("example.com", 443)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_split_target(target: str, expected: tuple[str, int]) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize("target", ["127.0.0.1", "::1:80", "host:port", ":80", "h:70000", ""])
def test_bad_targets_are_clear_errors(target: str) -> None:
    with pytest.raises(ValueError, match="cloud service address"):
        CloudClient(target, TOKEN)


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("10.0.0.1") and not is_loopback("example.com")


def test_channel_options_retry_only_idempotent_calls() -> None:
    import json

    options = dict(channel_options())
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.max_reconnect_backoff_ms"] >= options["grpc.initial_reconnect_backoff_ms"]
    config = json.loads(options["grpc.service_config"])
    names = [n for mc in config["methodConfig"] for n in mc["name"]]
    assert {"service": "forecode.v1.Info", "method": "GetInfo"} in names
    assert not any(n["service"] == "forecode.v1.Chat" for n in names)


class _CannedBackend:
    """The TLS test is about the channel: this backend answers instantly at the backend seam."""

    def info(self) -> dict[str, Any]:
        return {"backend": "canned", "models": ["canned"], "slots": 1}

    def stream_chat(self, params: ChatParams, *, should_stop: Any) -> Iterator[Any]:
        yield ChatStarted(model="canned")
        yield ChatDelta(text="over TLS")
        yield ChatDone(finish_reason="stop")

    def close(self) -> None:
        pass


def test_tls_with_a_private_root_and_server_name(tmp_path: Path) -> None:
    cert, key, pem = self_signed(tmp_path)
    running = start_server(
        ServerConfig(tokens=(TOKEN,), tls_cert=str(cert), tls_key=str(key)),
        backend=_CannedBackend(),
    )  # type: ignore[arg-type]
    try:
        target = f"127.0.0.1:{running.port}"
        with CloudClient(
            target, TOKEN, tls=True, root_certificates=pem, server_name="forecode.test"
        ) as c:
            assert c.info()["backend"] == "canned"
            assert [e for e in c.chat(ask("hi")) if isinstance(e, ChatDelta)] == [
                ChatDelta("over TLS")
            ]
        with CloudClient(target, TOKEN) as plain:  # plaintext to a TLS port: not reachable
            with pytest.raises(ChatError) as err:
                plain.info(timeout=2.0)
            assert err.value.code == "unavailable"
    finally:
        running.stop(0)


# ---------------------------------------------------------------------------------------------
# conversions (pure)


def test_params_round_trip_through_the_message() -> None:
    params = ChatParams(
        conversation_id="conv-9",
        messages=(
            ChatMessage("system", "be brief"),
            ChatMessage("user", "why?"),
            ChatMessage("assistant", "because"),
            ChatMessage("user", "ok — and ü?"),
        ),
        context=(
            ContextItem("selection", "src/a.py", "x = 1\n", 3, 4, "python", True),
            ContextItem("file", "README.md", "# hi", language="markdown"),
            ContextItem("current_file", "b.rs", "fn main() {}"),
        ),
        max_tokens=64,
        temperature=0.5,
        model="big",
    )
    assert params_from_pb(params_to_pb(params)) == params


@pytest.mark.parametrize(
    "event",
    [
        ChatStarted(model="m", source="cloud", queued_ms=12),
        ChatDelta(text="héllo"),
        ChatDone(
            finish_reason="length",
            usage={
                "prompt_tokens": 5,
                "cached_tokens": 2,
                "completion_tokens": 7,
                "queue_ms": 0,
                "first_token_ms": 30,
                "total_ms": 99,
            },
        ),
    ],
)
def test_events_round_trip(event: Any) -> None:
    assert event_from_pb(event_to_pb(event)) == event


def test_an_empty_event_is_an_error() -> None:
    from proto.forecode.v1 import forecode_pb2 as pb

    with pytest.raises(ValueError, match="empty"):
        event_from_pb(pb.ChatEvent())


@pytest.mark.parametrize(
    "status,details,code,words",
    [
        ("UNAUTHENTICATED", "the bearer token is not accepted", "unauthenticated", "access token"),
        (
            "UNAVAILABLE",
            "failed to connect to all addresses; last error: UNKNOWN: "
            "ipv4:127.0.0.1:9: Failed to connect to remote host: Connection refused",
            "unavailable",
            "is not reachable (connection refused)",
        ),
        ("UNAVAILABLE", "Socket closed", "unavailable", "(the connection was lost)"),
        ("DEADLINE_EXCEEDED", "Deadline Exceeded", "deadline", "did not answer in time"),
        ("INVALID_ARGUMENT", "no messages", "invalid", "rejected the request: no messages"),
        ("RESOURCE_EXHAUSTED", "message larger than max", "too_large", "message larger than max"),
        (
            "RESOURCE_EXHAUSTED",
            "the service is busy: all 2 model slots are busy and 16 requests are waiting",
            "busy",
            "is busy (all 2 model slots are busy and 16 requests are waiting); "
            "try again in a moment",
        ),
        ("RESOURCE_EXHAUSTED", "", "too_large", "too large for the Forecode service"),
        (
            "UNAVAILABLE",
            "cannot reach the model server at 10.0.0.5:8000: [Errno 111] Connection refused",
            "unavailable",
            "at 127.0.0.1:9 cannot use its model server: cannot reach the "
            "model server at 10.0.0.5:8000",
        ),
        ("CANCELLED", "", "cancelled", "cancelled"),
        ("INTERNAL", "boom", "internal", "failed: boom"),
        ("UNKNOWN", "", "internal", "failed"),
    ],
)
def test_status_to_chat_error(status: str, details: str, code: str, words: str) -> None:
    err = chat_error(status, details, "127.0.0.1:9")
    assert err.code == code
    assert words in err.message


def test_too_large_says_so_once() -> None:
    """The user reads the subject's sentence and the server's words, not three prefixes."""
    details = "the question is too long for the model's context: 5299 tokens, 3071 allowed"
    err = chat_error("RESOURCE_EXHAUSTED", details, "127.0.0.1:9")
    shown = describe_failure(err.code, err.message, CHAT)
    assert shown == f"The question and its context are too large for the service: {details}"


def test_the_server_accepts_the_clients_keepalive_pings() -> None:
    """The client pings every KEEPALIVE_TIME_MS, also between calls; a server that allowed
    fewer pings would answer GOAWAY "too_many_pings" and drop idle editors."""
    from cloud_client import client as cc
    from cloud_server.service import server_options

    server = dict(server_options(ServerConfig(tokens=(TOKEN,))))
    client = dict(channel_options())
    assert client["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.keepalive_permit_without_calls"] == 1
    assert (
        server["grpc.http2.min_ping_interval_without_data_ms"]
        < client["grpc.keepalive_time_ms"]
        == cc.KEEPALIVE_TIME_MS
    )
    small = dict(server_options(ServerConfig(tokens=(TOKEN,), max_message_bytes=2048)))
    assert small["grpc.max_receive_message_length"] == 2048
