"""Next-command prediction (issue 17): ``python -m bench terminal_predict --json PATH``.

The history is a scripted developer's terminal sessions derived from a repository's real
commits (``--repo``, default this checkout; its newest ``--commits`` non-merge commits,
oldest first). For each commit the developer runs what this project's workflow asks for the
files it changed (``session_for``): ``git pull`` at the start of a day (every 6 commits),
``git status`` and ``git diff``, the changed test files with the README's test command, ruff
over the changed Python files, a changed benchmark by its ``python -m bench NAME``, then
``git add`` of the commit's files and ``git commit -m`` with its subject, ``git log`` now
and then, ``git push`` at the end of a day. The commands' order and arguments are the
commit's; nothing is random.

The first ``--warm`` share of the commands is history only; every later command is predicted
from the commands before it (online, as the terminal learns), with nothing typed (the ghost
after the prompt) and with its first 2 characters typed. Arms:
- ``bigram``: the most frequent follower of the last command (ties: the most recent): the
  baseline the research notes set (shadow_lsp_db.md (d): top-1 >= 10 points above it);
- ``history``: the product's ranking (``forecode_core.terminal.predict.rank_next`` +
  ``suggest``: trigram, bigram, recency-weighted frequency);
- ``model``: the local completion engine alone (``model_input``/``model_suggestion`` through
  the real worker, ``--model``), on ``--model-cases`` commands spread over the evaluated part;
- ``history_then_model``: the product's policy on those cases (the model only when history
  has nothing; ``history_had_nothing`` counts those requests).
Figures: ``exact`` (top-1 equals the command), ``accepted_chars`` (mean characters of the
suggestion after the typed text that agree with the command: what accepting word by word
keeps), ``shown`` (a suggestion was made), latency p50 (ranking once per command, the prefix
filter per key, the model per request).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forecode_core.terminal.predict import model_input, model_suggestion, rank_next, suggest

__all__ = ["DEFAULT_ROUNDS", "add_arguments", "run", "session_for"]

DEFAULT_ROUNDS = 1
TYPED = (0, 2)  # characters of the command typed before the suggestion is judged
TEST = ".venv/bin/python -m pytest -q -p no:cacheprovider"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--rev", default="HEAD", help="the newest commit (pin it to compare)")
    parser.add_argument("--warm", type=float, default=0.5, help="share of history only")
    parser.add_argument("--model", default="gemma-3-270m", help="'none': no model arm")
    parser.add_argument("--model-cases", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)


def _commits(repo: str, count: int, rev: str = "HEAD") -> list[tuple[str, list[str]]]:
    """(subject, changed files) of ``count`` non-merge commits up to ``rev``, oldest first."""
    log = ["log", "--no-merges", f"-{count}", "--name-only", "--format=\x1e%s", rev, "--"]
    out = subprocess.run(
        ["git", "-C", repo, *log],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commits = []
    for block in out.split("\x1e")[1:]:
        lines = [line for line in block.split("\n") if line.strip()]
        if lines:
            commits.append((lines[0], lines[1:]))
    commits.reverse()
    return commits


def session_for(index: int, subject: str, files: Sequence[str]) -> list[str]:
    """The commands the scripted developer runs for the ``index``-th commit."""
    commands = ["git pull"] if index % 6 == 0 else []
    commands += ["git status", "git diff"]
    tests = [f for f in files if f.startswith("tests/") and f.endswith(".py")]
    if tests:
        commands.append(f"{TEST} {' '.join(tests[:3])}")
    py = [f for f in files if f.endswith(".py")]
    if py:
        commands.append(".venv/bin/ruff check .")
        commands.append(f".venv/bin/ruff format {' '.join(py[:4])}")
    for f in files:
        if f.startswith("bench/") and f.endswith(".py") and not Path(f).stem.startswith("_"):
            name = Path(f).stem
            commands.append(f".venv/bin/python -m bench {name} --json /tmp/{name}.json")
            break
    if tests:  # the tests again before the commit
        commands.append(f"{TEST} {' '.join(tests[:3])}")
    commands.append("git add " + " ".join(files[:5]))
    title = subject.replace('"', "'")[:60]
    commands.append(f'git commit -m "{title}"')
    if index % 4 == 3:
        commands.append("git log --oneline -5")
    if index % 6 == 5:
        commands.append("git push")
    return commands


def _bigram(history: Sequence[str]) -> list[str]:
    if not history:
        return []
    last = history[-1]
    counts: Counter[str] = Counter()
    latest: dict[str, int] = {}
    for i in range(1, len(history)):
        if history[i - 1] == last:
            counts[history[i]] += 1
            latest[history[i]] = i
    return sorted(counts, key=lambda c: (-counts[c], -latest[c]))


def _agree(suggestion: str | None, actual: str, typed: int) -> int:
    if suggestion is None:
        return 0
    n = typed
    while n < min(len(suggestion), len(actual)) and suggestion[n] == actual[n]:
        n += 1
    return n - typed


def _score(cases: list[tuple[str | None, str, int]]) -> dict[str, Any]:
    by: dict[str, Any] = {}
    for typed in TYPED:
        group = [(s, a) for s, a, t in cases if t == typed]
        if not group:
            continue
        by[f"typed_{typed}"] = {
            "cases": len(group),
            "exact": round(sum(s == a for s, a in group) / len(group), 3),
            "shown": round(sum(s is not None for s, _ in group) / len(group), 3),
            "accepted_chars": round(sum(_agree(s, a, typed) for s, a in group) / len(group), 2),
        }
    return by


def _history_arms(commands: list[str], start: int) -> tuple[dict[str, Any], dict[str, Any]]:
    arms: dict[str, list[tuple[str | None, str, int]]] = {"bigram": [], "history": []}
    rank_ms: list[float] = []
    filter_ms: list[float] = []
    for i in range(start, len(commands)):
        actual, before = commands[i], commands[:i]
        began = time.perf_counter()
        ranked = rank_next(before)
        rank_ms.append((time.perf_counter() - began) * 1000)
        bigram = _bigram(before)
        for typed in TYPED:
            prefix = actual[:typed]
            began = time.perf_counter()
            arms["history"].append((suggest(ranked, prefix), actual, typed))
            filter_ms.append((time.perf_counter() - began) * 1000)
            arms["bigram"].append((suggest(bigram, prefix), actual, typed))
    latency = {
        "rank_p50_ms": round(statistics.median(rank_ms), 3),
        "prefix_filter_p50_ms": round(statistics.median(filter_ms), 4),
    }
    return {name: _score(cases) for name, cases in arms.items()}, latency


Asker = Callable[[Any], tuple[str | None, float]]  # an engine input -> (answer, ms)


def _model_asker(model: str, threads: int | None) -> tuple[Asker, Callable[[], None]]:
    from local_models.client import EngineClient
    from local_models.model_store import model_path

    ready = threading.Event()
    state: list[str] = []

    def on_state(s: Any, detail: str) -> None:
        state.append(str(s))
        if str(s) in ("ready", "failed", "EngineState.READY", "EngineState.FAILED"):
            ready.set()

    extra: tuple[str, ...] = ("--threads", str(threads)) if threads else ()
    client = EngineClient(model_path(model), on_state=on_state, extra_args=extra)
    client.start()
    if not ready.wait(300) or "fail" in state[-1].lower():
        client.close()
        raise SystemExit(f"the engine did not start: {state}")

    def ask(inp: Any) -> tuple[str | None, float]:
        finished = threading.Event()
        got: list[str] = []
        began = time.perf_counter()

        def on_done(_rid: int, done: Any) -> None:
            got.append(done.text)
            finished.set()

        def on_error(_rid: int, message: str) -> None:
            finished.set()

        client.complete(
            inp, on_chunk=lambda *_: None, on_done=on_done, on_error=on_error, max_tokens=32
        )
        if not finished.wait(120):
            return None, 120_000.0
        return (got[0] if got else None), (time.perf_counter() - began) * 1000

    return ask, client.close


def _model_arms(
    commands: list[str], start: int, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    ask, close = _model_asker(args.model, args.threads)
    n = len(commands) - start
    step = max(1, n // max(1, args.model_cases))
    picks = list(range(start, len(commands), step))[: args.model_cases]
    arms: dict[str, list[tuple[str | None, str, int]]] = {"model": [], "history_then_model": []}
    latency: list[float] = []
    history_empty = 0  # cases where the product would ask the model (history has nothing)
    folder = os.path.basename(os.path.abspath(args.repo))
    try:
        ask(model_input(commands[:start][-5:], "", folder))  # the first request loads caches
        for i in picks:
            actual, before = commands[i], commands[:i]
            ranked = rank_next(before)
            for typed in TYPED:
                prefix = actual[:typed]
                text, ms = ask(model_input(before, prefix, folder))
                latency.append(ms)
                guess = model_suggestion(text, prefix) if text is not None else None
                arms["model"].append((guess, actual, typed))
                first = suggest(ranked, prefix)
                history_empty += first is None
                arms["history_then_model"].append((first or guess, actual, typed))
    finally:
        close()
    return {name: _score(cases) for name, cases in arms.items()}, {
        "model_p50_ms": round(statistics.median(latency), 1) if latency else None,
        "model_requests": len(latency),
        "model_cases": len(picks),
        "history_had_nothing": history_empty,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    commits = _commits(args.repo, args.commits, args.rev)
    rev = subprocess.run(
        ["git", "-C", args.repo, "rev-parse", args.rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    commands = [c for i, (s, files) in enumerate(commits) for c in session_for(i, s, files)]
    start = int(len(commands) * args.warm)
    arms, latency = _history_arms(commands, start)
    result: dict[str, Any] = {
        "history_source": {
            "repo": os.path.abspath(args.repo),
            "rev": rev,
            "commits": len(commits),
            "commands": len(commands),
            "distinct_commands": len(set(commands)),
            "evaluated_from": start,
        },
        "arms": arms,
        "latency": latency,
    }
    if args.model != "none":
        model_arms, model_latency = _model_arms(commands, start, args)
        result["arms"].update(model_arms)
        result["latency"].update(model_latency)
        result["model"] = args.model
    return result
