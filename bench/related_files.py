"""Related files replayed over real histories: ``python -m bench.related_files DIR [DIR ...]``.

Each DIR is a repository (a work tree or a bare git directory, such as the ``fetch`` tool's
mirrors). Its newest ``--commits`` non-merge commits are read the editor's way
(``app.services.related_history.read_history``) and replayed (``forecode_core.next_edit
.related.replay``): recall@3, hit@3 and MRR, the parameters with them. Without ``--grid``
each repository is replayed twice, rules only and with ``fill`` (the files changed most lately
top up a short list); ``--grid`` replays a small grid of parameters instead, rules only (tune
on one repository, report the chosen ones on the others).
The benchmark proper (``python -m bench next_edit``) will take its ``related_files`` keys from
here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from app.services.related_history import read_history
from forecode_core.next_edit.related import Commit, Params, replay

GRID_HALF_LIFE = (50.0, 100.0, 200.0, 1e9)  # 1e9: no decay
# The grid asks the same questions whatever max_files: commits of 2..30 files.
GRID_ASK_MAX_FILES = 30
GRID_MAX_FILES = (10, 20, 30, 50)
GRID_MIN_SUPPORT = (1, 2)


def measure(
    commits: tuple[Commit, ...],
    params: Params,
    ask_max_files: int | None = None,
    *,
    fill: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    result = replay(commits, params, ask_max_files=ask_max_files, fill=fill)
    return {
        "params": asdict(params),
        "fill": fill,
        **asdict(result),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.related_files")
    parser.add_argument("repos", nargs="+")
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--half-life", type=float, default=Params().half_life)
    parser.add_argument("--max-files", type=int, default=Params().max_files)
    parser.add_argument("--min-support", type=int, default=Params().min_support)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {}
    for repo in args.repos:
        history = read_history(repo, max_commits=args.commits, timeout=120.0)
        if not history.usable:
            print(f"{repo}: {history.state} {history.message}", file=sys.stderr)
            return 1
        rows: list[dict[str, Any]] = []
        if args.grid:
            for half_life, max_files, min_support in itertools.product(
                GRID_HALF_LIFE, GRID_MAX_FILES, GRID_MIN_SUPPORT
            ):
                rows.append(
                    measure(
                        history.commits,
                        Params(half_life, max_files, min_support),
                        GRID_ASK_MAX_FILES,
                    )
                )
        else:
            params = Params(args.half_life, args.max_files, args.min_support)
            for fill in (False, True):
                rows.append(measure(history.commits, params, fill=fill))
        report[repo] = {"commits_read": len(history.commits), "state": history.state, "runs": rows}
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
