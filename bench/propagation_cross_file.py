"""Propagation's first site in another file, replayed over real commits:
``python -m bench.propagation_cross_file [DIR ...]`` (default: the httpx, jinja and requests
mirrors; pallets/click is the held-out one).

For each of the newest ``--commits`` non-merge commits that changes two or more Python files
(``bench.next_edit_cases.commit_files``: bulk changes skipped), the first ``k`` units (k = 1,
2) of its first file are the recent edits; ``cross_file_pattern`` says whether the pattern
reaches other files; the parent tree's other Python files holding its anchor
(``git grep``), nearest the origin first (``propagation_sites.nearness``), are searched with
``other_file_sites`` as the editor's worker does; the first site is right when
``bench.next_edit.judge`` calls it correct or exact on that file's case with the commit's
whole change to it remaining (a file the commit does not change: wrong).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from app.services.propagation_sites import nearness
from forecode_core.next_edit.propagation import anchor_text, cross_file_pattern, other_file_sites

from .next_edit import DEFAULT_REPOS, MIRRORS, Shown, _history, _line, judge
from .next_edit_cases import MAX_COMMITS, Case, FileChange, Unit, _commits, _git, case_at
from .next_edit_cases import commit_files as _commit_files


def _grep(repo: str, rev: str, word: str) -> list[str]:
    try:
        out = subprocess.run(
            ["git", "--git-dir", repo, "grep", "-l", "-F", "-e", word, rev, "--", "*.py"],
            capture_output=True,
            timeout=60,
            check=False,
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1] for line in out.splitlines() if ":" in line]


def first_site(repo: str, commit: str, files: list[FileChange], k: int) -> dict[str, Any] | None:
    """The first other-file site after the first ``k`` units of the commit's first file, and
    whether it is right; None when no pattern reaches other files or no site is found."""
    origin = files[0]
    case = case_at(repo, commit, files, 0, k)
    pattern = cross_file_pattern(case.text, _history(case), case.path)
    if pattern is None:
        return None
    paths = [p for p in _grep(repo, f"{commit}^", anchor_text(pattern)) if p != origin.path]
    for path in sorted(paths, key=lambda p: nearness(origin.path, p)):
        text = _git(repo, "show", f"{commit}^:{path}")
        sites = other_file_sites(text, pattern, path=path) if text is not None else []
        if not sites:
            continue
        s = sites[0]
        right = False
        changed = {f.path: f for f in files}
        if path in changed:
            f = changed[path]
            other = Case(repo, commit, path, 0, len(f.units), text or "", (), (), f.units,
                          f.child, 0, "elsewhere", False)  # fmt: skip
            v = judge(other, Shown((Unit(s.start, s.end, s.new),), _line(other.text, s.start)))
            right = v.correct or v.exact
        return {
            "commit": commit[:10],
            "origin": origin.path,
            "k": k,
            "kind": pattern.kind,
            "examples": pattern.examples,
            "pattern": pattern.label[:120],
            "site": f"{path}:{_line(text or '', s.start) + 1}",
            "old": s.old[:80],
            "new": s.new[:80],
            "right": right,
        }
    return None


def replay(repo: str, max_commits: int) -> list[dict[str, Any]]:
    rows = []
    for commit in _commits(repo, max_commits):
        files = _commit_files(repo, commit)
        if not files or len(files) < 2:
            continue
        for k in (1, 2):
            if len(files[0].units) >= k:
                row = first_site(repo, commit, files, k)
                if row is not None:
                    rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in (1, 2):
        got = [r for r in rows if r["k"] == k]
        out[f"k{k}"] = {"sites": len(got), "right": sum(r["right"] for r in got)}
        out[f"k{k}"]["precision"] = round(out[f"k{k}"]["right"] / len(got), 3) if got else None
    by: Counter[str] = Counter()
    for r in rows:
        by[f"{r['kind']}/{r['examples']}/{'right' if r['right'] else 'wrong'}"] += 1
    out["by_pattern"] = dict(sorted(by.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.propagation_cross_file")
    parser.add_argument("repos", nargs="*")
    parser.add_argument("--commits", type=int, default=MAX_COMMITS)
    parser.add_argument("--rows", action="store_true", help="print every first site")
    args = parser.parse_args(argv)
    repos = args.repos or [str(MIRRORS / name / "repo") for name in DEFAULT_REPOS]
    report: dict[str, Any] = {}
    every: list[dict[str, Any]] = []
    for repo in repos:
        rows = replay(repo, args.commits)
        every += rows
        name = Path(repo).parent.name if Path(repo).name == "repo" else Path(repo).name
        report[name] = {**summary(rows), **({"rows": rows} if args.rows else {})}
    report["all"] = summary(every)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
