"""The language servers' hub (``app.services.lsp.LspHub``, its own thread) seen from Qt: the
hub's callbacks, called on its thread, are re-emitted as signals that arrive on the UI
thread (queued: the bridge lives there). Nothing here blocks; closing stops the servers
within a bounded time."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.services.lsp import LspHub, ServerStatus
from forecode_core.lsp.diagnostics import Diagnostic
from forecode_core.lsp.servers import ServerTable

__all__ = ["LspBridge"]


class LspBridge(QObject):
    """``diagnostics(uri, version or None, server, list[Diagnostic])``; ``status(ServerStatus)``."""

    diagnostics = Signal(str, object, str, object)
    status = Signal(object)

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

    def _on_diagnostics(
        self, uri: str, version: int | None, server: str, found: list[Diagnostic]
    ) -> None:
        self.diagnostics.emit(uri, version, server, found)  # queued to the UI thread

    def _on_status(self, status: ServerStatus) -> None:
        self.status.emit(status)

    def shutdown(self, timeout_s: float = 3.0) -> None:
        self.hub.shutdown(timeout_s)
