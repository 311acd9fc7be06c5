"""A screenshot tool's scratch folder: the window's own settings and data (never the user's),
offscreen unless a platform is set, no language servers."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def scratch_window_env(prefix: str, settings: dict[str, Any]) -> Path:
    """A new scratch folder, removed when the process exits; ``settings`` are the window's
    settings there."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FORECODE_CONFIG_DIR"] = str(scratch / "config")
    os.environ["FORECODE_DATA_DIR"] = str(scratch / "data")
    os.environ["FORECODE_LSP"] = "0"
    (scratch / "config").mkdir()
    (scratch / "config" / "settings.json").write_text(json.dumps(settings))
    return scratch


def settler(app: Any) -> Callable[..., None]:
    """``settle(rounds=25)``: run ``app``'s events ``rounds`` times, 20 ms apart (the folder's
    model lists, the editor paints, a worker's answer lands)."""
    from PySide6.QtCore import QThread

    def settle(rounds: int = 25) -> None:
        for _ in range(rounds):
            app.processEvents()
            QThread.msleep(20)

    return settle


def settle_until(settle: Callable[[int], None], done: Callable[[], bool], seconds: float) -> bool:
    """Settle in short rounds until ``done()``; False when ``seconds`` passed first."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        settle(5)
    return True
