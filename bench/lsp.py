"""``python -m bench lsp``: language servers through the editor's own hub (issue 16's keys).

The servers are the ones Forecode installs (basedpyright, ``ruff server``), driven by
``app.services.lsp.LspHub`` exactly as the window drives them, rooted in a copy of this
repository's ``forecode_core`` (a real package of about 100 modules; this checkout's ``.venv``
linked beside it for third-party imports); the file is ``--file`` inside it (default
``store/settings.py``).

- ``first_diagnostics_s``: cold open (server processes started by the open) of the file with
  one undefined name added, to basedpyright's diagnostics naming it; target <= 1.5 s.
  ``ruff_first_diagnostics_s``: the same for ruff. ``first_diagnostics_any_s``: the first
  squiggle the user sees, whichever server said it (``first_diagnostics_server``).
- ``diagnostics``: ``pull`` (``textDocument/diagnostic`` asked after each open and change, the
  editor's way where a server offers it) or ``push`` (``--push``: the servers are offered no
  pull, as before; basedpyright then waits 250 ms after each change before it checks).
- ``recheck_p50_ms``: after an edit (a fresh undefined name appended each round), the time to
  basedpyright's diagnostics for that version naming it; target <= 400 ms p50.
  ``tier1_ms_per_file``: the same for ruff (the bug finder's tier 1; target <= 100 ms).
- ``hover_p50_ms``, ``definition_p50_ms``: requests at the file's names that refer to other
  modules' definitions (up to 20 positions, each round); targets <= 150 ms p50.
- With ``--ui``, the UI thread's stalls in a real window opening the copy while both servers
  start and report (``bench.lsp_ui``: ``max_ui_stall_ms``, ``ui_stalls_over_16ms``), and the
  first squiggles after a folder is open (``bench.lsp_first``: ``folder_first_ruff_s``,
  ``folder_first_diagnostics_s``, beside the ``_nowarm`` arm where the servers start with
  the file).
- With ``--shadow-files N`` (0 to skip), the shadow workspace's keys from
  ``bench.shadow.measure_shadow`` (``shadow_first_build_s``, ``shadow_refresh_p50_ms``,
  ``edit_to_verdict_p50_s``, ...).

Timings are wall clock on a shared machine: ``load_average`` in the metadata says how busy
it was.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from app.services.lsp import LspHub, ServerStatus, session
from app.services.lsp.results import definition_params, hover_markdown, hover_params, locations
from forecode_core.lsp.diagnostics import Diagnostic
from forecode_core.lsp.positions import Position, utf16_col_from_byte

from ._common import REPO, percentile

__all__ = ["DEFAULT_ROUNDS", "add_arguments", "measure_servers", "run"]

DEFAULT_ROUNDS = 10
WAIT_S = 120.0  # a cold basedpyright took 20-48 s to start at load 25-48 on two cores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", default="store/settings.py", help="the module opened, inside forecode_core"
    )
    parser.add_argument(
        "--shadow-files",
        type=int,
        default=0,
        help="also the shadow's keys on a tree of N files (bench shadow; 0 = skip, default)",
    )
    parser.add_argument(
        "--push",
        action="store_true",
        help="offer the servers no pull diagnostics (the editor's old way), to compare",
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        help="also the UI thread's stalls in a real window while the servers start and report "
        "(bench.lsp_ui: max_ui_stall_ms, ui_stalls_over_16ms)",
    )
    parser.add_argument(
        "--ui-rounds",
        type=int,
        default=0,
        help="--ui's typed-and-saved rounds (default rounds // 2; ~2 s each: 150 is a "
        "5-minute session, with the process's RSS by round, ui_rss_mb)",
    )


class _Seen:
    """Diagnostics as they arrive on the hub's thread: (server, version, messages)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[float, str, int | None, list[str]]] = []

    def add(self, _uri: str, version: int | None, server: str, found: list[Diagnostic]) -> None:
        with self.cond:
            self.events.append((time.perf_counter(), server, version, [d.message for d in found]))
            self.cond.notify_all()

    def wait(self, server: str, version: int, needle: str = "", after: float = 0.0) -> float:
        """When ``server`` first published for ``version`` or later (with ``needle`` in a
        message, if given), after ``after``."""
        deadline = time.perf_counter() + WAIT_S
        with self.cond:
            while True:
                for at, name, v, messages in self.events:
                    if at < after or name != server or (v is not None and v < version):
                        continue
                    if not needle or any(needle in m for m in messages):
                        return at
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"{server} said nothing of version {version} in {WAIT_S} s")
                self.cond.wait(left)


def _name_positions(text: str, limit: int = 20) -> list[Position]:
    """Where the module uses names it imported (their definitions are in other files)."""
    tree = ast.parse(text)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    lines = text.splitlines()
    found: list[Position] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in imported and node.lineno <= len(lines):
            line = lines[node.lineno - 1].encode()
            found.append(Position(node.lineno - 1, utf16_col_from_byte(line, node.col_offset)))
    found.sort()
    step = max(1, len(found) // limit)
    return found[::step][:limit]


def _timed_requests(
    hub: LspHub, uri: str, positions: list[Position], rounds: int
) -> dict[str, Any]:
    hovers: list[float] = []
    definitions: list[float] = []
    answered = {"hover": 0, "definition": 0}
    for _ in range(rounds):
        for where in positions:
            start = time.perf_counter()
            result = hub.ask(
                uri, "hover_provider", lsp.TEXT_DOCUMENT_HOVER, hover_params(uri, where)
            )
            answered["hover"] += bool(hover_markdown(result.result(WAIT_S)))
            hovers.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            params = definition_params(uri, where)
            result = hub.ask(uri, "definition_provider", lsp.TEXT_DOCUMENT_DEFINITION, params)
            answered["definition"] += bool(locations(result.result(WAIT_S)))
            definitions.append((time.perf_counter() - start) * 1000)
    return {
        "hover_p50_ms": round(percentile(hovers, 50), 1),
        "hover_p90_ms": round(percentile(hovers, 90), 1),
        "definition_p50_ms": round(percentile(definitions, 50), 1),
        "definition_p90_ms": round(percentile(definitions, 90), 1),
        "requests": len(hovers),
        "hovers_with_text": answered["hover"],
        "definitions_found": answered["definition"],
    }


def measure_servers(file: str, rounds: int) -> dict[str, Any]:
    """The language servers' keys (see the module docstring)."""
    seen = _Seen()
    statuses: list[ServerStatus] = []
    with tempfile.TemporaryDirectory(prefix="fc-bench-lsp-") as tmp:
        root = Path(tmp)
        shutil.copytree(
            REPO / "forecode_core",
            root / "forecode_core",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        venv = REPO / ".venv"
        if venv.is_dir():  # the session tells basedpyright to use <root>/.venv's interpreter
            (root / ".venv").symlink_to(venv, target_is_directory=True)
        path = root / "forecode_core" / file
        text = path.read_text(encoding="utf-8")
        uri = path.as_uri()
        hub = LspHub(seen.add, statuses.append)
        try:
            start = time.perf_counter()
            # With one error in it: a clean file may get no report at all to time.
            opened = f"{text}\n\nprint(bench_undefined_open)\n"
            version = hub.open(uri, "python", opened, root)
            first_pyright = seen.wait("basedpyright", version, "bench_undefined_open") - start
            first_ruff = seen.wait("ruff", version, "bench_undefined_open") - start
            rechecks: list[float] = []
            ruff_rechecks: list[float] = []
            for i in range(rounds):
                name = f"bench_undefined_{i}"
                edited = f"{text}\n\nprint({name})\n"
                start = time.perf_counter()
                version = hub.change(uri, edited)
                rechecks.append((seen.wait("basedpyright", version, name, start) - start) * 1000)
                ruff_rechecks.append((seen.wait("ruff", version, name, start) - start) * 1000)
            hub.change(uri, text)
            requests = _timed_requests(hub, uri, _name_positions(text), max(1, rounds // 5))
        finally:
            hub.shutdown()
    return {
        "file": f"forecode_core/{file}",
        "diagnostics": "pull" if session.PULL_DIAGNOSTICS else "push",
        "first_diagnostics_s": round(first_pyright, 3),
        "ruff_first_diagnostics_s": round(first_ruff, 3),
        "first_diagnostics_any_s": round(min(first_pyright, first_ruff), 3),
        "first_diagnostics_server": "basedpyright" if first_pyright <= first_ruff else "ruff",
        "recheck_p50_ms": round(percentile(rechecks, 50), 1),
        "recheck_p90_ms": round(percentile(rechecks, 90), 1),
        "tier1_ms_per_file": round(percentile(ruff_rechecks, 50), 1),
        "tier1_p90_ms": round(percentile(ruff_rechecks, 90), 1),
        **requests,
        "server_messages": [s.message for s in statuses if s.message],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.push:
        session.PULL_DIAGNOSTICS = False
    result = measure_servers(args.file, args.rounds)
    if args.shadow_files > 0:
        from .shadow import measure_shadow

        result.update(measure_shadow(args.shadow_files, max(1, args.rounds // 2)))
    if args.ui:
        from .lsp_ui import measure_ui_fresh  # a new process: the first start's imports

        result.update(measure_ui_fresh(args.ui_rounds or max(1, args.rounds // 2)))
        from .lsp_first import measure_first  # fresh editors: the folder, then the file

        result.update(measure_first())
    return result
