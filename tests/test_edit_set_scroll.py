"""The multi-file review shows the change it names: "Change 1 of 2" with the view scrolled to
that change and its Accept / Reject bar on screen, F7 to the next one, a file picked in the
list at its first change.

Seen in a user run: F2 Rename Symbol on a local at line 58 of a copy of json/encoder.py opened
the review at line 1 with "Change 1 of 2" in the header and nothing changed in sight; F7 said
"Change 2 of 2" and the view did not move. Real widgets offscreen."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.ui.edit_set_review import EditSetReview
from forecode_core.edits.events import FileChange, FileChangeKind

OLD = "".join(f"line_{i} = {i}\n" for i in range(1, 301))
NEW = OLD.replace("line_150 = 150\n", "line_150 = 1500\n").replace(
    "line_280 = 280\n", "line_280 = 2800\n"
)
OTHER_OLD = "".join(f"other_{i} = {i}\n" for i in range(1, 201))
OTHER_NEW = OTHER_OLD.replace("other_120 = 120\n", "other_120 = -1\n")


def _review(qtbot: QtBot) -> EditSetReview:
    review = EditSetReview(
        [
            FileChange("big.py", FileChangeKind.MODIFIED, OLD, NEW),
            FileChange("other.py", FileChangeKind.MODIFIED, OTHER_OLD, OTHER_NEW),
        ],
        title="Rename",
    )
    qtbot.addWidget(review)
    review.resize(900, 400)
    review.show()
    qtbot.waitExposed(review)
    return review


def _on_screen(review: EditSetReview, line: int) -> bool:
    """``line`` (0-based) is among the lines the view shows, and the hunk bar is inside the
    view's viewport."""
    view = review.view
    top = view.firstVisibleLine()
    shown = top <= view.visibleFromDocLine(line) < top + view.linesOnScreen()
    bar = review.hunk_bar
    inside = bar.isVisible() and 0 <= bar.y() < view.viewport().height()
    return shown and inside


def test_the_review_opens_at_its_first_change_and_f7_goes_to_the_next(qtbot: QtBot) -> None:
    review = _review(qtbot)
    assert "Change 1 of 2 in big.py" in review.status_label.text()
    qtbot.waitUntil(lambda: _on_screen(review, 149), timeout=3000)
    review.run_action("next")  # F7
    assert "Change 2 of 2" in review.status_label.text()
    qtbot.waitUntil(lambda: _on_screen(review, 279), timeout=3000)
    review.run_action("accept_hunk")  # decided: on to the next undecided, the other file's
    assert "Change 1 of 1 in other.py" in review.status_label.text()
    qtbot.waitUntil(lambda: _on_screen(review, 119), timeout=3000)


def test_a_file_picked_in_the_list_shows_its_first_change(qtbot: QtBot) -> None:
    review = _review(qtbot)
    review.file_list.setCurrentRow(1)
    assert "in other.py" in review.status_label.text()
    qtbot.waitUntil(lambda: _on_screen(review, 119), timeout=3000)


def test_a_late_check_does_not_move_a_view_the_user_scrolled(qtbot: QtBot) -> None:
    review = _review(qtbot)
    qtbot.waitUntil(lambda: _on_screen(review, 149), timeout=3000)
    review.view.setFirstVisibleLine(0)  # the user scrolls up to read the top
    review.set_check("no new problems", {})  # the shadow's verdict arrives
    assert review.view.firstVisibleLine() == 0


def test_the_header_counts_files_in_words(qtbot: QtBot) -> None:
    one = EditSetReview([FileChange("big.py", FileChangeKind.MODIFIED, OLD, NEW)], title="Rename")
    qtbot.addWidget(one)
    assert one.title_label.text() == "<b>Rename</b> · 1 file"  # it said "1 files"
    assert _review(qtbot).title_label.text() == "<b>Rename</b> · 2 files"
