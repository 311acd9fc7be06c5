"""Tier 1 of the bug finder in a real window with the real ``ruff server``: after a save, the
bug rules the finder adds to ruff's defaults (forecode_core.bugs.rules) are squiggled on
their lines (the four of the issue are tested in tests/test_lsp_client.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.owners.language import INDICATORS
from forecode_core.bugs.rules import TIER1_RULES
from forecode_core.lsp.diagnostics import Severity
from tests.helpers.window import folder_window

pytestmark = pytest.mark.slow

SERVER_WAIT_MS = 120_000

SOURCE = """\
import re


def first(x):
    ++x
    return x


def compare(a, b):
    a == b
    return a


def loop(items):
    for items in items:
        print(items)


def once():
    return {1, 2, 1}


def subs(text):
    return re.sub("a", "b", text, 2)


class Thing:
    def __init__(self):
        self.x = 1
        return 5
"""
EXPECTED = {"B002": 5, "B015": 10, "B020": 15, "B033": 20, "B034": 24, "PLE0101": 30}


@pytest.fixture(autouse=True)
def servers_on(monkeypatch: pytest.MonkeyPatch, isolated_dirs: dict[str, Path]) -> None:
    monkeypatch.delenv("FORECODE_LSP", raising=False)
    # ruff only: basedpyright is not what this tests, and it is slow to start on two cores
    values = {
        "completion.enabled": False,
        "cloud.autostart": False,
        "lsp.enabled": True,
        "lsp.servers": {"python": "ruff"},
        "bugs.tier2": False,
    }
    (isolated_dirs["config"] / "settings.json").write_text(json.dumps(values))


def test_the_added_bug_rules_squiggle_after_a_save(qtbot: QtBot, tmp_path: Path) -> None:
    assert set(EXPECTED) <= set(TIER1_RULES)
    ws = tmp_path / "ws"
    ws.mkdir()
    path = ws / "bugs.py"
    path.write_text("x = 1\n")
    win = folder_window(qtbot, ws)
    doc = win.open_file(path)
    assert doc is not None
    language = win.language
    qtbot.waitUntil(lambda: language._open.get(path.as_uri()) is not None, timeout=5000)
    doc.editor.set_text(SOURCE, keep_undo=True)
    win.save_current()

    def found() -> dict[str, int]:
        return {
            d.code: d.start.line + 1
            for d in language.store.all_for(path.as_uri())
            if d.code in EXPECTED
        }

    qtbot.waitUntil(lambda: found() == EXPECTED, timeout=SERVER_WAIT_MS)
    # each is drawn on its line (a squiggle: ruff reports these as errors or warnings)
    editor = doc.editor
    indicators = {INDICATORS[Severity.ERROR][0], INDICATORS[Severity.WARNING][0]}
    for line in EXPECTED.values():
        start, end = editor.positionFromLine(line - 1), editor.lineEndPosition(line - 1)
        assert any(editor.indicatorValueAt(i, p) for i in indicators for p in range(start, end)), (
            line
        )
