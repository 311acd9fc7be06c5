"""Repair rounds for a multi-file edit in the window, end to end: the question goes through a
real CloudClient to the real gRPC service on loopback (a scripted model at its backend seam,
answering each request in turn), the set is checked in the real shadow workspace (ruff and
basedpyright), its new error goes back through the same Edits RPC with the set's proposed
files, the repaired set replaces the first one in the review with the round's report, and the
user's files stay byte-identical throughout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from cloud_client.client import CloudClient
from cloud_server.config import ServerConfig
from cloud_server.service import start_server
from forecode_core.chat.types import ChatParams
from forecode_core.edits.events import FileChangeKind
from forecode_core.streams import Delta, Done, Started
from tests.test_edit_set_window import TOKEN, _digests, _window
from tests.test_edits_rpc import MAIN, _ScriptedBackend

BROKEN = (
    "I add a loud module and use it.\n\n"
    "NEW FILE: app/loud.py\n```python\ndef shout(text):\n    return text.upper()\n```\n\n"
    "FILE: app/main.py\n```python\n# ... existing code ...\n\ndef main():\n"
    '    print(shout_loudly(greet("world")))\n```\n'
)
REPAIRED = (
    "I import the helper under its real name.\n\n"
    "FILE: app/main.py\n```python\nimport os\n\nfrom app.loud import shout\n"
    "# ... existing code ...\n\ndef main():\n"
    '    print(shout(greet("world")))\n```\n'
)


class _Rounds(_ScriptedBackend):
    """One scripted answer per request, in turn."""

    def __init__(self, *answers: str) -> None:
        super().__init__(answers[0])
        self.answers = list(answers)

    def stream_chat(self, params: ChatParams, *, should_stop: Any) -> Iterator[Any]:
        self.asked.append(params)
        answer = self.answers[min(len(self.asked), len(self.answers)) - 1]
        yield Started(model="scripted")
        yield Delta(answer)
        yield Done(self.finish, {"completion_tokens": 99})


@pytest.fixture
def served() -> Iterator[tuple[CloudClient, _Rounds]]:
    rounds = _Rounds(BROKEN, REPAIRED)
    running = start_server(ServerConfig(tokens=(TOKEN,)), backend=rounds)
    client = CloudClient(f"127.0.0.1:{running.port}", TOKEN)
    try:
        yield client, rounds
    finally:
        client.close()
        running.stop(0)


@pytest.mark.timeout(600)
def test_a_sets_new_error_is_repaired_through_the_edits_rpc_before_the_user_decides(
    qtbot: QtBot, tmp_path: Path, served: tuple[CloudClient, _Rounds]
) -> None:
    client, rounds = served
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "main.py").write_text(MAIN)
    win = _window(qtbot, tmp_path, client, root)
    win.open_file(root / "app" / "main.py")
    before = _digests(root)
    win.edit_set.start()
    assert win.chat_panel.send("Make main shout")
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=15000)
    first = win.edit_set.review
    assert first is not None
    qtbot.waitUntil(lambda: win.edit_set.last_repair is not None, timeout=300000)
    outcome = win.edit_set.last_repair
    assert outcome is not None
    # the first check found the undefined name; the round's request carried every file of
    # the set as the model's own version and the report as quoted data
    assert any("shout_loudly" in d.message for d in outcome.first), outcome.first
    assert len(rounds.asked) == 2, rounds.asked
    request = rounds.asked[1].messages[-1].content
    assert "Repair round 1" in request and "> " in request and "shout_loudly" in request
    # the repaired set is what the review shows now, with the round's report
    review = win.edit_set.review
    assert review is not None and review is not first
    assert outcome.rounds == 1 and outcome.verdict.new == (), outcome
    texts = {f.change.path: f.change for f in review.state.files}
    assert "from app.loud import shout" in texts["app/main.py"].new_text
    assert texts["app/main.py"].original == MAIN  # still against the user's file
    assert texts["app/loud.py"].kind is FileChangeKind.NEW
    assert review.check_note.startswith("checked: no new problems · 1 repair round: fixed")
    assert "shout_loudly" in review.check_note
    assert review.check_note in review.status_label.text()
    assert _digests(root) == before  # nothing touched before the accept
    review.reject_all()
    assert _digests(root) == before
    win.close()
