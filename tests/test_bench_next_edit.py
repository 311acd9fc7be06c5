"""``python -m bench next_edit``: case extraction and slicing on a real (tiny) git repository,
the judge and the figures on scripted suggestions (a fake model at the predictor seam), the JSON
keys of a quick end-to-end run of the propagation arm, and the real small model through the
benchmark's model path once (its figures are not checked: timings never decide a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench import BENCHMARKS
from bench.next_edit import (
    LocalPredictor,
    Row,
    Shown,
    both_arm,
    gate_study,
    judge,
    model_arm,
    model_input,
    next_in_region,
    previous_input,
    run_arms,
    summarise,
)
from bench.next_edit_cases import (
    Case,
    FileChange,
    Hunk,
    Unit,
    apply_units,
    case_at,
    cases_of_commit,
    commit_files,
    parse_hunks,
    sample_cases,
    signature,
    template_signature,
    trim_to_words,
    units_of,
)

REPO = Path(__file__).resolve().parent.parent

A_BEFORE = """\
def area(total, width):
    x = total * width
    print("total")

    y = total + 1
    return f(a, b)


def other():
    return total
"""

# commit 2: `total` renamed on three lines of a.py (a string is left alone), one line of b.py
A_RENAMED = A_BEFORE.replace("(total,", "(amount,").replace("x = total", "x = amount")
A_RENAMED = A_RENAMED.replace("y = total", "y = amount")
B_BEFORE = "import a\n\nVALUE = 1\n"
B_AFTER = "import a\n\nVALUE = 2\n"
# commit 3: two token changes on one line; a line inserted further down
A_THIRD = A_RENAMED.replace("f(a, b)", "f(x, y)").replace(
    "def other():\n", "def other():\n    # note\n"
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    _git(repo, "add", *files)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("nextedit-repo")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "bench@example.invalid")
    _git(root, "config", "user.name", "Bench")
    c1 = _commit(root, {"a.py": A_BEFORE, "b.py": B_BEFORE}, "first")
    c2 = _commit(root, {"a.py": A_RENAMED, "b.py": B_AFTER}, "rename total")
    c3 = _commit(root, {"a.py": A_THIRD}, "arguments and a note")
    return root, [c1, c2, c3]


def _gitdir(root: Path) -> str:
    return str(root / ".git")


def test_the_benchmark_is_registered() -> None:
    assert BENCHMARKS["next_edit"] == "bench.next_edit"


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("diff", "hunks"),
    [
        ("@@ -3 +3 @@\n-a\n+b\n", [Hunk(2, 1, 2, 1)]),
        ("@@ -2,0 +3,2 @@\n+x\n+y\n", [Hunk(2, 0, 2, 2)]),
        ("@@ -5,2 +4,0 @@\n-x\n-y\n", [Hunk(4, 2, 4, 0)]),
        ("@@ -1,2 +1,3 @@ def f():\n@@ -9 +10 @@\n", [Hunk(0, 2, 0, 3), Hunk(8, 1, 9, 1)]),
    ],
)
def test_hunk_headers_give_0_based_lines(diff: str, hunks: list[Hunk]) -> None:
    assert parse_hunks(diff) == hunks


@pytest.mark.parametrize(
    ("parent", "child", "hunks", "units"),
    [
        # a line with two token changes: two units on the same line
        ("x\nf(a, b)\n", "x\nf(c, d)\n", [Hunk(1, 1, 1, 1)], [(4, 5, "c"), (7, 8, "d")]),
        # two lines replaced by two: one unit per changed line
        ("p = 1\nq = 2\n", "p = 3\nq = 4\n", [Hunk(0, 2, 0, 2)], [(4, 5, "3"), (10, 11, "4")]),
        # lines inserted: one unit, whole lines, at a line start
        ("a\nb\n", "a\nnew\nb\n", [Hunk(1, 0, 1, 1)], [(2, 2, "new\n")]),
        # two lines become one: one unit of whole lines
        ("a\nb\nc\n", "a\nbc\n", [Hunk(1, 2, 1, 1)], [(2, 6, "bc\n")]),
    ],
)
def test_units_cut_hunks_into_what_a_user_types_apart(
    parent: str, child: str, hunks: list[Hunk], units: list[tuple[int, int, str]]
) -> None:
    got = units_of(parent, child, hunks)
    assert [(u.start, u.end, u.new) for u in got] == units
    assert apply_units(parent, got) == child


@pytest.mark.parametrize(
    ("before", "after", "trimmed"),
    [
        ("total", "amount", ("total", "amount")),
        ("x = total * w", "x = amount * w", ("total", "amount")),  # trimmed to the word
        ("foo_bar", "foo_baz", ("foo_bar", "foo_baz")),  # widened back to the whole word
        ("f(a)", "f(a, b)", ("", ", b")),  # an insertion
        ("", "new\n", ("", "new\n")),
    ],
)
def test_recent_edits_are_trimmed_to_whole_words(
    before: str, after: str, trimmed: tuple[str, str]
) -> None:
    start, b, a = trim_to_words(10, before, after)
    assert (b, a) == trimmed
    assert start == 10 + after.index(a) if a else start >= 10


def test_signature_compares_token_mappings() -> None:
    assert signature("x = total\n", "x = amount\n") == signature("total)", "amount)")
    assert signature("f(a)", "f(b)") != signature("f(c)", "f(d)")


def test_a_whitespace_change_repeated_is_no_template() -> None:
    """Re-indenting two lines (or adding two blank lines) repeats the empty token mapping, which
    every whitespace change shares: not a rename/template case; a rename repeated is one."""
    parent = "x = 1\n  y = 2\n  z = 3\n"
    dedent = FileChange("a.py", parent, "x = 1\ny = 2\nz = 3\n", (Unit(6, 8, ""), Unit(14, 16, "")))
    assert case_at("r", "c", [dedent], 0, 1).template is False
    parent = "x = old\ny = old\n"
    rename = FileChange(
        "a.py", parent, "x = new\ny = new\n", (Unit(4, 7, "new"), Unit(12, 15, "new"))
    )
    assert case_at("r", "c", [rename], 0, 1).template is True
    assert template_signature("  ", "") is None
    assert template_signature("old", "new") == (("old", "new"),)


# ---------------------------------------------------------------- cases from real git


def test_commit_files_read_the_python_files_of_a_commit(repo: tuple[Path, list[str]]) -> None:
    root, (c1, c2, _c3) = repo
    assert commit_files(_gitdir(root), c1) is None  # a root commit has no parent to diff
    files = commit_files(_gitdir(root), c2)
    assert files is not None
    assert [f.path for f in files] == ["a.py", "b.py"]
    a = files[0]
    assert (a.parent, a.child) == (A_BEFORE, A_RENAMED)
    assert [(a.parent[u.start : u.end], u.new) for u in a.units] == [("total", "amount")] * 3


def _slices(cases: list[Case]) -> list[tuple[str, int, str, bool]]:
    return [(c.path, c.k, c.slice, c.template) for c in cases]


def test_positions_are_sliced_by_where_the_next_unit_is(repo: tuple[Path, list[str]]) -> None:
    root, (_c1, c2, c3) = repo
    gd = _gitdir(root)
    files2 = commit_files(gd, c2)
    assert files2 is not None
    assert _slices(cases_of_commit("r", c2, files2)) == [
        ("a.py", 1, "elsewhere", True),  # the same rename two lines below
        ("a.py", 2, "elsewhere", True),
        ("a.py", 3, "other_file", False),  # b.py still changes
        ("b.py", 1, "nothing_remains", False),
    ]
    files3 = commit_files(gd, c3)
    assert files3 is not None
    assert _slices(cases_of_commit("r", c3, files3)) == [
        ("a.py", 1, "same_line", False),  # a -> x, then b -> y on the caret's line
        ("a.py", 2, "elsewhere", False),  # the comment inserted below
        ("a.py", 3, "nothing_remains", False),
    ]


def test_a_case_holds_the_text_after_k_units_and_the_rest_as_answers(
    repo: tuple[Path, list[str]],
) -> None:
    root, (_c1, c2, _c3) = repo
    files = commit_files(_gitdir(root), c2)
    assert files is not None
    case = cases_of_commit("r", c2, files)[0]
    assert case.text == A_BEFORE.replace("(total,", "(amount,")
    assert case.recent == (Unit(9, 15, "amount"),) and case.recent_before == ("total",)
    assert case.caret == 15
    assert apply_units(case.text, case.remaining) == A_RENAMED == case.final
    assert [case.text[u.start : u.end] for u in case.remaining] == ["total", "total"]


def test_sampling_is_deterministic_with_a_quota_per_stratum(repo: tuple[Path, list[str]]) -> None:
    root, _ = repo
    one = sample_cases(_gitdir(root), cases=10, seed=3, per_commit=10)
    two = sample_cases(_gitdir(root), cases=10, seed=3, per_commit=10)
    assert _slices(one) == _slices(two)
    # quotas of 2 per stratum: the repository has 1 same_line, 1 elsewhere (not a template),
    # 2 rename_template, 1 other_file and 2 nothing_remains positions
    assert sorted(_slices(one)) == sorted(
        [
            ("a.py", 1, "same_line", False),
            ("a.py", 2, "elsewhere", False),
            ("a.py", 1, "elsewhere", True),
            ("a.py", 2, "elsewhere", True),
            ("a.py", 3, "other_file", False),
            ("b.py", 1, "nothing_remains", False),
            ("a.py", 3, "nothing_remains", False),
        ]
    )


# ---------------------------------------------------------------- judging


@pytest.fixture
def six_line_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripted model's cases assume the region before 2026-12-05-c (at least 6 lines, up
    to 10 above and 12 below: it reaches `y = total` from the def line); the region's own
    rules are tests/test_next_edit_input.py's."""
    import forecode_core.next_edit.input as input_module

    monkeypatch.setattr(input_module, "REGION_MIN_LINES", 6)
    monkeypatch.setattr(input_module, "REGION_MAX_ABOVE", 10)
    monkeypatch.setattr(input_module, "REGION_MAX_BELOW", 12)


def _rename_case(repo: tuple[Path, list[str]], k: int = 1) -> Case:
    root, (_c1, c2, _c3) = repo
    files = commit_files(_gitdir(root), c2)
    assert files is not None
    return cases_of_commit("r", c2, files)[k - 1]


def _at(case: Case, old: str, new: str, nth: int = 0) -> Shown:
    at = -1
    for _ in range(nth + 1):
        at = case.text.index(old, at + 1)
    return Shown((Unit(at, at + len(old), new),), case.text.count("\n", 0, at))


def test_judge_exact_located_kept(repo: tuple[Path, list[str]]) -> None:
    case = _rename_case(repo)
    v = judge(case, _at(case, "x = total", "x = amount"))
    assert (v.located, v.exact, v.correct, v.reversal) == (True, True, True, False)
    # the edit is trimmed to `total` -> `amount`: what is inserted survives, and the removed
    # characters the final text has not kept (an alignment may keep a `t`)
    assert len("amount") + len("total") - 2 <= v.kept <= len("amount") + len("total")
    # the second remaining unit is a right answer too
    assert judge(case, _at(case, "y = total", "y = amount")).exact


@pytest.mark.parametrize(
    ("old", "new", "nth", "located", "exact", "correct"),
    [
        ("x = total", "x = amounts", 0, True, False, False),  # right place, wrong text
        ("total", "amount", 1, False, False, False),  # the string is left alone
        ("total", "amount", 3, False, False, False),  # `other`'s total stays
        ("x = total", "x = amount  ", 0, True, False, False),
    ],
)
def test_judge_wrong_suggestions(
    repo: tuple[Path, list[str]],
    old: str,
    new: str,
    nth: int,
    located: bool,
    exact: bool,
    correct: bool,
) -> None:
    case = _rename_case(repo)
    v = judge(case, _at(case, old, new, nth))
    assert (v.located, v.exact, v.correct) == (located, exact, correct)


def test_judge_two_consecutive_units_at_once_are_exact(repo: tuple[Path, list[str]]) -> None:
    case = _rename_case(repo)
    x, y = _at(case, "x = total", "x = amount"), _at(case, "y = total", "y = amount")
    assert judge(case, Shown(x.edits + y.edits, x.line)).exact


def test_judge_a_revert_of_the_recent_edit(repo: tuple[Path, list[str]]) -> None:
    case = _rename_case(repo)
    v = judge(case, _at(case, "amount", "total"))
    assert v.reversal and not v.exact and not v.correct


def test_judge_nothing_remains_is_never_right(repo: tuple[Path, list[str]]) -> None:
    case = _rename_case(repo, k=3)
    assert case.slice == "other_file"
    v = judge(case, _at(case, "total", "amount", 1))
    assert (v.located, v.exact, v.correct) == (False, False, False)


# ---------------------------------------------------------------- arms and figures


class ScriptedModel:
    """A fake at the predictor seam: rewrites the region with a scripted replacement."""

    def __init__(self, old: str, new: str, finished: bool = True) -> None:
        self.old, self.new, self.finished = old, new, finished
        self.calls = 0

    def __call__(self, inp: Any) -> tuple[str, bool, dict[str, Any]]:
        self.calls += 1
        return inp.region.replace(self.old, self.new, 1) + "</region>", self.finished, {}


def test_figures_from_a_scripted_model_arm(
    repo: tuple[Path, list[str]], six_line_region: None
) -> None:
    root, (_c1, c2, c3) = repo
    gd = _gitdir(root)
    cases = [
        c
        for commit in (c2, c3)
        for c in cases_of_commit("r", commit, commit_files(gd, commit) or [])
    ]
    rows = [Row(c) for c in cases]
    model = ScriptedModel("y = total", "y = amount")
    run_arms(rows, {"fake": model}, warm=True)
    assert model.calls == 2 * len(rows)  # each case warmed with the request before it
    m = summarise(rows, "model:fake")
    # the fake rewrites `y = total` where the region has it: c2's a.py after k=1 and k=2 (the
    # rename's next site, exact); elsewhere it changes nothing
    assert m["cases"] == 7
    assert m["by_slice"]["rename_template"]["exact_match"] == 1.0
    assert m["by_slice"]["same_line"]["shown"] == 0  # c3's a.py no longer has `y = total`
    assert m["reversal_rate"] == 0.0
    assert m["not_shown"]["no_change"] == 5
    assert m["exact_match_by_slice"]["all"] == round(2 / 7, 3)
    both = summarise(rows, "both:fake")
    prop = summarise(rows, "propagation")
    noop = summarise(rows, "noop")
    assert noop["show_rate"] == 0.0 and noop["false_show_rate"] == 0.0
    # both shows propagation's rename where it proposes, the model's otherwise
    assert both["shown"] >= max(m["shown"], prop["shown"])
    assert prop["by_slice"]["rename_template"]["exact_match"] == 1.0
    assert prop["reversal_rate"] == 0.0


def test_a_cut_off_answer_is_not_shown(repo: tuple[Path, list[str]], six_line_region: None) -> None:
    case = _rename_case(repo)
    out, suggestion = model_arm(case, ScriptedModel("y = total", "y = amount", finished=False))
    assert suggestion is not None  # the end marker is there: finished or not, it is whole
    out, suggestion = model_arm(case, lambda inp: ("    y = am", False, {}))
    assert suggestion is None and out.shown is None and out.reason == "cut_off"


def test_the_gate_holds_back_an_unsure_answer_in_the_model_and_both_arms(
    repo: tuple[Path, list[str]],
    six_line_region: None,
) -> None:
    """The bench applies the product's gate (``acceptance.judge``): the same right answer is
    shown when the model is sure and held back when it is not, and what the gate held back is
    still judged (the refit's label) and never reaches the both arm."""
    case = _rename_case(repo)
    sure = ScriptedModel("y = total", "y = amount")
    out, suggestion = model_arm(case, sure)
    assert out.shown is not None and suggestion is not None
    assert out.metrics["candidate"]["verdict"]["exact"] is True

    def unsure(inp: Any) -> tuple[str, bool, dict[str, Any]]:
        text, finished, _m = sure(inp)
        return text, finished, {"margin_mean": 0.05, "margin_min": 0.01}

    out, suggestion = model_arm(case, unsure)
    assert out.shown is None and suggestion is None and out.reason == "unlikely"
    cand = out.metrics["candidate"]
    assert cand["p"] < 0.25 and cand["verdict"]["exact"] is True
    assert cand["features"]["margin_mean"] == 0.05
    both = both_arm(case, [], suggestion)
    assert both.shown is None


def _result(rows: list[tuple[float, bool, str]]) -> dict[str, Any]:
    """A bench result's samples: one model answer per row (margin, correct, slice)."""
    samples = []
    for margin, ok, slice_ in rows:
        features = {
            "margin_mean": margin,
            "margin_min": margin,
            "size": 8,
            "distance": 0,
            "kind": "replacement",
            "ghost": False,
            "recent_rejects": 0,
        }
        verdict = {"located": ok, "exact": ok, "correct": ok, "kept": 0, "reversal": False}
        arm = {"candidate": {"features": features, "p": 0.5, "verdict": verdict}}
        samples.append({"slice": slice_, "arms": {"model:m": arm, "both:m": {}}})
    return {"samples": samples}


def test_gate_study_fits_on_labelled_answers_and_judges_held_out_ones() -> None:
    # sure answers are right, unsure ones wrong, and the prior shows both (the refit is pulled
    # toward the prior: it takes a couple of hundred outcomes to move this far)
    train = _result([(0.9, True, "same_line")] * 100 + [(0.55, False, "nothing_remains")] * 100)
    held = _result([(0.9, True, "elsewhere"), (0.55, False, "nothing_remains")] * 3)
    study = gate_study([train], [held])
    assert study["train_records"] == 200 and study["held_out_records"] == 6
    prior, fitted = study["prior"]["held_out"], study["fitted"]["held_out"]
    assert prior["show_rate"] == 1.0 and prior["precision_when_shown"] == 0.5
    assert prior["false_show_rate"] == 1.0
    assert fitted["precision_when_shown"] == 1.0 and fitted["false_show_rate"] == 0.0
    assert fitted["correct_kept"] == 1.0 and study["fitted_on"] == 200


def test_the_previous_input_is_the_state_before_the_last_edit(
    repo: tuple[Path, list[str]],
) -> None:
    case = _rename_case(repo, k=2)
    now, before = model_input(case), previous_input(case)
    assert len(now.events) == 2 and len(before.events) == 1
    assert "x = amount" in now.excerpt and "x = total" in before.excerpt
    assert before.caret_offset == case.recent[-1].start


def test_the_next_unit_is_in_the_model_region_or_not(repo: tuple[Path, list[str]]) -> None:
    case = _rename_case(repo)
    assert next_in_region(case)  # the next line of a small file
    text = case.text + "\n" * 200
    far = replace(case, text=text, remaining=(Unit(len(text), len(text), "x\n"),))
    assert not next_in_region(far)  # 200 lines below the caret
    assert not next_in_region(_rename_case(repo, k=3))  # nothing remains in the file


# ---------------------------------------------------------------- end to end


def test_quick_run_of_the_propagation_arm_writes_every_key(
    repo: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, _ = repo
    out = tmp_path / "next_edit.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "next_edit",
            "--quick",
            "--model",
            "none",
            "--repos",
            str(root),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    for key in (
        "propagation_precision",
        "location_accuracy_when_shown",
        "exact_match",
        "chars_kept_per_shown",
        "reversal_rate",
        "false_show_rate",
        "show_rate",
        "latency_ms",
        "related_files",
        "by_arm",
        "model",
        "cases",
        "settings",
        "load_average_start",
    ):
        assert key in result, key
    assert "rename_template" in result["exact_match"]
    assert set(result["latency_ms"]) >= {
        "model_p50",
        "model_p90",
        "propagation_p50",
        "after_accept_p50",
    }
    assert set(result["related_files"]) >= {"recall_at_3", "mrr", "rose_top3", "note"}
    related = result["related_files"]
    assert related["rose_top3"] == related["hit_at_3"]
    assert "icse2004" in related["rose_source"]
    assert result["related_files"]["queries"] > 0  # commit 2 changed two files
    assert set(result["by_arm"]) == {"noop", "propagation"}
    assert result["cases"]["propagation_wide"] == 4  # two commits, at most two positions each
    assert result["propagation_precision"] == 1.0  # the rename's remaining sites


def test_the_real_small_model_through_the_benchmark_path(repo: tuple[Path, list[str]]) -> None:
    """The real model, as the worker runs it: every case ends shown and judged, or with the
    reason it was not shown."""
    predictor = LocalPredictor("gemma-3-270m", None)
    try:
        case = _rename_case(repo)
        out, _suggestion = model_arm(case, predictor, warm=True)
    finally:
        predictor.close()
    assert out.ms is not None and out.metrics["prompt_tokens"] > 0
    assert out.shown is not None or out.reason in (
        "cut_off",
        "outside_region",
        "no_change",
        "reverts_edit",
        "changes_too_much",
        "unbalances_brackets",
        "unlikely",  # the acceptance gate held it back
    )
    if out.shown is not None or out.reason == "unlikely":  # the filters passed it: judged
        assert {"features", "p", "verdict"} <= set(out.metrics["candidate"])
    if out.shown is not None:
        judge(case, out.shown)


def test_judge_a_run_of_remaining_units_is_correct_even_where_distances_do_not_add_up() -> None:
    """A real case (httpx 18d7721c): the site's first unit made alone is exact (a run of the
    commit's own units), a step towards the final text, though the edit distance through it
    is longer than straight to the final text (a later unit rewrites the words again)."""
    line = '"see: https://{}.{}/{{0.status_code}}"\n'
    final = line.format("developer", "mozilla.org/en-US/docs/Web/HTTP/Status")
    text = line.format("developer", "com") + line.format("httpstatuses", "com")
    second = len(line.format("developer", "com"))
    at = text.index("httpstatuses", second)
    com1, com2 = text.index("com"), text.index("com", second)
    new = "mozilla.org/en-US/docs/Web/HTTP/Status"
    case = Case(
        repo="r",
        commit="c",
        path="a.py",
        k=1,
        units=4,
        text=text,
        recent=(Unit(14, 23, "developer"),),
        recent_before=("httpstatuses",),
        remaining=(
            Unit(com1, com1 + 3, new),
            Unit(at, at + len("httpstatuses"), "developer"),
            Unit(com2, com2 + 3, new),
        ),
        final=final + final,
        caret=23,
        slice="same_line",
        template=False,
    )
    v = judge(case, Shown((Unit(at, at + len("httpstatuses"), "developer"),), 1))
    assert v.exact and v.correct and v.located
    wrong = judge(case, Shown((Unit(at, at + len("httpstatuses"), "develop"),), 1))
    assert not wrong.exact and not wrong.correct
