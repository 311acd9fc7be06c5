"""Inline completions: ask the local engine after a pause in typing, show the answer as ghost
text at the caret, and insert it only when the user accepts.

- Debounce (``completion.debounceMs``); every keystroke cancels the request in flight, and a
  result for anything but the newest request is dropped.
- Ghost text never touches the document or its undo history: the first line is painted by an
  overlay at the caret, further lines are Scintilla annotations below the line.
- Tab accepts (one undo step), Ctrl+Right accepts the next word, Esc dismisses; typing the
  characters the suggestion starts with keeps the rest of it without a new request.
- Suggestions are asked for only where the rest of the line is empty or closing punctuation
  (Copilot's rule for "middle of line"): a prefix-only model cannot see what follows.
- Closers already after the caret (auto-closed: ``def main(ˇ)``) that the suggestion types
  itself (``path):``) are replaced when it is accepted, as VS Code does
  (``Suggestion.overwrite``, decided by ``forecode_core.completion.postprocess``): the ghost covers
  them and
  accepting leaves no ``))``. Accepting part of it replaces the ones that part types; typing a
  closer over the auto-inserted one (the caret steps over it) keeps the suggestion.
- While the user pauses elsewhere (the caret moved, nothing typed) and when a file is switched
  to, the engine is warmed with the prompt for that position, so the next request pays only
  for the last few tokens. The input carries the file's first lines (``head``) when the caret
  is far down: the prompt's stable start (``forecode_core.completion.prompt``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QFontMetrics, QKeyEvent, QPainter
from PySide6.QtWidgets import QWidget

from forecode_core.completion.postprocess import postprocess
from forecode_core.completion.prompt import (
    CONTEXT_LINES_ABOVE,
    CONTEXT_LINES_BELOW,
    HEAD_SEND_LINES,
    CompletionInput,
    Snippet,
    context_window,
)
from forecode_core.next_edit.input import NextEditInput

from .editor import CodeEditor
from .theme import Theme, bgr

__all__ = [
    "CONTEXT_LINES_ABOVE",
    "CONTEXT_LINES_BELOW",
    "CompletionEngine",
    "GhostOverlay",
    "InlineCompletion",
    "Outcome",
]

GHOST_STYLE = 250  # a style number no lexer uses, for annotation lines
SC_MOD_INSERTTEXT, SC_MOD_DELETETEXT = 0x1, 0x2
SC_PERFORMED_USER = 0x10
ANNOTATION_STANDARD = 1
_REST_OK = re.compile(r"[\s)\]}\"'`;,:]*")
_WORD = re.compile(r"\s*[\w]+|\s*[^\w\s]+|\s+")


class CompletionEngine(QObject):
    """The seam between the editor and the local engine (the real one wraps ``EngineClient``;
    tests can plug in a scripted fake). Signals are delivered on the UI thread.

    Next-edit predictions answer on their own signals (``next_edit_done``/``next_edit_error``),
    so a completion's listener never sees them."""

    chunk = Signal(int, str)
    done = Signal(int, object)  # (request id, protocol Done)
    error = Signal(int, str)
    state = Signal(object, str)  # (the EngineState, its detail)
    next_edit_done = Signal(int, object)  # (request id, protocol Done: the region's rewrite)
    next_edit_error = Signal(int, str)

    def complete(self, inp: CompletionInput, max_tokens: int) -> int:
        raise NotImplementedError

    def warm(self, inp: CompletionInput) -> None:
        raise NotImplementedError

    def next_edit(self, inp: NextEditInput, max_tokens: int | None = None) -> int:
        """Ask for the next edit at ``inp``; the answer comes as ``next_edit_done`` or
        ``next_edit_error`` with the returned id (``cancel`` stops it)."""
        raise NotImplementedError

    def cancel(self, request_id: int) -> None:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass
class Outcome:
    """What happened to one request (for the status bar, tests and the benchmark)."""

    request_id: int
    requested_at: float
    first_line_ms: float | None = None
    done_ms: float | None = None
    shown: str = ""
    dropped: str | None = None
    metrics: dict[str, object] = field(default_factory=dict)


class GhostOverlay(QWidget):
    """Paints the first line of a suggestion at the caret, pushing the rest of the line right.

    The widget is exactly the ghost's box (clipped to the text area), hidden when there is
    nothing to show, so showing, changing or moving it repaints only that box. Its place is
    taken from Scintilla (``SCI_POINTXFROMPOSITION``/``SCI_POINTYFROMPOSITION``, the line's
    height) and checked again after anything that can move the caret's line on screen:
    Scintilla scrolls up to ten lines by blitting the viewport, and ``QWidget.scroll`` moves
    the viewport's children with the pixels (a full-viewport overlay drifted a line per small
    scroll and painted the ghost over other lines); folds, annotations above, resizes, zoom and
    margin changes move the line without a scroll.
    """

    def __init__(self, editor: CodeEditor) -> None:
        super().__init__(editor.viewport())
        self.editor = editor
        self.anchor = -1  # byte position of the caret the ghost is drawn at
        self.ghost = ""
        self.tail = ""
        self._box = QRect()  # the ghost's box in viewport coordinates (may exceed the view)
        self._font_cache: (
            tuple[tuple[str | None, int, int], tuple[QFont, QFont, QFontMetrics, QFontMetrics]]
            | None
        ) = None
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.hide()
        # Re-placed after scrolls, edits and selection moves (updateUi), resizes, and after
        # every paint of the view: a fold, an annotation above or a zoom repaints the view
        # without an updateUi. Re-placing does nothing when the box has not moved, so the
        # repaint a move causes does not loop.
        editor.updateUi.connect(self._follow)
        editor.resized.connect(self._follow)
        editor.painted.connect(self._follow)

    def _follow(self, *_args: object) -> None:
        if self.ghost:
            self._place(force=False)

    def show_ghost(self, pos: int, ghost: str, tail: str) -> None:
        changed = (pos, ghost, tail) != (self.anchor, self.ghost, self.tail)
        self.anchor, self.ghost, self.tail = pos, ghost, tail
        self._place(force=changed)

    def clear(self) -> None:
        self.ghost = ""
        self._box = QRect()
        if self.isVisible():
            self.hide()

    def ghost_rect(self) -> QRect:
        """Where the ghost is painted, in viewport coordinates (empty when it is not)."""
        if not self.isVisible():
            return QRect()
        return self.geometry()

    def _fonts(self) -> tuple[QFont, QFont, QFontMetrics, QFontMetrics]:
        ed = self.editor
        # Scintilla's zoom (Ctrl+wheel) adds points to every style's size, never below 2.
        size = max(2, ed.font_size + ed.zoom())
        key = (ed.font_family, ed.font_size, size)
        cached = self._font_cache
        if cached is None or cached[0] != key:
            family = (
                ed.font_family
                or QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
            )
            font = QFont(family)
            font.setPointSize(size)
            italic = QFont(font)
            italic.setItalic(True)
            cached = (key, (font, italic, QFontMetrics(font), QFontMetrics(italic)))
            self._font_cache = cached
        return cached[1]

    def _text_area(self) -> QRect:
        """The part of the viewport that shows text (right of the margins)."""
        ed = self.editor
        left = ed.marginLeft() + sum(ed.marginWidthN(i) for i in range(ed.margins()))
        view = ed.viewport().rect()
        return QRect(left, 0, max(0, view.width() - left - ed.marginRight()), view.height())

    def _ghost_box(self) -> QRect:
        """The area the ghost covers now, in viewport coordinates (empty: nothing to draw)."""
        if not self.ghost or self.anchor < 0:
            return QRect()
        ed = self.editor
        _, _, metrics, italic_metrics = self._fonts()
        pos = self.anchor
        x, y = ed.pointXFromPosition(pos), ed.pointYFromPosition(pos)
        line = ed.lineFromPosition(pos)
        height = ed.textHeight(line)
        ghost = self.ghost.replace("\t", " " * ed.tab_size)
        width = max(
            metrics.horizontalAdvance(ghost + self.tail),
            italic_metrics.horizontalAdvance(ghost) + metrics.horizontalAdvance(self.tail),
        )
        end = ed.lineEndPosition(line)  # cover the real rest of the line as Scintilla draws
        if end > pos and ed.pointYFromPosition(end) == y:  # it (closers replaced included)
            width = max(width, ed.pointXFromPosition(end) - x)
        return QRect(x, y, width + 4, height)

    def _place(self, *, force: bool) -> None:
        box = self._ghost_box()
        shown = box.intersected(self._text_area())
        if shown.isEmpty():
            self._box = QRect()
            if self.isVisible():
                self.hide()
            return
        moved = box != self._box or shown != self.geometry()
        self._box = box
        if shown != self.geometry():
            self.setGeometry(shown)
        if not self.isVisible():
            self.show()
            self.raise_()
        elif force or moved:
            self.update()

    def paintEvent(self, _event: object) -> None:
        box = self._box
        if box.isEmpty() or not self.ghost:
            return
        ed = self.editor
        theme: Theme = ed.theme
        font, italic, metrics, italic_metrics = self._fonts()
        ghost = self.ghost.replace("\t", " " * ed.tab_size)
        # Draw in viewport coordinates: the widget's own box is the ghost's box, clipped.
        origin = self.geometry().topLeft()
        x, y, height = box.x() - origin.x(), box.y() - origin.y(), box.height()
        painter = QPainter(self)
        painter.fillRect(QRect(x, y, box.width(), height), QColor(theme.caret_line))
        baseline = y + (height + metrics.ascent() - metrics.descent()) // 2
        painter.setPen(QColor(theme.margin_fore))
        painter.setFont(italic)
        painter.drawText(x, baseline, ghost)
        if self.tail:
            painter.setFont(font)
            painter.setPen(QColor(theme.foreground))
            painter.drawText(x + italic_metrics.horizontalAdvance(ghost), baseline, self.tail)
        painter.end()


class InlineCompletion(QObject):
    """Ghost-text completions for whichever editor is attached."""

    outcome = Signal(object)  # Outcome, when a request ends (shown, dropped or failed)
    suggestionChanged = Signal(str)

    def __init__(
        self,
        engine: CompletionEngine,
        *,
        debounce_ms: int = 60,
        max_tokens: int = 48,
        context: Callable[[], tuple[str, str, tuple[Snippet, ...]]] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.max_tokens = max_tokens
        self.enabled = True
        self._context = context  # (workspace-relative path, language id, snippets)
        self.editor: CodeEditor | None = None
        self.overlay: GhostOverlay | None = None
        self.suggestion = ""  # what Tab would insert now
        self.overwrite = ""  # the text after the caret the suggestion replaces (closers)
        # The annotation showing the suggestion's further lines: (line, text), None when none.
        # Scintilla redraws (and re-lays out) the whole view when annotations or styles change,
        # so both change only when what they show does.
        self._annotation: tuple[int, str] | None = None
        self._annotation_want: tuple[int, str] | None = None  # applied on the next loop turn
        self._annotation_pending = False
        self._anchor = -1  # caret byte position the suggestion applies at
        self._request: Outcome | None = None
        self._request_context: tuple[str, str] = ("", "")  # prefix, suffix of the request
        self._raw = ""
        self._applying = False
        self.requests = 0
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self.request_now)
        self._warm = QTimer(self)
        self._warm.setSingleShot(True)
        self._warm.setInterval(350)
        self._warm.timeout.connect(self._warm_now)
        engine.chunk.connect(self._on_chunk, Qt.ConnectionType.QueuedConnection)
        engine.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        engine.error.connect(self._on_error, Qt.ConnectionType.QueuedConnection)

    # ----- wiring ----------------------------------------------------------------------------
    def set_debounce(self, ms: int) -> None:
        self._debounce.setInterval(ms)

    def attach(self, editor: CodeEditor | None) -> None:
        if editor is self.editor:
            return
        self.dismiss()
        if self.editor is not None:
            self.editor.modified.disconnect(self._on_modified)
            self.editor.updateUi.disconnect(self._on_update_ui)
            self.editor.removeEventFilter(self)
        self.editor = editor
        self.overlay = None
        self._annotation = self._annotation_want = None
        if editor is None:
            return
        overlay = editor.findChild(GhostOverlay)
        self.overlay = overlay if isinstance(overlay, GhostOverlay) else GhostOverlay(editor)
        editor.styleSetItalic(GHOST_STYLE, True)
        editor.annotationSetVisible(ANNOTATION_STANDARD)
        editor.modified.connect(self._on_modified)
        editor.updateUi.connect(self._on_update_ui)
        editor.installEventFilter(self)
        self._warm.start()  # a file switch: warm its prompt (its head) before the first key

    # ----- triggers --------------------------------------------------------------------------
    def _eligible(self) -> bool:
        ed = self.editor
        if not self.enabled or ed is None or ed.readOnly() or not self.engine.is_ready():
            return False
        if ed.selections() != 1 or ed.selectionStart() != ed.selectionEnd():
            return False
        pos = ed.currentPos()
        rest = bytes(ed.textRange(pos, ed.lineEndPosition(ed.lineFromPosition(pos))).data())
        return _REST_OK.fullmatch(rest.decode("utf-8", "replace")) is not None

    def _on_modified(
        self, flags: int, position: int, length: int, _lines: int, text: object, *_rest: object
    ) -> None:
        flags = int(flags)
        if self._applying or not flags & (SC_MOD_INSERTTEXT | SC_MOD_DELETETEXT):
            return
        if not flags & SC_PERFORMED_USER:
            self.dismiss()
            return
        inserted = ""
        if flags & SC_MOD_INSERTTEXT:
            inserted = bytes(text.data() if hasattr(text, "data") else b"").decode(
                "utf-8", "replace"
            )
        if (
            self.suggestion
            and flags & SC_MOD_INSERTTEXT
            and position == self._anchor
            and inserted
            and self.suggestion.startswith(inserted)
        ):
            # Typing what was suggested: keep the rest, no new request.
            self.suggestion = self.suggestion[len(inserted) :]
            self._anchor = position + int(length)
            self._cancel_request()
            if self.suggestion:
                QTimer.singleShot(0, self, self._render)
                self.suggestionChanged.emit(self.suggestion)
                return
        self.dismiss()
        self._warm.stop()
        self._debounce.start()

    def _on_update_ui(self, updated: int) -> None:
        if self.editor is None or not int(updated) & 0x2:  # SC_UPDATE_SELECTION
            return
        if (
            self.suggestion
            and self.editor.currentPos() != self._anchor
            and not self._stepped_over_closers()
        ):
            self.dismiss()
        if not self._debounce.isActive() and self._request is None:
            self._warm.start()

    def _stepped_over_closers(self) -> bool:
        """The caret stepped over closers the suggestion replaces and starts with (a closer
        typed over the auto-inserted one): keep the rest of the suggestion."""
        ed = self.editor
        assert ed is not None
        pos = ed.currentPos()
        passed = (
            bytes(ed.textRange(self._anchor, pos).data()).decode("utf-8", "replace")
            if pos > self._anchor
            else ""
        )
        if (
            not passed
            or not self.overwrite.startswith(passed)
            or not self.suggestion.startswith(passed)
            or "\n" in passed
        ):
            return False
        self.suggestion = self.suggestion[len(passed) :]
        self.overwrite = self.overwrite[len(passed) :]
        self._anchor = pos
        self._cancel_request()
        if not self.suggestion:
            self.dismiss()
            return True
        QTimer.singleShot(0, self, self._render)
        self.suggestionChanged.emit(self.suggestion)
        return True

    def request_now(self) -> None:
        """Ask the engine for a completion at the caret (after the debounce)."""
        self._cancel_request()
        if not self._eligible():
            return
        inp = self._input()
        if inp is None:
            return
        assert self.editor is not None
        self._request_context = (inp.prefix, inp.suffix)
        self._anchor = self.editor.currentPos()
        self._raw = ""
        request_id = self.engine.complete(inp, self.max_tokens)
        self.requests += 1
        self._request = Outcome(request_id, time.perf_counter())

    def _warm_now(self) -> None:
        if self._request is None and not self.suggestion and self._eligible():
            inp = self._input()
            if inp is not None:
                self.engine.warm(inp)

    def _input(self) -> CompletionInput | None:
        ed = self.editor
        if ed is None:
            return None
        pos = ed.currentPos()
        line = ed.lineFromPosition(pos)
        first, last = context_window(line, ed.lineCount())
        start = ed.positionFromLine(first)
        end = ed.positionFromLine(last) if last < ed.lineCount() else ed.textLength()
        if end <= pos:
            end = ed.textLength()
        prefix = bytes(ed.textRange(start, pos).data()).decode("utf-8", "replace")
        suffix = bytes(ed.textRange(pos, end).data()).decode("utf-8", "replace")
        head = ""  # the file's top (imports): the prompt's stable start, wherever the caret is
        if first > 0:
            head_end = ed.positionFromLine(min(first, HEAD_SEND_LINES))
            head = bytes(ed.textRange(0, head_end).data()).decode("utf-8", "replace")
        path, language, snippets = ("untitled", ed.language.id, ())
        if self._context is not None:
            path, language, snippets = self._context()
        return CompletionInput(
            path=path,
            language=language,
            prefix=prefix,
            suffix=suffix,
            snippets=snippets,
            first_line=first,
            head=head,
        )

    # ----- results ---------------------------------------------------------------------------
    def _on_chunk(self, request_id: int, text: str) -> None:
        req = self._request
        if req is None or request_id != req.request_id:
            return  # stale: never shown
        self._raw += text
        if req.first_line_ms is None and "\n" in self._raw.lstrip("\n"):
            prefix, suffix = self._request_context
            first = postprocess(self._raw, prefix, suffix, self._language(), multiline=False)
            if first.text and first.reason_dropped is None:
                req.first_line_ms = (time.perf_counter() - req.requested_at) * 1000
                self._show(first.text, first.overwrite)

    def _on_done(self, request_id: int, done: object) -> None:
        req = self._request
        if req is None or request_id != req.request_id:
            return
        self._request = None
        raw = str(getattr(done, "text", ""))
        req.metrics = dict(getattr(done, "metrics", {}) or {})
        req.done_ms = (time.perf_counter() - req.requested_at) * 1000
        prefix, suffix = self._request_context
        truncated = getattr(done, "stop_reason", "") == "length"
        result = postprocess(
            raw, prefix, suffix, self._language(), multiline=True, truncated=truncated
        )
        if result.reason_dropped or not result.text:
            req.dropped = result.reason_dropped or "empty"
            if not self.suggestion:
                self.dismiss()
        else:
            if req.first_line_ms is None:
                req.first_line_ms = req.done_ms
            self._show(result.text, result.overwrite)
            req.shown = result.text
        self.outcome.emit(req)

    def _on_error(self, request_id: int, message: str) -> None:
        req = self._request
        if req is not None and request_id == req.request_id:
            self._request = None
            req.dropped = f"error: {message}"
            self.outcome.emit(req)

    def _language(self) -> str:
        return self.editor.language.id if self.editor is not None else "plaintext"

    # ----- showing ---------------------------------------------------------------------------
    def _line_rest(self) -> str:
        """The caret line's text after the suggestion's anchor."""
        ed = self.editor
        if ed is None:
            return ""
        end = ed.lineEndPosition(ed.lineFromPosition(self._anchor))
        return bytes(ed.textRange(self._anchor, end).data()).decode("utf-8", "replace")

    def _show(self, text: str, overwrite: int = 0) -> None:
        ed = self.editor
        if ed is None or ed.currentPos() != self._anchor:
            return
        self.suggestion = text
        self.overwrite = self._line_rest()[:overwrite]
        self._render()
        self.suggestionChanged.emit(text)

    def _render(self) -> None:
        ed, overlay = self.editor, self.overlay
        if ed is None or overlay is None:
            return
        line = ed.lineFromPosition(self._anchor)
        if not self.suggestion:
            self._set_annotation(None)
            overlay.clear()
            return
        first, _, more = self.suggestion.partition("\n")
        tail = self._line_rest()[len(self.overwrite) :]
        overlay.show_ghost(self._anchor, first, tail)
        self._set_annotation(
            (line, (more + tail if tail else more).replace("\t", "    ")) if more else None
        )

    def _set_annotation(self, want: tuple[int, str] | None) -> None:
        """Show ``want``; removing is immediate, adding waits one event-loop turn so that the
        first line's small repaint and the full repaint an annotation causes (the lines below
        move down) are two short UI-thread steps, not one long one."""
        self._annotation_want = want
        if want is None:
            self._apply_annotation()
        elif not self._annotation_pending:
            self._annotation_pending = True
            QTimer.singleShot(0, self, self._apply_annotation)

    def _apply_annotation(self) -> None:
        self._annotation_pending = False
        ed, want = self.editor, self._annotation_want
        if ed is None or want == self._annotation:
            return
        if self._annotation is not None:
            ed.annotationClearAll()
        self._annotation = want
        if want is None:
            return
        theme = ed.theme
        fore, back = bgr(theme.margin_fore), bgr(theme.background)
        if ed.styleFore(GHOST_STYLE) != fore or ed.styleBack(GHOST_STYLE) != back:
            ed.styleSetFore(GHOST_STYLE, fore)
            ed.styleSetBack(GHOST_STYLE, back)
            ed.styleSetItalic(GHOST_STYLE, True)
        line, text = want
        ed.annotationSetText(line, text)
        ed.annotationSetStyle(line, GHOST_STYLE)

    def dismiss(self) -> None:
        """Hide the suggestion and cancel the request in flight."""
        self._debounce.stop()
        self._cancel_request()
        had = bool(self.suggestion)
        self.suggestion = self.overwrite = ""
        if self.overlay is not None:
            self.overlay.clear()
        self._set_annotation(None)
        if had:
            self.suggestionChanged.emit("")

    def _cancel_request(self) -> None:
        if self._request is not None:
            self.engine.cancel(self._request.request_id)
            self._request = None

    # ----- accepting ---------------------------------------------------------------------------
    def accept(self, text: str | None = None) -> bool:
        """Insert the suggestion (or its first ``text`` part) as one undo step."""
        ed = self.editor
        if ed is None or not self.suggestion:
            return False
        part = self.suggestion if text is None else text
        rest = self.suggestion[len(part) :]
        # The closers after the caret that this part types itself are replaced, in order.
        typed = 0
        for ch in part.split("\n", 1)[0]:
            if typed < len(self.overwrite) and ch == self.overwrite[typed]:
                typed += 1
        replaced = len(self.overwrite[:typed].encode())
        self.overwrite = self.overwrite[typed:]
        self._applying = True
        try:
            ed.beginUndoAction()
            pos = ed.currentPos()
            ed.setTargetRange(pos, pos + replaced)
            ed.replaceTarget(-1, part)
            ed.gotoPos(pos + len(part.encode()))
            ed.endUndoAction()
        finally:
            self._applying = False
        self._anchor = ed.currentPos()
        if rest:
            self.suggestion = rest
            self._render()
            self.suggestionChanged.emit(rest)
        else:
            self.dismiss()
        return True

    def accept_word(self) -> bool:
        match = _WORD.match(self.suggestion)
        return self.accept(match.group(0) if match else None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.editor
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and self.suggestion
        ):
            key, mods = event.key(), event.modifiers()
            plain = mods in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
            if key == Qt.Key.Key_Tab and plain:
                return self.accept()
            if key == Qt.Key.Key_Escape and plain:
                self.dismiss()
                return True
            if key == Qt.Key.Key_Right and mods == Qt.KeyboardModifier.ControlModifier:
                return self.accept_word()
        return False
