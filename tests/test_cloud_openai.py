"""The ``openai`` backend against a real OpenAI-compatible server: llama-cpp-python's own
(``python -m llama_cpp.server``, the ``dev`` extra installs its dependencies) serving the real
default model on loopback, with ``forecode-cloud --backend openai`` in front of it.

A chat streams through both; cancelling the gRPC call closes the HTTP connection upstream;
an upstream that is down, or that dies mid-reply, is a clear UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import http.client
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from helpers.cloud import REPO, ServiceProcess, free_port

from cloud_client.client import CloudClient
from local_models.chat import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatParams,
    ChatStarted,
)
from local_models.model_store import ensure_small_model
from proto.forecode.v1 import forecode_pb2 as pb

pytestmark = pytest.mark.slow

TOKEN = secrets.token_urlsafe(32)
MODEL_NAME = "gemma-3-270m"


class Upstream:
    """``python -m llama_cpp.server`` on a loopback port, its log in a file."""

    def __init__(self, model: str, log: Path) -> None:
        self.port = free_port()
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias",
             MODEL_NAME, "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "1024",
             "--interrupt_requests", "False"],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("llama_cpp.server did not start:\n"
                                   + log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v1/models")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def connections_to(port: int) -> int:
    """Established TCP connections whose far end is 127.0.0.1:``port`` (Linux /proc)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                remote, state = fields[2], fields[3]
                if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def wait_until(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def model() -> str:
    return str(ensure_small_model())


@pytest.fixture(scope="module")
def upstream(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = Upstream(model, tmp_path_factory.mktemp("upstream") / "llama_cpp_server.log")
    yield server
    server.stop()


def front(url: str, *extra: str) -> ServiceProcess:
    return ServiceProcess(["--backend", "openai", "--openai-url", url, "--openai-model",
                           MODEL_NAME, "--slots", "2", *extra], token=TOKEN).start()


@pytest.fixture(scope="module")
def service(upstream: Upstream) -> Iterator[ServiceProcess]:
    proc = front(upstream.url)
    yield proc
    assert proc.stop() == 0


def ask(text: str, max_tokens: int) -> ChatParams:
    return ChatParams(secrets.token_hex(4), (ChatMessage("user", text),),
                      max_tokens=max_tokens)


def test_a_chat_streams_through_the_openai_backend(service: ServiceProcess) -> None:
    with CloudClient(service.target, TOKEN) as c:
        info = c.info()
        assert info["backend"] == "openai" and info["models"] == [MODEL_NAME]
        events = list(c.chat(ask("Write a Python function that returns the square of x.", 24)))
    assert isinstance(events[0], ChatStarted) and events[0].model == MODEL_NAME
    deltas = [e for e in events if isinstance(e, ChatDelta)]
    assert len(deltas) >= 2 and "".join(d.text for d in deltas).strip()
    done = events[-1]
    assert isinstance(done, ChatDone) and done.finish_reason in ("stop", "length")
    assert 1 <= done.usage["completion_tokens"] <= 24
    assert done.usage["first_token_ms"] > 0
    service.wait_for_log("chat via openai backend")


def test_cancel_closes_the_upstream_connection(service: ServiceProcess,
                                               upstream: Upstream) -> None:
    assert wait_until(lambda: connections_to(upstream.port) == 0)  # earlier calls' are shut
    with CloudClient(service.target, TOKEN) as c:
        call = c.chat(ask("Tell a very long story about a lighthouse keeper and a whale.", 400))
        events = iter(call)
        assert isinstance(next(events), ChatStarted)
        assert isinstance(next(events), ChatDelta)
        assert connections_to(upstream.port) == 1  # the reply streams over it now
        since = service.mark()
        call.cancel()
        assert list(events) == [ChatDone(finish_reason="cancelled")]
        assert wait_until(lambda: connections_to(upstream.port) == 0), \
            "the HTTP connection to the model server stayed open after the cancel"
        # The model server's own account: its client went away in the middle of the reply.
        assert wait_until(lambda: "Disconnected from client" in upstream.log()), \
            upstream.log()[-2000:]
        service.wait_for_log(r"chat \d+: (stopped|cancelled or expired) after", since=since)
        # The upstream is free for the next call, which runs to its end.
        again = list(c.chat(ask("Say hello.", 8)))
        assert isinstance(again[-1], ChatDone) and again[-1].finish_reason in ("stop", "length")


def test_an_upstream_that_is_down_is_a_clear_unavailable() -> None:
    dead = free_port()
    proc = front(f"http://127.0.0.1:{dead}")
    try:
        with grpc.insecure_channel(proc.target) as ch:
            stream = ch.unary_stream("/forecode.v1.Chat/Stream",
                                     request_serializer=pb.ChatRequest.SerializeToString,
                                     response_deserializer=pb.ChatEvent.FromString)
            request = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
            with pytest.raises(grpc.RpcError) as err:
                list(stream(request, metadata=[("authorization", f"Bearer {TOKEN}")],
                            timeout=30))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"cannot reach the model server at 127.0.0.1:{dead}" in err.value.details()
        with CloudClient(proc.target, TOKEN) as c:
            with pytest.raises(ChatError) as chat_err:
                list(c.chat(ask("hi", 4)))
            assert chat_err.value.code == "unavailable" and chat_err.value.retryable
            assert chat_err.value.message.startswith(
                f"The Forecode service at {proc.target} cannot use its model server: "
                f"cannot reach the model server at 127.0.0.1:{dead}")
            assert c.info()["backend"] == "openai"  # the service itself is fine
    finally:
        assert proc.stop() == 0


def test_an_upstream_that_dies_mid_reply_is_unavailable(model: str, tmp_path: Path) -> None:
    doomed = Upstream(model, tmp_path / "doomed.log")
    proc = front(doomed.url)
    try:
        with CloudClient(proc.target, TOKEN) as c:
            events = iter(c.chat(ask("Tell a very long story about a dragon.", 400)))
            assert isinstance(next(events), ChatStarted)
            assert isinstance(next(events), ChatDelta)
            doomed.proc.kill()
            with pytest.raises(ChatError) as err:
                for _ in events:
                    pass
        assert err.value.code == "unavailable"
        assert "model server" in err.value.message
    finally:
        doomed.stop()
        assert proc.stop() == 0
