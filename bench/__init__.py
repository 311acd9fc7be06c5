"""Forecode's benchmarks: ``python -m bench NAME --json PATH``.

``BENCHMARKS`` maps each name to the module that implements it. A benchmark module provides:

- ``DEFAULT_ROUNDS``: how many interleaved rounds ``--rounds`` defaults to;
- ``add_arguments(parser)``: its own command-line options (may add none);
- ``run(args) -> dict``: the figures. ``bench.__main__`` puts the common metadata
  (``bench._common.metadata``) in front of them and writes the JSON.

Modules are imported only when their benchmark runs, so a benchmark's heavy imports (Qt, models,
gRPC) cost nothing to the others.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

BENCHMARKS: dict[str, str] = {
    "editor": "bench.editor",
    "local_engine": "bench.local_engine",
    "cloud": "bench.cloud",
    "apply": "bench.apply",
    "index": "bench.index",
    "completion": "bench.completion",
    "chat": "bench.chat",
    "ignore": "bench.ignore",
    "find_in_files": "bench.find_in_files",
    "service_load": "bench.service_load",
    "next_edit": "bench.next_edit",
    "next_edit_ui": "bench.next_edit_ui",
    "shadow": "bench.shadow",
    "lsp": "bench.lsp",
    "bugs": "bench.bugs",
    "package": "bench.package",
    "agent": "bench.agent",
    "agent_terminal": "bench.agent_terminal",
    "terminal_predict": "bench.terminal_predict",
}
