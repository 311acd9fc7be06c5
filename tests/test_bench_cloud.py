"""``python -m bench cloud --quick`` runs end to end against the real service on loopback with
the real default model and reports every figure by stream count.

Only the shape of the result is checked, never a timing: machines are shared and noisy.
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
def test_cloud_benchmark_quick_run_reports_every_figure(tmp_path: Path) -> None:
    assert BENCHMARKS["cloud"] == "bench.cloud"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "cloud", "--json", str(out), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    check_metadata(result, "cloud")
    for key in ("ttft_p50_ms", "ttft_p95_ms", "tokens_per_s"):
        assert set(result[key]) == {"1", "4", "16"}, (key, result[key])
        for count, value in result[key].items():
            assert isinstance(value, float) and value > 0, (key, count, value)
    assert result["stream_errors"] == {"1": [], "4": [], "16": []}
    for n in ("1", "4", "16"):
        assert result["ttft_p50_ms"][n] <= result["ttft_p95_ms"][n]
    assert isinstance(result["grpc_overhead"], float)
    assert result["grpc_call_ms_p50"] > 0 and result["in_process_call_ms_p50"] > 0
    # Both sides of the overhead comparison did the same work: every reply ran to max_tokens.
    assert all(
        a == b == result["max_tokens"] for a, b in result["overhead_samples"]["completion_tokens"]
    )
    assert result["service"]["backend"] == "llama"
