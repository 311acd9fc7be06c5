"""Ctrl+click Go to Definition in one editor (VS Code's): while Ctrl is held, the identifier
under the mouse pointer is underlined (indicator 24, a plain underline in the link colour);
Ctrl + left press on one puts the caret there and asks the owner to go to its definition
(``go(position)``, the language owner's F12 at that byte position). The press is taken (with
its release), so it adds no caret: Scintilla's own Ctrl+click adds a selection, which stays
where there is no identifier under the pointer (whitespace, punctuation) and with Alt or
Shift held as well (VS Code's multi-cursor click is Alt+click; here Alt drags a rectangle).

Scintilla gives the position from the mouse point (``positionFromPointClose``: -1 when the
point is not over text) and the word around it (``wordStartPosition``/``wordEndPosition``
with the lexer's word characters); a word that starts with a digit is no identifier. Nothing
here talks to a server: it is installed by ``app.ui.owners.language`` on the editors it has
opened on a language server."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QCursor, QKeyEvent, QMouseEvent

from .editor import CodeEditor

__all__ = ["LINK_INDICATOR", "DefinitionLink", "identifier_span"]

LINK_INDICATOR = 24  # the others: 12 apply review, 20-22 diagnostics, 23 likely bug, 26-29
INDIC_PLAIN = 0  # a straight underline
LINK_COLOUR = 0xF0A03C  # BGR: VS Code's link blue


def identifier_span(editor: CodeEditor, position: int) -> tuple[int, int] | None:
    """The byte range of the identifier at ``position`` (None over anything else)."""
    if position < 0:
        return None
    start = editor.wordStartPosition(position, True)
    end = editor.wordEndPosition(position, True)
    if end <= start:
        return None
    word = bytes(editor.textRange(start, end).data()).decode("utf-8", "replace")
    if not word or word[0].isdigit() or not (word[0].isalpha() or word[0] in "_$"):
        return None
    return start, end


class DefinitionLink(QObject):
    """See the module docstring. ``span`` is the underlined range, if any."""

    def __init__(self, editor: CodeEditor, go: Callable[[int], None]) -> None:
        super().__init__(editor)
        self._editor = editor
        self._go = go
        self.span: tuple[int, int] | None = None
        self._took_press = False
        editor.indicSetStyle(LINK_INDICATOR, INDIC_PLAIN)
        editor.indicSetFore(LINK_INDICATOR, LINK_COLOUR)
        # over the text, as the squiggles (bafc1cd): the caret line's and the selection's
        # backgrounds cover an indicator drawn under it
        editor.indicSetUnder(LINK_INDICATOR, False)
        viewport = editor.viewport()
        viewport.setMouseTracking(True)
        viewport.installEventFilter(self)
        editor.installEventFilter(self)

    def _span_at(self, point: QPoint) -> tuple[int, int] | None:
        return identifier_span(
            self._editor, self._editor.positionFromPointClose(point.x(), point.y())
        )

    def _underline(self, span: tuple[int, int] | None) -> None:
        if span == self.span:
            return
        editor = self._editor
        editor.setIndicatorCurrent(LINK_INDICATOR)
        if self.span is not None:
            start, end = self.span
            editor.indicatorClearRange(start, end - start)
        self.span = span
        if span is not None:
            editor.indicatorFillRange(span[0], span[1] - span[0])

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self._editor:
            if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                assert isinstance(event, QKeyEvent)
                if event.key() == Qt.Key.Key_Control:
                    self._ctrl_key(kind == QEvent.Type.KeyPress)
            elif kind == QEvent.Type.FocusOut:
                self._underline(None)
            return False
        if kind == QEvent.Type.MouseMove:
            assert isinstance(event, QMouseEvent)
            held = self._ctrl_only(event) and event.buttons() == Qt.MouseButton.NoButton
            self._underline(self._span_at(event.position().toPoint()) if held else None)
        elif kind == QEvent.Type.MouseButtonPress:
            assert isinstance(event, QMouseEvent)
            return self._press(event)
        elif kind == QEvent.Type.MouseButtonRelease and self._took_press:
            self._took_press = False
            return True
        elif kind == QEvent.Type.Leave:
            self._underline(None)
        return False

    @staticmethod
    def _ctrl_only(event: QMouseEvent) -> bool:
        return event.modifiers() == Qt.KeyboardModifier.ControlModifier

    def _ctrl_key(self, down: bool) -> None:
        """Ctrl pressed with the pointer over the text: underline at once (no move needed)."""
        if not down:
            self._underline(None)
            return
        viewport = self._editor.viewport()
        point = viewport.mapFromGlobal(QCursor.pos())
        self._underline(self._span_at(point) if viewport.rect().contains(point) else None)

    def _press(self, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton or not self._ctrl_only(event):
            return False
        position = self._editor.positionFromPointClose(
            event.position().toPoint().x(), event.position().toPoint().y()
        )
        if identifier_span(self._editor, position) is None:
            return False  # Scintilla's Ctrl+click: one more caret
        self._underline(None)
        self._took_press = True
        self._editor.gotoPos(position)
        self._go(position)
        return True
