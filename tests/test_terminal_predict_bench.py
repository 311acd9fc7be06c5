"""``bench terminal_predict`` without the model arm, on a small real git repository: the
scripted sessions follow each commit's files, and the JSON has the arms and figures the
README and ARCHITECTURE quote."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from bench.terminal_predict import TEST, add_arguments, run, session_for


def test_a_session_follows_the_commits_files() -> None:
    files = ["app/x.py", "tests/test_x.py", "bench/editor.py", "README.md"]
    assert session_for(0, 'Fix "x"', files) == [
        "git pull",
        "git status",
        "git diff",
        f"{TEST} tests/test_x.py",
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format app/x.py tests/test_x.py bench/editor.py",
        ".venv/bin/python -m bench editor --json /tmp/editor.json",
        f"{TEST} tests/test_x.py",
        "git add app/x.py tests/test_x.py bench/editor.py README.md",
        "git commit -m \"Fix 'x'\"",
    ]
    assert session_for(5, "Docs", ["README.md"]) == [
        "git status",
        "git diff",
        "git add README.md",
        'git commit -m "Docs"',
        "git push",
    ]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_bench_without_the_model(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "dev@example.org")
    _git(repo, "config", "user.name", "Dev")
    for n in range(24):
        name = f"tests/test_{n % 3}.py" if n % 2 else f"mod_{n % 4}.py"
        (repo / name).write_text(f"x = {n}\n")
        _git(repo, "add", name)
        _git(repo, "commit", "-q", "-m", f"change {n}")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--repo", str(repo), "--model", "none"])
    result = run(args)
    source = result["history_source"]
    assert source["commits"] == 24 and source["evaluated_from"] == source["commands"] // 2
    assert set(result["arms"]) == {"bigram", "history"}
    for arm in result["arms"].values():
        assert set(arm) == {"typed_0", "typed_2"}
        assert set(arm["typed_0"]) == {"cases", "exact", "shown", "accepted_chars"}
    history, bigram = result["arms"]["history"], result["arms"]["bigram"]
    assert history["typed_0"]["exact"] >= bigram["typed_0"]["exact"]
    assert history["typed_0"]["shown"] == 1.0
    assert result["latency"]["rank_p50_ms"] >= 0
