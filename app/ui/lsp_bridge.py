"""The language servers' hub (``app.services.lsp.LspHub``, its own thread) seen from Qt: the
hub's callbacks, called on its thread, are re-emitted as signals that arrive on the UI
thread (queued: the bridge lives there). Nothing here blocks; closing stops the servers
within a bounded time."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.services.lsp import LspHub, ServerStatus
from forecode_core.lsp.diagnostics import Diagnostic
from forecode_core.lsp.servers import ServerTable

__all__ = ["LspBridge"]


class LspBridge(QObject):
    """``diagnostics(uri, version or None, server, list[Diagnostic])``; ``status(ServerStatus)``."""

    diagnostics = Signal(str, object, str, object)
    status = Signal(object)
    answered = Signal(int, object, object)  # token, result, error (an exception or None)

    def __init__(
        self,
        table: ServerTable = (),
        parent: QObject | None = None,
        *,
        request_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(parent)
        self.hub = LspHub(
            self._on_diagnostics, self._on_status, table, request_timeout_s=request_timeout_s
        )
        self._waiting: dict[int, Callable[[object, BaseException | None], None]] = {}
        self._tokens = itertools.count(1)
        self.answered.connect(self._on_answered)

    def ask(
        self,
        uri: str,
        capability: str,
        method: str,
        params: object,
        on_answer: Callable[[object, BaseException | None], None],
    ) -> None:
        """A request to the document's first server with ``capability``; ``on_answer(result,
        error)`` runs later on the UI thread (never here: the caller does not wait)."""
        token = next(self._tokens)
        self._waiting[token] = on_answer
        future = self.hub.ask(uri, capability, method, params)
        future.add_done_callback(functools.partial(self._finished, token))

    def _finished(self, token: int, future: Future[Any]) -> None:  # the hub's thread
        error = future.exception() if not future.cancelled() else CancelledError()
        self.answered.emit(token, None if error else future.result(), error)

    def _on_answered(self, token: int, result: object, error: object) -> None:
        callback = self._waiting.pop(token, None)
        if callback is not None:
            callback(result, error if isinstance(error, BaseException) else None)

    def _on_diagnostics(
        self, uri: str, version: int | None, server: str, found: list[Diagnostic]
    ) -> None:
        self.diagnostics.emit(uri, version, server, found)  # queued to the UI thread

    def _on_status(self, status: ServerStatus) -> None:
        self.status.emit(status)

    def shutdown(self, timeout_s: float = 3.0) -> None:
        self.hub.shutdown(timeout_s)
