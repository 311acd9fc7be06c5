"""The review's Accept / Reject bar never hides the text of a long changed line: it sits on
the hunk's first new line when that line is short, else on the short line above (or after)
the hunk. Seen in a user run: the bar covered the end of a new docstring line. Real widgets
offscreen."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.ui.edit_set_review import EditSetReview
from forecode_core.edits.events import FileChange, FileChangeKind

OLD = "".join(f"x_{i} = {i}\n" for i in range(40))
LONG = "y = " + " + ".join(f"value_{i}" for i in range(40)) + "\n"  # far past the bar


def _review(qtbot: QtBot, new: str) -> EditSetReview:
    review = EditSetReview([FileChange("a.py", FileChangeKind.MODIFIED, OLD, new)], title="T")
    qtbot.addWidget(review)
    review.resize(900, 500)
    review.show()
    qtbot.waitExposed(review)
    return review


def _bar_line(review: EditSetReview) -> int:
    view = review.view
    bar = review.hunk_bar
    for line in range(view.lineCount()):
        if view.pointYFromPosition(view.positionFromLine(line)) == bar.y():
            return line
    return -1


def _covers_text(review: EditSetReview, line: int) -> bool:
    view = review.view
    return view.pointXFromPosition(view.lineEndPosition(line)) > review.hunk_bar.x()


def test_a_long_new_line_keeps_its_text_and_the_bar_goes_above(qtbot: QtBot) -> None:
    review = _review(qtbot, OLD.replace("x_20 = 20\n", "x_20 = 20\n" + LONG))
    qtbot.waitUntil(lambda: review.hunk_bar.isVisible() and _bar_line(review) in (20, 21))
    assert bytes(review.view.getLine(21)).startswith(b"y = value_0")  # the hunk's new line
    assert _covers_text(review, 21)  # the bar there would cover it
    assert _bar_line(review) == 20  # the short line above instead
    assert not _covers_text(review, 20)


def test_a_short_new_line_has_the_bar_beside_it(qtbot: QtBot) -> None:
    review = _review(qtbot, OLD.replace("x_20 = 20\n", "x_20 = 20\nshort = 1\n"))
    qtbot.waitUntil(lambda: review.hunk_bar.isVisible() and _bar_line(review) in (20, 21))
    assert _bar_line(review) == 21


def _box_end_x(review: EditSetReview, line: int) -> int:
    """Where the first row of ``line``'s deletion box ends in the viewport (pixels)."""
    view = review.view
    first = bytes(view.annotationText(line).data()).decode("utf-8").split("\n")[0]
    start = view.pointXFromPosition(view.lineIndentPosition(line))
    return start + view.textWidth(view.annotationStyle(line), first)


def test_a_long_replaced_line_keeps_its_box_readable(qtbot: QtBot) -> None:
    """A long line replaced by another long line (a chat Apply of a changed error message in
    requests' sessions.py): the bar sat on the deletion box's row and hid the end of the
    removed text; it goes to the short line above the box instead."""
    old = OLD.replace("x_20 = 20\n", LONG)
    review = EditSetReview(
        [FileChange("a.py", FileChangeKind.MODIFIED, old, old.replace("value_0", "value_00"))],
        title="T",
    )
    qtbot.addWidget(review)
    review.resize(900, 500)
    review.show()
    qtbot.waitExposed(review)
    view = review.view
    qtbot.waitUntil(lambda: review.hunk_bar.isVisible() and bool(view.annotationText(19).data()))
    assert _box_end_x(review, 19) > review.hunk_bar.x()  # the box's row is too long for it
    qtbot.waitUntil(lambda: _bar_line(review) == 19)  # on line 19's own text row, above the box
    assert not _covers_text(review, 19)
    box_top = view.pointYFromPosition(view.positionFromLine(19)) + view.textHeight(19)
    assert review.hunk_bar.y() + review.hunk_bar.height() <= box_top


def test_a_short_replaced_line_has_the_bar_beside_its_box(qtbot: QtBot) -> None:
    review = _review(qtbot, OLD.replace("x_20 = 20\n", "x_20 = 21\n"))
    view = review.view
    qtbot.waitUntil(lambda: review.hunk_bar.isVisible() and bool(view.annotationText(19).data()))
    box_top = view.pointYFromPosition(view.positionFromLine(19)) + view.textHeight(19)
    qtbot.waitUntil(lambda: review.hunk_bar.y() == box_top)
