"""Shared test set-up: real Qt widgets offscreen, and config/data dirs of the test's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Settings and hot-exit backups never touch the developer's real ones."""
    config, data = tmp_path / "config", tmp_path / "data"
    # Windows under test start no completion engine unless a test asks for one.
    config.mkdir()
    (config / "settings.json").write_text('{"completion.enabled": false}\n')
    monkeypatch.setenv("FORECODE_CONFIG_DIR", str(config))
    monkeypatch.setenv("FORECODE_DATA_DIR", str(data))
    return {"config": config, "data": data}
