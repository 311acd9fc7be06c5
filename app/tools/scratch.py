"""A screenshot tool's scratch folder: the window's own settings and data (never the user's),
offscreen unless a platform is set, no language servers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def scratch_window_env(prefix: str, settings: dict[str, Any]) -> Path:
    """A new scratch folder; ``settings`` are the window's settings there."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FORECODE_CONFIG_DIR"] = str(scratch / "config")
    os.environ["FORECODE_DATA_DIR"] = str(scratch / "data")
    os.environ["FORECODE_LSP"] = "0"
    (scratch / "config").mkdir()
    (scratch / "config" / "settings.json").write_text(json.dumps(settings))
    return scratch
