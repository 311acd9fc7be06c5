"""No button's text is wider than the room its button gives it, in every panel, at 100 % and
200 % scale (``QT_SCALE_FACTOR=2``): the probe opens the real window's panels in a subprocess
(the scale factor is read when the QApplication starts) and measures each visible button."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("scale", ["1", "2"])
def test_no_button_text_is_clipped(
    scale: str, tmp_path: Path, isolated_dirs: dict[str, Path]
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lib.py").write_text(
        "def alpha(x):\n    return x + 1\n\n\ndef beta(y):\n"
        "    return y * 2\n\n\ndef gamma(z):\n    return z - 3\n"
    )
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        QT_SCALE_FACTOR=scale,
        FORECODE_CONFIG_DIR=str(isolated_dirs["config"]),
        FORECODE_DATA_DIR=str(isolated_dirs["data"]),
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.helpers.clipping_probe", str(ws)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    panels = {entry["panel"] for entry in report["checked"]}
    assert {"welcome", "find bar", "chat panel", "apply review"} <= panels, panels
    texts = {entry["text"] for entry in report["checked"]}
    assert {"✓ Accept  Ctrl+Y", "✕ Reject  Ctrl+N", "Replace All"} <= texts
    assert report["clipped"] == [], f"clipped at {scale}x: {report['clipped']}"
    assert report["overflow"] == [], f"past the view's edge at {scale}x: {report['overflow']}"
