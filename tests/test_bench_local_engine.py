"""``python -m bench local_engine --quick`` runs end to end with the real default model and
reports every figure.

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

POSITIVE_FIGURES = (
    "decode_ratio",
    "raw_decode_tok_s",
    "engine_decode_tok_s",
    "cold_p50_ms",
    "cold_p95_ms",
    "warm_p50_ms",
    "warm_p95_ms",
    "warm_over_cold",
    "spec_ratio",
    "spec_tok_s",
    "greedy_tok_s",
    "worker_rss_mb",
)
NON_NEGATIVE_FIGURES = ("max_ui_stall_ms", "ui_stall_p99_ms", "spec_drafted", "spec_accepted")
ENGINE_METRICS = (
    "prompt_tokens",
    "evaluated_tokens",
    "reused_prefix_tokens",
    "reused_shifted_tokens",
)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.slow
def test_local_engine_benchmark_quick_run_reports_every_figure(tmp_path: Path) -> None:
    assert BENCHMARKS["local_engine"] == "bench.local_engine"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "local_engine", "--json", str(out), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(proc.stdout) == result  # printed as well as written
    check_metadata(result, "local_engine")
    assert result["quick"] is True and result["rounds"] == 1

    for key in POSITIVE_FIGURES:
        assert _number(result[key]) and result[key] > 0, (key, result[key])
    for key in NON_NEGATIVE_FIGURES:
        assert _number(result[key]) and result[key] >= 0, (key, result[key])
    assert result["spec_accepted"] <= result["spec_drafted"]
    assert isinstance(result["spec_equals_greedy"], bool)
    assert result["spec_lossless"] is True, result["spec_tie_gaps"]

    # (b): every sample of each kind was shown, and the JSON says how cold was made cold.
    assert result["cold_samples"] >= 1 and result["warm_samples"] >= 1
    assert result["cold_p50_ms"] <= result["cold_p95_ms"]
    assert result["warm_p50_ms"] <= result["warm_p95_ms"]
    assert isinstance(result["cold_method"], str) and result["cold_method"]
    warm = result["warm_engine_metrics"]
    assert warm["per_sample"], warm
    for sample in warm["per_sample"]:
        for key in ENGINE_METRICS:
            assert isinstance(sample[key], int) and sample[key] >= 0, (key, sample)
        assert sample["prompt_tokens"] > 0
        assert sample["evaluated_tokens"] <= sample["prompt_tokens"]
    for key in ENGINE_METRICS:
        assert _number(warm["median"][key]), key
    kinds = {s["kind"] for s in result["latency_samples"]}
    assert {"cold", "warm"} <= kinds

    # (d) and (e)
    assert isinstance(result["worker_rss_source"], str)
    assert result["ui_stall_probe_ticks"] > 0
    assert result["max_ui_stall_ms"] >= result["ui_stall_p99_ms"]
    assert result["model"].endswith(".gguf")
    assert result["profile"] == "gemma3"
