"""The router with real parts: the service as the editor runs it (``LocalService``: a child
process on loopback with the real default model) and the real local engine worker.

Chat goes to the cloud; a service killed (SIGKILL) mid-reply makes the reply start over on the
local model with a visible notice and the state "local"; when the service is back on the same
address the prober finds it, the state is "cloud" again and the next reply says so. A service
that is dead from the start sends every chat to the local model, each with the notice.
Completions are local in every state.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers.cloud import free_port

from cloud_client.client import CloudClient
from cloud_client.local_chat import EngineChat
from cloud_client.local_service import LocalService
from cloud_client.router import (
    NOTICE_BACK,
    NOTICE_FALLBACK,
    NOTICE_RESTART,
    ROUTES,
    Router,
)
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatNotice,
    ChatParams,
    ChatStarted,
)
from local_models.client import EngineClient
from local_models.model_store import ensure_model

pytestmark = pytest.mark.slow

SERVICE_ARGS = ("--n-ctx", "1024", "--max-tokens", "32")


def ask(text: str, max_tokens: int = 12) -> ChatParams:
    return ChatParams("router", (ChatMessage("user", text),), max_tokens=max_tokens)


@pytest.fixture(scope="module")
def model() -> str:
    """An instruction-tuned model: the base Gemma 3 270M recites its instructions, which the
    reply guard stops after a few tokens, so no reply would still be streaming when the
    service is killed."""
    return str(ensure_model("qwen2.5-coder-0.5b-instruct"))


@pytest.fixture(scope="module")
def local(model: str) -> Iterator[EngineChat]:
    engine = EngineClient(model)
    engine.start()
    yield EngineChat(engine, idle_timeout_s=120)
    engine.close()


class States:
    """``on_state`` calls, and a way to wait for one."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._cond = threading.Condition()

    def __call__(self, state: str, detail: str) -> None:
        with self._cond:
            self.seen.append((state, detail))
            self._cond.notify_all()

    def wait_for(self, state: str, timeout: float = 60.0) -> str:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(s == state for s, _ in self.seen), timeout)
            assert ok, f"never reached {state!r}: {self.seen}"
            return next(d for s, d in reversed(self.seen) if s == state)


def kinds(events: list[Any]) -> list[str]:
    """A compact picture of a reply: notices, starts (with source), text, end."""
    out: list[str] = []
    for e in events:
        if isinstance(e, ChatNotice):
            out.append(f"notice:{e.text}")
        elif isinstance(e, ChatStarted):
            out.append(f"started:{e.source}")
        elif isinstance(e, ChatDelta):
            if not out or out[-1] != "text":
                out.append("text")
        elif isinstance(e, ChatDone):
            out.append(f"done:{e.finish_reason}")
    return out


def assert_answered(events: list[Any], source: str) -> None:
    """The reply from the last ChatStarted on came from ``source`` and finished."""
    starts = [i for i, e in enumerate(events) if isinstance(e, ChatStarted)]
    assert starts, events
    last = events[starts[-1]]
    assert last.source == source, kinds(events)
    tail = events[starts[-1] :]
    assert any(isinstance(e, ChatDelta) and e.text for e in tail), kinds(events)
    assert isinstance(tail[-1], ChatDone) and tail[-1].finish_reason in ("stop", "length")


def test_completions_always_route_local() -> None:
    assert ROUTES["completion"] == "local"
    assert {ROUTES[k] for k in ("chat", "apply", "edits")} == {"cloud"}
    with Router(None, None) as router:
        assert router.state == "offline" and router.route("completion") == "local"
        with pytest.raises(ValueError, match="unknown request kind"):
            router.route("poetry")


def test_the_cloud_answers_fails_over_mid_reply_and_comes_back(
    model: str, local: EngineChat
) -> None:
    service = LocalService(model_path=model, slots=1, extra_args=SERVICE_ARGS)
    states = States()
    target, token = service.start()
    client = CloudClient(target, token)
    router = Router(client, local, probe_interval_s=0.2, max_probe_interval_s=1.0, on_state=states)
    restarted: LocalService | None = None
    try:
        # 1. The cloud answers.
        assert router.state == "cloud" and router.route("chat") == "cloud"
        assert router.route("completion") == "local"
        events = list(router.chat(ask("Say hello in Spanish.")))
        assert kinds(events)[0] == "started:cloud", kinds(events)
        assert_answered(events, "cloud")
        assert not any(isinstance(e, ChatNotice) for e in events)

        # 2. The service dies (SIGKILL) while it streams a reply.
        reply = router.chat(ask("Tell a very long story about a lighthouse keeper.", 32))
        events = []
        for event in reply:
            events.append(event)
            if isinstance(event, ChatDelta):
                break
        assert kinds(events) == ["started:cloud", "text"]
        assert service.pid is not None
        os.kill(service.pid, signal.SIGKILL)
        events += list(reply)
        picture = kinds(events)
        assert picture[:2] == ["started:cloud", "text"]
        notice = picture.index(f"notice:{NOTICE_RESTART}")
        assert picture[notice + 1] == "started:local", picture
        assert_answered(events, "local")
        assert reply.source == "local"
        # The user sees why: the state change carries the client's error.
        detail = states.wait_for("local", 10)
        assert detail.startswith(f"The Forecode service at {target} is not reachable"), detail
        assert router.state == "local"
        assert router.route("chat") == "local" and router.route("completion") == "local"

        # 3. While it is down, every chat is local and says so first.
        events = list(router.chat(ask("Name a fruit.")))
        assert kinds(events)[:2] == [f"notice:{NOTICE_FALLBACK}", "started:local"]
        assert_answered(events, "local")

        # 4. The service comes back on the same address: the prober notices.
        service.stop()
        port = int(target.rsplit(":", 1)[1])
        restarted = LocalService(model_path=model, slots=1, extra_args=SERVICE_ARGS, port=port)
        assert restarted.start(token=token) == (target, token)
        states.wait_for("cloud", 60)
        assert router.state == "cloud" and router.route("chat") == "cloud"
        events = list(router.chat(ask("Name a colour.")))
        assert kinds(events)[:2] == [f"notice:{NOTICE_BACK}", "started:cloud"], kinds(events)
        assert_answered(events, "cloud")
        # Announced once.
        events = list(router.chat(ask("Name an animal.")))
        assert kinds(events)[0] == "started:cloud"
        assert [s for s, _ in states.seen] == ["local", "cloud"]
    finally:
        router.close()
        client.close()
        service.stop()
        if restarted is not None:
            assert restarted.stop() == 0


def test_a_refused_token_is_not_hidden_by_the_fallback(local: EngineChat) -> None:
    # The token is checked before any backend is asked: an openai backend with no server
    # behind it starts at once and serves the point.
    no_model = (
        "--backend",
        "openai",
        "--openai-url",
        f"http://127.0.0.1:{free_port()}",
        "--openai-model",
        "none",
    )
    with LocalService(extra_args=no_model) as service:
        target, _ = service.start()
        with (
            CloudClient(target, "not-the-token-" + "x" * 20) as client,
            Router(client, local, probe_interval_s=0.2) as router,
        ):
            with pytest.raises(ChatError) as err:
                list(router.chat(ask("Hello?")))
            assert err.value.code == "unauthenticated"
            assert router.state == "cloud"  # the service is up; the token is what is wrong


def test_a_service_dead_from_the_start_means_local_with_the_notice(local: EngineChat) -> None:
    states = States()
    target = f"127.0.0.1:{free_port()}"
    with (
        CloudClient(target, "a-token-nobody-checks-0123456789") as client,
        Router(
            client, local, probe_interval_s=0.2, max_probe_interval_s=0.5, on_state=states
        ) as router,
    ):
        assert router.state == "cloud"  # believed up until a call says otherwise
        events = list(router.chat(ask("What is a list in Python?")))
        assert kinds(events)[:2] == [f"notice:{NOTICE_FALLBACK}", "started:local"], kinds(events)
        assert_answered(events, "local")
        detail = states.wait_for("local", 10)
        assert "is not reachable (connection refused)" in detail
        assert router.state == "local"
        assert router.route("chat") == "local" and router.route("completion") == "local"
        events = list(router.chat(ask("And a tuple?")))
        assert kinds(events)[:2] == [f"notice:{NOTICE_FALLBACK}", "started:local"]
        assert_answered(events, "local")


def test_no_service_and_no_local_model_is_a_clear_error() -> None:
    target = f"127.0.0.1:{free_port()}"
    with (
        CloudClient(target, "a-token-nobody-checks-0123456789") as client,
        Router(client, None, probe_interval_s=0.2) as router,
    ):
        with pytest.raises(ChatError) as err:
            list(router.chat(ask("Anyone?")))
        assert err.value.code == "unavailable" and "not reachable" in err.value.message
        assert router.state == "offline"
