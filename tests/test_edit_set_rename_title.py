"""F2 rename's multi-file review says what it is: "Rename old → new", not "Edit files" (a user
run saw "Edit files · 1 files" over a rename). A real window offscreen (servers off: the
server's ``WorkspaceEdit`` is handed to the rename's review as its answer would be)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp
from pytestqt.qtbot import QtBot

from app.ui.edit_set_review import EditSetReview
from forecode_core.edits.events import FileChange, FileChangeKind
from tests.helpers.window import folder_window


def test_a_renames_review_is_titled_with_the_old_and_new_names(
    qtbot: QtBot, tmp_path: Path
) -> None:
    main = tmp_path / "main.py"
    main.write_text("code = 1\nprint(code)\n")
    win = folder_window(qtbot, tmp_path)
    assert win.open_file(main) is not None
    edit = lsp.WorkspaceEdit(
        changes={
            main.as_uri(): [
                lsp.TextEdit(lsp.Range(lsp.Position(0, 0), lsp.Position(0, 4)), "codepoint"),
                lsp.TextEdit(lsp.Range(lsp.Position(1, 6), lsp.Position(1, 10)), "codepoint"),
            ]
        }
    )
    assert win.lsp_actions.review_rename(edit, "codepoint", "code")
    review = win.edit_set.review
    assert isinstance(review, EditSetReview)
    assert review.title_label.text() == "<b>Rename code → codepoint</b> · 1 file"
    review.close_review()
    # The chat's multi-file edits keep their title.
    other = win.edit_set.show_review(
        [FileChange("main.py", FileChangeKind.MODIFIED, main.read_text(), "x = 1\n")]
    )
    assert other.title_label.text() == "<b>Edit files</b> · 1 file"
