"""Quick-open ranking (forecode_core.workspace.fuzzy)."""

from __future__ import annotations

import itertools
import random

import pytest

from forecode_core.workspace import fuzzy
from forecode_core.workspace.fuzzy import Match, rank_paths

# (query, paths, expected order of the first results). Paths that should not match at all are
# checked by the "excluded" table below.
RANKING_CASES = [
    pytest.param(
        "mw",
        ["app/ui/my_framework.py", "app/models/weights.py", "app/ui/main_window.py", "readme.md"],
        ["app/ui/main_window.py", "app/models/weights.py", "app/ui/my_framework.py"],
        id="acronym-in-basename-beats-scattered",
    ),
    pytest.param(
        "mw",
        ["app/ui/main_window.py", "app/core/mwx.txt"],
        ["app/core/mwx.txt", "app/ui/main_window.py"],
        id="contiguous-prefix-beats-acronym",
    ),
    pytest.param(
        "main",
        ["src/domain_maintenance.py", "docs/remain.txt", "main.py", "app/main_window.py"],
        ["main.py", "app/main_window.py", "src/domain_maintenance.py", "docs/remain.txt"],
        id="exact-stem-then-word-start-then-mid-word",
    ),
    pytest.param(
        "apui",
        ["data/pipeline/utils/io.py", "app/core/utils.py", "app/ui/__init__.py"],
        ["app/ui/__init__.py", "app/core/utils.py", "data/pipeline/utils/io.py"],
        id="across-folders",
    ),
    pytest.param(
        "tst_ed",
        [
            "app/core/test_data/edit.txt",
            "tests/test_settings_editor_dialog.py",
            "app/ui/editor.py",
            "tests/test_editor.py",
        ],
        ["tests/test_editor.py", "tests/test_settings_editor_dialog.py"],
        id="tst_ed",
    ),
    pytest.param(
        "editor",
        [
            "app/ui/editors/x.py",
            "tests/test_editor.py",
            "app/ui/editor_tabs.py",
            "app/ui/editor.py",
        ],
        ["app/ui/editor.py", "app/ui/editor_tabs.py", "tests/test_editor.py"],
        id="exact-basename-wins-then-basename-prefix",
    ),
    pytest.param(
        "editor.py",
        ["app/ui/editor_py.txt", "tests/test_editor.py", "app/ui/editor.py"],
        ["app/ui/editor.py", "tests/test_editor.py"],
        id="exact-basename-with-extension",
    ),
    pytest.param(
        "MAIN",
        ["src/main/java/Foo.java", "Main.java"],
        ["Main.java", "src/main/java/Foo.java"],
        id="case-insensitive",
    ),
    pytest.param(
        "ui/main",
        ["app/main.py", "app/ui/domain.py", "app/ui/main_window.py"],
        ["app/ui/main_window.py", "app/ui/domain.py"],
        id="slash-matches-separator",
    ),
    pytest.param(
        "ui\\main",
        ["app/main.py", "app/ui/main_window.py"],
        ["app/ui/main_window.py"],
        id="backslash-is-slash",
    ),
    pytest.param(
        "sw",
        ["app/ui/slow.py", "app/ui/StatusWidget.py"],
        ["app/ui/StatusWidget.py", "app/ui/slow.py"],
        id="camel-hump",
    ),
    pytest.param(
        "util",
        ["a/b/c/d/e/util.py", "util.py", "x/util.py"],
        ["util.py", "x/util.py", "a/b/c/d/e/util.py"],
        id="shorter-path-wins-tie",
    ),
    pytest.param(
        "editor tests",
        ["app/ui/editor.py", "tests/test_main.py", "tests/test_editor.py"],
        ["tests/test_editor.py"],
        id="terms-match-in-any-order",
    ),
    pytest.param(
        "m a i n",
        ["src/domain_maintenance.py", "main.py"],
        ["main.py", "src/domain_maintenance.py"],
        id="single-letter-terms",
    ),
]


@pytest.mark.parametrize(("query", "paths", "expected"), RANKING_CASES)
def test_ranking(query: str, paths: list[str], expected: list[str]) -> None:
    got = [m.path for m in rank_paths(query, paths)]
    assert got[: len(expected)] == expected


EXCLUDED_CASES = [
    ("mw", ["wm.py"]),  # order matters
    ("abc", ["ab/xy.py"]),
    ("ui/main", ["app/ui_main.py"]),  # "/" is a literal separator
    ("editor zzz", ["tests/test_editor.py"]),  # every term must match
    ("tst", [""]),
]


@pytest.mark.parametrize(("query", "paths"), EXCLUDED_CASES)
def test_non_matches_are_dropped(query: str, paths: list[str]) -> None:
    assert rank_paths(query, paths) == []


def test_empty_query_keeps_given_order() -> None:
    paths = [f"f{i}.py" for i in range(100)]
    assert rank_paths("", paths, limit=3) == [Match(p, 0.0, ()) for p in paths[:3]]
    assert [m.path for m in rank_paths("   ", paths)] == paths[:50]
    assert rank_paths("", []) == []


def test_limit() -> None:
    paths = [f"src/file{i}.py" for i in range(200)]
    assert len(rank_paths("file", paths)) == 50
    assert len(rank_paths("file", paths, limit=7)) == 7
    assert rank_paths("file", paths, limit=0) == []


def test_ties_keep_given_order() -> None:
    paths = ["b/x.py", "a/x.py", "c/x.py"]
    assert [m.path for m in rank_paths("x", paths)] == paths


@pytest.mark.parametrize(
    ("query", "path", "positions"),
    [
        ("tst_ed", "tests/test_editor.py", (6, 8, 9, 10, 11, 12)),
        ("mw", "app/ui/main_window.py", (7, 12)),
        ("main", "src/domain_maintenance.py", (11, 12, 13, 14)),
        ("ui/m", "app/ui/main.py", (4, 5, 6, 7)),
        ("FB", "src/FooBar.java", (4, 7)),
        ("editor tests", "tests/test_editor.py", (0, 1, 2, 3, 4, 11, 12, 13, 14, 15, 16)),
    ],
)
def test_positions_for_highlighting(query: str, path: str, positions: tuple[int, ...]) -> None:
    (match,) = rank_paths(query, [path])
    assert match.positions == positions
    letters = query.replace(" ", "").lower()
    assert all(path[p].lower() in letters for p in match.positions)


def test_positions_index_the_original_path_when_lowercasing_changes_length() -> None:
    # "İ".lower() is two characters; positions must still index the original string.
    (match,) = rank_paths("sb", ["İstanbul/bar.txt"])
    assert [match.path[p] for p in match.positions] == ["s", "b"]
    (match,) = rank_paths("İs", ["docs/İstanbul.txt"])
    assert match.positions == (5, 6)


def test_exact_score_agrees_with_alignment_score_and_beats_greedy() -> None:
    rng = random.Random(7)
    alphabet = "ab_/.Cc"
    for _ in range(400):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        lowered = path.lower()
        term = "".join(rng.choice("abc_/") for _ in range(rng.randint(1, 4)))
        base_start = lowered.rfind("/") + 1
        dp = fuzzy._dp_alignment(term, path, lowered)
        greedy = fuzzy._greedy_alignment(term, lowered, base_start)
        assert (dp is None) == (greedy is None), (term, path)
        if dp is None or greedy is None:
            continue
        score, positions = dp
        assert [lowered[p] for p in positions] == list(term)
        assert positions == sorted(set(positions))
        assert score == pytest.approx(fuzzy._alignment_score(path, positions, base_start))


def test_many_candidates_are_narrowed_without_losing_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    filler = [f"deep/memory/window_{i}/data_{i}.txt" for i in range(500)]
    paths = [*filler[:250], "app/ui/main_window.py", "app/data/mdw.txt", *filler[250:]]
    full = {q: rank_paths(q, paths, limit=3) for q in ("mw", "d", "dat")}
    calls: list[int] = []
    narrow = fuzzy._narrow

    def spy(term: str, candidates: list[int], lowered: list[str], budget: int) -> list[int]:
        calls.append(len(candidates))
        return narrow(term, candidates, lowered, budget)

    monkeypatch.setattr(fuzzy, "_narrow", spy)
    monkeypatch.setattr(fuzzy, "_ROUGH_BUDGET", 20)
    monkeypatch.setattr(fuzzy, "_REFINE_MIN", 5)
    for query, expected in full.items():
        got = rank_paths(query, paths, limit=3)
        assert got[0] == expected[0]
    assert calls == [502, 502, 501]  # "dat" does not match main_window.py
    assert full["mw"][0].path == "app/ui/main_window.py"


def test_large_input_smoke() -> None:
    words = ["app", "core", "ui", "editor", "main", "window", "test", "utils", "model"]
    rng = random.Random(3)
    paths = [
        "/".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        + f"/{rng.choice(words)}_{i}.py"
        for i in range(20_000)
    ]
    paths.append("app/ui/main_window.py")
    for query in ("a", "mw", "ui main", "tst"):
        result = rank_paths(query, paths)
        assert len(result) == 50
        assert all(a.score >= b.score for a, b in itertools.pairwise(result))
    assert rank_paths("main_window.py", paths)[0].path == "app/ui/main_window.py"
