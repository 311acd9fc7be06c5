"""The real gRPC service on loopback with a scripted model seam, in its own process, for
``python -m app.tools.screenshot --edit-set``: the editor never loads the service in-process
(the import contract), so the screenshot tool starts it here as a child, as the app starts its
loopback service.

Reads the token from ``FORECODE_SCRIPTED_TOKEN``, prints ``port <N>`` once it listens, and
serves until its standard input closes. The model seam answers the chat with the screenshot's
``EDIT_SET_ANSWER`` and runs the real apply pipeline's deterministic path for each file."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

from app.tools.screenshot import EDIT_SET_ANSWER
from cloud_server.config import ServerConfig
from cloud_server.service import start_server


class ScriptedEditsModel:
    """The service's model seam: ``EDIT_SET_ANSWER`` for the chat, the real pipeline's
    deterministic path for each file (no model path)."""

    def info(self) -> dict[str, Any]:
        return {"backend": "scripted", "models": ["scripted"], "slots": 1}

    def stream_chat(self, params: Any, *, should_stop: Any) -> Iterator[Any]:
        from forecode_core.streams import Delta, Done, FinishReason, Started

        yield Started(model="scripted")
        for i in range(0, len(EDIT_SET_ANSWER), 60):
            yield Delta(EDIT_SET_ANSWER[i : i + 60])
        yield Done(FinishReason.STOP, {"completion_tokens": 200})

    def stream_apply(self, request: Any, *, should_stop: Any) -> Iterator[Any]:
        from forecode_core.apply.pipeline import PipelineCall

        yield from PipelineCall(request, None)

    def close(self) -> None:
        pass


def main() -> int:
    token = os.environ.get("FORECODE_SCRIPTED_TOKEN", "")
    if not token:
        print("scripted_service: FORECODE_SCRIPTED_TOKEN is not set", file=sys.stderr)
        return 2
    running = start_server(ServerConfig(tokens=(token,)), backend=ScriptedEditsModel())
    print(f"port {running.port}", flush=True)
    try:
        sys.stdin.read()  # until the parent closes it (or dies)
    finally:
        running.stop(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
