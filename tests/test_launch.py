"""The `forecode` entry point as a user starts it: headless message, and a real X server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from app.main import display_problem


def test_no_display_gives_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "app", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if sys.platform.startswith("linux"):
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "no display" in lines[0] and "xvfb-run" in lines[0]
        assert "Traceback" not in result.stderr


def test_display_problem_rules() -> None:
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "app", str(tmp_path / "nope")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "is not a folder" in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Xvfb is a Linux server")
def test_editor_opens_a_window_on_a_real_x_server(tmp_path: Path) -> None:
    """.ci/run installs Xvfb; without it this test fails rather than hiding behind a skip."""
    xvfb = shutil.which("xvfb-run")
    assert xvfb, "xvfb-run is missing: apt-get install xvfb (as .ci/run does)"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(
        PYTHONPATH=str(REPO),
        FORECODE_CONFIG_DIR=str(tmp_path / "c"),
        FORECODE_DATA_DIR=str(tmp_path / "d"),
    )
    proc = subprocess.Popen(
        [xvfb, "-a", sys.executable, "-m", "app", str(REPO / "docs/sample")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("forecode: editing"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        assert proc.poll() is None  # the window is up and the event loop runs
    finally:
        os.killpg(proc.pid, 9)
        proc.communicate(timeout=10)
