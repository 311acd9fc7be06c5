"""The cloud controller: the window's connection to the Forecode service (a service on
loopback started with the window, or ``cloud.url``), the chat status slot, the service token
(``Cloud: Set Service Token``), and the model path of apply (``apply_service``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from forecode_core.states import ServiceState
from forecode_core.store.settings import Settings

from ..apply_backend import ApplyService
from ..cloud import ChatBackend, CloudConnection
from ..tasks import BackgroundTask
from .commands import Command

__all__ = ["CHAT_STATES", "CloudController", "token_name"]

# The chat slot of the status bar for each CloudConnection state.
CHAT_STATES: dict[str, str] = {
    ServiceState.STARTING: "◌ Chat starting…",
    ServiceState.CLOUD: "● Chat",
    ServiceState.LOCAL: "◐ Chat: local model",
    ServiceState.OFFLINE: "○ Chat offline",
}


def token_name(url: str) -> str:
    """The ``TokenStore`` name of the token for the service at ``url`` (one per address, so a
    token is never sent to another service)."""
    return f"cloud:{url.strip()}"


class CloudController(QObject):
    """``settings``: the settings now; ``local_engine``: the local engine's worker client (the
    chat's fallback; called on worker threads); ``dialogs`` parents the token dialog."""

    status = Signal(str, str)  # the chat slot's text and tooltip
    backend_changed = Signal(object)  # the chat backend to use (a new connection's)
    reconnecting = Signal()  # the connection is being replaced (what follows it stops)
    connection_changed = Signal()  # the connection's state changed (index access may have)
    message = Signal(str, int)

    def __init__(
        self,
        settings: Callable[[], Settings],
        local_engine: Callable[[], object | None],
        dialogs: QWidget,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._local_engine = local_engine
        self._dialogs = dialogs
        self.connection: CloudConnection | None = None
        self.fixed_backend: ChatBackend | None = None  # a backend given to the window
        self.token_dialog: QInputDialog | None = None
        self._token_task = BackgroundTask(self)
        self._token_task.done.connect(self._on_token_stored)
        self._token_task.failed.connect(
            lambda m: self.message.emit(f"The token could not be stored: {m}", 15000)
        )

    def commands(self) -> list[Command]:
        return [
            Command("cloud.setToken", "Cloud: Set Service Token", "", self.set_service_token),
            # After a failed or slow start (the service on this machine, or a remote one that
            # was down): the fallback is for the session otherwise.
            Command("cloud.restart", "Cloud: Restart Chat Service", "", self.start),
        ]

    # ----- the connection ----------------------------------------------------------------------
    def use_backend(self, backend: ChatBackend) -> None:
        """Chat through ``backend`` (tests, the screenshot); no service is started."""
        self.fixed_backend = backend
        self.backend_changed.emit(backend)
        self.status.emit("● Chat", "A chat backend given to the window")

    def start(self) -> None:
        """(Re)start the chat service per the settings; returns at once."""
        if self.connection is not None:
            self.connection.close(timeout=0)  # stops in the background
        self.reconnecting.emit()
        url = self._settings().cloud_url.strip()

        def token() -> str | None:  # on the connection's worker thread
            from cloud_client.tokens import TokenStore

            return TokenStore().get(token_name(url))

        settings = self._settings()
        connection = CloudConnection(
            url,
            autostart=settings.cloud_autostart,
            token_provider=token,
            local_engine=self._local_engine,
            service_model=settings.chat_model_path,
            parent=self,
        )
        connection.state_changed.connect(self._on_state)
        self.connection = connection
        self.backend_changed.emit(connection.backend)
        connection.start()

    def settings_changed(self, old: Settings, new: Settings) -> None:
        if self.connection is not None and (
            old.cloud_url,
            old.cloud_autostart,
            old.chat_model_path,
        ) != (new.cloud_url, new.cloud_autostart, new.chat_model_path):
            self.start()

    def _on_state(self, state: str, detail: str) -> None:
        self.status.emit(CHAT_STATES.get(state, state), detail)
        self.connection_changed.emit()

    def local_changed(self) -> None:
        """The local engine started, stopped or changed state (the chat's fallback)."""
        if self.connection is not None:
            self.connection.local_changed()

    def index_access(self) -> tuple[str, str] | None:
        """``(target, token)`` of the connected service, for the codebase index."""
        return self.connection.index_access() if self.connection is not None else None

    def apply_service(self) -> ApplyService | None:
        """The object whose ``apply`` is the model path (the router, else the client); None
        while the service is not connected. Called on the apply's worker thread."""
        connection = self.connection
        if connection is None:
            return None
        router = connection.backend.current
        if router is not None and hasattr(router, "apply"):
            return cast("ApplyService", router)
        return cast("ApplyService | None", connection.client)

    def service_starting(self) -> bool:
        """Whether the service is still starting (an apply waits for it). Any thread."""
        connection = self.connection
        return connection is not None and connection.state == ServiceState.STARTING

    def shutdown(self) -> None:
        self._token_task.cancel()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close(timeout=3.0)

    # ----- the token ---------------------------------------------------------------------------
    def set_service_token(self) -> None:
        """Ask for the token of the service at ``cloud.url`` (a password field) and store it
        in the keyring (``TokenStore``); it is never shown or logged."""
        url = self._settings().cloud_url.strip()
        if not url:
            self.message.emit(
                "Set cloud.url first (Preferences: Open Settings (JSON)); the "
                "service on this machine needs no token.",
                10000,
            )
            return
        dialog = QInputDialog(self._dialogs)
        dialog.setWindowTitle("Cloud: Set Service Token")
        dialog.setLabelText(f"Access token for the Forecode service at {url}:")
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.textValueSelected.connect(lambda value: self._store_token(url, value))
        dialog.finished.connect(dialog.deleteLater)
        dialog.finished.connect(lambda _r: setattr(self, "token_dialog", None))
        self.token_dialog = dialog
        dialog.open()

    def _store_token(self, url: str, value: str) -> None:
        token = value.strip()
        if not token:
            self.message.emit("No token was entered; nothing changed.", 5000)
            return

        def store(_cancel: threading.Event) -> str:
            from cloud_client.tokens import TokenStore

            TokenStore().set(token_name(url), token)
            return url

        self._token_task.start(store)

    def _on_token_stored(self, url: object) -> None:
        self.message.emit(f"Token saved for {url}; reconnecting.", 8000)
        if url == self._settings().cloud_url.strip():
            self.start()
