"""How a next-edit suggestion looks in the real editor (issue 15). Nothing here touches the
document or its undo history: everything is drawn beside the text until the user accepts.

- **An insertion** at the caret's line is ghost text: the same ``GhostOverlay`` the inline
  completion draws with (one per editor, shared: only one of them draws at a time, the
  completion first), its further lines an annotation below the line.
- **A replacement or deletion** boxes the removed text in place (a translucent red box
  indicator, as the apply review boxes deletions; never struck through over the code) and
  shows the new text beside it: one change within a line as ghost text right after the boxed
  text (the rest of the line pushed right, as Cursor and Zed show it), several changes in a
  line as the new line in an end-of-line annotation ("Tab ⇥ the new line"), new lines in an
  annotation below; a deletion says "Tab ⇥ delete".
- **A jump**: the shown edit is elsewhere: a label on the caret's line, "Tab → line 142"
  ("Tab → name.py:142" for another open file), and an arrow in the fold margin on the target
  line. The label is a small widget over the viewport (``JumpLabel``), not an end-of-line
  annotation: Scintilla draws those past the line's end and never scrolls to them, so on a
  narrowed editor (the chat panel open) or a long line "Tab → line N" ran past the right
  edge, and the user could not see where Tab goes. The label sits right after the line's end
  when it fits there, else it is pinned inside the text area's right edge on that line (over
  the code, opaque and framed: Cursor's "Tab to jump" floats the same way), shortened to
  "→ 142" and then elided when even that is too wide; it follows scrolls, resizes, zoom and
  folds, and hides while the caret's line is off screen. Scintilla offers no better: an EOL
  annotation cannot be placed, ``SCI_SETXOFFSET`` would scroll the view unasked, and a
  margin's text is a few characters wide.
- **Subtle mode** (``nextEdit.mode: "subtle"``): only the marker (the arrow, and the label
  "Tab ⇥" on the edit's line) until Alt is held, then the edit as in eager mode.

Offsets in ``session`` are ``str`` indices; Scintilla's are UTF-8 bytes: ``Positions`` converts
with Scintilla's line character index (no Python pass over the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QWidget

from forecode_core.next_edit.session import Offer

from .editor import CodeEditor
from .inline_completion import GhostOverlay
from .theme import Theme, bgr

__all__ = ["JUMP_MARKER", "JumpLabel", "NextEditView", "Positions", "Shown", "jump_label"]

# Scintilla constants (Scintilla.h).
SC_LINECHARACTERINDEX_UTF32 = 1
INDIC_FULLBOX = 16
ANNOTATION_STANDARD = 1
EOLANNOTATION_BOXED = 2
SC_MARK_SHORTARROW = 4
# Setting "" leaves an empty (still drawn) annotation: NULL removes it.
SCI_ANNOTATIONSETTEXT, SCI_EOLANNOTATIONSETTEXT = 2540, 2740
FOLD_MARGIN = 2

#: The box around removed text (find bar: 28, 29; find in files: 27; apply review: 12).
BOX_INDICATOR = 26
#: The jump target's arrow in the fold margin (git's gutter: 12-15, folding: 25-31).
JUMP_MARKER = 10
#: Styles of the new text and of the marker's label (no lexer uses these; the ghost's is 250,
#: the apply review's view 244-246).
STYLE_NEW, STYLE_LABEL = 247, 248

# Colours per theme darkness: (dark, light).
_COLOURS = {
    "box": ("#f14c4c", "#d1242f"),
    "new_fore": ("#9fe0b0", "#116329"),
    "new_back": ("#1d3a29", "#dcf5e3"),
    "label_fore": ("#9cdcfe", "#0550ae"),
    "label_back": ("#1f2d3d", "#ddf4ff"),
    "marker": ("#3794ff", "#0969da"),
}


def _colour(name: str, theme: Theme) -> str:
    dark, light = _COLOURS[name]
    return dark if theme.dark else light


def jump_label(offer: Offer, line: int) -> str:
    """The jump marker's text: "Tab → line 142", or "Tab → name.py:142" for another file."""
    if offer.path:
        return f"Tab → {PurePosixPath(offer.path).name}:{line + 1}"
    return f"Tab → line {line + 1}"


def short_label(label: str) -> str:
    """The label for a narrow view: "Tab → line 142" -> "→ 142", "Tab → a.py:3" -> "→ a.py:3",
    subtle mode's hint -> "Tab ⇥"."""
    if label.startswith("Tab ⇥"):
        return "Tab ⇥"
    if not label.startswith("Tab → "):
        return label
    return "→ " + label.removeprefix("Tab → ").removeprefix("line ")


#: pixels between the line's end and the label, and between the label and the view's edge
LABEL_GAP, LABEL_EDGE = 12, 4


class JumpLabel(QWidget):
    """The jump marker's label, over the editor's viewport on one line (module doc): right
    after the line's end when it fits, else pinned inside the text area's right edge. Its
    geometry is its box; it is placed again after anything that can move the line on screen
    (``updateUi``: scrolls, edits; ``resized``; ``painted``: folds, zoom, annotations), and a
    placing that finds the same box does nothing, so the repaint it causes does not loop."""

    def __init__(self, editor: CodeEditor) -> None:
        super().__init__(editor.viewport())
        self.editor = editor
        self.line = -1
        self.text = ""  # the full label
        self.drawn = ""  # what is drawn: the label, shortened or elided to fit
        self.pinned = False  # at the right edge (the line's end is off to the right)
        self._fonts: tuple[tuple[str | None, int], QFont, QFontMetrics] | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()
        editor.updateUi.connect(self._follow)
        editor.resized.connect(self._follow)
        editor.painted.connect(self._follow)

    def show_label(self, line: int, text: str) -> None:
        self.line, self.text = line, text
        self.place()

    def clear(self) -> None:
        self.line, self.text, self.drawn = -1, "", ""
        if self.isVisible():
            self.hide()

    def label_rect(self) -> QRect:
        """Where the label is, in viewport coordinates (empty when it is not shown)."""
        return self.geometry() if self.isVisible() else QRect()

    def _follow(self, *_args: object) -> None:
        if self.text:
            self.place()

    def _font(self) -> tuple[QFont, QFontMetrics]:
        """The editor's font, italic, at its zoom (Scintilla's zoom adds points); cached: it is
        asked after every paint of the view while the label shows."""
        ed = self.editor
        key = (ed.font_family, max(2, ed.font_size + ed.zoom()))
        if self._fonts is None or self._fonts[0] != key:
            family = key[0] or QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
            font = QFont(family)
            font.setPointSize(key[1])
            font.setItalic(True)
            self._fonts = (key, font, QFontMetrics(font))
        return self._fonts[1], self._fonts[2]

    def _text_area(self) -> QRect:
        ed = self.editor
        left = ed.marginLeft() + sum(ed.marginWidthN(i) for i in range(ed.margins()))
        view = ed.viewport().rect()
        return QRect(left, 0, max(0, view.width() - left - ed.marginRight()), view.height())

    def _box(self) -> tuple[QRect, str, bool]:
        """The label's box in viewport coordinates, the text drawn and whether it is pinned;
        an empty box when the line is not on screen."""
        ed = self.editor
        if not self.text or not (0 <= self.line < ed.lineCount()) or not ed.lineVisible(self.line):
            return QRect(), "", False
        area = self._text_area()
        end = ed.lineEndPosition(self.line)
        y = ed.pointYFromPosition(end)
        height = ed.textHeight(self.line)
        if y + height <= 0 or y >= area.height():
            return QRect(), "", False
        metrics = self._font()[1]
        pad = metrics.horizontalAdvance(" ")
        room = area.width() - 2 * LABEL_EDGE
        drawn = self.text
        for candidate in (self.text, short_label(self.text)):
            drawn = candidate
            if metrics.horizontalAdvance(candidate) + 2 * pad <= room:
                break
        else:
            drawn = metrics.elidedText(drawn, Qt.TextElideMode.ElideRight, max(0, room - 2 * pad))
            if not drawn:
                return QRect(), "", False
        width = metrics.horizontalAdvance(drawn) + 2 * pad
        natural = ed.pointXFromPosition(end) + LABEL_GAP
        right = area.right() + 1 - LABEL_EDGE
        if area.left() <= natural and natural + width <= right:
            return QRect(natural, y, width, height), drawn, False
        return QRect(max(area.left(), right - width), y, width, height), drawn, True

    def place(self) -> None:
        box, drawn, pinned = self._box()
        if box.isEmpty():
            if self.isVisible():
                self.hide()
            return
        changed = (box, drawn, pinned) != (self.geometry(), self.drawn, self.pinned)
        self.drawn, self.pinned = drawn, pinned
        if box != self.geometry():
            self.setGeometry(box)
        if not self.isVisible():
            self.show()
            self.raise_()
        elif changed:
            self.update()

    def paintEvent(self, _event: object) -> None:
        if not self.drawn:
            return
        theme: Theme = self.editor.theme
        painter = QPainter(self)
        box = self.rect()
        painter.fillRect(box, QColor(_colour("label_back", theme)))
        painter.setPen(QPen(QColor(_colour("marker", theme)), 1))
        painter.drawRect(box.adjusted(0, 0, -1, -1))
        painter.setPen(QColor(_colour("label_fore", theme)))
        painter.setFont(self._font()[0])
        painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), self.drawn)
        painter.end()


class Positions:
    """``str`` offsets <-> Scintilla's UTF-8 byte positions, by its line character index."""

    def __init__(self, editor: CodeEditor) -> None:
        self.editor = editor
        editor.allocateLineCharacterIndex(SC_LINECHARACTERINDEX_UTF32)

    def to_bytes(self, offset: int) -> int:
        ed = self.editor
        line = ed.lineFromIndexPosition(offset, SC_LINECHARACTERINDEX_UTF32)
        start = ed.positionFromLine(line)
        rest = offset - ed.indexPositionFromLine(line, SC_LINECHARACTERINDEX_UTF32)
        return ed.positionRelative(start, rest) if rest > 0 else start

    def to_chars(self, pos: int) -> int:
        ed = self.editor
        line = ed.lineFromPosition(pos)
        start = ed.positionFromLine(line)
        index = ed.indexPositionFromLine(line, SC_LINECHARACTERINDEX_UTF32)
        return index + ed.countCharacters(start, pos)

    def release(self) -> None:
        self.editor.releaseLineCharacterIndex(SC_LINECHARACTERINDEX_UTF32)


@dataclass(frozen=True)
class Shown:
    """What the view draws now (for tests and screenshots: the pixels follow from it)."""

    ghost: str = ""  # ghost text at ``ghost_at`` (bytes)
    ghost_at: int = -1
    boxes: tuple[tuple[int, int], ...] = ()  # byte ranges boxed
    eol: tuple[int, str] | None = None  # (line, end-of-line annotation)
    label_line: int = -1  # the line the label (``JumpLabel``) is on
    below: tuple[int, str] | None = None  # (line, annotation under it)
    marker_line: int = -1  # the arrow in the margin
    label: str = ""  # the jump marker's or subtle mode's label ("" when the edit is shown)


class NextEditView:
    """Draws one offer in one editor. ``show`` replaces whatever was drawn; ``clear`` removes
    it. The owner decides what to show (``session.Session.shown``) and when."""

    def __init__(self, editor: CodeEditor) -> None:
        self.editor = editor
        self.positions = Positions(editor)
        self.shown = Shown()
        found = editor.findChild(GhostOverlay)
        self.overlay = found if isinstance(found, GhostOverlay) else GhostOverlay(editor)
        self.jump = JumpLabel(editor)
        editor.annotationSetVisible(ANNOTATION_STANDARD)
        editor.eOLAnnotationSetVisible(EOLANNOTATION_BOXED)
        editor.indicSetStyle(BOX_INDICATOR, INDIC_FULLBOX)
        editor.indicSetAlpha(BOX_INDICATOR, 40)
        editor.indicSetOutlineAlpha(BOX_INDICATOR, 230)
        editor.markerDefine(JUMP_MARKER, SC_MARK_SHORTARROW)
        editor.setMarginMaskN(FOLD_MARGIN, editor.marginMaskN(FOLD_MARGIN) | (1 << JUMP_MARKER))
        self._themed: Theme | None = None
        # what is drawn and where (a caret move redraws only when the drawing would change)
        self._drawn: tuple[object, ...] | None = None

    def _same(self, key: tuple[object, ...]) -> bool:
        if key == self._drawn and self.shown != Shown():
            return True
        self.clear()
        self._drawn = key
        return False

    def _theme(self) -> None:
        ed = self.editor
        theme = ed.theme
        if theme is self._themed and ed.styleFore(STYLE_NEW) == bgr(_colour("new_fore", theme)):
            return
        self._themed = theme
        family = (
            ed.font_family or QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        )
        for style, fore, back, italic in (
            (STYLE_NEW, "new_fore", "new_back", False),
            (STYLE_LABEL, "label_fore", "label_back", True),
        ):
            ed.styleSetFont(style, family)
            ed.styleSetSize(style, ed.font_size)
            ed.styleSetFore(style, bgr(_colour(fore, theme)))
            ed.styleSetBack(style, bgr(_colour(back, theme)))
            ed.styleSetItalic(style, italic)
        ed.indicSetFore(BOX_INDICATOR, bgr(_colour("box", theme)))
        ed.markerSetFore(JUMP_MARKER, bgr(_colour("marker", theme)))
        ed.markerSetBack(JUMP_MARKER, bgr(_colour("marker", theme)))

    # ----- drawing ----------------------------------------------------------------------------
    def clear(self, *, ghost: bool = True) -> None:
        """Remove what is drawn; ``ghost=False`` leaves the shared ghost overlay alone (the
        completion is drawing in it)."""
        ed, s = self.editor, self.shown
        if s.boxes:
            ed.setIndicatorCurrent(BOX_INDICATOR)
            ed.indicatorClearRange(0, ed.textLength())
        if s.eol is not None and s.eol[0] < ed.lineCount():
            ed.send(SCI_EOLANNOTATIONSETTEXT, s.eol[0], 0)
        if s.below is not None and s.below[0] < ed.lineCount():
            ed.send(SCI_ANNOTATIONSETTEXT, s.below[0], 0)
        if s.marker_line >= 0:
            ed.markerDeleteAll(JUMP_MARKER)
        if s.label_line >= 0:
            self.jump.clear()
        if ghost and s.ghost:
            self.overlay.clear()
        self.shown = Shown()
        self._drawn = None

    def show_jump(self, offer: Offer, target_line: int) -> None:
        """The marker: "Tab → line N" on the caret's line (``JumpLabel``), the arrow on the
        target line."""
        ed = self.editor
        if self._same(("jump", offer, target_line, ed.lineFromPosition(ed.currentPos()))):
            return
        self._theme()
        caret_line = ed.lineFromPosition(ed.currentPos())
        label = jump_label(offer, target_line)
        self.jump.show_label(caret_line, label)
        marker = -1
        if not offer.path and 0 <= target_line < ed.lineCount():
            ed.markerAdd(target_line, JUMP_MARKER)
            marker = target_line
        self.shown = Shown(label_line=caret_line, marker_line=marker, label=label)

    def show_marker(self, offer: Offer) -> None:
        """Subtle mode: the arrow and "Tab ⇥" at the edit's line, not the edit."""
        if self._same(("marker", offer)):
            return
        self._theme()
        ed = self.editor
        line = ed.lineFromPosition(self.positions.to_bytes(offer.start))
        ed.markerAdd(line, JUMP_MARKER)
        hint = "Tab ⇥ (hold Alt to see the edit)"
        self.jump.show_label(line, hint)
        self.shown = Shown(label_line=line, marker_line=line, label=hint)

    def show_edit(self, offer: Offer) -> None:
        """The edit itself: ghost text for one insertion, else boxes and the new text beside."""
        if self._same(("edit", offer)):
            return
        self._theme()
        if offer.is_insertion and len(offer.edits) == 1:
            self._show_ghost(offer)
        else:
            self._show_replacement(offer)

    def _show_ghost(self, offer: Offer) -> None:
        ed = self.editor
        edit = offer.edits[0]
        at = self.positions.to_bytes(edit.start)
        line = ed.lineFromPosition(at)
        first, _, more = edit.new.partition("\n")
        end = ed.lineEndPosition(line)
        tail = bytes(ed.textRange(at, end).data()).decode("utf-8", "replace")
        below: tuple[int, str] | None = None
        if more:
            shown_more = (more + tail if tail else more).replace("\t", " " * ed.tab_size)
            ed.annotationSetText(line, shown_more)
            ed.annotationSetStyle(line, STYLE_NEW)
            below = (line, shown_more)
            tail = ""
        if first:
            self.overlay.show_ghost(at, first, tail)
        self.shown = Shown(ghost=first, ghost_at=at, below=below)

    def _lines_as_edited(self, offer: Offer) -> tuple[int, str]:
        """The last line the offer touches and its lines' text as they will read."""
        ed, pos = self.editor, self.positions
        first = ed.lineFromPosition(pos.to_bytes(offer.start))
        end = pos.to_bytes(offer.end)
        last = ed.lineFromPosition(end)
        if last > first and end == ed.positionFromLine(last):
            last -= 1  # the span ends with a line break: its lines end above
        lo_b = ed.positionFromLine(first)
        lo = pos.to_chars(lo_b)
        hi_b = max(ed.lineEndPosition(last), end)  # the span's own line break included
        old = bytes(ed.textRange(lo_b, hi_b).data()).decode("utf-8", "replace")
        new = old
        for e in reversed(offer.edits):
            new = new[: e.start - lo] + e.new + new[e.end - lo :]
        new = new.replace("\r", "")
        return last, new[:-1] if new.endswith("\n") else new

    def _show_replacement(self, offer: Offer) -> None:
        ed = self.editor
        boxes: list[tuple[int, int]] = []
        ed.setIndicatorCurrent(BOX_INDICATOR)
        for e in offer.edits:
            if e.end > e.start:
                s, t = self.positions.to_bytes(e.start), self.positions.to_bytes(e.end)
                ed.indicatorFillRange(s, t - s)
                boxes.append((s, t))
        last_line, new = self._lines_as_edited(offer)
        eol: tuple[int, str] | None = None
        below: tuple[int, str] | None = None
        one = offer.edits[0]
        if len(offer.edits) == 1 and one.new and "\n" not in one.old + one.new:
            # the new text right after the boxed old text, pushing the rest of the line right
            at = self.positions.to_bytes(one.end)
            end = ed.lineEndPosition(ed.lineFromPosition(at))
            tail = bytes(ed.textRange(at, end).data()).decode("utf-8", "replace")
            self.overlay.show_ghost(at, one.new, tail)
            self.shown = Shown(ghost=one.new, ghost_at=at, boxes=tuple(boxes))
            return
        if offer.is_deletion and not new.strip():
            eol = (last_line, "Tab ⇥ delete")
        elif "\n" not in new:
            eol = (last_line, "Tab ⇥ " + new.strip())
        else:
            below = (last_line, new.replace("\t", " " * ed.tab_size))
            eol = (last_line, "Tab ⇥ replace with the lines below")
        ed.eOLAnnotationSetText(eol[0], eol[1])
        ed.eOLAnnotationSetStyle(eol[0], STYLE_NEW if not below else STYLE_LABEL)
        if below is not None:
            ed.annotationSetText(below[0], below[1])
            ed.annotationSetStyle(below[0], STYLE_NEW)
        self.shown = Shown(boxes=tuple(boxes), eol=eol, below=below)

    def detach(self) -> None:
        self.clear()
        self.positions.release()
        self.jump.deleteLater()
