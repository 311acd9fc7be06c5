"""The benchmark runner and the ``editor`` benchmark run and report complete results.

Only the shape of the results is checked, never a timing: machines are shared and noisy.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from bench import BENCHMARKS
from bench._common import metadata, percentile

REPO = Path(__file__).resolve().parent.parent

EDITOR_FIGURES = (
    "open_100k_lines_s",
    "plain_text_edit_s",
    "ratio",
    "set_text_s",
    "plain_set_text_s",
    "scroll_frame_p50_ms",
    "scroll_frame_p95_ms",
    "scroll_frame_max_ms",
    "plain_scroll_frame_p50_ms",
    "plain_scroll_frame_p95_ms",
    "plain_scroll_frame_max_ms",
    "scroll_ratio_p95",
    "lines",
    "bytes",
    "rounds",
)


def run_bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check_metadata(result: dict[str, object], name: str) -> None:
    assert result["benchmark"] == name
    commit = result["commit"]
    assert commit is None or (isinstance(commit, str) and len(commit) == 40)
    assert isinstance(result["dirty"], bool)
    assert result["python"] == sys.version.split()[0]
    assert isinstance(result["platform"], str) and result["platform"]
    assert isinstance(result["cpu_count"], int) and result["cpu_count"] >= 1
    date = dt.datetime.fromisoformat(str(result["date"]))
    assert date.utcoffset() == dt.timedelta(0)
    machine = result["machine"]
    assert isinstance(machine, dict) and machine["arch"] and machine["system"]


def test_editor_benchmark_small_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "out" / "editor.json"
    proc = run_bench("editor", "--json", str(out), "--lines", "2000", "--rounds", "1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(proc.stdout) == result  # printed as well as written
    check_metadata(result, "editor")
    for key in EDITOR_FIGURES:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), key
        assert value > 0, key
    assert result["lines"] == 2000
    assert result["rounds"] == 1
    assert result["bytes"] > 2000 * 10
    assert result["scroll_frame_frames"] > 0 and result["plain_scroll_frame_frames"] > 0
    assert result["first_screen_styled"] is True
    assert result["qpa_platform"] == "offscreen"


def test_unknown_benchmark_exits_2_and_lists_the_valid_ones() -> None:
    proc = run_bench("no-such-benchmark", timeout=60)
    assert proc.returncode == 2
    assert "editor" in proc.stderr
    assert "no-such-benchmark" in proc.stderr


def test_registry_names_importable_modules() -> None:
    assert "editor" in BENCHMARKS
    for module in BENCHMARKS.values():
        assert module.startswith("bench.")
        assert (REPO / (module.replace(".", "/") + ".py")).is_file()


def test_metadata_and_percentile_helpers() -> None:
    check_metadata(metadata("x"), "x")
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(range(101), 95) == 95
