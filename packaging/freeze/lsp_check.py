"""``forecode --lsp-check FILE``: the installed app's language servers on one Python file.

Runs the editor's own ``LspHub`` with the default server table (basedpyright and ``ruff
server``), the commands resolved as the editor resolves them (``resolve_command``: beside the
executable, then PATH; a frozen app has no venv ``bin/``), opens ``FILE`` and waits for each
found server's ``publishDiagnostics`` with at least one diagnostic. Prints JSON: ``servers``
(name -> the command found, or null), ``diagnostics`` (name -> how many), ``status`` (the
hub's state changes). Exit 0 when every found server sent a squiggle and one was found at all.
The package smoke test (``bench/package.py``) reads it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

TIMEOUT_S = 90.0


def check(path: Path, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    from app.services.lsp.hub import LspHub, ServerStatus, resolve_command
    from forecode_core.lsp.diagnostics import Diagnostic
    from forecode_core.lsp.servers import servers_for

    found = {s.name: resolve_command(s.command) for s in servers_for("python")}
    wanted = {name for name, cmd in found.items() if cmd}
    counts: dict[str, int] = {}
    status: list[str] = []
    done = threading.Event()

    def on_diagnostics(uri: str, version: int | None, server: str, diags: list[Diagnostic]) -> None:
        if diags:
            counts[server] = len(diags)
        if wanted and wanted <= counts.keys():
            done.set()

    def on_status(s: ServerStatus) -> None:
        status.append(f"{s.server}: {s.state} {s.message}".strip())

    hub = LspHub(on_diagnostics, on_status)
    start = time.monotonic()
    try:
        hub.open(path.as_uri(), "python", path.read_text(encoding="utf-8"), path.parent)
        done.wait(timeout_s if wanted else 0)
    finally:
        hub.shutdown()
    return {
        "servers": {k: None if v is None else v[0] for k, v in found.items()},
        "diagnostics": dict(counts),
        "seconds": round(time.monotonic() - start, 2),
        "status": status[-10:],
        "ok": bool(wanted) and wanted <= counts.keys(),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: forecode --lsp-check FILE.py", file=sys.stderr)
        return 2
    result = check(Path(argv[0]).resolve())
    print(json.dumps(result))
    return 0 if result["ok"] else 1
