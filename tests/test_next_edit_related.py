"""Related files (issue 15): the co-change model, the git log parser, the replay measure, and
reading a real repository's history with git (made here in a temporary folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from app.services.related_history import (
    build_related,
    log_args,
    read_history,
    update_related,
)
from forecode_core.next_edit.git_log import parse_log
from forecode_core.next_edit.related import CoChange, Commit, Params, Related, replay


def history(text: str) -> list[Commit]:
    """A marked history: one commit a line, oldest first, files separated by spaces;
    ``old>new`` is a rename, ``-path`` a deletion."""
    commits: list[Commit] = []
    for index, line in enumerate(line for line in text.strip().splitlines() if line.strip()):
        paths: list[str] = []
        renames: list[tuple[str, str]] = []
        deleted: list[str] = []
        for word in line.split():
            if ">" in word:
                old, new = word.split(">")
                renames.append((old, new))
                paths.append(new)
            elif word.startswith("-"):
                deleted.append(word[1:])
                paths.append(word[1:])
            else:
                paths.append(word)
        commits.append(Commit(index, tuple(paths), tuple(renames), tuple(deleted)))
    return commits


def model_of(text: str, **params: float) -> CoChange:
    model = CoChange(Params(**params))  # type: ignore[arg-type]
    model.add_all(history(text))
    return model


def answers(model: CoChange, path: str, k: int = 3) -> list[tuple[str, float, int]]:
    return [(r.path, round(r.confidence, 3), r.support) for r in model.related(path, k)]


NO_DECAY = 1e12


# ----- the association math ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marked", "path", "expected"),
    [
        # a changed 4 times: with b 3 times (3/4), with c once (1/4).
        ("a b\na b\na b c\na", "a", [("b", 0.75, 3), ("c", 0.25, 1)]),
        # the rule is directed: b changed 3 times, always with a.
        ("a b\na b\na b c\na", "b", [("a", 1.0, 3), ("c", 0.333, 1)]),
        # equal confidence and support: by path.
        ("a z\na y\na x", "a", [("x", 0.333, 1), ("y", 0.333, 1), ("z", 0.333, 1)]),
        # equal confidence, more shared commits first (c: 2 of 2; b: 1 of 1 of b's... a's view)
        ("a b c\na c\nb", "c", [("a", 1.0, 2), ("b", 0.5, 1)]),
        # a file never changed with another: nothing.
        ("a\na\nb c", "a", []),
        # unknown file: nothing.
        ("a b", "q", []),
    ],
)
def test_confidence_table(marked: str, path: str, expected: list[tuple[str, float, int]]) -> None:
    assert answers(model_of(marked, half_life=NO_DECAY), path) == expected


def test_top_k_cuts_and_ties_are_stable_whatever_the_order_files_came_in() -> None:
    one = model_of("a d c b\na b", half_life=NO_DECAY)
    two = model_of("a b c d\na b", half_life=NO_DECAY)
    assert answers(one, "a", 2) == answers(two, "a", 2) == [("b", 1.0, 2), ("c", 0.5, 1)]
    assert one.related("a", 0) == []


def test_minimum_support_drops_single_coincidences() -> None:
    model = model_of("a b\na b\na c", half_life=NO_DECAY, min_support=2)
    assert answers(model, "a") == [("b", 0.667, 2)]
    assert answers(model, "c") == []


def test_changes_counts_commits() -> None:
    model = model_of("a b\na\nc", half_life=NO_DECAY)
    assert (model.changes("a"), model.changes("b"), model.changes("q")) == (2, 1, 0)


def test_fill_tops_up_with_the_files_changed_most_lately() -> None:
    model = model_of("a b\nc\nc\nd\nd\n-c\nx", half_life=NO_DECAY)
    assert model.hot(3) == ["d", "a", "b"]  # c deleted; ties by path
    assert model.hot(2, {"d"}) == ["a", "b"]
    assert answers(model, "a") == [("b", 1.0, 1)]
    assert answers_fill(model, "a") == [("b", 1.0, 1), ("d", 0.0, 0), ("x", 0.0, 0)]
    assert answers_fill(model, "new.py") == [("d", 0.0, 0), ("a", 0.0, 0), ("b", 0.0, 0)]
    recent = model_of("a\na\nb", half_life=1.0)
    assert recent.hot(2) == ["b", "a"]  # weights 1, 2, 4: a = 3, b = 4
    assert model.hot(0) == []


def answers_fill(model: CoChange, path: str) -> list[tuple[str, float, int]]:
    return [(r.path, round(r.confidence, 3), r.support) for r in model.related(path, 3, fill=True)]


# ----- recency -----------------------------------------------------------------------------------


def test_recency_newer_partner_wins_against_equal_older_evidence() -> None:
    # a went with b twice long ago, then with c twice lately: without decay a tie broken by
    # name (b first); with a half-life of 1 commit, c.
    marked = "a b\na b\na c\na c"
    assert [r.path for r in model_of(marked, half_life=NO_DECAY).related("a", 2)] == ["b", "c"]
    recent = model_of(marked, half_life=1.0)
    assert [r.path for r in recent.related("a", 2)] == ["c", "b"]
    # weights 1, 2, 4, 8 (of 15): b = 3/15, c = 12/15
    assert answers(recent, "a") == [("c", 0.8, 2), ("b", 0.2, 2)]


def test_recency_weight_survives_a_very_long_history() -> None:
    # 5,000 commits with a half-life of 1: the weights would overflow a float without the
    # rebase; the answer stays exact.
    model = CoChange(Params(half_life=1.0))
    model.add_all(Commit(i, ("a", "b") if i % 2 else ("a", "c")) for i in range(5000))
    top = model.related("a", 2)
    assert [r.path for r in top] == ["b", "c"]
    assert top[0].confidence == pytest.approx(2 / 3)  # weights ... 1/4, 1/2, 1 (b last)
    assert top[0].confidence + top[1].confidence == pytest.approx(1.0)


def test_commits_out_of_order_are_refused() -> None:
    model = CoChange()
    model.add(Commit(5, ("a", "b")))
    with pytest.raises(ValueError):
        model.add(Commit(4, ("a", "b")))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Params(half_life=0)
    with pytest.raises(ValueError):
        Params(max_files=1)


# ----- huge commits ------------------------------------------------------------------------------


def test_huge_commits_are_not_counted() -> None:
    files = " ".join(f"f{i}" for i in range(5))
    model = model_of(f"a b\n{files} a b\na", half_life=NO_DECAY, max_files=4)
    assert answers(model, "a") == [("b", 0.5, 1)]  # the 7-file commit counted for nothing
    assert answers(model, "f0") == []
    assert model.commits_skipped == 1
    # at the limit it counts
    model = model_of("a b c d", half_life=NO_DECAY, max_files=4)
    assert [r.path for r in model.related("a")] == ["b", "c", "d"]


def test_a_huge_commit_still_renames_and_deletes() -> None:
    files = " ".join(f"f{i}" for i in range(5))
    model = model_of(f"a b\na b\na>z -b {files}", half_life=NO_DECAY, max_files=4)
    assert answers(model, "z") == []  # b was deleted in the huge commit
    assert model.changes("z") == 2 and model.changes("a") == 0


# ----- renames and deletions ---------------------------------------------------------------------


def test_history_follows_a_renamed_file() -> None:
    model = model_of("a b\na b\na>z\nz b", half_life=NO_DECAY)
    assert answers(model, "z") == [("b", 0.75, 3)]
    assert answers(model, "b") == [("z", 1.0, 3)]
    assert answers(model, "a") == []


def test_rename_of_a_partner_and_a_swap() -> None:
    model = model_of("a b\na b c\nb>q", half_life=NO_DECAY)
    assert answers(model, "a") == [("q", 1.0, 2), ("c", 0.5, 1)]
    assert answers(model, "c") == [("a", 1.0, 1), ("q", 1.0, 1)]
    # both partners renamed in one commit, one to the other's old name
    swap = model_of("a b c\na b\na>b b>a", half_life=NO_DECAY)
    # b is the old a: its two commits plus the swap commit, all with the old b (now a)
    assert answers(swap, "b") == [("a", 1.0, 3), ("c", 0.333, 1)]
    assert answers(swap, "c") == [("a", 1.0, 1), ("b", 1.0, 1)]
    assert swap.changes("b") == 3


def test_deleted_files_are_not_suggested_until_added_back() -> None:
    model = model_of("a b\na b\na -b", half_life=NO_DECAY)
    assert answers(model, "a") == []
    model.add(Commit(3, ("b",)))
    assert [r.path for r in model.related("a")] == ["b"]


def test_incremental_update_equals_a_rebuild() -> None:
    commits = history("a b\na c\nb>x a\na x\nc d a\n-d a")
    whole = CoChange(Params(half_life=2.0))
    whole.add_all(commits)
    parts = CoChange(Params(half_life=2.0))
    parts.add_all(commits[:3])
    parts.add_all(commits[3:])
    for path in "abcdx":
        assert parts.related(path, 5) == whole.related(path, 5)
    assert isinstance(whole.related("a")[0], Related)


# ----- the parser (git log -z) -------------------------------------------------------------------


def test_parse_log_tricky_names() -> None:
    weird = b"dir/new\nline\ttab \xff\xfe.py"
    data = (
        b"\x01" + b"b" * 40 + b" 200\0\nM\0" + weird + b"\0R087\0old name\0\x01lookalike\0"
        b"C100\0src.py\0copy.py\0D\0gone\0"
        b"\x01" + b"a" * 40 + b" 100\0\nA\0M\0T\0x\0"  # a file named "M"; a type change
        b"\x01" + b"c" * 40 + b" 50\0"  # an empty commit
    )
    parsed = parse_log(data)
    assert parsed.malformed == 0
    empty, older, newer = parsed.commits
    assert (empty.index, empty.sha, empty.time, empty.paths) == (0, "c" * 40, 50, ())
    assert older.paths == ("M", "x") and older.time == 100 and older.index == 1
    assert newer.index == 2 and newer.sha == "b" * 40
    name = weird.decode("utf-8", "surrogateescape")
    assert newer.paths == (name, "\x01lookalike", "copy.py", "gone")
    assert os.fsencode(name) == weird  # the name comes back byte for byte
    assert newer.renames == (("old name", "\x01lookalike"),)
    assert newer.deleted == ("gone",)


def test_parse_log_truncated_and_malformed() -> None:
    data = b"\x01" + b"b" * 40 + b" 2\0\nM\0a\0M\0b\0\x01" + b"a" * 40 + b" 1\0\nM\0c\0R100\0d"
    cut = parse_log(data, complete=False)
    assert [c.paths for c in cut.commits] == [("a", "b")]  # the cut commit is dropped
    garbage = parse_log(b"hello\0world\0\x01" + b"a" * 40 + b" 1\0\nM\0a\0?\0z\0")
    assert [c.paths for c in garbage.commits] == [("a",)]
    assert garbage.malformed == 4  # hello, world before any header; ?; z
    assert parse_log(b"").commits == ()


# ----- replay ------------------------------------------------------------------------------------


def test_replay_on_a_tiny_history() -> None:
    commits = history(
        """
        a b
        a b
        a b c
        c d
        """
    )
    result = replay(commits, Params(half_life=NO_DECAY))
    # asked: commits 0..3 (all have 2+ files), 2+2+3+2 = 9 queries
    # commit 0: nothing known -> 0, 0
    # commit 1: a -> [b] (hit), b -> [a] (hit)
    # commit 2: a -> [b] finds 1 of {b, c}; b -> [a] 1 of {a, c}; c -> [] 0
    # commit 3: c -> [a, b] (0 of {d}); d -> [] 0
    assert (result.commits, result.queries) == (4, 9)
    assert result.recall_at_k == pytest.approx((1 + 1 + 0.5 + 0.5) / 9)
    assert result.hit_at_k == pytest.approx(4 / 9)
    assert result.mrr == pytest.approx(4 / 9)
    assert result.answered == pytest.approx(5 / 9)
    assert result.recall_at_k_reachable == pytest.approx((1 + 1 + 0.5 + 0.5) / 9)


def test_replay_ranks_and_renames() -> None:
    # x went with z more lately than with y: asked at the last commit (x, y), x's top 1 is z
    # (a miss) and y's is x (a hit); x's MRR finds y at rank 2.
    commits = history("x y\nx z\nx z\nx y")
    result = replay(commits, Params(half_life=NO_DECAY), k=1, warmup=3)
    assert (result.commits, result.queries) == (1, 2)
    assert result.hit_at_k == pytest.approx(0.5)
    assert result.mrr == pytest.approx((1 / 2 + 1) / 2)
    # a file renamed in the commit asked is asked by its old name, and found by it
    commits = history("q y\nq y\nq>x y")
    result = replay(commits, Params(half_life=NO_DECAY), warmup=2)
    assert (result.queries, result.hit_at_k, result.mrr) == (2, 1.0, 1.0)


def test_replay_never_scores_a_commit_with_its_own_co_changes() -> None:
    """Each pair changes together once: asked before its commit is learned, nothing is known
    of it (a leak, the commit learned first, would score every query a hit)."""
    result = replay(history("a b\nc d\ne f\ng h"), Params(half_life=NO_DECAY))
    assert result.queries == 8
    assert (result.hit_at_k, result.recall_at_k, result.mrr, result.answered) == (0, 0, 0, 0)
    # the same pairs again: now each is known from its first commit
    again = replay(history("a b\nc d\na b\nc d"), Params(half_life=NO_DECAY))
    assert again.hit_at_k == pytest.approx(4 / 8)


def test_replay_with_nothing_to_ask() -> None:
    result = replay(history("a\nb"), Params())
    assert (result.queries, result.recall_at_k, result.mrr) == (0, 0.0, 0.0)


# ----- git, for real -----------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    exe = shutil.which("git")
    assert exe is not None, "git is required for these tests"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    done = subprocess.run(
        [exe, "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    return done.stdout.decode("utf-8", "replace")


def commit_files(repo: Path, message: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return root


def test_read_history_from_a_real_repository(repo: Path) -> None:
    odd = "odd\nname\tx.py"
    commit_files(repo, "one", {"a.py": "1\n", "b.py": "1\n", odd: "1\n"})
    commit_files(repo, "two", {"a.py": "2\n", "b.py": "2\n"})
    body = "".join(f"line {i}\n" for i in range(50))
    commit_files(repo, "three", {"big.txt": body})
    git(repo, "mv", "big.txt", "moved.txt")
    commit_files(repo, "four", {"a.py": "3\n"})
    # a merge, which is skipped
    git(repo, "checkout", "-q", "-b", "side")
    commit_files(repo, "side", {"c.py": "1\n"})
    git(repo, "checkout", "-q", "-")
    commit_files(repo, "main", {"d.py": "1\n"})
    git(repo, "merge", "-q", "--no-edit", "side")

    result = read_history(repo)
    assert result.state == "ok" and result.usable and result.malformed == 0
    paths = [c.paths for c in result.commits]
    assert paths[:4] == [
        ("a.py", "b.py", odd),
        ("a.py", "b.py"),
        ("big.txt",),
        ("a.py", "moved.txt"),
    ]
    assert sorted(paths[4:]) == [("c.py",), ("d.py",)]  # the merge commit itself is not there
    assert result.commits[3].renames == (("big.txt", "moved.txt"),)
    assert [c.index for c in result.commits] == list(range(6))
    # bounded by count: the newest commits
    assert len(read_history(repo, max_commits=2).commits) == 2

    model, again = build_related(repo, Params(half_life=NO_DECAY))
    assert again.state == "ok"
    assert model.related("b.py") == [Related("a.py", 1.0, 2), Related(odd, 0.5, 1)]
    assert [r.path for r in model.related("moved.txt")] == ["a.py"]  # followed the rename


def test_incremental_update_from_git(repo: Path) -> None:
    commit_files(repo, "one", {"a.py": "1\n", "b.py": "1\n"})
    model, first = build_related(repo, Params(half_life=NO_DECAY))
    head = first.commits[-1].sha
    commit_files(repo, "two", {"a.py": "2\n", "c.py": "1\n"})
    update = update_related(model, repo, head)
    assert update.state == "ok" and [c.paths for c in update.commits] == [("a.py", "c.py")]
    assert model.last_index == 1
    whole, _ = build_related(repo, Params(half_life=NO_DECAY))
    assert model.related("a.py") == whole.related("a.py")
    # nothing new: nothing added
    assert update_related(model, repo, update.commits[-1].sha).commits == ()
    assert model.last_index == 1
    # an amend: the model's last commit is gone from HEAD's history
    git(repo, "commit", "-q", "--amend", "-m", "two, amended")
    rewritten = update_related(model, repo, update.commits[-1].sha)
    assert rewritten.state == "rewritten" and model.last_index == 1


def test_read_history_clear_results_for_no_repo_empty_repo_and_abort(
    tmp_path: Path, repo: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    # GIT_CEILING_DIRECTORIES is not ours to set; tmp_path is outside any repository.
    assert read_history(plain).state == "not_repo"
    assert read_history(tmp_path / "missing").state == "not_repo"
    assert read_history(repo).state == "empty"
    commit_files(repo, "one", {"a.py": "1\n"})
    stop = threading.Event()
    stop.set()
    assert read_history(repo, abort=stop).state == "aborted"


def test_read_history_is_bounded_by_bytes_and_time(repo: Path) -> None:
    for i in range(6):
        commit_files(repo, f"c{i}", {f"f{i}_{'x' * 100}.py": "1\n", "a.py": f"{i}\n"})
    capped = read_history(repo, max_bytes=400)
    assert capped.state == "partial" and "newest" in capped.message
    # what came back is whole commits, the newest ones
    assert 1 <= len(capped.commits) < 6
    assert all("a.py" in c.paths and len(c.paths) == 2 for c in capped.commits)
    assert capped.commits[-1].paths[1].startswith("f5_")
    timed = read_history(repo, timeout=0.0)
    assert timed.state in ("partial", "ok")  # a fast git may finish inside the first check
    assert log_args(10)[-2:] == ["HEAD", "--"]
    assert log_args(10, "abc0")[-2] == "abc0..HEAD"
    with pytest.raises(ValueError):
        log_args(10, "--output=/tmp/x")


def test_real_repository_with_bytes_that_are_not_utf8_and_a_binary_rename(repo: Path) -> None:
    raw = b"bad\xff\xfename.bin"
    name = os.fsdecode(raw)
    (repo / name).write_bytes(bytes(range(256)) * 20)
    commit_files(repo, "one", {"c.py": "1\n"})
    renamed = "renamed\n.bin"
    git(repo, "mv", name, renamed)
    git(repo, "commit", "-q", "-m", "two")
    result = read_history(repo)
    assert result.state == "ok" and result.malformed == 0
    first, second = result.commits
    assert first.paths == (name, "c.py")
    assert os.fsencode(first.paths[0]) == raw
    assert second.renames == ((name, renamed),) and second.paths == (renamed,)
    model, _ = build_related(repo)
    assert [r.path for r in model.related(renamed)] == ["c.py"]
    assert [r.path for r in model.related("c.py")] == [renamed]


def test_bench_script_replays_a_real_repository(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.related_files import main

    for i in range(3):
        commit_files(repo, f"c{i}", {"a.py": f"{i}\n", "b.py": f"{i}\n"})
    assert main([str(repo)]) == 0
    report = json.loads(capsys.readouterr().out)
    runs = report[str(repo)]["runs"]
    assert [run["fill"] for run in runs] == [False, True]
    # asked at commits 0..2: nothing known at the first, a <-> b found at the next two
    assert runs[0]["queries"] == 6 and runs[0]["hit_at_k"] == pytest.approx(4 / 6)
