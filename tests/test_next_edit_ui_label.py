"""The jump marker's label on a narrow editor (issue 15; a user run's bug): with the chat panel
open, "Tab → line N" as an end-of-line annotation ran past the editor's right edge. The label
(``next_edit_view.JumpLabel``) must always be inside the text area on the caret's line: at the
line's end when it fits, else pinned at the right edge, shortened when even that is too narrow.

Real ``Documents`` tabs and Scintilla editors offscreen, resized as a user narrows them; the
model's seam is the fake of tests/test_next_edit_ui.py, answering a change three lines down.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor

from app.ui.editor import CodeEditor
from app.ui.next_edit_view import NextEditView, _colour, short_label
from tests import test_next_edit_ui as ui
from tests.test_next_edit_ui import Env

env = ui.env  # the real window's next-edit fixture (tabs, owner, the model's fake seam)

LONG = "import requests  # " + "the HTTP client, " * 6 + "nothing else\n"
CALLS = ui.CALLS.replace("ˇ", "").replace("import requests\n", LONG)


def text_area(ed: CodeEditor) -> QRect:
    left = ed.marginLeft() + sum(ed.marginWidthN(i) for i in range(ed.margins()))
    view = ed.viewport().rect()
    return QRect(left, 0, view.width() - left - ed.marginRight(), view.height())


def jump_with_width(env: Env, width: int, marked: str) -> tuple[CodeEditor, NextEditView]:
    env.host.resize(width, 500)
    env.qtbot.waitUntil(lambda: env.host.width() == width, timeout=2000)
    doc = env.open("calls.py", marked)
    ed = doc.editor
    env.ctl.predict_now()
    env.model.answer("requests.get(url)", "requests.head(url)")
    view = env.view(doc)
    assert view.shown.label == "Tab → line 4" and view.shown.label_line == 0
    env.qtbot.waitUntil(view.jump.isVisible, timeout=2000)
    return ed, view


def assert_on_caret_line_inside(ed: CodeEditor, rect: QRect) -> None:
    area = text_area(ed)
    assert area.contains(rect), (rect, area)
    assert rect.top() == ed.pointYFromPosition(ed.positionFromLine(0))


def test_a_long_caret_line_in_a_narrow_editor_pins_the_label_inside_the_right_edge(
    env: Env,
) -> None:
    ed, view = jump_with_width(env, 420, "import ˇ" + CALLS.removeprefix("import "))
    rect = view.jump.label_rect()
    line_end_x = ed.pointXFromPosition(ed.lineEndPosition(0))
    assert line_end_x > text_area(ed).right()  # the line runs past the edge: an EOL
    # annotation there would be off screen
    assert view.jump.pinned and view.jump.drawn == "Tab → line 4"
    assert_on_caret_line_inside(ed, rect)
    assert text_area(ed).right() - rect.right() <= 8  # at the edge, not anywhere
    # it paints: its frame's inside is the label's background
    image = ed.viewport().grab().toImage()
    inside = image.pixelColor(rect.left() + 2, rect.top() + 2)
    assert inside == QColor(_colour("label_back", ed.theme))


def test_the_label_sits_at_the_line_end_when_it_fits(env: Env) -> None:
    ed, view = jump_with_width(env, 900, ui.CALLS.replace("ˇ", "").replace("import ", "import ˇ"))
    rect = view.jump.label_rect()
    assert not view.jump.pinned and view.jump.drawn == "Tab → line 4"
    assert rect.left() > ed.pointXFromPosition(ed.lineEndPosition(0))
    assert_on_caret_line_inside(ed, rect)
    # narrowed until the line's end and the label no longer fit: pinned, still inside
    env.host.resize(260, 500)
    env.qtbot.waitUntil(lambda: view.jump.pinned, timeout=2000)
    assert_on_caret_line_inside(ed, view.jump.label_rect())
    # widened again: back at the line's end
    env.host.resize(900, 500)
    env.qtbot.waitUntil(lambda: not view.jump.pinned, timeout=2000)
    assert view.jump.label_rect().left() > ed.pointXFromPosition(ed.lineEndPosition(0))


def test_a_very_narrow_editor_shortens_the_label_and_keeps_it_inside(env: Env) -> None:
    ed, view = jump_with_width(env, 300, "import ˇ" + CALLS.removeprefix("import "))
    assert view.jump.drawn == "Tab → line 4"
    ed.setZoom(12)  # Ctrl+wheel: the label grows with the text, the view does not
    env.qtbot.waitUntil(lambda: view.jump.drawn == "→ 4", timeout=2000)
    assert_on_caret_line_inside(ed, view.jump.label_rect())
    ed.setZoom(40)  # even "→ 4" is too wide: elided, never past the edge
    env.qtbot.waitUntil(lambda: view.jump.drawn != "→ 4", timeout=2000)
    assert view.jump.drawn.endswith("…") or view.jump.drawn == ""
    assert text_area(ed).contains(view.jump.label_rect()) or not view.jump.isVisible()


def test_the_label_follows_scrolls_and_hides_off_screen(env: Env) -> None:
    text = "import ˇ" + CALLS.removeprefix("import ") + "".join(f"x{i} = {i}\n" for i in range(80))
    ed, view = jump_with_width(env, 420, text)
    ed.setFirstVisibleLine(30)  # the caret's line scrolled away
    env.qtbot.waitUntil(lambda: not view.jump.isVisible(), timeout=2000)
    ed.setFirstVisibleLine(0)
    env.qtbot.waitUntil(view.jump.isVisible, timeout=2000)
    assert_on_caret_line_inside(ed, view.jump.label_rect())
    # scrolled sideways past the line's end: pinned at the right edge, still on the line
    ed.setXOffset(ed.pointXFromPosition(ed.lineEndPosition(0)) + 400)
    env.qtbot.waitUntil(lambda: view.jump.pinned, timeout=2000)
    assert text_area(ed).contains(view.jump.label_rect())


def test_short_label() -> None:
    assert short_label("Tab → line 142") == "→ 142"
    assert short_label("Tab → use.py:3") == "→ use.py:3"
    assert short_label("Tab ⇥ (hold Alt to see the edit)") == "Tab ⇥"


def test_the_jump_scrolls_the_whole_edit_into_a_narrow_editor(env: Env) -> None:
    """Found in a user run (requests' sessions.py, the chat panel open): Tab jumped to a site
    near a long line's end and the view scrolled just enough for the caret, so the boxed old
    name and the new one beside it were past the right edge. The jump (asked for by Tab)
    scrolls sideways until the box and the new text are on screen."""
    far = "    return " + "helper_value + " * 4 + "requests.get(url)\n"
    marked = ui.CALLS.replace("ˇ", "").replace("    return requests.get(url)\n", far)
    ed, view = jump_with_width(env, 420, "import ˇ" + marked.removeprefix("import "))
    ui.press(env.qtbot, ed, Qt.Key.Key_Tab)  # the first Tab jumps
    env.qtbot.waitUntil(lambda: view.shown.ghost == "head", timeout=2000)
    area = text_area(ed)
    (box_start, box_end) = view.shown.boxes[0]
    assert area.left() <= ed.pointXFromPosition(box_start)
    assert ed.pointXFromPosition(box_end) <= area.right()
    env.qtbot.waitUntil(lambda: not view.overlay.ghost_rect().isEmpty(), timeout=2000)
    ghost = view.overlay.ghost_rect()
    width = ed.textWidth(32, "head")  # the new text drawn beside the box
    assert ghost.left() + width <= area.right(), (ghost, area)
