"""The widgets of a chat transcript: messages, code blocks with Copy/Apply, notices.

A message is a column of segment widgets (``chat_markdown``): prose in a rich-text ``QLabel``,
each fenced code block in a ``CodeBlockView`` — a read-only ``CodeEditor`` with the editor's own
Lexilla highlighting and theme, sized to its lines, under a header with the language and the
Copy and Apply buttons. While a reply streams, ``MessageView.set_text`` updates only the
segments that changed (the last one, normally): a code block gets the new characters appended,
a prose label re-renders its one paragraph.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from forecode_core.chat.conversations import MessageRole, NoticeKind
from forecode_core.text.languages import Language

from .chat_markdown import (
    Segment,
    SegmentKind,
    StreamSegmenter,
    fence_language,
    render_markdown,
)
from .editor import CodeEditor
from .theme import DARK, Theme

__all__ = ["CodeBlockView", "FlowLayout", "MessageView", "NoticeView"]

SC_CARETSTICKY_OFF = 0
SC_SCROLLBAR_H = 16  # room for the horizontal scroll bar of a wide block


class FlowLayout(QLayout):
    """Widgets left to right, wrapping to the next row (the context chips)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 4) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _arrange(self, rect: QRect, *, apply: bool) -> int:
        x, y, row_height = rect.x(), rect.y(), 0
        for item in self._items:
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and row_height > 0:
                x, y = rect.x(), y + row_height + self._spacing
                row_height = 0
            if apply:
                item.setGeometry(QRect(x, y, hint.width(), hint.height()))
            x += hint.width() + self._spacing
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y()


class _BlockEditor(CodeEditor):
    """A read-only code view: no margins, no caret line, height set by its owner."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setCaretLineVisible(False)
        self.setCaretLineVisibleAlways(False)
        self.setCaretStyle(0)
        self.setMarginWidthN(1, 0)
        self.setMarginWidthN(2, 0)
        self.setVScrollBar(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def _update_line_margin(self) -> None:  # no line numbers in a chat block
        self.setMarginWidthN(0, 0)


class CodeBlockView(QFrame):
    """One fenced code block: a header (language, path, Copy, Apply) and the code."""

    apply_requested = Signal(str, str, str)  # code, language id, path hint

    def __init__(
        self, info: str, theme: Theme, default_path: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ChatCodeBlock")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.info = info
        language, path = fence_language(info)
        self.language: Language = language
        self.path_hint = path or default_path
        self._code = ""
        header = QHBoxLayout()
        header.setContentsMargins(6, 2, 2, 2)
        label = language.name if language.id != "plaintext" else (info.split()[:1] or ["text"])[0]
        self.title = QLabel(label + (f" · {path}" if path else ""))
        self.title.setEnabled(False)
        self.copy_button = QPushButton("Copy")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Apply this code to " + (self.path_hint or "the current file"))
        for button in (self.copy_button, self.apply_button):
            button.setFlat(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        header.addWidget(self.title, 1)
        header.addWidget(self.copy_button)
        header.addWidget(self.apply_button)
        self.editor = _BlockEditor(self)
        self.editor.set_language(language)
        self.editor.apply_theme(theme)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(header)
        column.addWidget(self.editor)
        self.copy_button.clicked.connect(self.copy)
        self.apply_button.clicked.connect(
            lambda: self.apply_requested.emit(self._code, self.language.id, self.path_hint)
        )
        self._fit()

    @property
    def code(self) -> str:
        return self._code

    def set_code(self, code: str) -> None:
        """Show ``code``; a streamed block that grew gets only its new characters appended."""
        if code == self._code:
            return
        self.editor.setReadOnly(False)
        if code.startswith(self._code):
            self.editor.appendText(
                len(code[len(self._code) :].encode("utf-8")), code[len(self._code) :]
            )
        else:
            self.editor.set_text(code)
        self.editor.setReadOnly(True)
        self._code = code
        self._fit()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self._code)

    def apply_theme(self, theme: Theme) -> None:
        self.editor.apply_theme(theme)
        self._fit()

    def _fit(self) -> None:
        lines = max(1, self.editor.lineCount())
        height = lines * max(1, self.editor.textHeight(0)) + 6
        self.editor.setFixedHeight(height + SC_SCROLLBAR_H)


class NoticeView(QLabel):
    """A visible inline notice: "answering with the local model", "not reachable", ..."""

    def __init__(
        self, text: str, kind: NoticeKind = NoticeKind.INFO, parent: QWidget | None = None
    ) -> None:
        error = kind == NoticeKind.ERROR
        super().__init__(("⚠ " if error else "ℹ ") + text, parent)
        self.kind = kind
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        colour = "#5a1d1d" if error else "#4d3d10"
        border = "#be1100" if error else "#cca700"
        self.setStyleSheet(
            f"QLabel {{ background: {colour}; color: #f0f0f0; "
            f"border-left: 3px solid {border}; padding: 4px 6px; }}"
        )

    @property
    def message(self) -> str:
        return self.text()[2:]


class MessageView(QFrame):
    """One message. A user's is plain text with the context that went along; an assistant's
    is markdown, re-rendered segment by segment as it streams."""

    apply_requested = Signal(str, str, str)

    def __init__(
        self, role: str, theme: Theme = DARK, default_path: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.role = role
        self.theme = theme
        self.default_path = default_path
        self.text = ""
        self.segmenter = StreamSegmenter()
        self.segment_widgets: list[QWidget] = []
        self.setObjectName("ChatMessage")
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(6, 6, 6, 6)
        self._column.setSpacing(4)
        self.header = QLabel("You" if role == MessageRole.USER else "Assistant")
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self._column.addWidget(self.header)
        self._body = QVBoxLayout()
        self._body.setSpacing(6)
        self._column.addLayout(self._body)
        self.footer = QLabel()
        self.footer.setWordWrap(True)
        self.footer.setEnabled(False)
        self.footer.hide()
        self._column.addWidget(self.footer)
        if role == MessageRole.USER:
            self.setStyleSheet("QFrame#ChatMessage { background: palette(alternate-base); }")

    # ----- content -------------------------------------------------------------------------
    def set_text(self, text: str, *, final: bool = False) -> None:
        """Show ``text`` (the whole message so far); only changed segments are rebuilt."""
        self.text = text
        if self.role == MessageRole.USER:
            self._set_user_text(text)
            return
        first = self.segmenter.update(text, final=final)
        segments = self.segmenter.segments
        for index in range(first, len(segments)):
            self._show_segment(index, segments[index])
        for widget in self.segment_widgets[len(segments) :]:
            self._body.removeWidget(widget)
            widget.deleteLater()
        del self.segment_widgets[len(segments) :]

    def append(self, delta: str) -> None:
        self.set_text(self.text + delta)

    def finish(self, note: str = "") -> None:
        self.set_text(self.text, final=True)
        self.set_footer(note)

    def set_footer(self, note: str) -> None:
        self.footer.setText(note)
        self.footer.setVisible(bool(note))

    def set_header(self, text: str) -> None:
        self.header.setText(text)

    def code_blocks(self) -> list[CodeBlockView]:
        return [w for w in self.segment_widgets if isinstance(w, CodeBlockView)]

    def prose_labels(self) -> list[QLabel]:
        return [w for w in self.segment_widgets if isinstance(w, QLabel)]

    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        for block in self.code_blocks():
            block.apply_theme(theme)

    # ----- internals -----------------------------------------------------------------------
    def _set_user_text(self, text: str) -> None:
        if not self.segment_widgets:
            fresh = self._label()
            fresh.setTextFormat(Qt.TextFormat.PlainText)
            self._body.addWidget(fresh)
            self.segment_widgets.append(fresh)
        label = self.segment_widgets[0]
        assert isinstance(label, QLabel)
        label.setText(text)

    def _label(self) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        label.setOpenExternalLinks(False)
        label.linkActivated.connect(_open_link)
        label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return label

    def _show_segment(self, index: int, segment: Segment) -> None:
        existing = self.segment_widgets[index] if index < len(self.segment_widgets) else None
        if segment.kind is SegmentKind.CODE:
            if isinstance(existing, CodeBlockView) and existing.info == segment.info:
                existing.set_code(segment.text)
                return
            block = CodeBlockView(segment.info, self.theme, self.default_path)
            block.apply_requested.connect(self.apply_requested)
            block.set_code(segment.text)
            widget: QWidget = block
        else:
            html = render_markdown(segment.text)
            if isinstance(existing, QLabel):
                existing.setText(html)
                existing.setProperty("markdown", segment.text)
                return
            label = self._label()
            label.setText(html)
            label.setProperty("markdown", segment.text)
            widget = label
        if existing is not None:
            self._body.replaceWidget(existing, widget)
            existing.deleteLater()
            self.segment_widgets[index] = widget
        else:
            self._body.addWidget(widget)
            self.segment_widgets.append(widget)


def _open_link(url: str) -> None:
    """Only web links open (a reply is untrusted text: no file: or custom schemes)."""
    target = QUrl(url)
    if target.scheme() in ("http", "https"):
        QDesktopServices.openUrl(target)
