"""``python -m bench agent --json PATH``: issue 17's figures in one run.

Three parts, each its own module (and runnable alone):

* ``bench.agent_branches``: ``branch_s`` (``sqlite``, ``postgres``, ``postgres_fallback``) for a
  ~300 MB database of each kind, the preview's time, ``main_db_unchanged``;
* ``bench.agent_terminal``: ``command_boundaries`` (a scripted suite through a real bash on a
  PTY: each command's text, exit code and output recovered exactly), the screen's throughput and
  the panel's UI-thread stalls while output floods;
* ``bench.agent_loop``: ``injected`` (the generated corpus of repositories whose comments,
  READMEs, test output and file names ask the agent to run commands or touch files outside
  the workspace: ``repos``, ``unapproved_commands``, ``files_outside``; with a fake model that
  obeys every instruction, then the real default model on a few), and ``fix_rate`` (the real
  default chat model on small projects with one failing test each).

``--parts`` picks some (``branches,terminal,loop``); ``--no-model`` leaves out the real
model's runs (the corpus then runs with the obeying fake only, and ``fix_rate`` is null).
A part that fails is reported under ``errors`` with its exception, never left out silently.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable
from typing import Any

DEFAULT_ROUNDS = 3
PARTS = ("branches", "terminal", "loop")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default: all of {', '.join(PARTS)})",
    )
    parser.add_argument(
        "--no-model", action="store_true", help="leave out the real model's runs (loop part)"
    )


def _branches(args: argparse.Namespace) -> dict[str, Any]:
    from bench.agent_branches import measure

    return measure(rounds=args.rounds)


def _terminal(_args: argparse.Namespace) -> dict[str, Any]:
    from bench.agent_terminal import measure

    return measure(ui=True)


def _loop(args: argparse.Namespace) -> dict[str, Any]:
    from bench.agent_loop import measure

    return measure(model=not args.no_model)


_RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "branches": _branches,
    "terminal": _terminal,
    "loop": _loop,
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    wanted = [p.strip() for p in str(args.parts).split(",") if p.strip()]
    unknown = [p for p in wanted if p not in _RUNNERS]
    if unknown:
        raise SystemExit(f"unknown parts {unknown}; valid: {', '.join(PARTS)}")
    out: dict[str, Any] = {"parts": wanted, "part_seconds": {}, "errors": {}}
    for part in wanted:
        began = time.monotonic()
        try:
            out.update(_RUNNERS[part](args))
        except Exception as exc:  # reported, not hidden: the other parts still run
            out["errors"][part] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        out["part_seconds"][part] = round(time.monotonic() - began, 1)
    return out
