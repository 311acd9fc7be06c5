"""Updates (issue 18): the window's side. After the first paint, when ``updates.check`` is on
and this is the tarball's frozen folder, a worker thread (``BackgroundTask``) looks for a newer
release and downloads and verifies it (``app.services.updates``); a staged version appears as
a status-bar button, "Restart to update to X.Y". Nothing is applied until the user clicks it
(or runs "Forecode: Restart to Update"): then the window closes as usual (hot exit), the app
starts again and ``app.services.update_start`` puts the new version in place at that start.

Like VS Code: an automatic check that finds nothing, or no network, says nothing; "Forecode:
Check for Updates" says what it found. A refused update (bad signature, a file that does not
match) is always said. A ``.deb`` install is apt's to update: the app says so and never
updates itself there; a development checkout is updated with git.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtWidgets import QApplication, QPushButton, QStatusBar, QWidget

from forecode_core.store.settings import Settings
from forecode_core.updates.start import InstallKind, Phase

from ...services import update_start
from ...services.updates import (
    Outcome,
    OutcomeKind,
    approve,
    channel_of,
    check_and_stage,
    kind_of_install,
)
from ..startup import after_first_paint
from ..tasks import BackgroundTask
from .commands import Command

__all__ = ["Updates", "frozen_install", "restart_app"]

CHECK_DELAY_MS = 20_000  # after the first paint: the engine and the servers start first

_NOT_SELF = {
    InstallKind.DEB: "Forecode was installed from its .deb package: apt updates it "
    "(sudo apt update && sudo apt upgrade).",
    InstallKind.READ_ONLY: "Forecode cannot update itself: its folder is not writable.",
    InstallKind.DEVELOPMENT: "This is a development checkout: update it with git pull.",
}


def frozen_install() -> Path | None:
    """The frozen app's folder (where its executable is); None when run from source."""
    return Path(sys.executable).parent if getattr(sys, "frozen", False) else None


def restart_app(window: QWidget) -> None:
    """Close the window as usual (hot exit) and start the app again once it has quit."""
    app = QApplication.instance()
    if app is None:
        return
    exe, args = sys.executable, sys.argv[1:]
    app.aboutToQuit.connect(lambda: QProcess.startDetached(exe, args))
    window.close()


class Updates(QObject):
    """``install``: the frozen folder (default: the running executable's when frozen; None
    from source: nothing is checked, and a manual check says so); ``restart``: closes and
    starts the app again (after the user's yes); ``check``: the service's
    ``check_and_stage``."""

    message = Signal(str, int)
    offered = Signal(str)  # the version the button offers

    def __init__(
        self,
        settings: Callable[[], Settings],
        bar: QStatusBar,
        restart: Callable[[], None],
        parent: QObject | None = None,
        *,
        install: Path | None = None,
        check: Callable[..., Outcome] = check_and_stage,
        delay_ms: int = CHECK_DELAY_MS,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._restart = restart
        self._check = check
        self.install = install if install is not None else frozen_install()
        self.staged_version = ""
        self._manual = False
        self.button = QPushButton()
        self.button.setFlat(True)
        self.button.hide()
        self.button.clicked.connect(self.restart_to_update)
        bar.addPermanentWidget(self.button)
        self._task = BackgroundTask(self)
        self._task.done.connect(self._on_checked)
        self._task.failed.connect(lambda m: self._say(f"Update check failed: {m}", manual=True))
        self._delay_ms = delay_ms
        after_first_paint(self._started)

    def commands(self) -> list[Command]:
        return [
            Command("updates.check", "Forecode: Check for Updates", "", self.check_now),
            Command("updates.restart", "Forecode: Restart to Update", "", self.restart_to_update),
        ]

    # ----- start-up --------------------------------------------------------------------------
    def _started(self) -> None:
        if self.install is None:
            return
        state = update_start.read_state(self.install)
        if state is not None and state.phase is Phase.ROLLED_BACK and state.message:
            self.message.emit(state.message, 20000)
        if state is not None and state.phase is Phase.TRYING:
            install, version = self.install, update_start.installed_version(self.install)
            threading.Thread(  # the old version's files go, off the UI thread
                target=update_start.confirm_started, args=(install, version), daemon=True
            ).start()
            self.message.emit(f"Forecode was updated to {version}.", 10000)
        if self._settings().updates_check:
            QTimer.singleShot(self._delay_ms, self, lambda: self.check(manual=False))

    # ----- checking --------------------------------------------------------------------------
    def check_now(self) -> None:
        self.check(manual=True)

    def check(self, manual: bool) -> None:
        """Look for an update on a worker thread (never here); the result comes back as
        ``_on_checked``."""
        self._manual = manual
        kind = (
            kind_of_install(self.install, frozen=True)
            if self.install is not None
            else InstallKind.DEVELOPMENT
        )
        if kind is not InstallKind.BUNDLE:
            self._say(_NOT_SELF[kind], manual)
            return
        assert self.install is not None
        channel = channel_of(self.install, self._settings().updates_url)
        if channel is None:
            self._say("This build of Forecode has no update channel (no release key).", manual)
            return
        check = self._check
        self._task.start(lambda cancel: check(channel, cancelled=cancel.is_set))
        if manual:
            self.message.emit("Checking for updates…", 5000)

    def _say(self, text: str, manual: bool) -> None:
        if manual:
            self.message.emit(text, 10000)

    def _on_checked(self, outcome: object) -> None:
        assert isinstance(outcome, Outcome)
        if outcome.kind is OutcomeKind.STAGED:
            self.offer(outcome.version)
        elif outcome.kind is OutcomeKind.REFUSED:
            self.message.emit(outcome.message, 20000)
        elif outcome.kind is OutcomeKind.OFFLINE:
            self._say("No update server reachable (off-line?).", self._manual)
        elif outcome.kind is OutcomeKind.UP_TO_DATE:
            self._say(f"Forecode {outcome.version} is up to date.", self._manual)

    def offer(self, version: str) -> None:
        """The status-bar button: the only way the staged version gets applied."""
        self.staged_version = version
        self.button.setText(f"⟳ Restart to update to {version}")
        self.button.setToolTip(
            f"Forecode {version} is downloaded and verified. It is installed when Forecode "
            "starts again; your open files are kept."
        )
        self.button.show()
        self.offered.emit(version)
        self.message.emit(f"Forecode {version} is ready: restart to update.", 10000)

    # ----- the user's yes --------------------------------------------------------------------
    def restart_to_update(self) -> None:
        if self.install is None or not self.staged_version:
            self.message.emit("No update is waiting.", 5000)
            return
        if not approve(self.install):
            self.message.emit("The downloaded update is gone; checking again.", 8000)
            self.button.hide()
            self.check(manual=True)
            return
        self.button.hide()
        self._restart()

    def shutdown(self) -> None:
        self._task.cancel()
