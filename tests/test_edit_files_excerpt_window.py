"""Edit files on a file too big for the service slot, in the real window: a 701-line file with
the caret at line 600 (or mentioned with ``@`` by a question naming its function there) goes
to the real gRPC service on loopback (a scripted model at its backend seam, as
tests/test_edit_set_window.py) as an editable excerpt around that line; the model's edit with
elisions is resolved against the whole file, and the review shows the one hunk at line 600
with the rest of the file untouched. Before this, the file went as read-only context and the
answer's edit of it was refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from cloud_client.client import CloudClient
from forecode_core.edits.events import FileChangeKind
from tests.test_edit_set_window import _window
from tests.test_edit_set_window import service as service  # the fixture
from tests.test_edits_rpc import _ScriptedBackend

BIG = "# big module\n" + "".join(
    f"def f{i}(x):\n    y = x + {i}  # the offset {i} added to x, as the table of offsets says\n"
    "    return y\n\n"
    for i in range(175)
)
ANSWER = (
    "I make f149 return twice its value.\n\nFILE: big.py\n```python\n"
    "# ... existing code ...\ndef f149(x):\n"
    "    y = x + 149  # the offset 149 added to x, as the table of offsets says\n"
    "    return y * 2\n# ... existing code ...\n```\n"
)


@pytest.mark.parametrize(
    ("mention", "question"),
    [
        pytest.param(False, "Make it return twice its value", id="the current file, at the caret"),
        pytest.param(True, "Make f149 return twice its value in @big.py", id="a mention"),
    ],
)
def test_a_big_file_is_edited_through_its_excerpt(
    qtbot: QtBot,
    tmp_path: Path,
    service: tuple[CloudClient, _ScriptedBackend],
    mention: bool,
    question: str,
) -> None:
    """The current file's excerpt is around the caret; a mention's around the definition the
    question names (no file is open then)."""
    client, backend = service
    backend.answer = ANSWER
    lines = BIG.split("\n")
    assert len(lines) == 702 and lines[599] == "    return y"  # line 600, in f149
    root = tmp_path / "project"
    root.mkdir()
    (root / "big.py").write_text(BIG)
    win = _window(qtbot, tmp_path, client, root)
    if not mention:
        opened = win.open_file(root / "big.py")
        assert opened is not None
        opened.editor.gotoLine(599)  # the caret on line 600

    win.actions_by_id["edits.start"].trigger()
    panel = win.chat_panel
    assert panel.edit_mode
    assert panel.send(question)
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=15000)
    review = win.edit_set.review
    assert review is not None

    # the model saw an excerpt around line 600, marked editable, not the whole file
    (asked,) = backend.asked
    turn = asked.messages[-1].content
    shown = re.search(r"An excerpt of the next file, lines (\d+)-(\d+) of its 702", turn)
    assert shown is not None, turn[:400]
    first, last = int(shown.group(1)), int(shown.group(2))
    assert first <= 600 <= last and last - first < 500
    assert "def f0(x):" not in turn and "Read-only context" not in turn
    # ... and the apply engine resolved its block against the whole file
    (applied,) = backend.applied
    assert applied.original == BIG

    assert review.rows() == ["M  big.py  (1 change)"]
    (file_review,) = review.state.files
    change = file_review.change
    assert change.kind is FileChangeKind.MODIFIED and change.original == BIG
    (hunk,) = file_review.hunks
    assert (hunk.old_start, hunk.old_end) == (599, 600)
    assert hunk.old_lines == ("    return y\n",) and hunk.new_lines == ("    return y * 2\n",)
    expected = "\n".join([*lines[:599], "    return y * 2", *lines[600:]])
    assert change.new_text == expected
    assert (root / "big.py").read_text() == BIG  # nothing changed before the accept

    # the shadow's check ends before the window closes (its answer needs the owner alive)
    qtbot.waitUntil(lambda: not review.check_note.startswith("checking"), timeout=15000)
    win.actions_by_id["edits.acceptAll"].trigger()
    doc = win.docs.find((root / "big.py").resolve())
    assert doc is not None and doc.editor.text() == expected
    win.close()


def test_an_edit_outside_the_excerpt_is_shown_as_refused_and_changes_nothing(
    qtbot: QtBot, tmp_path: Path, service: tuple[CloudClient, _ScriptedBackend]
) -> None:
    """The model edits f3, which it never saw (the excerpt is around line 600): the block
    places in the whole file, so the service refuses the file with the reason and the review
    says so, never applying it silently."""
    client, backend = service
    backend.answer = ANSWER.replace("f149", "f3").replace("149", "3")
    root = tmp_path / "project"
    root.mkdir()
    (root / "big.py").write_text(BIG)
    win = _window(qtbot, tmp_path, client, root)
    opened = win.open_file(root / "big.py")
    assert opened is not None
    opened.editor.gotoLine(599)
    win.actions_by_id["edits.start"].trigger()
    assert win.chat_panel.send("Make f3 return twice its value")
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=15000)
    review = win.edit_set.review
    assert review is not None
    assert review.rows() == ["!  big.py  — not resolved"]
    message = review.message_label.text()
    assert "big.py could not be changed" in message and "lines the model saw" in message
    # the shadow's check ends before the window closes (its answer needs the owner alive)
    qtbot.waitUntil(lambda: not review.check_note.startswith("checking"), timeout=15000)
    win.actions_by_id["edits.acceptAll"].trigger()
    assert opened.editor.text() == BIG and (root / "big.py").read_text() == BIG
    win.close()
