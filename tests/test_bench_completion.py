"""``python -m bench completion``: its pure parts on marked text, and one short run through the
real worker with the small model (the figures are not checked: timings never decide a test)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench import BENCHMARKS
from bench.completion import (
    CASES,
    HELD_OUT,
    Sample,
    Spot,
    _document,
    autoclosed_rest,
    choose_files,
    find_spots,
    plan_visits,
    source_roots,
    summarise,
)

REPO = Path(__file__).resolve().parent.parent

CODE = '''"""A module.

With a docstring of several lines.
"""
import os


def main(argv):
    """Run it."""
    parser = build_parser(prog="demo", description="x")
    args = parser.parse_args(argv)
    return run(args.path, verbose=args.verbose)
'''


def test_the_benchmark_is_registered() -> None:
    assert BENCHMARKS["completion"] == "bench.completion"


def test_spots_are_placed_as_a_user_types_and_skip_docstrings() -> None:
    lines = CODE.split("\n")
    spots = find_spots(lines, random.Random(1))
    by_line = {s.line: s for s in spots}
    assert not {1, 2, 3} & set(by_line)  # inside the module docstring
    assert 8 not in by_line  # a function's docstring
    for s in spots:
        text = lines[s.line]
        assert text[s.col :].rstrip() == s.expected and len(s.expected.strip()) >= 3
        if s.kind == "line_start":
            assert s.col == len(text) - len(text.lstrip()) + 2
        elif s.kind == "open_bracket":
            assert text[s.col - 1] == "("
        else:
            assert s.kind == "mid_line" and text[s.col - 1] in " ." and text.startswith(" ")
    assert {s.kind for s in spots} == {"line_start", "mid_line", "open_bracket"}


def test_the_document_is_cut_at_the_cursor_and_the_truth_follows() -> None:
    lines = CODE.split("\n")
    spot = Spot(9, 26, "open_bracket", 'prog="demo", description="x")')
    assert lines[9][:26].endswith("build_parser(")
    text, offset, truth = _document(lines, spot)
    assert text[:offset].endswith("    parser = build_parser(")
    assert text[offset:].startswith("\n    args = parser.parse_args(argv)")
    assert truth.startswith('prog="demo", description="x")\n    args = parser')
    typed_text, typed_offset, typed_truth = _document(lines, spot, typed=1)
    assert typed_text[:typed_offset].endswith("build_parser(p")
    assert typed_truth.startswith('rog="demo"')


@pytest.mark.parametrize(
    ("typed", "rest"),
    [
        ("def main(", ")"),
        ("    x = foo(bar(", "))"),
        ("x = [1, (2", ")]"),
        ('print("', '")'),
        ('print("a", ', ")"),  # the user typed over the auto-closed quote
        ("f(a)", ""),  # ... and over the bracket
        ("d = {'", "'}"),
        ("s = f'", "'"),  # a string prefix
        ("don't(", ")"),  # no quote pair after a word
        ('if x == "(": f(', ")"),  # a bracket in a string opens nothing
        ('    """', '"""'),
        ("x = 1", ""),
    ],
)
def test_the_autoclosed_rest_is_what_typing_the_line_leaves(typed: str, rest: str) -> None:
    assert autoclosed_rest(typed) == rest


def test_an_autoclosed_document_has_the_closers_after_the_cursor() -> None:
    lines = CODE.split("\n")
    spot = Spot(9, 26, "open_bracket", 'prog="demo", description="x")')
    text, offset, truth = _document(lines, spot, autoclosed=True)
    assert text[:offset].endswith("    parser = build_parser(")
    assert text[offset:].startswith(")\n    args = parser.parse_args(argv)")
    assert truth.startswith('prog="demo", description="x")\n')
    typed_text, typed_offset, _ = _document(lines, spot, typed=1, autoclosed=True)
    assert typed_text[typed_offset:].startswith(")\n")


def test_exact_with_closers_is_the_line_after_accepting() -> None:
    def closed(shown: str, expected: str, rest: str, overwrite: int) -> Sample:
        s = Sample(
            "m",
            "small",
            "jumped",
            False,
            "p",
            "f.py",
            1,
            "open_bracket",
            expected,
            expected,
            rest=rest,
        )
        s.shown, s.overwrite = shown, overwrite
        return s

    assert closed("path):", "path):", ")", 1).exact  # the ")" typed replaces the line's
    assert closed("path", "path):", "):", 0).exact is True  # inserted before "):"
    assert not closed("path)", "path):", ")", 0).exact  # would leave "path))"
    assert not closed("path):", "path):", ")", 0).exact
    assert closed("a)\nb()", "a)", ")", 1).exact  # multi-line: the first line is the line
    assert not closed("a\nb()", "a)", ")", 0).exact  # the ")" went past the last line
    assert not closed("", "", ")", 0).exact  # nothing shown is a miss
    plain = sample("small", "jumped", "x = 1\nnext()", "x = 1", 1.0)
    assert plain.exact and plain.rest == ""


def test_visits_are_far_apart_and_moved_spots_about_ten_lines_below() -> None:
    spots = [Spot(i, 4, "line_start", "x = 1") for i in range(0, 3000, 3)]
    visits = plan_visits(spots, 5, random.Random(3), 200)
    assert len(visits) == 5
    jumps = [v[0].line for v in visits]
    assert all(abs(a - b) >= 200 for i, a in enumerate(jumps) for b in jumps[i + 1 :])
    for jump, moved in visits:
        assert moved is not None and 10 <= moved.line - jump.line <= 16


def test_files_come_from_several_projects_never_the_held_out_one() -> None:
    roots = source_roots()
    assert {name for name, _ in roots} >= {"stdlib"}
    small, large = choose_files(roots, random.Random(11), 6, 2)
    assert len(small) == 6 and len(large) == 2
    assert len({p for p, _ in small}) >= 2  # round robin over the projects
    for _, path in small + large:
        assert not any(part in HELD_OUT for part in path.parts)
        n = path.read_text(encoding="utf-8").count("\n") + 1
        assert n < 100 or n > 2000
    again = choose_files(roots, random.Random(11), 6, 2)
    assert again == (small, large)  # seeded: the same files every run


def sample(
    size: str, case: str, shown: str, expected: str, ms: float | None, cold: bool = False
) -> Sample:
    s = Sample("m", size, case, cold, "p", "f.py", 1, "line_start", expected, expected + "\nnext()")
    s.shown, s.first_line_ms = shown, ms
    return s


def test_summary_figures() -> None:
    samples = [
        sample("small", "jumped", "x = 1", "x = 1", 300.0, cold=True),
        sample("small", "warm", "x = 2", "x = 1", 100.0),
        sample("small", "moved", "", "y = 2", None),
        sample("large", "jumped", "z(a)\nnext()", "z(a)", 900.0),
        sample("large", "warm", "z(a)", "z(a)", 50.0),
        sample("large", "moved", "q", "zz", 400.0),
    ]
    got = summarise(samples)
    assert got["exact_match"] == {"all": 0.5, "small": 0.333, "large": 0.667}
    assert got["show_rate"]["all"] == round(5 / 6, 3)
    assert got["chars_accepted"]["large"] == round((11 + 4 + 0) / 3, 1)
    assert got["p50_ms"] == {"small": 300.0, "large": 900.0}  # the worst case's p50
    assert got["by_case"]["moved"]["small"] == {
        "p50_ms": None,
        "p95_ms": None,
        "samples": 1,
        "shown": 0,
    }
    assert got["cold_p50_ms"] == 300.0
    assert set(got["by_case"]) == set(CASES)


@pytest.mark.slow
def test_a_short_run_through_the_real_worker(tmp_path: Path) -> None:
    from local_models.model_store import SMALL_MODEL, ensure_small_model

    ensure_small_model()
    out = tmp_path / "completion.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "completion",
            "--models",
            SMALL_MODEL,
            "--limit",
            "1",
            "--small-files",
            "1",
            "--large-files",
            "1",
            "--visits",
            "1",
            "--max-tokens",
            "8",
            "--autoclosed",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["benchmark"] == "completion"
    assert "chosen" in result and (
        result["chosen"] is not None or result["chosen_detail"].get("reason")
    )
    model = result["models"][SMALL_MODEL]
    for key in ("exact_match", "chars_accepted", "show_rate"):
        assert set(model[key]) == {"all", "small", "large"}
    for key in ("p50_ms", "p95_ms"):
        assert set(model[key]) == {"small", "large"}
    assert set(model["by_case"]) == set(CASES)
    assert all(set(model["by_case"][c]) == {"small", "large"} for c in CASES)
    assert "cold_p50_ms" in model
    assert model["requests"] == len(result["samples"][SMALL_MODEL]) >= 4
    # --autoclosed: the same visits again with the closers after the caret, side by side
    closed = result["samples"][f"{SMALL_MODEL}:autoclosed"]
    assert model["requests_autoclosed"] == len(closed) == model["requests"]
    assert set(model["exact_match_autoclosed"]) == {"all", "small", "large"}
    assert result["autoclosed"] is True
    assert all(s["raw"] is not None for s in closed)
    assert any(s["rest"] for s in closed if s["kind"] == "open_bracket") or not any(
        s["kind"] == "open_bracket" for s in closed
    )
    sizes = {s["size"] for s in result["samples"][SMALL_MODEL]}
    assert sizes == {"small", "large"}
    big = [s for s in result["samples"][SMALL_MODEL] if s["size"] == "large"]
    # Which of the worker's prompts answered (local_models.worker.PROMPT_LADDER).
    assert all(
        s["metrics"].get("context") in ("near", "window1", "window2", "full")
        for s in big
        if s["dropped"] is None or not s["dropped"].startswith("error")
    )
