"""The multi-file review's file list shows each row whole ("M  src/jinja2/environment.py
(2 changes)" was cut at 220 px in a user run), within reason: at most 45 % of the review.
Real widgets offscreen."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.ui.edit_set_review import EditSetReview
from forecode_core.edits.events import FileChange, FileChangeKind

OLD = "".join(f"v_{i} = {i}\n" for i in range(50))
NEW = OLD.replace("v_10 = 10\n", "v_10 = 11\n").replace("v_40 = 40\n", "v_40 = 41\n")


def _review(qtbot: QtBot, path: str) -> EditSetReview:
    review = EditSetReview(
        [
            FileChange(path, FileChangeKind.MODIFIED, OLD, NEW),
            FileChange("b.py", FileChangeKind.MODIFIED, OLD, NEW),
        ],
        title="Rename",
    )
    qtbot.addWidget(review)
    review.resize(1200, 500)
    review.show()
    qtbot.waitExposed(review)
    return review


def test_each_row_of_the_file_list_is_shown_whole(qtbot: QtBot) -> None:
    review = _review(qtbot, "src/jinja2/a_rather_long_module_name.py")
    row = review.file_list.item(0).text()
    assert row.endswith("(2 changes)")
    need = review.file_list.fontMetrics().horizontalAdvance(row)
    assert review.file_list.viewport().width() >= need


def test_a_very_long_path_takes_at_most_45_percent(qtbot: QtBot) -> None:
    review = _review(qtbot, "src/" + "deep/" * 60 + "name.py")
    total = sum(review.splitter.sizes())
    assert review.splitter.sizes()[0] <= total * 0.45 + 1
    assert review.view.width() > total * 0.5  # the code stays the larger part
