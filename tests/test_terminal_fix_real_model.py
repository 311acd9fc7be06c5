"""Fix for a failed command with the real service model (Qwen2.5-Coder-1.5B-Instruct, the
loopback service's default) through the real gRPC service, in the real window with the real
shadow and review: the product's guarantees, not the model's text. Whatever the model writes,
the user sees a review of a set or a clear refusal ("... Nothing was changed."), and the
user's files are unchanged on disk, and in their buffers until an accept. Fails, never skips,
when the engine is broken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from forecode_core.terminal.records import CommandRecord
from tests.test_edit_set_window import _digests, _window
from tests.test_edits_real_model import client
from tests.test_terminal_fix_window import CALC, OUTPUT, TEST, project

__all__ = ["client", "project"]  # fixtures: the real loopback service; the tiny project
pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_the_real_model_fix_is_a_review_or_a_clear_refusal(
    qtbot: QtBot, tmp_path: Path, client: Any, project: Path
) -> None:
    root = project
    win = _window(qtbot, tmp_path, client, root)
    before = _digests(root)
    win.terminal_ai.command_finished(CommandRecord("pytest -q", str(root), OUTPUT, 1))
    win.actions_by_id["terminal.fixFailure"].trigger()
    panel = win.chat_panel
    qtbot.waitUntil(lambda: panel.is_streaming(), timeout=30_000)
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=850_000)
    review = win.edit_set.review
    notices = [n.text() for n in panel.notices()]
    answer = panel.messages()[-1].text
    print("answer:", answer, "\nnotices:", notices)
    assert _digests(root) == before
    if review is None:  # a clear refusal, nothing offered
        assert any(n.rstrip().endswith("Nothing was changed.") for n in notices), notices
        return
    print("set:", review.rows())
    for path, text in (("src/calc.py", CALC), ("tests/test_calc.py", TEST)):
        doc = win.docs.find((root / path).resolve())
        assert doc is None or doc.editor.text() == text  # not applied before the accept
    win.actions_by_id["edits.acceptAll"].trigger()
    assert win.edit_set.review is None
    changed = [
        p
        for p, text in (("src/calc.py", CALC), ("tests/test_calc.py", TEST))
        if (doc := win.docs.find((root / p).resolve())) is not None and doc.editor.text() != text
    ]
    print("changed by the accept:", changed)
    assert _digests(root) == before  # applied to the buffers; the user saves
    win.close()
