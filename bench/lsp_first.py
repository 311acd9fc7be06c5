"""The first squiggles a user waits for in a fresh editor (``bench lsp --ui``'s
``folder_first_*`` keys).

A real ``MainWindow`` in a new interpreter (pygls and lsprotocol not yet imported, as in a
user's editor) opens a copy of this repository's ``forecode_core`` (its ``.venv`` linked
beside it), the user looks at the tree for ``LOOK_S``, then opens ``store/settings.py`` with
one undefined name added; the seconds from that open to ruff's and to basedpyright's
diagnostic naming it. Two arms, interleaved: ``warm`` (the product: a folder with Python files
starts its servers when its scan ends, ``LanguageController.warm``) and ``nowarm`` (the
servers start when the file opens, as before 2026-12-06).

Keys: ``folder_first_ruff_s``, ``folder_first_diagnostics_s`` (basedpyright) and their
``_nowarm`` twins (medians of ``rounds`` runs an arm), ``folder_first_look_s``."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .lsp_ui import editor_workspace

REPO = Path(__file__).resolve().parents[1]
LOOK_S = 2.0
FILE = "forecode_core/store/settings.py"
NAME = "bench_first_undefined"
WAIT_S = 120.0


def _window_run(warm: bool) -> dict[str, float]:
    """One fresh editor (this process): the seconds to ruff's and basedpyright's report."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="fc-bench-lspfirst-") as tmp:
        root = editor_workspace(Path(tmp))
        path = root / FILE
        path.write_text(path.read_text(encoding="utf-8") + f"\n\nprint({NAME})\n")
        return _measure(root, path, warm)


def _measure(root: Path, path: Path, warm: bool) -> dict[str, float]:
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow
    from app.ui.owners import language

    from ._common import wait_with_events

    if not warm:  # the comparison arm: servers start when the file opens

        def no_warm(_self: object, _suffixes: object) -> None:
            return None

        setattr(language.LanguageController, "warm", no_warm)  # noqa: B010
    app = QApplication.instance() or QApplication([])
    win = MainWindow()
    win.resize(1200, 800)
    win.show()
    try:
        wait_with_events(lambda: False, 0.5)
        win.open_folder(root)
        wait_with_events(lambda: False, LOOK_S)
        start = time.perf_counter()
        doc = win.open_file(path)
        assert doc is not None, f"{path} did not open"
        uri = path.as_uri()

        out: dict[str, float] = {}
        for server in ("ruff", "basedpyright"):

            def named(server: str = server) -> bool:
                found = win.language.store.all_for(uri)
                return any(server in d.source.lower() and NAME in d.message for d in found)

            if not wait_with_events(named, WAIT_S):
                raise RuntimeError(f"{server} never named {NAME}")
            out[server] = time.perf_counter() - start
        return out
    finally:
        for d in list(win.docs.documents()):
            d.editor.setSavePoint()
        win.close()
        app.processEvents()


def measure_first(rounds: int = 2) -> dict[str, Any]:
    """The keys above: ``rounds`` fresh editors an arm, interleaved."""
    runs: dict[str, list[dict[str, float]]] = {"warm": [], "nowarm": []}
    for _ in range(rounds):
        for arm in runs:
            done = subprocess.run(
                [sys.executable, "-m", "bench.lsp_first", arm],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=WAIT_S * 2 + 60,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"bench.lsp_first {arm} failed: {done.stderr[-2000:]}")
            runs[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {"folder_first_look_s": LOOK_S}
    for arm, suffix in (("warm", ""), ("nowarm", "_nowarm")):
        for server, key in (
            ("ruff", "folder_first_ruff_s"),
            ("basedpyright", "folder_first_diagnostics_s"),
        ):
            out[key + suffix] = round(statistics.median(r[server] for r in runs[arm]), 3)
    return out


if __name__ == "__main__":
    print(json.dumps(_window_run(sys.argv[1] == "warm")))
