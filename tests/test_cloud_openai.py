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
from forecode_core.apply.block import ApplyInput
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
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                model,
                "--model_alias",
                MODEL_NAME,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "1024",
                "--interrupt_requests",
                "False",
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "llama_cpp.server did not start:\n" + log.read_text(errors="replace")[-3000:]
                )
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
    return ServiceProcess(
        [
            "--backend",
            "openai",
            "--openai-url",
            url,
            "--openai-model",
            MODEL_NAME,
            "--slots",
            "2",
            *extra,
        ],
        token=TOKEN,
    ).start()


@pytest.fixture(scope="module")
def service(upstream: Upstream) -> Iterator[ServiceProcess]:
    proc = front(upstream.url)
    yield proc
    assert proc.stop() == 0


def ask(text: str, max_tokens: int) -> ChatParams:
    return ChatParams(secrets.token_hex(4), (ChatMessage("user", text),), max_tokens=max_tokens)


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


def test_cancel_closes_the_upstream_connection(service: ServiceProcess, upstream: Upstream) -> None:
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
        assert wait_until(lambda: connections_to(upstream.port) == 0), (
            "the HTTP connection to the model server stayed open after the cancel"
        )
        # The model server's own account: its client went away in the middle of the reply.
        assert wait_until(lambda: "Disconnected from client" in upstream.log()), upstream.log()[
            -2000:
        ]
        service.wait_for_log(r"chat \d+: (stopped|cancelled or expired) after", since=since)
        # The upstream is free for the next call, which runs to its end.
        again = list(c.chat(ask("Say hello.", 8)))
        assert isinstance(again[-1], ChatDone) and again[-1].finish_reason in ("stop", "length")


def test_an_upstream_that_is_down_is_a_clear_unavailable() -> None:
    dead = free_port()
    proc = front(f"http://127.0.0.1:{dead}")
    try:
        with grpc.insecure_channel(proc.target) as ch:
            stream = ch.unary_stream(
                "/forecode.v1.Chat/Stream",
                request_serializer=pb.ChatRequest.SerializeToString,
                response_deserializer=pb.ChatEvent.FromString,
            )
            request = pb.ChatRequest(messages=[pb.ChatMessage(role=pb.ROLE_USER, content="hi")])
            with pytest.raises(grpc.RpcError) as err:
                list(stream(request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=30))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"cannot reach the model server at 127.0.0.1:{dead}" in err.value.details()
        with CloudClient(proc.target, TOKEN) as c:
            with pytest.raises(ChatError) as chat_err:
                list(c.chat(ask("hi", 4)))
            assert chat_err.value.code == "unavailable" and chat_err.value.retryable
            assert chat_err.value.message.startswith(
                f"The Forecode service at {proc.target} cannot use its model server: "
                f"cannot reach the model server at 127.0.0.1:{dead}"
            )
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


# ----- apply through the openai backend ----------------------------------------------------------


def numbered_module(n_funcs: int = 30) -> str:
    """A Python module of ``n_funcs`` small functions (over ``WHOLE_FILE_LINES``: windowed)."""
    out = ['"""Numbers."""', "", "import math", "", ""]
    for k in range(n_funcs):
        out += [
            f"def scale_{k}(x):",
            f"    y = x * {k + 2}",
            f"    return math.floor(y) + {k}",
            "",
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n"


@pytest.fixture(scope="module")
def instruct_front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """``forecode-cloud --backend openai`` in front of llama.cpp's server running an
    instruct model (Qwen2.5-Coder-0.5B-Instruct: it answers in a code fence)."""
    from local_models.model_store import ensure_model

    server = Upstream(
        str(ensure_model("qwen2.5-coder-0.5b-instruct")),
        tmp_path_factory.mktemp("upstream-instruct") / "llama_cpp_server.log",
    )
    proc = front(server.url)
    yield proc
    assert proc.stop() == 0
    server.stop()


def test_apply_through_the_openai_backend_deterministic_then_the_upstream_model(
    instruct_front: ServiceProcess,
) -> None:
    service = instruct_front
    original = numbered_module()
    lines = original.splitlines(keepends=True)
    with CloudClient(service.target, TOKEN) as c:
        # The deterministic path: no upstream call, the exact file.
        block = "def scale_7(x):\n    y = x * 90\n    return math.floor(y) + 7\n"
        events = list(c.apply(ApplyInput("num.py", "python", original, block)))
        assert "".join(e.text for e in events if isinstance(e, ChatDelta)) == original.replace(
            "    y = x * 9\n", "    y = x * 90\n"
        )
        assert events[-1].source == "deterministic"

        # An inline edit of two lines: the upstream model rewrites exactly that window.
        first = next(j for j, x in enumerate(lines) if x.startswith("def scale_20("))
        selection = "".join(lines[first + 1 : first + 3])
        since = service.mark()
        got: list[Any] = []
        refused: ChatError | None = None
        try:
            for event in c.apply(
                ApplyInput("num.py", "python", original, selection, "multiply by 3 instead")
            ):
                got.append(event)
        except ChatError as exc:
            refused = exc
    assert isinstance(got[0], ChatStarted) and got[0].source == "cloud"
    service.wait_for_log(r"apply on slot \d: model via openai backend", since=since)
    text = "".join(e.text for e in got if isinstance(e, ChatDelta))
    print(f"\nupstream apply: {'refused ' + refused.message if refused else got[-1]}")
    if refused is not None:
        # The model may not close its answer: never offered as a file.
        assert refused.code == "incomplete"
        return
    assert got[-1].source == "model" and got[-1].finish_reason == "stop"
    new = text.splitlines(keepends=True)
    # Everything outside the two selected lines is the file's own, byte for byte.
    assert new[: first + 1] == lines[: first + 1]
    tail = len(lines) - (first + 3)
    assert new[len(new) - tail :] == lines[first + 3 :]
