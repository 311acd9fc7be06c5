"""The README's terminal and agent screenshots can be re-made: the tool runs a real window
(real bash on a PTY, the real shadow for the agent's approved command) and writes both PNGs;
it fails when the failure bar or the second command card never shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage


def test_the_tool_writes_both_shots(tmp_path: Path) -> None:
    terminal, agent = tmp_path / "terminal.png", tmp_path / "agent.png"
    done = subprocess.run(
        [sys.executable, "-m", "app.tools.terminal_shot", str(terminal), str(agent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for shot in (terminal, agent):
        image = QImage(str(shot))
        assert (image.width(), image.height()) == (1280, 800)
