"""``forecode-cloud`` (``python -m cloud_server``) as a user runs it: a child process on
loopback with the real default model, reached over real gRPC.

The command line (tokens never on argv; TLS required off loopback), the one listening line,
the bearer token on every ``forecode.v1`` method while health stays open, requests that are
malformed or too large (refused, and the service goes on), deadlines, cancel freeing the only
slot, SIGTERM draining a stream in flight (health turns NOT_SERVING), ``--exit-on-stdin-eof``,
and a whole session's log holding no token and no prompt.
"""

from __future__ import annotations

import re
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers.cloud import ServiceProcess, free_port, run_service, self_signed

from cloud_client.client import CloudClient
from cloud_client.convert import params_to_pb
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatParams,
    ChatStarted,
)
from local_models.model_store import ensure_model
from proto.forecode.v1 import forecode_pb2 as pb

pytestmark = pytest.mark.slow

TOKEN = secrets.token_urlsafe(32)
SECOND_TOKEN = secrets.token_urlsafe(32)  # a token file may hold several
WRONG_TOKEN = secrets.token_urlsafe(32)  # never accepted; must not be logged either

SMALL = ("--slots", "1", "--n-ctx", "512", "--max-tokens", "32")
LIMIT = 1024 * 1024  # --max-message-bytes of the module's service

# Every prompt sent in this module, for the "no prompt in the log" check at the end.
PROMPTS: list[str] = []


def ask(text: str, max_tokens: int = 16, conversation: str = "") -> ChatParams:
    PROMPTS.append(text)
    return ChatParams(
        conversation_id=conversation or secrets.token_hex(4),
        messages=(ChatMessage("user", text),),
        max_tokens=max_tokens,
    )


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.fixture(scope="module")
def model() -> str:
    # An instruction-tuned model: the base Gemma 3 270M recites its instructions, which the
    # reply guard stops at once (forecode_core.chat.repetition), and these tests need replies that
    # run.
    return str(ensure_model("qwen2.5-coder-0.5b-instruct"))


@pytest.fixture(scope="module")
def service(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One slot (so a queue forms at the second call), the token from a file, DEBUG logs."""
    token_file = tmp_path_factory.mktemp("tokens") / "tokens"
    token_file.write_text(f"# accepted tokens\n{TOKEN}\n\n{SECOND_TOKEN}\n", encoding="utf-8")
    proc = ServiceProcess(
        [
            "--model",
            model,
            "--slots",
            "1",
            "--n-ctx",
            "1024",
            "--max-tokens",
            "32",
            "--token-file",
            str(token_file),
            "--max-message-bytes",
            str(LIMIT),
            "--log-level",
            "DEBUG",
        ],
        token=None,
    ).start()
    yield proc
    assert proc.stop() == 0
    # The whole session's log, once the service is gone (see also the test below).
    assert_no_secret_in(proc.log())


def assert_no_secret_in(log: str) -> None:
    for token in (TOKEN, SECOND_TOKEN, WRONG_TOKEN):
        assert token not in log
    assert "Bearer" not in log
    for prompt in PROMPTS:
        assert prompt.strip() not in log, prompt[:60]


@pytest.fixture(scope="module")
def channel(service: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.target) as ch:
        yield ch


@pytest.fixture
def client(service: ServiceProcess) -> Iterator[CloudClient]:
    with CloudClient(service.target, TOKEN) as c:
        yield c


def chat_works(client: CloudClient) -> None:
    """The service still answers a chat in full."""
    events = list(client.chat(ask("Name a colour.", 4)))
    assert isinstance(events[0], ChatStarted) and isinstance(events[-1], ChatDone)
    assert events[-1].finish_reason in ("stop", "length")


def no_model() -> list[str]:
    """The openai backend pointed at a port nobody listens on: the service starts at once
    (no model to load) for life-cycle tests that make no chat call."""
    return [
        "--backend",
        "openai",
        "--openai-url",
        f"http://127.0.0.1:{free_port()}",
        "--openai-model",
        "none",
    ]


# ---------------------------------------------------------------------------------------------
# the command line


def test_no_token_exits_2_and_says_where_a_token_comes_from() -> None:
    proc = run_service([], token=None)
    assert proc.returncode == 2
    assert "FORECODE_CLOUD_TOKEN" in proc.stderr and "--token-file" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("argv", [["--token", TOKEN], [f"--token={TOKEN}"]])
def test_a_token_on_the_command_line_is_refused(argv: list[str]) -> None:
    proc = run_service(argv, token=TOKEN)
    assert proc.returncode == 2
    assert "never taken from the command line" in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout


def test_a_short_token_is_refused() -> None:
    proc = run_service([], token="tiny-token")
    assert proc.returncode == 2 and "at least 16 characters" in proc.stderr
    assert "tiny-token" not in proc.stderr  # not even a weak token is shown


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_non_loopback_host_without_tls_is_refused(host: str) -> None:
    proc = run_service(["--host", host, *no_model()], token=TOKEN)
    assert proc.returncode == 2
    assert f"refusing to listen on {host} without TLS" in proc.stderr
    assert "--tls-cert" in proc.stderr
    assert "listening" not in proc.stdout


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--max-queue", "-1"], "max_queue must not be negative"),
        (["--max-message-bytes", "10"], "max_message_bytes must be at least 1024"),
        (["--slots", "0"], "slots must be at least 1"),
        (["--backend", "openai"], "the openai backend needs --openai-url and --openai-model"),
    ],
)
def test_bad_settings_exit_2_with_the_reason(argv: list[str], words: str) -> None:
    proc = run_service(argv, token=TOKEN)
    assert proc.returncode == 2 and words in proc.stderr


def test_tls_without_a_key_is_refused(tmp_path: Path) -> None:
    cert, _, _ = self_signed(tmp_path)
    proc = run_service(["--tls-cert", str(cert)], token=TOKEN)
    assert proc.returncode == 2 and "needs both a certificate" in proc.stderr


def test_a_non_loopback_host_with_tls_serves_over_tls(tmp_path: Path, model: str) -> None:
    """All interfaces, with a self-signed certificate; reached (over loopback) with TLS only."""
    cert, key, pem = self_signed(tmp_path)
    proc = ServiceProcess(
        [
            "--host",
            "0.0.0.0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--model",
            model,
            *SMALL,
        ],
        token=TOKEN,
    ).start()
    try:
        assert proc.host == "0.0.0.0"
        with CloudClient(
            f"127.0.0.1:{proc.port}",
            TOKEN,
            tls=True,
            root_certificates=pem,
            server_name="forecode.test",
        ) as c:
            assert c.info()["backend"] == "llama"
            assert c.healthy()
            events = list(c.chat(ask("Say yes.", 4)))
            assert isinstance(events[-1], ChatDone)
        with CloudClient(f"127.0.0.1:{proc.port}", TOKEN, tls=False) as plain:
            with pytest.raises(ChatError) as err:  # plaintext to the TLS port gets nowhere
                plain.info(timeout=2.0)
            assert err.value.code == "unavailable"
        proc.wait_for_log(r"listening on 0\.0\.0\.0:\d+ \(TLS")
    finally:
        assert proc.stop() == 0


def test_the_listening_line_is_the_only_stdout(service: ServiceProcess) -> None:
    assert service.stdout_lines() == [f"forecode-cloud listening on 127.0.0.1:{service.port}"]


# ---------------------------------------------------------------------------------------------
# the bearer token on every method; health is open


def _methods() -> list[tuple[str, Any, bool]]:
    """(path, empty request, server-streaming) for every method of every forecode.v1 service."""
    from google.protobuf import message_factory

    out = []
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            request = message_factory.GetMessageClass(method.input_type)()
            out.append((f"/{service.full_name}/{method.name}", request, method.server_streaming))
    return out


def _call(
    channel: grpc.Channel,
    path: str,
    request: Any,
    streaming: bool,
    metadata: list[tuple[str, str]] | None,
) -> grpc.StatusCode:
    kwargs: dict[str, Any] = {"request_serializer": lambda m: m.SerializeToString()}
    try:
        if streaming:
            list(channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=30))
        else:
            channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_every_forecode_method_needs_the_token(channel: grpc.Channel) -> None:
    methods = _methods()
    assert {p.split("/")[1] for p, _, _ in methods} == {
        "forecode.v1.Info",
        "forecode.v1.Chat",
        "forecode.v1.Completion",
        "forecode.v1.Apply",
        "forecode.v1.Edits",
        "forecode.v1.IndexSync",
    }
    for path, request, streaming in methods:
        for metadata in (
            None,
            bearer(WRONG_TOKEN),
            [("authorization", TOKEN)],
            [("authorization", "Basic " + TOKEN)],
            bearer(""),
        ):
            assert (
                _call(channel, path, request, streaming, metadata)
                == grpc.StatusCode.UNAUTHENTICATED
            ), (path, metadata)
        # With the token the call gets through to the method (an empty ChatRequest is
        # invalid; the services not built yet say so).
        expected = {
            "/forecode.v1.Info/GetInfo": grpc.StatusCode.OK,
            "/forecode.v1.Chat/Stream": grpc.StatusCode.INVALID_ARGUMENT,
            "/forecode.v1.Apply/Apply": grpc.StatusCode.INVALID_ARGUMENT,
            "/forecode.v1.Edits/Propose": grpc.StatusCode.INVALID_ARGUMENT,
        }.get(path, grpc.StatusCode.UNIMPLEMENTED)
        if path.startswith("/forecode.v1.IndexSync/"):  # served: an empty request is invalid
            expected = grpc.StatusCode.INVALID_ARGUMENT
        for token in (TOKEN, SECOND_TOKEN):
            assert _call(channel, path, request, streaming, bearer(token)) == expected, path


def test_the_refusal_says_what_is_wrong(channel: grpc.Channel) -> None:
    info = channel.unary_unary(
        "/forecode.v1.Info/GetInfo", request_serializer=pb.GetInfoRequest.SerializeToString
    )
    with pytest.raises(grpc.RpcError) as missing:
        info(pb.GetInfoRequest(), timeout=10)
    assert "missing bearer token" in missing.value.details()
    with pytest.raises(grpc.RpcError) as wrong:
        info(pb.GetInfoRequest(), metadata=bearer(WRONG_TOKEN), timeout=10)
    assert wrong.value.details() == "the bearer token is not accepted"
    assert WRONG_TOKEN not in wrong.value.details()


def test_health_is_open_and_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", "forecode.v1.Chat", "forecode.v1.Info"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
    # Without a token health answers for the whole service, whatever the name (it tells a
    # stranger no service names); with the token, per service (issue 13).
    reply = stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(
            health_pb2.HealthCheckRequest(service="no.such.Service"),
            metadata=bearer(TOKEN),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_wrong_token_through_the_client_is_a_readable_error(service: ServiceProcess) -> None:
    with CloudClient(service.target, WRONG_TOKEN) as bad, pytest.raises(ChatError) as err:
        list(bad.chat(ask("Are you there?", 4)))
    assert err.value.code == "unauthenticated" and not err.value.retryable
    assert "refused the access token" in err.value.message


# ---------------------------------------------------------------------------------------------
# a streamed reply; bad and oversized requests; deadlines


def test_a_streamed_chat_reply(client: CloudClient) -> None:
    events = list(client.chat(ask("Write a Python function that adds two numbers.", 24)))
    assert isinstance(events[0], ChatStarted)
    assert events[0].source == "cloud" and events[0].model
    deltas = [e for e in events if isinstance(e, ChatDelta)]
    assert len(deltas) >= 2 and "".join(d.text for d in deltas).strip()
    done = events[-1]
    assert isinstance(done, ChatDone) and done.finish_reason in ("stop", "length")
    assert 1 <= done.usage["completion_tokens"] <= 24
    assert done.usage["prompt_tokens"] > 10
    assert [type(e) for e in events[1:-1]] == [ChatDelta] * (len(events) - 2)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x0a\xff\xff\xff\xff\x0f",  # field 1, a length far past the end
        b"\x12\x04\x08\x02\x12",  # a message cut in the middle
        b"\x0a\x02\xff\xfe",  # conversation_id that is not UTF-8
        b"\xff" * 64,  # not protobuf at all
    ],
)
def test_malformed_bytes_are_invalid_argument_and_harm_nothing(
    channel: grpc.Channel, client: CloudClient, garbage: bytes
) -> None:
    raw = channel.unary_stream("/forecode.v1.Chat/Stream")  # bytes in, bytes out
    with pytest.raises(grpc.RpcError) as err:
        list(raw(garbage, metadata=bearer(TOKEN), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid message" in err.value.details()
    chat_works(client)


def test_malformed_bytes_to_a_unary_method_too(channel: grpc.Channel) -> None:
    raw = channel.unary_unary("/forecode.v1.Info/GetInfo")
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff", metadata=bearer(TOKEN), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reply = pb.ServiceInfo.FromString(raw(b"", metadata=bearer(TOKEN), timeout=10))
    assert reply.backend == "llama" and reply.slots == 1


@pytest.mark.parametrize(
    "request_,words",
    [
        (pb.ChatRequest(), "no messages"),
        (pb.ChatRequest(messages=[pb.ChatMessage(content="hi")]), "role"),
        (
            pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_ASSISTANT, content="hi")]),
            "must be the user's",
        ),
        (pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="  ")]), "empty"),
        (
            pb.ChatRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")], temperature=float("nan")
            ),
            "temperature",
        ),
        (
            pb.ChatRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")], max_tokens=-1
            ),
            "max_tokens",
        ),
        (
            pb.ChatRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")], model="gpt-9"
            ),
            "unknown model",
        ),
        (
            pb.ChatRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")],
                context=[pb.ContextItem(kind=pb.ContextItem.KIND_FILE, start_line=5, end_line=2)],
            ),
            "line range",
        ),
    ],
)
def test_invalid_requests_are_invalid_argument(
    channel: grpc.Channel, client: CloudClient, request_: pb.ChatRequest, words: str
) -> None:
    stream = channel.unary_stream(
        "/forecode.v1.Chat/Stream",
        request_serializer=pb.ChatRequest.SerializeToString,
        response_deserializer=pb.ChatEvent.FromString,
    )
    with pytest.raises(grpc.RpcError) as err:
        list(stream(request_, metadata=bearer(TOKEN), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()


def test_an_oversized_request_is_resource_exhausted_and_harms_nothing(
    channel: grpc.Channel, client: CloudClient
) -> None:
    limit = client.info()["max_message_bytes"]
    assert limit == LIMIT
    huge = "lorem ipsum " * (limit // 12 + 10)
    stream = channel.unary_stream(
        "/forecode.v1.Chat/Stream",
        request_serializer=pb.ChatRequest.SerializeToString,
        response_deserializer=pb.ChatEvent.FromString,
    )
    request = params_to_pb(ChatParams("big", (ChatMessage("user", huge),)))
    assert request.ByteSize() > limit
    with pytest.raises(grpc.RpcError) as err:
        list(stream(request, metadata=bearer(TOKEN), timeout=30))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(ChatError) as via_client:
        list(client.chat(ChatParams("big", (ChatMessage("user", huge),))))
    assert via_client.value.code == "too_large"
    assert client.healthy()
    chat_works(client)


def test_a_prompt_that_does_not_fit_the_context_is_resource_exhausted(client: CloudClient) -> None:
    """Under the message limit, over the model's context (1024 tokens here)."""
    with pytest.raises(ChatError) as err:
        list(client.chat(ask("word " * 3000, 8)))
    assert err.value.code == "too_large"
    assert "busy" not in err.value.message
    chat_works(client)


def test_a_deadline_exceeded_stops_the_work_and_frees_the_slot(
    client: CloudClient, service: ServiceProcess
) -> None:
    since = service.mark()
    with pytest.raises(ChatError) as err:
        list(client.chat(ask("Count from one to one hundred in words.", 200), timeout=0.25))
    assert err.value.code == "deadline" and err.value.retryable
    assert "did not answer in time" in err.value.message
    # The service noticed and stopped the call's work (it did not run on to 200 tokens).
    service.wait_for_log(r"chat \d+: (stopped|cancelled or expired) after", since=since)
    chat_works(client)


# ---------------------------------------------------------------------------------------------
# cancel frees the only slot


def test_cancel_frees_the_slot_for_the_call_waiting_behind(service: ServiceProcess) -> None:
    """slots=1: B waits behind A; cancelling A (mid-reply, far from its max_tokens) lets B
    start and finish, and the service says A's engine stopped early because of the cancel."""
    long_tokens = 400
    order: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def note(who: str, what: Any) -> None:
        with lock:
            order.append((who, what))

    with (
        CloudClient(service.target, TOKEN) as a_client,
        CloudClient(service.target, TOKEN) as b_client,
    ):
        a = a_client.chat(
            ask(
                "Tell a very long story about a lighthouse keeper and a whale.",
                long_tokens,
                conversation="cancel-a",
            )
        )
        a_events = iter(a)
        first = next(a_events)
        assert isinstance(first, ChatStarted)
        note("A", first)
        note("A", next(a_events))  # A is decoding: it holds the only slot

        b_done = threading.Event()
        since = service.mark()

        def run_b() -> None:
            try:
                for event in b_client.chat(ask("Say hello.", 8, conversation="cancel-b")):
                    note("B", event)
            except ChatError as exc:
                note("B", exc)
            finally:
                b_done.set()

        threading.Thread(target=run_b, daemon=True).start()
        # B's call reaches the service and queues while A keeps streaming.
        service.wait_for_log(r"chat \d+: 1 messages", since=since)
        for _ in range(3):
            note("A", next(a_events))
        assert not any(who == "B" for who, _ in order), order  # queued behind A
        note("A", "cancel")
        a.cancel()
        rest = list(a_events)
        assert rest == [ChatDone(finish_reason="cancelled")]
        assert b_done.wait(60), "B never finished: the cancelled call kept the slot"

    b_events = [what for who, what in order if who == "B"]
    assert isinstance(b_events[0], ChatStarted), b_events
    assert isinstance(b_events[-1], ChatDone) and b_events[-1].finish_reason in ("stop", "length")
    assert order.index(("A", "cancel")) < order.index(("B", b_events[0]))
    # The service's own account: A's engine stopped because of the cancel, long before
    # its max_tokens, and only then did B get the slot.
    stopped = service.wait_for_log(
        r"chat on slot 0: \d+ prompt tokens \(\d+ cached\), "
        r"(\d+) generated, cancelled",
        since=since,
    )
    assert int(stopped.group(1)) < long_tokens
    assert b_events[0].queued_ms > 0


# ---------------------------------------------------------------------------------------------
# the log of the whole session


def test_the_log_never_holds_a_token_or_a_prompt(
    service: ServiceProcess, client: CloudClient
) -> None:
    secret_prompt = "The vault combination is " + secrets.token_hex(8)
    since = service.mark()
    list(client.chat(ask(secret_prompt, 4)))
    with CloudClient(service.target, WRONG_TOKEN) as bad, pytest.raises(ChatError):
        list(bad.chat(ask(secret_prompt + " (wrong token)", 4)))
    service.wait_for_log(r"chat \d+: done", since=since)
    # Refusals are logged at a bounded rate: at once, or in the next summary (10 s).
    service.wait_for_log(
        r"refused (a call to /forecode.v1.Chat/Stream: a wrong bearer token"
        r"|\d+ more calls in the last .*a wrong bearer token)",
        since=since,
        timeout=30,
    )
    log = service.log()
    assert "chat on slot 0" in log  # the log is there
    assert PROMPTS and secret_prompt in PROMPTS
    assert_no_secret_in(log)


# ---------------------------------------------------------------------------------------------
# life cycle: SIGTERM drains, stdin EOF


def _watch_health(target: str, seen: list[int], stop: threading.Event) -> threading.Thread:
    def run() -> None:
        with grpc.insecure_channel(target) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            try:
                for reply in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=120):
                    seen.append(reply.status)
                    if stop.is_set():
                        return
            except grpc.RpcError:
                pass  # the service went away

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_sigterm_drains_the_stream_in_flight_refuses_new_calls_and_exits_0(model: str) -> None:
    proc = ServiceProcess(["--model", model, *SMALL, "--grace", "60"], token=TOKEN).start()
    try:
        seen: list[int] = []
        stop = threading.Event()
        watcher = _watch_health(proc.target, seen, stop)
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen[:1] == [health_pb2.HealthCheckResponse.SERVING]
        with CloudClient(proc.target, TOKEN) as c:
            call = c.chat(
                ChatParams("drain", (ChatMessage("user", "List ten animals."),), max_tokens=24)
            )
            events = iter(call)
            got = [next(events), next(events)]
            assert isinstance(got[0], ChatStarted) and isinstance(got[1], ChatDelta)
            proc.signal(signal.SIGTERM)
            proc.wait_for_log("new calls are refused now")
            # A new call is refused rather than started ...
            with CloudClient(proc.target, TOKEN) as late, pytest.raises(ChatError) as err:
                list(
                    late.chat(
                        ChatParams("late", (ChatMessage("user", "hi"),), max_tokens=4), timeout=10
                    )
                )
            assert err.value.code == "unavailable"
            # ... while the reply in flight runs to its end: no error, no cancel.
            got += list(events)
            assert isinstance(got[-1], ChatDone)
            assert got[-1].finish_reason in ("stop", "length")
            assert got[-1].usage["completion_tokens"] >= 1
            # While draining, health says NOT_SERVING to those watching.
            deadline = time.monotonic() + 30
            while (
                health_pb2.HealthCheckResponse.NOT_SERVING not in seen
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            assert health_pb2.HealthCheckResponse.NOT_SERVING in seen
            assert seen.index(health_pb2.HealthCheckResponse.SERVING) < seen.index(
                health_pb2.HealthCheckResponse.NOT_SERVING
            )
        stop.set()
        assert proc.wait(60) == 0
        watcher.join(10)
        log = proc.log()
        assert re.search(r"shutting down: draining 1 calls", log)
        assert "stopped (drained)" in log
        assert proc.stdout_lines() == [f"forecode-cloud listening on 127.0.0.1:{proc.port}"]
    finally:
        proc.kill()


def test_exit_on_stdin_eof() -> None:
    proc = ServiceProcess([*no_model(), "--exit-on-stdin-eof"], token=TOKEN).start()
    try:
        assert proc.proc is not None and proc.proc.stdin is not None
        with CloudClient(proc.target, TOKEN) as c:
            assert c.healthy()
        proc.proc.stdin.close()
        assert proc.wait(60) == 0
        assert "stdin closed" in proc.log()
    finally:
        proc.kill()


def test_without_the_flag_stdin_eof_is_ignored() -> None:
    proc = ServiceProcess(no_model(), token=TOKEN).start()
    try:
        assert proc.proc is not None and proc.proc.stdin is not None
        proc.proc.stdin.close()
        with CloudClient(proc.target, TOKEN) as c:
            for _ in range(3):
                assert c.info()["backend"] == "openai"
        assert proc.alive and "stdin closed" not in proc.log()
        assert proc.stop() == 0
    finally:
        proc.kill()


def test_a_port_in_use_exits_1_with_a_clear_message(service: ServiceProcess) -> None:
    proc = run_service(["--port", str(service.port), *no_model()], token=TOKEN)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{service.port}" in proc.stderr
    assert "port in use" in proc.stderr


def test_sigterm_with_exit_on_stdin_eof_is_still_a_clean_exit() -> None:
    """The stdin watcher blocks in a read while the service shuts down on SIGTERM: the exit
    is still 0 (a watcher holding a buffered reader's lock made the interpreter abort)."""
    proc = ServiceProcess([*no_model(), "--exit-on-stdin-eof"], token=TOKEN).start()
    try:
        with CloudClient(proc.target, TOKEN) as c:
            assert c.healthy()
        assert proc.stop() == 0
        assert "Fatal Python error" not in proc.log()
    finally:
        proc.kill()


def test_local_service_starts_and_stops_the_entry_point() -> None:
    """``LocalService`` (the editor's way to run it): a fresh token each start unless one is
    given, the target from the listening line, stop() is SIGTERM with exit 0."""
    from cloud_client.local_service import LocalService

    with LocalService(extra_args=tuple(no_model())) as service:
        target, token = service.start()
        assert len(token) >= 32 and target.startswith("127.0.0.1:")
        with CloudClient(target, token) as c:
            assert c.info()["slots"] == 2
        assert token not in "\n".join(service.stderr_tail())
        assert service.stop() == 0 and not service.alive
        again = "given-token-" + secrets.token_urlsafe(16)
        target2, token2 = service.start(token=again)
        assert token2 == again
        with CloudClient(target2, again) as c:
            assert c.healthy() and c.info()["backend"] == "openai"
        assert service.stop() == 0


CLIENT_SCRIPT = """
import sys
from cloud_client.client import CloudClient
from forecode_core.chat.types import ChatDelta, ChatMessage, ChatParams
target, token = sys.argv[1], sys.stdin.readline().strip()
client = CloudClient(target, token)
params = ChatParams("gone", (ChatMessage("user", sys.argv[2]),), max_tokens=400)
for event in client.chat(params):
    if isinstance(event, ChatDelta):
        print("delta", flush=True)
"""


def test_a_client_that_goes_away_frees_its_slot(service: ServiceProcess) -> None:
    """A client process killed mid-reply (no cancel, no goodbye): the service stops that
    reply's work at once and the only slot serves the next call."""
    import subprocess
    import sys

    from helpers.cloud import REPO, service_env

    prompt = "Tell a very long story about a lighthouse keeper and a whale."
    PROMPTS.append(prompt)
    since = service.mark()
    child = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, service.target, prompt],
        cwd=REPO,
        env=service_env(None),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(TOKEN.encode() + b"\n")  # the token never goes on argv
        child.stdin.flush()
        assert child.stdout.readline() == b"delta\n"
        child.kill()
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    stopped = service.wait_for_log(
        r"chat on slot 0: \d+ prompt tokens \(\d+ cached\), "
        r"(\d+) generated, cancelled",
        since=since,
    )
    assert int(stopped.group(1)) < 400
    with CloudClient(service.target, TOKEN) as c:
        chat_works(c)
