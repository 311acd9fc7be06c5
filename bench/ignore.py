"""``python -m bench ignore``: the cost of ignore decisions (``forecode_core.workspace.gitignore``).

Figures (seconds or milliseconds of one decision, medians over ``--rounds``):

- ``compile_20k_s``: 20,000 ordinary patterns (``*.ext``, ``dir/``, ``/name``, ``src/x/*.o``,
  ``**/name``, ...) read into a ``RuleSet``; ``decide_20k_us``: one decision against them.
- ``stars8_ms`` / ``stars16_ms``: ``a*a*a*a*a*a*a*a*b`` (and 16 stars) against a 60-character
  name, the issue's freezing ``.gitignore`` (the literal suffix rules it out at once);
  ``stars16_match_ms``: against ``a...ab``, where the automaton runs over the whole name.
- ``light_worst_us``: the costliest rule set the explorer still decides on the UI thread
  (``RuleSet.light``: a shared automaton of ~4,096 positions, 64 unbucketed patterns).
- ``limits_worst_ms``: 1,000 wildcard patterns (the most a file may hold) that pass every
  pre-filter, against a 60-byte name: what a worker may spend on one row.
- ``limits_compile_1mib_s`` / ``limits_1mib_200b_ms``: a file of 1 MiB of 4 KiB wildcard
  patterns (the largest allowed): its compile time, and one decision on a 200-byte name.
- ``baseline_*``: the same with pathspec's backtracking regexes (the previous
  implementation), each in a subprocess killed after ``--baseline-timeout`` seconds (reported
  as that timeout, with ``..._timed_out: true``); null when pathspec is not installed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from forecode_core.workspace.gitignore import (
    LIGHT_BUCKET,
    LIGHT_UNION_BITS,
    MAX_WILD_PATTERNS,
    RuleSet,
)

__all__ = ["DEFAULT_ROUNDS", "add_arguments", "ordinary_patterns", "run"]

DEFAULT_ROUNDS = 3
NAME = "a" * 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="kill a pathspec baseline measurement after S seconds (default 60)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the pathspec baseline")


def ordinary_patterns(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    words = ["build", "dist", "cache", "tmp", "out", "log", "gen", "obj", "target", "venv"]
    shapes = [
        "*.{w}",
        "{w}/",
        "/{w}",
        "src/{w}/*.o",
        "**/{w}",
        "{w}.bak",
        "!keep_{w}",
        "docs/{w}",
        "{w}*",
        "{w}.py[cod]",
    ]
    lines = ["*.py[cod]"]
    for i in range(1, count):
        lines.append(shapes[i % len(shapes)].format(w=f"{rng.choice(words)}{i}"))
    return lines


def _paths(count: int) -> list[str]:
    rng = random.Random(2)
    exts = ["py", "o", "txt", "log", "bak"]
    return [f"src/pkg{i}/file{rng.randint(0, 30_000)}.{exts[i % len(exts)]}" for i in range(count)]


def _median(fn: Callable[[], float], rounds: int) -> float:
    return statistics.median(fn() for _ in range(rounds))


def _per_decision(rules: RuleSet, paths: list[str]) -> float:
    start = time.perf_counter()
    for path in paths:
        rules.decide(path, False)
    return (time.perf_counter() - start) / len(paths)


def _stars(count: int) -> str:
    return "a*" * count + "b"


# Wildcard patterns built to pass every pre-filter (literal prefix, suffix, required run,
# length) against "a" * 59 + "b", so each one runs the automaton over the whole name.
def _hostile(count: int) -> list[str]:
    return [("a*" * 29) + "c*" + "?" * (i % 3) + "b" for i in range(count)]


_BASELINE = """
import sys, time, pathspec
lines = sys.argv[1].split("\\n")
spec = pathspec.GitIgnoreSpec.from_lines(lines)
start = time.perf_counter()
spec.match_file(sys.argv[2])
print(time.perf_counter() - start)
"""


def _baseline(lines: list[str], path: str, timeout: float) -> tuple[float | None, bool]:
    """(seconds, timed_out) of one pathspec decision in a subprocess."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _BASELINE, "\n".join(lines), path],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return timeout, True
    if proc.returncode != 0:
        return None, False  # pathspec not installed
    return float(proc.stdout.strip()), False


def _baseline_compile(lines: list[str], timeout: float) -> float | None:
    code = (
        "import sys, time, pathspec\nlines = sys.stdin.read().split('\\n')\n"
        "start = time.perf_counter()\npathspec.GitIgnoreSpec.from_lines(lines)\n"
        "print(time.perf_counter() - start)\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input="\n".join(lines),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return timeout
    return float(proc.stdout.strip()) if proc.returncode == 0 else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds: int = args.rounds
    lines = ordinary_patterns(20_000)
    paths = _paths(2_000)

    def compile_20k() -> float:
        start = time.perf_counter()
        RuleSet.from_lines(lines)
        return time.perf_counter() - start

    big = RuleSet.from_lines(lines)
    stars8 = RuleSet.from_lines([_stars(8)])
    stars16 = RuleSet.from_lines([_stars(16)])
    # As many wildcard patterns as the light bound on the shared automaton allows (each
    # is 62 positions), and a full unbucketed list.
    light = RuleSet.from_lines(
        _hostile(LIGHT_UNION_BITS // 63) + ["?" * (i + 61) for i in range(LIGHT_BUCKET)]
    )
    worst = RuleSet.from_lines(_hostile(MAX_WILD_PATTERNS))
    assert light.light and not worst.light and not worst.problems
    hostile_name = "a" * 59 + "b"
    result: dict[str, Any] = {
        "rounds": rounds,
        "patterns": len(lines),
        "compile_20k_s": _median(compile_20k, rounds),
        "decide_20k_us": _median(lambda: _per_decision(big, paths), rounds) * 1e6,
        "stars8_ms": _median(lambda: _per_decision(stars8, [NAME] * 50), rounds) * 1e3,
        "stars16_ms": _median(lambda: _per_decision(stars16, [NAME] * 50), rounds) * 1e3,
        "stars16_match_ms": _median(lambda: _per_decision(stars16, [hostile_name] * 50), rounds)
        * 1e3,
        "light_worst_us": _median(lambda: _per_decision(light, [hostile_name] * 20), rounds) * 1e6,
        "limits_worst_ms": _median(lambda: _per_decision(worst, [hostile_name]), rounds) * 1e3,
    }
    # 1 MiB of 4 KiB wildcard patterns (the most a file may hold) against a 200-byte name.
    longest = ["*" + "?" * 4090 + "b" for _ in range(250)]
    start = time.perf_counter()
    heaviest = RuleSet.from_lines(longest)
    result["limits_compile_1mib_s"] = time.perf_counter() - start
    long_name = "ab" * 100
    result["limits_1mib_200b_ms"] = (
        _median(lambda: _per_decision(heaviest, [long_name]), rounds) * 1e3
    )
    if not args.no_baseline:
        timeout = args.baseline_timeout
        result["baseline_compile_20k_s"] = _baseline_compile(lines, timeout)
        for key, pattern in (("stars8", _stars(8)), ("stars16", _stars(16))):
            seconds, timed_out = _baseline([pattern], NAME, timeout)
            result[f"baseline_{key}_ms"] = None if seconds is None else seconds * 1e3
            result[f"baseline_{key}_timed_out"] = timed_out
    return result
