"""Shared test set-up: real Qt widgets offscreen, and config/data dirs of the test's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """Settings and hot-exit backups never touch the developer's real ones (nor tmp_path)."""
    base = tmp_path_factory.mktemp("forecode-dirs")
    config, data = base / "config", base / "data"
    # Windows under test start no completion engine and no chat service unless a test asks.
    config.mkdir()
    (config / "settings.json").write_text(
        '{"completion.enabled": false, "cloud.autostart": false}\n'
    )
    # No language servers in windows under test unless a test asks (tests/test_lsp_client.py).
    monkeypatch.setenv("FORECODE_LSP", "0")
    monkeypatch.setenv("FORECODE_CONFIG_DIR", str(config))
    monkeypatch.setenv("FORECODE_DATA_DIR", str(data))
    return {"config": config, "data": data}
