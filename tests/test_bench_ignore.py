"""``python -m bench ignore`` runs and reports every figure (shapes only, never a timing)."""

from __future__ import annotations

import json
from pathlib import Path

from test_bench import check_metadata, run_bench

FIGURES = (
    "compile_20k_s",
    "decide_20k_us",
    "stars8_ms",
    "stars16_ms",
    "stars16_match_ms",
    "light_worst_us",
    "limits_worst_ms",
    "limits_compile_1mib_s",
    "limits_1mib_200b_ms",
)


def test_ignore_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "ignore.json"
    proc = run_bench("ignore", "--json", str(out), "--rounds", "1", "--no-baseline")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    check_metadata(result, "ignore")
    for key in FIGURES:
        value = result[key]
        assert isinstance(value, float) and value > 0, key
    assert result["patterns"] == 20_000 and result["rounds"] == 1
    assert "baseline_stars8_ms" not in result
