"""``python -m bench next_edit_ui --quick``: the real window, the real next-edit owner, the real
engine worker with the default model and real propagation, scripted keys, the stall probe. The
figures' keys and that things happened are checked, never a timing (the machine is shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import BENCHMARKS

REPO = Path(__file__).resolve().parents[1]


def test_registered() -> None:
    assert BENCHMARKS["next_edit_ui"] == "bench.next_edit_ui"


def test_quick_run_reports_the_probe_and_the_phases(tmp_path: Path) -> None:
    out = tmp_path / "next_edit_ui.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "next_edit_ui", "--quick", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["benchmark"] == "next_edit_ui" and result["quick"] is True
    for key in (
        "max_ui_stall_ms",
        "ui_stall_p99_ms",
        "ui_stalls_over_16ms",
        "ui_stalls_over_16ms_busy",
        "max_ui_busy_ms",
        "propagation_ui_ms",
        "propagation_worker_ms",
        "pause_handler_ui_ms",
        "accept_ui_ms",
        "after_accept_ms",
    ):
        assert key in result, key
    assert set(result["pause_to_shown_ms"]) == {"propagation", "model"}
    assert set(result["model"]) >= {"asked", "suggested", "declined"}
    # the probe ticked all along the script, and the script did what it says
    assert result["ui_stall_probe_ticks"] > 100
    assert isinstance(result["max_ui_stall_ms"], float)
    assert result["ui_stalls_over_16ms"] >= result["ui_stalls_over_16ms_busy"]
    assert result["propagation_ui_ms"]["n"] >= 1  # encoder.py: propagation on the UI thread
    assert result["pause_to_shown_ms"]["propagation"]["n"] >= 1  # a site was drawn
    assert result["accepts"] >= 1 and result["jumps"] >= 1  # Tab jumped, then accepted
    assert result["after_accept_ms"]["n"] >= 1  # the next site drawn after the accept
    assert result["model"]["asked"] >= 1  # the real worker was asked (it was ready)
    assert result["model_path"].endswith(".gguf")
    # the app's collector policy, and each stall over 16 ms explained (gc, stacks)
    assert result["gc_policy"] == "idle" and isinstance(result["gc_collections"], dict)
    assert len(result["ui_stalls_over_16ms_detail"]) == result["ui_stalls_over_16ms"]
    # the bug finder's passes while probed (quick: maybe none) and the stalls inside one
    assert result["bug_finder_passes"] >= 0 and "n" in result["bug_finder_pass_s"]
    assert 0 <= result["ui_stalls_over_16ms_in_bug_pass"] <= result["ui_stalls_over_16ms"]
