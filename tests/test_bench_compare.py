"""``bench.compare``'s pure parts: the presets, the run order, the key figures, the table.

No worktrees and no benchmark runs here (``python -m bench.compare --check-args`` checks the
presets against both revisions' ``--help``; the comparison itself is run by hand).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from bench import BENCHMARKS
from bench.__main__ import _parser
from bench.compare import (
    PRESETS,
    SERVICE_MODEL,
    Preset,
    extract,
    markdown,
    missing_options,
    orders,
    ratio,
    summarise,
)


def test_every_benchmark_has_a_preset() -> None:
    assert set(BENCHMARKS) <= {p.bench for p in PRESETS.values()}
    assert set(BENCHMARKS) <= set(PRESETS)  # a preset of each bench's own name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_arguments_parse_with_the_bench_parser(name: str) -> None:
    preset = PRESETS[name]
    module = importlib.import_module(BENCHMARKS[preset.bench])
    parser = _parser(add_help=True)
    module.add_arguments(parser)
    args = parser.parse_args([preset.bench, *preset.args])
    assert args.name == preset.bench
    assert preset.figures
    assert {better for _, better in preset.figures} <= {"lower", "higher", "="}
    assert len({path for path, _ in preset.figures}) == len(preset.figures)


def test_model_presets_name_the_service_model() -> None:
    for name in ("chat", "completion"):
        args = PRESETS[name].args
        assert args[args.index("--models") + 1] == SERVICE_MODEL
    assert "--quick" in PRESETS["local_engine"].args
    assert "--model-on" in PRESETS["apply_real"].args


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        (1, "AB"),
        (2, "AB BA"),
        (3, "AB BA AB"),
        (4, "AB BA AB BA"),
    ],
)
def test_orders_alternate(rounds: int, expected: str) -> None:
    got = " ".join("".join("A" if s == "before" else "B" for s in o) for o in orders(rounds))
    assert got == expected


SAMPLE_CHAT = {
    "default_pass_rate": 0.7,
    "models": {SERVICE_MODEL: {"ttft_ms": 812.5, "answer_s": 6.4, "pass_rate": 0.7}},
}
SAMPLE_APPLY = {
    "accuracy": {"combined": 0.95, "deterministic": 0.905},
    "silent_wrong": {"combined": 0},
    "deterministic_ms": {"<500": {"p50": 1.68}, ">=2000": None},
    "lossless": True,
}
SAMPLE_CLOUD = {"ttft_p50_ms": {"1": 300.0, "16": 2400.0}, "grpc_overhead": 0.01}


@pytest.mark.parametrize(
    ("result", "path", "expected"),
    [
        (SAMPLE_CHAT, "default_pass_rate", 0.7),
        (SAMPLE_CHAT, "models.*.ttft_ms", 812.5),
        (SAMPLE_CHAT, "models.*.missing", None),
        (SAMPLE_APPLY, "accuracy.combined", 0.95),
        (SAMPLE_APPLY, "silent_wrong.combined", 0),
        (SAMPLE_APPLY, "deterministic_ms.<500.p50", 1.68),
        (SAMPLE_APPLY, "deterministic_ms.>=2000.p50", None),  # a band with no cases: null
        (SAMPLE_APPLY, "lossless", True),
        (SAMPLE_CLOUD, "ttft_p50_ms.16", 2400.0),
        (SAMPLE_CLOUD, "tokens_per_s.16", None),
        ({"models": {}}, "models.*.ttft_ms", None),
    ],
)
def test_extract(result: dict[str, object], path: str, expected: object) -> None:
    assert extract(result, path) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (2.0, 1.0, 0.5),
        (4, 5, 1.25),
        (0, 0, None),  # no ratio of a zero: the table says "same"
        (None, 1.0, None),
        (True, True, None),  # booleans are not numbers here
        (3.0, 1.0, 0.3333),
    ],
)
def test_ratio(before: object, after: object, expected: float | None) -> None:
    assert ratio(before, after) == expected


PRESET = Preset(
    "chat",
    ("--limit", "2"),
    (("default_pass_rate", "higher"), ("models.*.ttft_ms", "lower"), ("lossless", "=")),
)


def _result(
    pass_rate: float, ttft: float, run_s: float, lossless: bool = True
) -> dict[str, object]:
    return {
        "default_pass_rate": pass_rate,
        "models": {SERVICE_MODEL: {"ttft_ms": ttft}},
        "lossless": lossless,
        "run_s": run_s,
    }


def test_summarise_takes_each_sides_median_and_the_ratio() -> None:
    rows = summarise(
        PRESET,
        {
            "before": [_result(0.5, 100.0, 10.0), _result(0.5, 300.0, 12.0)],
            "after": [_result(0.6, 150.0, 9.0), _result(0.6, 50.0, 11.0, lossless=False)],
        },
    )
    by = {r["figure"]: r for r in rows}
    assert list(by) == ["default_pass_rate", "models.*.ttft_ms", "lossless", "run_s"]
    assert by["default_pass_rate"]["before"] == 0.5
    assert by["default_pass_rate"]["after"] == 0.6
    assert by["default_pass_rate"]["ratio"] == 1.2
    assert by["models.*.ttft_ms"]["before"] == 200.0
    assert by["models.*.ttft_ms"]["after"] == 100.0
    assert by["models.*.ttft_ms"]["ratio"] == 0.5
    assert by["models.*.ttft_ms"]["values"] == {"before": [100.0, 300.0], "after": [150.0, 50.0]}
    assert by["lossless"]["before"] is True
    assert by["lossless"]["after"] == [True, False]  # disagreeing rounds: both shown
    assert by["run_s"]["better"] == "lower"
    assert by["run_s"]["ratio"] == 0.9091


def _report(benches: dict[str, object]) -> dict[str, object]:
    return {
        "revisions": {
            "before": {"rev": "f414841", "sha": "f414841e38bbf2a012ec3ff2b5f4c496175130ec"},
            "after": {"rev": "HEAD", "sha": "aee1fe1" + "0" * 33},
        },
        "rounds": 2,
        "order": "AB BA",
        "machine": "cpu, 2 cores",
        "load_start": [1.0, 1.0, 1.0],
        "load_end": [2.0, 2.0, 2.0],
        "benches": benches,
    }


def test_markdown_table() -> None:
    rows = summarise(
        PRESET,
        {"before": [_result(0.5, 200.0, 10.0)], "after": [_result(0.5, 100.0, 12.5)]},
    )
    text = markdown(_report({"chat": {"args": ["--limit", "2"], "failures": [], "figures": rows}}))
    lines = text.splitlines()
    assert lines[0].startswith(
        "Benchmarks: before `f414841` (f414841e38), after `HEAD` (aee1fe1000)"
    )
    assert "2 round(s), order AB BA" in lines[0]
    assert lines[2] == "| bench | figure | better | before | after | after/before |"
    assert lines[4:] == [
        "| chat | default_pass_rate | higher | 0.5 | 0.5 | 1.00 |",
        "| chat | models.*.ttft_ms | lower | 200 | 100 | 0.50 |",
        "| chat | lossless | = | true | true | same |",
        "| chat | run_s | lower | 10 | 12.5 | 1.25 |",
        "",
        "Arguments: `chat`: `--limit 2`.",
    ]


def test_markdown_reports_a_failed_side_with_its_stderr_and_goes_on() -> None:
    failed = {
        "side": "after",
        "round": 0,
        "reason": "exit status 1",
        "stderr_tail": "Traceback ...\nModuleNotFoundError: No module named 'app.core'\n",
    }
    rows = summarise(PRESET, {"before": [_result(0.5, 200.0, 10.0)], "after": []})
    ok = summarise(PRESET, {"before": [_result(0.5, 1.0, 1.0)], "after": [_result(0.5, 1.0, 1.0)]})
    text = markdown(
        _report(
            {
                "chat": {"failures": [failed], "figures": rows},
                "cloud": {"failures": [], "figures": ok},
            }
        )
    )
    assert "| chat | **failed (after)** | | | | |" in text
    assert "| chat | default_pass_rate | higher | 0.5 | failed | – |" in text
    assert "| cloud | models.*.ttft_ms | lower | 1 | 1 | 1.00 |" in text
    assert "**chat, after, round 0**: exit status 1" in text
    assert "ModuleNotFoundError: No module named 'app.core'" in text


def test_missing_options_reads_the_help_text() -> None:
    help_text = "usage: python -m bench apply [--quick] [--limit LIMIT]\n  --model-on {all,refused}"
    assert missing_options(("--quick", "--limit", "80", "--model-on", "refused"), help_text) == []
    assert missing_options(("--speed-cases", "0", "--quick"), help_text) == ["--speed-cases"]


def test_override_replaces_a_presets_arguments_and_keeps_its_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import compare

    seen: dict[str, Preset] = {}

    def fake_compare(
        names: list[str], presets: dict[str, Preset], ns: argparse.Namespace
    ) -> dict[str, object]:
        seen.update({n: presets[n] for n in names})
        return {"benches": {}, "check_args": {}, "probe": {}}

    monkeypatch.setattr(compare, "compare", fake_compare)
    monkeypatch.setattr("signal.signal", lambda *_: None)
    argv = ["editor", "--override", "editor=--rounds 5 --lines 1000", "--check-args"]
    assert compare.main(argv) == 0
    assert seen["editor"].args == ("--rounds", "5", "--lines", "1000")
    assert seen["editor"].figures == PRESETS["editor"].figures


FAKE_BENCH = """
import json, sys, time
name, path = sys.argv[1], sys.argv[sys.argv.index("--json") + 1]
if name == "boom":
    sys.stderr.write("Traceback (most recent call last):\\nImportError: no app.core here\\n")
    sys.exit(3)
if name == "slow":
    time.sleep(60)
commit = "abc" if name == "ok" else "elsewhere"
with open(path, "w") as f:
    json.dump({"commit": commit, "figure": 1.5, "args": sys.argv[4:]}, f)
"""


@pytest.mark.parametrize(
    ("bench", "timeout", "reason"),
    [
        ("ok", 30.0, None),
        ("boom", 30.0, "exit status 3"),
        ("other", 30.0, "ran commit elsewhere, not abc"),  # the result came from another tree
        ("slow", 1.0, "timed out after 1 s"),
    ],
)
def test_one_run_reads_the_result_or_reports_the_failure(
    tmp_path: Path, bench: str, timeout: float, reason: str | None
) -> None:
    # A stand-in tree whose ``python -m bench`` is a script: what a run records, no worktree.
    from bench.compare import Tree, _one_run

    tree = tmp_path / "tree"
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__init__.py").write_text("")
    (tree / "bench" / "__main__.py").write_text(FAKE_BENCH)
    work = tmp_path / "work"
    work.mkdir()
    preset = Preset(bench, ("--limit", "2"), (("figure", "lower"),))
    result, run = _one_run("x", preset, Tree("after", tree, "abc"), 1, work, timeout)
    assert run["side"] == "after"
    assert run["round"] == 1
    assert run["json"] == "x.after.1.json"
    assert run.get("reason") == reason
    if reason is None:
        assert result is not None
        assert result["figure"] == 1.5
        assert result["args"] == ["--limit", "2"]
        assert result["run_s"] == run["run_s"]
    else:
        assert result is None
    if bench == "boom":
        assert "ImportError: no app.core here" in run["stderr_tail"]
