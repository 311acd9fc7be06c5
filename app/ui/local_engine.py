"""The editor's side of the local engine: ``EngineClient`` (a worker subprocess) behind the
``CompletionEngine`` seam, its callbacks re-emitted as Qt signals on the UI thread."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject

from local_models.client import EngineClient
from local_models.prompt import CompletionInput

from .inline_completion import CompletionEngine

__all__ = ["LocalEngine"]


class LocalEngine(CompletionEngine):
    """Signals are emitted from the client's reader thread; Qt queues them to the UI thread."""

    def __init__(self, model_path: str | os.PathLike[str], parent: QObject | None = None,
                 **client_args: object) -> None:
        super().__init__(parent)
        self.model_path = Path(model_path)
        self.client = EngineClient(model_path, on_state=self._on_state,
                                   **client_args)  # type: ignore[arg-type]
        self._state = "stopped"

    def start(self) -> None:
        self.client.start()

    def _on_state(self, state: str, detail: str) -> None:
        self._state = state
        self.state.emit(state, detail)

    def is_ready(self) -> bool:
        return self._state == "ready"

    def complete(self, inp: CompletionInput, max_tokens: int) -> int:
        return self.client.complete(inp, on_chunk=self.chunk.emit, on_done=self.done.emit,
                                    on_error=self.error.emit, max_tokens=max_tokens,
                                    speculative=True)

    def warm(self, inp: CompletionInput) -> None:
        self.client.warm(inp)

    def cancel(self, request_id: int) -> None:
        self.client.cancel(request_id)

    def close(self) -> None:
        self.client.close()
