"""``python -m bench find_in_files``: Find in Files over a generated 10,000-file tree, beside
``grep -rn`` on the same tree.

Both are timed from the start of the search to the first result and to the end: Forecode
through ``SearchService`` (the editor's path: a warm worker process, results streamed as JSON
lines, ``.gitignore`` honoured, binaries skipped) and in-process (``search_tree``, the search
alone); ``grep -rnI`` (binaries skipped too) reading its output as it comes. Rounds are
interleaved and the medians reported, with the match counts so the figures compare like with
like (grep does not read ``.gitignore``: the generated tree has no ignored files).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from app.services.find_in_files import SearchService
from forecode_core.workspace.search_text import SearchQuery, SearchRequest, search_tree

from ._common import median

DEFAULT_ROUNDS = 3

_WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "value",
    "result",
    "items",
    "count",
    "index",
    "total",
    "parse",
    "render",
    "update",
    "config",
    "handler",
    "request",
    "response",
    "buffer",
    "stream",
    "token",
    "cache",
)


def make_tree(
    root: str | os.PathLike[str], files: int = 10_000, lines: int = 60, seed: int = 13
) -> Path:
    """A deterministic source tree of ``files`` Python-like files (``lines`` lines each) in
    nested folders; every 97th file mentions ``needle_<n>``, one file in 500 is binary."""
    rng = random.Random(seed)
    top = Path(root)
    top.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        folder = top / f"pkg{n % 40:02d}" / f"mod{(n // 40) % 25:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if n % 500 == 499:
            (folder / f"blob{n}.bin").write_bytes(bytes(rng.randrange(256) for _ in range(2048)))
            continue
        out = [f'"""Module {n}."""', "", "import os", ""]
        for i in range(lines - 4):
            a, b = rng.choice(_WORDS), rng.choice(_WORDS)
            if i % 12 == 0:
                out.append(f"def {a}_{b}_{i}(x, y):")
            elif n % 97 == 0 and i == 20:
                out.append(f"    needle_{n} = {a}(x) + {b}(y)  # the marker")
            else:
                out.append(f"    {a} = {b}(x, {i}) + y.{rng.choice(_WORDS)}")
        (folder / f"file{n}.py").write_text("\n".join(out) + "\n", encoding="utf-8")
    return top


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, default=10_000, help="files in the tree")
    parser.add_argument("--tree", help="search this folder instead of a generated tree")
    parser.add_argument("--pattern", default="needle_", help="literal text to search for")


def _grep(root: Path, pattern: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = None
    count = 0
    with subprocess.Popen(
        ["grep", "-rnIF", "--exclude-dir=.git", pattern, str(root)], stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        for _line in proc.stdout:
            if first is None:
                first = time.perf_counter() - started
            count += 1
    return first or 0.0, time.perf_counter() - started, count


def _service(service: SearchService, root: Path, pattern: str) -> tuple[float, float, int]:
    request = SearchRequest(str(root), SearchQuery(pattern, match_case=True))
    started = time.perf_counter()
    session = service.start(request)
    first = None
    lines = 0
    while True:
        items = session.poll()
        for item in items:
            if not isinstance(item, tuple):
                if first is None:
                    first = time.perf_counter() - started
                lines += len(item.lines)
        if session.done:
            break
        time.sleep(0.002)
    return first or 0.0, time.perf_counter() - started, lines


def _in_process(root: Path, pattern: str) -> tuple[float, float, int]:
    request = SearchRequest(str(root), SearchQuery(pattern, match_case=True))
    started = time.perf_counter()
    summary = search_tree(request, lambda _f: None)
    return summary.first_result_s or 0.0, time.perf_counter() - started, summary.matches


def run(args: argparse.Namespace) -> dict[str, Any]:
    temp = None
    if args.tree:
        root = Path(args.tree)
    else:
        temp = tempfile.mkdtemp(prefix="forecode-bench-fif-")
        root = make_tree(Path(temp) / "tree", args.files)
    try:
        service = SearchService()
        service.warm()
        time.sleep(0.5)
        rows: dict[str, list[tuple[float, float, int]]] = {
            "forecode": [],
            "in_process": [],
            "grep": [],
        }
        for _ in range(args.rounds):
            rows["grep"].append(_grep(root, args.pattern))
            rows["forecode"].append(_service(service, root, args.pattern))
            rows["in_process"].append(_in_process(root, args.pattern))
        service.close()
        out: dict[str, Any] = {
            "files": sum(len(f) for _, _, f in os.walk(root)),
            "pattern": args.pattern,
        }
        for name, values in rows.items():
            out[name] = {
                "first_result_s": round(median([v[0] for v in values]), 4),
                "total_s": round(median([v[1] for v in values]), 4),
                "matching_lines": values[-1][2],
            }
        out["total_ratio_vs_grep"] = round(out["forecode"]["total_s"] / out["grep"]["total_s"], 2)
        return out
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
