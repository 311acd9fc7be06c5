"""``python -m bench apply --quick`` runs end to end with the real default model on real
standard-library files and reports every figure the issue asks for.

Only the shape and the consistency of the result are checked, never a timing or a ratio's
size: machines are shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench import check_metadata

from bench import BENCHMARKS
from bench.apply_cases import KINDS, build_cases

REPO = Path(__file__).resolve().parent.parent

POSITIVE = (
    "spec_over_greedy",
    "spec_over_prefill",
    "spec_over_ceiling",
    "spec_tok_s",
    "greedy_tok_s",
    "ceiling_tok_s",
    "prefill_tok_s",
    "first_hunk_ms",
)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_cases_are_real_edits_with_known_results() -> None:
    cases = build_cases(per_kind=2, max_lines=60)
    assert {c.kind for c in cases} == set(KINDS)
    for case in cases:
        compile(case.original, case.name, "exec")
        compile(case.expected, case.name, "exec")
        assert case.expected != case.original
        # The block elides what it keeps (a lone new function keeps everything: no elision).
        assert ("# ... existing code ..." in case.block) == (case.kind != "new_function")
        # Every line the block shows is in the expected file (the block is the edit).
        expected_lines = {x.strip() for x in case.expected.splitlines()}
        shown = [
            x.strip() for x in case.block.splitlines() if x.strip() and "existing code" not in x
        ]
        assert all(x in expected_lines for x in shown), case.name


@pytest.mark.slow
def test_apply_benchmark_quick_run_reports_every_figure(tmp_path: Path) -> None:
    assert BENCHMARKS["apply"] == "bench.apply"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "apply", "--json", str(out), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=290,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(proc.stdout) == result  # printed as well as written
    check_metadata(result, "apply")
    assert result["quick"] is True

    for key in POSITIVE:
        assert _number(result[key]) and result[key] > 0, (key, result[key])
    accuracy = result["accuracy"]
    assert accuracy["cases"] == len(result["cases"]) == len(KINDS)
    for key in ("deterministic", "model", "combined"):
        assert _number(accuracy[key]) and 0 <= accuracy[key] <= 1, (key, accuracy)
    assert set(accuracy["by_kind"]) == set(KINDS)
    for case in result["cases"]:
        # The combined apply answers with the deterministic path whenever it applied.
        if case["deterministic"] == "applied":
            assert case["combined_ok"] == case["deterministic_ok"]
        else:
            assert case["combined_ok"] == case["model_ok"]
        assert case["model_accepted"] <= case["model_drafted"]
    assert accuracy["combined"] >= accuracy["deterministic"]

    (speed,) = result["speed_cases"]
    assert speed["spec_tokens"] > 0 and speed["greedy_tokens"] > 0
    metrics = speed["metrics"]
    assert metrics["accepted_tokens"] <= metrics["drafted_tokens"]
    assert metrics["batches"] <= metrics["generated_tokens"]
    # The lossless check ran. Its verdict compares each difference from greedy with the largest
    # rounding change sampled in the same run, so whether a gap lands just under or just over
    # that sample is which way this CPU's rounding tips (a fresh-clone run, 2026-12-06, had one
    # False among Trues). The guarantee asserted: few differences, each within twice the
    # sampled rounding noise (seen: gaps 0.05-0.12 against noise 0.59-0.74).
    assert isinstance(result["lossless"], bool), speed
    assert result["tie_rate"] is not None and result["tie_rate"] <= 0.05, speed
    assert all(gap <= 2 * speed["noise_max"] for gap in speed["check_gaps"]), speed
    assert _number(result["tie_rate"]) and 0 <= result["tie_rate"] <= 1
    assert result["tie_checked_tokens"] == speed["spec_tokens"]
    assert set(result["first_hunk_ms_by_path"]) == {"deterministic", "model", "combined"}
    assert result["model"].endswith(".gguf")
    assert result["max_batch"] >= 8


# ---------------------------------------------------------------------------------------------
# Cases from real commits (consecutive PyPI releases) and the deterministic path on them

OLD = '''import os
import sys

from pkg import util


class Loader(Base, metaclass=Meta):
    """Loads things."""

    def load(self, name):
        path = os.path.join(self.root, name)
        return util.read(path)

    def close(self):
        self.handle.close()


def helper(x):
    return x + 1
'''
NEW = '''import os
import sys

from pkg import util


class Loader(Base, metaclass=Meta):
    """Loads things."""

    def load(self, name, encoding="utf-8"):
        path = os.path.join(self.root, name)
        return util.read(path, encoding=encoding)

    def close(self):
        if self.handle is not None:
            self.handle.close()


def helper(x):
    return x + 2
'''


def test_real_case_blocks_are_written_as_models_write_them() -> None:
    from bench.apply_real_cases import KINDS as REAL_KINDS
    from bench.apply_real_cases import _cases_of_file

    cases = list(
        _cases_of_file(
            "pkg", "1..2", "pkg/loader.py", OLD, NEW, ["Loader.load", "Loader.close", "helper"]
        )
    )
    kinds = {c.kind for c in cases}
    assert kinds <= set(REAL_KINDS)
    assert {"hunks", "two_definitions", "imports_reflowed", "function"} <= kinds
    for case in cases:
        compile(case.expected, case.name, "exec")
        assert case.original == OLD and case.expected != OLD
        # Only the chosen definitions change: everything else is the old release's.
        if case.kind != "imports_reflowed":
            assert case.expected.count("\n") - OLD.count("\n") <= 2
        if "Loader." in case.name and case.kind in ("method_shorthand", "hunks"):
            assert case.block.startswith("class Loader:\n"), case.block  # shorthand wrapper
        if case.kind == "imports_reflowed":
            assert case.block.startswith("import os\nimport sys\nfrom pkg import util\n")
            assert case.expected.startswith("import os\nimport sys\n\nfrom pkg import util\n")
    by_name = {c.name.rsplit(":", 2)[-2] + ":" + c.name.rsplit(":", 1)[-1]: c for c in cases}
    assert by_name["method_shorthand:Loader.close"].expected == OLD.replace(
        "        self.handle.close()\n",
        "        if self.handle is not None:\n            self.handle.close()\n",
    )


def test_real_cases_build_from_the_manifest_with_checked_sources() -> None:
    from bench.apply_real_cases import MANIFEST, build_real_cases

    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert "click" not in {p["package"].lower() for p in manifest["pairs"]}  # held out
    for pair in manifest["pairs"]:
        assert len(pair["sha256"]["old"]) == len(pair["sha256"]["new"]) == 64
    cases = build_real_cases()
    assert len(cases) >= 100
    assert len({c.path for c in cases if c.original.count("\n") > 2000}) >= 3
    for case in cases:
        compile(case.expected, case.name, "exec")


@pytest.mark.slow
def test_deterministic_only_run_is_never_silently_wrong(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "apply", "--deterministic-only", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=290,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    check_metadata(result, "apply")
    assert result["deterministic_only"] is True and result["case_source"] == "real"
    accuracy = result["accuracy"]
    assert accuracy["cases"] == len(result["cases"]) >= 100
    assert accuracy["model"] is None and accuracy["combined"] is None
    assert ">=2000" in accuracy["by_band"]
    # The guarantee: whatever the deterministic path applies is the expected file, or the
    # review flags it; everything else is refused (the model path runs on those).
    assert result["silent_wrong"]["deterministic"] == 0
    for case in result["cases"]:
        if case["deterministic"] == "applied":
            assert case["deterministic_ok"] or case["deterministic_offered"] != "clean", case
        else:
            assert case["refusal"]
    assert result["refused"]["deterministic"] == sum(
        c["deterministic"] != "applied" for c in result["cases"]
    )


def test_accuracy_counts_what_each_path_offers_as_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's judgement at the model seam (a scripted rewrite): a deterministic result
    is offered; a model answer is offered as clean only when complete with no rewrite defect
    and no unaccounted removal; ``silent_wrong`` counts clean results that are not the
    expected file."""
    from types import SimpleNamespace

    import local_models.apply_model as apply_model
    from bench.apply import _accuracy_case, _summary
    from bench.apply_cases import Case

    applies = (
        "class Loader:\n    # ... existing code ...\n\n"
        '    def load(self, name, encoding="utf-8"):\n'
        "        path = os.path.join(self.root, name)\n"
        "        return util.read(path, encoding=encoding)\n    # ... existing code ...\n"
    )
    close_expected = OLD.replace(
        "    def load(self, name):\n        path = os.path.join(self.root, name)\n"
        "        return util.read(path)\n",
        '    def load(self, name, encoding="utf-8"):\n'
        "        path = os.path.join(self.root, name)\n"
        "        return util.read(path, encoding=encoding)\n",
    )
    refuses = applies.replace("class Loader:", "class Loader(Other):")  # disagrees: refused
    answers = {
        "right": close_expected,
        "wrong": close_expected.replace("encoding=encoding", 'encoding="ascii"'),
        "flagged": close_expected.replace("x + 1", "x + 3"),
        "elision": close_expected.replace(
            "def helper(x):\n    return x + 1\n", "# ... existing code ...\n"
        ),
    }
    cases = [Case("applies", "k", "a.py", OLD, applies, close_expected)] + [
        Case(name, "k", "a.py", OLD, refuses, close_expected) for name in answers
    ]

    def fake_rewrite(
        engine: object, inp: object, *, on_text: object = None, max_batch: object = None
    ) -> object:
        text = answers.get(engine.case, close_expected)  # type: ignore[attr-defined]
        metrics = SimpleNamespace(
            generated_tokens=10, decode_ms=100.0, accepted_tokens=8, drafted_tokens=9, rejoins=0
        )
        return SimpleNamespace(text=text, complete=True, stop_reason="stop", metrics=metrics)

    monkeypatch.setattr(apply_model, "rewrite_file", fake_rewrite)
    warmed: list[object] = []
    monkeypatch.setattr(apply_model, "warm_for_apply", warmed.append)
    records = []
    for case in cases:
        engine = SimpleNamespace(case=case.name, reset=lambda: None)
        records.append(_accuracy_case(engine, case, None, "refused"))
    by = {r["case"]: r for r in records}
    assert by["applies"]["deterministic_ok"] and by["applies"]["model_ok"] is None  # not run
    # the model path starts as in the service: the window prompts' opening is in the cache
    assert len(warmed) == sum(r["model_ok"] is not None for r in records) > 0
    assert by["right"]["deterministic"] != "applied" and by["right"]["combined_ok"]
    assert by["wrong"]["model_offered"] == "clean" and by["wrong"]["combined_silent_wrong"]
    # Code changed where the block shows none: the review warns, so not silent.
    assert by["flagged"]["model_offered"] == "flagged"
    assert not by["flagged"]["combined_silent_wrong"]
    assert by["elision"]["model_offered"] == "defect"
    assert not by["elision"]["combined_silent_wrong"] and not by["elision"]["combined_ok"]
    summary = _summary(records, with_model=True)
    assert summary["silent_wrong"] == {
        "deterministic": 0,
        "model": 1,
        "combined": 1,
        "deterministic_flagged_wrong": 0,
    }
    assert summary["refused"]["deterministic"] == 4 and summary["refused"]["model"] == 1
    assert summary["accuracy"]["combined"] == 0.4 and summary["accuracy"]["deterministic"] == 0.2
