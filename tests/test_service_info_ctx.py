"""The Info RPC says a slot's context size (``ServiceInfo.n_ctx``), the client copes with a
service older than the field, and the editor shows it where the service's state is shown
(the chat status's tooltip, ``app.ui.cloud.CloudConnection``). Real gRPC on loopback: the
real service with the real default model, and a bare server that answers as an older
service does (the field absent on the wire)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from app.ui.cloud import _about_service
from cloud_client.client import CloudClient, service_summary
from cloud_server.config import ServerConfig
from cloud_server.service import RunningServer, start_server
from local_models.model_store import ensure_small_model
from proto.forecode.v1 import forecode_pb2 as pb
from proto.forecode.v1 import forecode_pb2_grpc as rpc

TOKEN = secrets.token_urlsafe(32)


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


@pytest.mark.slow
def test_the_service_says_its_context_and_the_editor_shows_it(server: RunningServer) -> None:
    with CloudClient(f"127.0.0.1:{server.port}", TOKEN) as client:
        info = client.info()
        assert info["n_ctx"] == 1024  # the slot's real context (the model allows more)
        about = _about_service(client)
    assert "1 slot" in about and "1,024 tokens of context" in about and "(llama)" in about


class _OlderInfo(rpc.InfoServicer):
    """An Info service from before ``n_ctx``: its reply has no field 6 on the wire."""

    def GetInfo(self, request: pb.GetInfoRequest, context: grpc.ServicerContext) -> pb.ServiceInfo:
        return pb.ServiceInfo(
            server_version="0.9", backend="llama", models=["m"], slots=2, max_message_bytes=1024
        )


def test_an_older_service_has_no_context_size() -> None:
    older = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc.add_InfoServicer_to_server(_OlderInfo(), older)
    port = older.add_insecure_port("127.0.0.1:0")
    older.start()
    try:
        with CloudClient(f"127.0.0.1:{port}", TOKEN) as client:
            info = client.info()
            assert info["n_ctx"] is None and info["slots"] == 2
            assert _about_service(client) == "m, 2 slots, context not reported (llama)"
    finally:
        older.stop(0)


class _Silent:
    def info(self, timeout: float = 2.0) -> dict[str, object]:
        raise RuntimeError("no Info here")


def test_a_service_that_does_not_answer_info_adds_nothing() -> None:
    assert _about_service(_Silent()) == ""


@pytest.mark.parametrize(
    ("info", "words"),
    [
        (
            {"backend": "llama", "models": ["Qwen"], "slots": 1, "n_ctx": 4096},
            "Qwen, 1 slot, 4,096 tokens of context (llama)",
        ),
        (
            {"backend": "openai", "models": ["gpt"], "slots": 8, "n_ctx": None},
            "gpt, 8 slots, context not reported (openai)",
        ),
        ({"models": [], "slots": 0}, "no model named, 0 slots, context not reported"),
    ],
)
def test_service_summary(info: dict[str, object], words: str) -> None:
    assert service_summary(info) == words
