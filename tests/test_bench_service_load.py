"""``python -m bench service_load`` runs end to end (a small run: the service as a process, the
fake upstream, fuzz and load) and reports every figure.

Only the shape and the counts that must be zero are checked, never a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench import check_metadata

from bench import BENCHMARKS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_service_load_benchmark_small_run_reports_every_figure(tmp_path: Path) -> None:
    assert BENCHMARKS["service_load"] == "bench.service_load"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "service_load",
            "--json",
            str(out),
            "--fuzz",
            "300",
            "--clients",
            "10",
            "--seconds",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    check_metadata(result, "service_load")
    for key in (
        "calls",
        "statuses",
        "crashes",
        "hangs",
        "internal",
        "health_p50_ms",
        "health_p99_ms",
        "rss_mb_before",
        "rss_mb_after",
        "rss_mb_peak",
        "tracebacks",
        "health_failures",
        "upstream_open_after",
        "slots_all_run_after",
    ):
        assert key in result, key
    assert result["calls"] == sum(result["statuses"].values()) > 100
    assert result["crashes"] == result["hangs"] == result["internal"] == 0, result["statuses"]
    assert result["tracebacks"] == 0 and result["health_failures"] == 0
    assert result["exit_code"] == 0 and result["healthy_after"]
    assert result["upstream_open_after"] == 0 and result["slots_all_run_after"]
    assert 0 < result["health_p50_ms"] <= result["health_p99_ms"]
    assert 0 < result["rss_mb_before"] <= result["rss_mb_peak"]
    assert result["rss_mb_after"] > 0
