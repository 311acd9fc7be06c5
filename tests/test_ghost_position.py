"""The ghost text is drawn at the caret, wherever the view is.

Real widgets (offscreen): a ``CodeEditor`` and ``InlineCompletion`` with a scripted engine at the
engine seam (the subject here is where the editor draws, not what a model says). Every check
compares two grabs of the viewport, with and without the suggestion, and asserts that the pixels
the ghost changed all lie on the caret's line as Scintilla itself places it
(``SCI_POINTXFROMPOSITION`` / ``SCI_POINTYFROMPOSITION`` and the line height), right of the
caret, and that there are such pixels. Users saw the ghost 1, 2 and 19 lines away from the caret
after scrolling: Scintilla scrolls small steps by blitting the viewport, which moves its child
widgets with it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from app.ui.inline_completion import CompletionEngine, InlineCompletion
from forecode_core.completion.prompt import CompletionInput
from forecode_core.text.languages import by_id

SC_FOLDACTION_CONTRACT, SC_FOLDACTION_EXPAND = 0, 1
SC_UPDATE_V_SCROLL = 0x4
GHOST = "GHOST_text(1)"
NOISE = 24
EDGE = 2


class _Done:
    def __init__(self, text: str) -> None:
        self.text = text
        self.metrics: dict[str, object] = {}
        self.stop_reason = "eos"


class OneReplyEngine(CompletionEngine):
    """Answers every request with the same one-line suggestion."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def is_ready(self) -> bool:
        return True

    def complete(self, inp: CompletionInput, max_tokens: int) -> int:
        self._next += 1
        self.chunk.emit(self._next, GHOST)
        self.done.emit(self._next, _Done(GHOST))
        return self._next

    def warm(self, inp: CompletionInput) -> None:
        pass

    def cancel(self, request_id: int) -> None:
        pass


def _source(functions: int = 60) -> str:
    """A Python file: functions of six lines (foldable), some long lines (horizontal scroll)."""
    out = []
    for i in range(functions):
        out.append(f"def function_{i}(name, value):\n")
        out.append(f'    greeting = f"hello {{name}}!"  # {"x" * (i % 7) * 30}\n')
        out.append(f"    total = value * {i}\n")
        out.append("    if total > 10:\n")
        out.append("        return greeting\n")
        out.append("    result = \n")  # the caret goes after "result = "
    return "".join(out)


def _settle(qtbot: QtBot, ms: int = 0) -> None:
    QApplication.processEvents()
    if ms:
        qtbot.wait(ms)
    QApplication.processEvents()


@pytest.fixture
def setup(qtbot: QtBot) -> Iterator[tuple[CodeEditor, InlineCompletion]]:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.resize(760, 420)
    ed.set_language(by_id("python"))
    ed.setCaretPeriod(0)  # no blinking: two grabs differ only by the ghost
    ed.show()
    ed.focus()
    inline = InlineCompletion(OneReplyEngine(), debounce_ms=10, parent=ed)
    inline.attach(ed)
    ed.set_text(_source())
    ed.colourise(0, -1)
    _settle(qtbot)
    yield ed, inline
    inline.attach(None)


def _grab(ed: CodeEditor) -> QImage:
    return ed.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def _diff_rect(a: QImage, b: QImage) -> QRect:
    """The bounding box of the pixels that clearly differ between two grabs of the same size.
    Scintilla draws a glyph cut by the viewport's right edge differently from one paint to the
    next: the last ``EDGE`` columns and differences of at most ``NOISE`` per channel do not
    count."""
    assert a.size() == b.size()
    w, h = a.width(), a.height()
    bpl = a.bytesPerLine()
    da, db = bytes(a.constBits()), bytes(b.constBits())  # type: ignore[call-overload]
    xs: list[int] = []
    ys: list[int] = []
    for y in range(h):
        ra, rb = da[y * bpl : y * bpl + 4 * w], db[y * bpl : y * bpl + 4 * w]
        if ra == rb:
            continue
        for x in range(w - EDGE):
            pa, pb = ra[4 * x : 4 * x + 3], rb[4 * x : 4 * x + 3]
            if pa != pb and max(abs(i - j) for i, j in zip(pa, pb, strict=True)) > NOISE:
                xs.append(x)
                ys.append(y)
    if not xs:
        return QRect()
    return QRect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)


def _caret_box(ed: CodeEditor) -> QRect:
    pos = ed.currentPos()
    x, y = ed.pointXFromPosition(pos), ed.pointYFromPosition(pos)
    return QRect(x, y, ed.viewport().width() - x, ed.textHeight(ed.lineFromPosition(pos)))


def _hidden_grab(qtbot: QtBot, ed: CodeEditor, inline: InlineCompletion) -> QImage:
    """The same view without the ghost (hidden by the controller's own path), then shown again."""
    saved = inline.suggestion
    inline.suggestion = ""
    inline._render()
    _settle(qtbot)
    without = _grab(ed)
    inline.suggestion = saved
    inline._render()
    _settle(qtbot)
    return without


def _assert_ghost_at_caret(
    qtbot: QtBot, ed: CodeEditor, inline: InlineCompletion, where: str
) -> None:
    """The suggestion is shown; what it paints lies on the caret's line, right of the caret."""
    assert inline.suggestion == GHOST, where
    for _attempt in range(3):
        # Painting a longer line than before can show the horizontal scroll bar (Scintilla
        # tracks the scroll width as it paints), which shrinks the viewport: compare two grabs
        # of one layout.
        _settle(qtbot)
        with_ghost = _grab(ed)
        without = _hidden_grab(qtbot, ed, inline)
        if with_ghost.size() == without.size() == _grab(ed).size():
            break
    drawn = _diff_rect(with_ghost, without)
    caret = _caret_box(ed)
    assert not drawn.isEmpty(), f"{where}: no ghost drawn (caret at {caret.topLeft()})"
    assert caret.top() <= drawn.top() and drawn.bottom() <= caret.bottom(), (
        f"{where}: ghost drawn at rows {drawn.top()}..{drawn.bottom()}, the caret's line is "
        f"rows {caret.top()}..{caret.bottom()} (line height {caret.height()})"
    )
    assert drawn.left() >= caret.left() - 2, (
        f"{where}: ghost drawn from x={drawn.left()}, the caret is at x={caret.left()}"
    )
    # The overlay's own account agrees: its box starts at the caret, one line high.
    overlay = inline.overlay
    assert overlay is not None
    box = overlay.ghost_rect()
    assert (box.left(), box.top(), box.height()) == (caret.left(), caret.top(), caret.height()), (
        where
    )


def _show_at(qtbot: QtBot, ed: CodeEditor, inline: InlineCompletion, line: int) -> None:
    """Caret at the end of ``line`` (a ``result = `` line) and a suggestion shown there."""
    inline.dismiss()
    pos = ed.lineEndPosition(line)
    ed.setEmptySelection(pos)
    _settle(qtbot)
    inline.request_now()
    qtbot.waitUntil(lambda: inline.suggestion == GHOST, timeout=2000)


def _result_line_in_view(ed: CodeEditor) -> int:
    """A ``result = `` line in the lower half of the view (or the first one on screen)."""
    first = ed.docLineFromVisible(ed.firstVisibleLine())
    last = ed.docLineFromVisible(ed.firstVisibleLine() + ed.linesOnScreen() - 1)
    candidates = [
        n for n in range(first, last) if ed.line_text(n).strip() == "result =" and ed.lineVisible(n)
    ]
    assert candidates, (first, last)
    return candidates[len(candidates) // 2]


def test_ghost_at_the_caret_after_scrolling_to_many_positions(
    qtbot: QtBot, setup: tuple[CodeEditor, InlineCompletion]
) -> None:
    ed, inline = setup
    # Small steps (Scintilla blits them) and big jumps (a full redraw), down and up.
    for step in (1, 1, 3, -2, 3, 3, 3, 5, -4, 10, 19, -19, 40, -1, -7, 2, 90, -60, 6):
        ed.lineScroll(0, step)
        _settle(qtbot)
        line = _result_line_in_view(ed)
        _show_at(qtbot, ed, inline, line)
        _assert_ghost_at_caret(qtbot, ed, inline, f"first visible {ed.firstVisibleLine()}")


def test_ghost_follows_when_the_view_scrolls_while_shown(
    qtbot: QtBot, setup: tuple[CodeEditor, InlineCompletion]
) -> None:
    ed, inline = setup
    ed.setFirstVisibleLine(100)
    _settle(qtbot)
    _show_at(qtbot, ed, inline, _result_line_in_view(ed))
    caret_line = ed.lineFromPosition(ed.currentPos())
    for step in (1, -2, 3, 1, 1, -5, 2, -1):  # the caret's line stays on screen
        ed.lineScroll(0, step)
        _settle(qtbot)
        first = ed.firstVisibleLine()
        assert first <= caret_line < first + ed.linesOnScreen()
        _assert_ghost_at_caret(qtbot, ed, inline, f"scrolled by {step} while shown")
    # Scrolled so far that the caret's line is off screen: nothing drawn anywhere.
    ed.lineScroll(0, 60)
    _settle(qtbot)
    assert inline.suggestion == GHOST
    assert _diff_rect(_grab(ed), _hidden_grab(qtbot, ed, inline)).isEmpty()
    # Back again: the ghost is on its line.
    ed.lineScroll(0, -60)
    _settle(qtbot)
    _assert_ghost_at_caret(qtbot, ed, inline, "scrolled back")


def test_ghost_at_the_caret_after_horizontal_scrolling(
    qtbot: QtBot, setup: tuple[CodeEditor, InlineCompletion]
) -> None:
    ed, inline = setup
    ed.setFirstVisibleLine(30)
    _settle(qtbot)
    _show_at(qtbot, ed, inline, _result_line_in_view(ed))
    for offset in (20, 45, 7, 0):
        ed.setXOffset(offset)
        _settle(qtbot)
        _assert_ghost_at_caret(qtbot, ed, inline, f"x offset {offset} while shown")
    # Scrolled right past the caret: the ghost never paints over the margins.
    ed.setXOffset(400)
    _settle(qtbot)
    drawn = _diff_rect(_grab(ed), _hidden_grab(qtbot, ed, inline))
    margins = sum(ed.marginWidthN(i) for i in range(ed.margins())) + ed.marginLeft()
    assert drawn.isEmpty() or drawn.left() >= margins
    ed.setXOffset(0)
    _settle(qtbot)
    _assert_ghost_at_caret(qtbot, ed, inline, "x offset back to 0")


def test_ghost_at_the_caret_with_folds_and_annotations_above(
    qtbot: QtBot, setup: tuple[CodeEditor, InlineCompletion]
) -> None:
    ed, inline = setup
    ed.setFirstVisibleLine(40)
    _settle(qtbot)
    _show_at(qtbot, ed, inline, _result_line_in_view(ed))
    caret_line = ed.lineFromPosition(ed.currentPos())
    # Fold the function above the caret's while the ghost is shown: the caret's line moves up.
    header = caret_line - 5 - 6
    assert ed.line_text(header).startswith("def ")
    y_before = ed.pointYFromPosition(ed.currentPos())
    ed.foldLine(header, SC_FOLDACTION_CONTRACT)
    _settle(qtbot)
    assert ed.pointYFromPosition(ed.currentPos()) < y_before  # the fold did move the caret
    _assert_ghost_at_caret(qtbot, ed, inline, "function above folded while shown")
    # A new suggestion with the fold in place.
    _show_at(qtbot, ed, inline, caret_line)
    _assert_ghost_at_caret(qtbot, ed, inline, "shown below a fold")
    # Annotations above the caret's line (a diagnostic, a review note) push it down.
    y_before = ed.pointYFromPosition(ed.currentPos())
    ed.annotationSetText(caret_line - 2, "a note above\nand its second line")
    ed.annotationSetStyle(caret_line - 2, 0)
    _settle(qtbot)
    assert ed.pointYFromPosition(ed.currentPos()) > y_before
    _assert_ghost_at_caret(qtbot, ed, inline, "annotation added above while shown")
    ed.foldLine(header, SC_FOLDACTION_EXPAND)
    _settle(qtbot)
    _assert_ghost_at_caret(qtbot, ed, inline, "fold opened while shown")
    _show_at(qtbot, ed, inline, caret_line)
    _assert_ghost_at_caret(qtbot, ed, inline, "shown below an annotation")


def test_ghost_at_the_caret_after_resize_and_zoom(
    qtbot: QtBot, setup: tuple[CodeEditor, InlineCompletion]
) -> None:
    ed, inline = setup
    ed.apply_settings(
        tab_size=4, insert_spaces=True, word_wrap=True, render_whitespace=False, rulers=()
    )
    ed.setFirstVisibleLine(60)
    _settle(qtbot)
    _show_at(qtbot, ed, inline, _result_line_in_view(ed))
    for width, height in ((560, 420), (420, 360), (900, 500)):
        ed.resize(width, height)  # wrapped long lines above the caret change height
        _settle(qtbot)
        ed.scrollCaret()
        _settle(qtbot)
        _assert_ghost_at_caret(qtbot, ed, inline, f"resized to {width}x{height}")
    for zoom in (3, -2, 0):
        ed.setZoom(zoom)  # Ctrl+wheel: Scintilla's own zoom
        _settle(qtbot)
        ed.scrollCaret()
        _settle(qtbot)
        _assert_ghost_at_caret(qtbot, ed, inline, f"zoom {zoom}")
    ed.set_font(ed.font_family, 15)  # the window's zoom: a bigger font
    _settle(qtbot)
    ed.scrollCaret()
    _settle(qtbot)
    _assert_ghost_at_caret(qtbot, ed, inline, "font 15 pt")
