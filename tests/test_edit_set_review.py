"""The multi-file edit review offscreen (app.ui.edit_set_review): real widgets and real
buffers (``CodeEditor``) over real files in a temporary folder. Per-hunk decisions, accept
all, a set of three files (new, modified, deleted) accepted and undone in one step with the
file contents checked, nothing written before accept (hashes), a stale set refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.edit_set_review import (
    AppliedSet,
    EditSetReview,
    apply_set,
    can_undo_set,
    undo_set,
)
from app.ui.editor import CodeEditor
from forecode_core.edits.events import FileChange, FileChangeKind
from forecode_core.edits.review import EditSetState

MAIN = (
    "import os\n\n\ndef greet(name):\n    return 'hi ' + name\n\n\n"
    "def main():\n    print(greet('x'))\n"
)
MAIN_NEW = (
    "import os\nimport sys\n\n\ndef greet(name):\n    return 'hi ' + name\n\n\n"
    "def main():\n    print(greet(sys.argv[1]))\n"
)
UTIL = "def unused():\n    pass\n"
HELPER = "def shout(text):\n    return text.upper()\n"


class Host:
    """The window's documents, in small: buffers over files in ``root``; the trash is a
    folder of the test's."""

    def __init__(self, root: Path, qtbot: QtBot) -> None:
        self.root = root
        self.trash = root.parent / "trash"
        self.trash.mkdir(exist_ok=True)
        self.qtbot = qtbot
        self.editors: dict[str, CodeEditor] = {}

    def _editor(self, path: str) -> CodeEditor:
        editor = CodeEditor()
        self.qtbot.addWidget(editor)
        editor.setText((self.root / path).read_text())
        editor.emptyUndoBuffer()
        self.editors[path] = editor
        return editor

    def exists(self, path: str) -> bool:
        return (self.root / path).exists()

    def open_editor(self, path: str) -> CodeEditor | None:
        if path in self.editors:
            return self.editors[path]
        return self._editor(path) if self.exists(path) else None

    def create_file(self, path: str) -> CodeEditor | None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x"):
            pass
        return self._editor(path)

    def delete_file(self, path: str) -> str:
        self.editors.pop(path, None)
        shutil.move(self.root / path, self.trash / path.replace("/", "_"))
        return ""

    def restore_file(self, path: str, text: str) -> str:
        (self.root / path).write_text(text)
        self._editor(path)
        return ""


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text(MAIN)
    (root / "app" / "util.py").write_text(UTIL)
    return root


def _changes() -> list[FileChange]:
    return [
        FileChange("app/main.py", FileChangeKind.MODIFIED, MAIN, MAIN_NEW, source="deterministic"),
        FileChange("app/helpers.py", FileChangeKind.NEW, "", HELPER),
        FileChange("app/util.py", FileChangeKind.DELETED, UTIL),
    ]


def _review(qtbot: QtBot, changes: list[FileChange]) -> EditSetReview:
    review = EditSetReview(changes, title="Edit files")
    qtbot.addWidget(review)
    review.resize(900, 500)
    review.show()
    return review


def _wire(review: EditSetReview, host: Host) -> list[AppliedSet]:
    """What the owner does: apply the accepted files, tell the review."""
    done: list[AppliedSet] = []

    def apply(accepted: object) -> None:
        result = apply_set(accepted, host)  # type: ignore[arg-type]
        if isinstance(result, str):
            review.refused(result)
        else:
            done.append(result)
            review.applied()

    review.apply_requested.connect(apply)
    return done


def test_the_set_is_listed_with_statuses_and_boxed_deletions(qtbot: QtBot) -> None:
    changes = [*_changes(), FileChange("b.py", FileChangeKind.FAILED, "x = 1\n", error="no anchor")]
    review = _review(qtbot, changes)
    rows = review.rows()
    assert rows[0].startswith("M  app/main.py  (2 changes)")
    assert rows[1].startswith("A  app/helpers.py  (1 change)")
    assert rows[2].startswith("D  app/util.py  (1 change)")
    assert rows[3] == "!  b.py  — not resolved"
    # the modified file: its proposed text, the replaced line boxed above its replacement
    assert review.view.text() == MAIN_NEW
    boxes = review.deletion_boxes()
    assert "    print(greet('x'))" in boxes.values()
    # the deleted file: every line in the box
    review.file_list.setCurrentRow(2)
    assert review.view.text() == ""
    assert list(review.deletion_boxes().values()) == ["def unused():\n    pass"]
    review.file_list.setCurrentRow(3)
    assert "no anchor" in review.message_label.text()


def test_per_hunk_decisions_apply_only_the_accepted_hunks(qtbot: QtBot, project: Path) -> None:
    host = Host(project, qtbot)
    review = _review(qtbot, [_changes()[0]])
    applied = _wire(review, host)
    before = _digests(project)
    review.run_action("accept_hunk")  # import sys
    assert not applied and review.outcome == ""
    assert _digests(project) == before and host.editors == {}
    review.run_action("reject_hunk")  # the argv change: the last decision applies the set
    assert review.outcome == "applied"
    (done,) = applied
    assert host.editors["app/main.py"].text() == MAIN.replace(
        "import os\n", "import os\nimport sys\n"
    )
    assert _digests(project) == before  # buffers, not files: saved by the user
    assert can_undo_set(done) == ""


def test_three_files_accepted_and_undone_in_one_step(qtbot: QtBot, project: Path) -> None:
    host = Host(project, qtbot)
    main = host.open_editor("app/main.py")  # one of them is open already
    assert main is not None
    before = _digests(project)
    review = _review(qtbot, _changes())
    applied = _wire(review, host)
    # the review moves between files and decides nothing yet: nothing is written
    review.file_list.setCurrentRow(1)
    review.move_current(1)
    review.file_list.setCurrentRow(0)
    assert _digests(project) == before
    assert main.text() == MAIN and not main.canUndo()
    review.accept_all()
    assert review.outcome == "applied"
    (done,) = applied
    assert sorted(done.paths) == ["app/helpers.py", "app/main.py", "app/util.py"]
    assert main.text() == MAIN_NEW
    assert host.editors["app/helpers.py"].text() == HELPER
    assert (project / "app" / "helpers.py").read_text() == ""  # created; the text is unsaved
    assert not (project / "app" / "util.py").exists()  # in the trash
    assert (host.trash / "app_util.py").read_text() == UTIL
    # one step undoes the whole set
    assert undo_set(done, host) == ""
    assert main.text() == MAIN and not main.canUndo()  # exactly one undo action was ours
    assert not (project / "app" / "helpers.py").exists()
    assert (project / "app" / "util.py").read_text() == UTIL
    assert _digests(project) == before
    assert can_undo_set(done) == "it was undone already"


def test_a_stale_set_changes_nothing(qtbot: QtBot, project: Path) -> None:
    host = Host(project, qtbot)
    main = host.open_editor("app/main.py")
    assert main is not None
    review = _review(qtbot, _changes())
    applied = _wire(review, host)
    main.setText(MAIN.replace("import os\n", "import re\n"))  # typed on the set's lines
    before = _digests(project)
    review.accept_all()
    assert applied == [] and review.outcome == ""
    assert "changed since the edit was proposed" in review.message_label.text()
    assert _digests(project) == before
    assert (project / "app" / "util.py").exists() and "app/helpers.py" not in host.editors
    assert main.text() == MAIN.replace("import os\n", "import re\n")


def test_a_buffer_edited_elsewhere_meanwhile_is_merged_three_way_and_undone_in_one_step(
    qtbot: QtBot, project: Path
) -> None:
    """Issue 16: accepting applies the reviewed diff three-way when the user edited
    meanwhile, one undo for the set; the user's own edit stays."""
    host = Host(project, qtbot)
    main = host.open_editor("app/main.py")
    assert main is not None
    review = _review(qtbot, _changes())
    applied = _wire(review, host)
    typed = MAIN.replace("    return 'hi ' + name\n", "    return 'hello ' + name\n")
    main.beginUndoAction()
    main.setTargetRange(0, len(MAIN.encode()))
    main.replaceTarget(-1, typed)
    main.endUndoAction()
    review.accept_all()
    assert review.outcome == "applied"
    (done,) = applied
    assert main.text() == MAIN_NEW.replace("'hi ' + name", "'hello ' + name")
    assert undo_set(done, host) == ""
    assert main.text() == typed  # the set undone, the user's edit kept


def test_undo_is_refused_when_a_touched_buffer_changed(qtbot: QtBot, project: Path) -> None:
    host = Host(project, qtbot)
    result = apply_set(EditSetState.of(_changes()).decide_rest(True).accepted_files(), host)
    assert isinstance(result, AppliedSet)
    host.editors["app/helpers.py"].insertText(0, "X = 1\n")
    assert undo_set(result, host) == "app/helpers.py changed since the edit was applied"
    assert host.editors["app/main.py"].text() == MAIN_NEW  # nothing undone


def test_reject_all_closes_without_touching_anything(qtbot: QtBot, project: Path) -> None:
    host = Host(project, qtbot)
    before = _digests(project)
    review = _review(qtbot, _changes())
    applied = _wire(review, host)
    review.run_action("escape")
    assert review.outcome == "rejected" and applied == []
    assert _digests(project) == before and host.editors == {}
