"""One quick-input popup for Quick Open, the Command Palette and Go to Line.

Like VS Code's quick input: a line edit above a list, floating at the top centre of
the parent window. The caller supplies a *provider* called with the query on every
keystroke; its items replace the rows (first row selected). Enter accepts, Esc or
moving the focus elsewhere closes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QLabel,
    QLineEdit,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1
_ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class PickerItem:
    label: str  # main text (e.g. file name or command title)
    detail: str = ""  # dimmer secondary text (folder, or the shortcut)
    positions: tuple[int, ...] = ()  # indices into label to show bold (matched chars)
    data: object = None  # returned to the caller
    tag: str = ""  # a short mark at the row's right (quick open's "related")


Provider = Callable[[str], Sequence[PickerItem]]
AcceptCallback = Callable[[PickerItem | None, str], None]


def _app() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication), "the picker needs a QApplication"
    return app


class _PickerModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[PickerItem] = []

    def set_items(self, items: Sequence[PickerItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = f"{item.label}  {item.detail}" if item.detail else item.label
            return f"{text}  {item.tag}" if item.tag else text
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.detail or None
        if role == ITEM_ROLE:
            return item
        return None


def _runs(label: str, positions: tuple[int, ...]) -> list[tuple[str, bool]]:
    """Split *label* into (text, bold) runs; out-of-range positions are ignored."""
    bold = {p for p in positions if 0 <= p < len(label)}
    runs: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(label) + 1):
        if i == len(label) or (i in bold) != (start in bold):
            runs.append((label[start:i], start in bold))
            start = i
    return runs


class _PickerDelegate(QStyledItemDelegate):
    """Paints the label with its matched characters in bold, then the dimmer detail."""

    PADDING = 8
    GAP = 10

    def sizeHint(self, option: QStyleOptionViewItem, index: _ModelIndex) -> QSize:
        return QSize(option.rect.width(), QFontMetrics(option.font).height() + 8)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _ModelIndex) -> None:
        item = index.data(ITEM_ROLE)
        if not isinstance(item, PickerItem):
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)

        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        text_color = opt.palette.color(text_role)
        detail_color = QColor(text_color)
        detail_color.setAlpha(150)

        normal = QFont(opt.font)
        bold = QFont(opt.font)
        bold.setBold(True)
        metrics = {False: QFontMetrics(normal), True: QFontMetrics(bold)}
        rect = opt.rect.adjusted(self.PADDING, 0, -self.PADDING, 0)
        fm0 = metrics[False]
        baseline = rect.top() + (rect.height() - fm0.height()) // 2 + fm0.ascent()
        x, right = rect.left(), rect.right()

        painter.save()
        painter.setClipRect(opt.rect)
        if item.tag:  # right-aligned and dim; the label and detail end before it
            tag_width = metrics[False].horizontalAdvance(item.tag)
            painter.setFont(normal)
            painter.setPen(detail_color)
            painter.drawText(right - tag_width, baseline, item.tag)
            right -= tag_width + self.GAP
        painter.setPen(text_color)
        for text, is_bold in _runs(item.label, item.positions):
            fm = metrics[is_bold]
            width = fm.horizontalAdvance(text)
            painter.setFont(bold if is_bold else normal)
            if x + width > right:
                elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(0, right - x))
                painter.drawText(x, baseline, elided)
                x = right
                break
            painter.drawText(x, baseline, text)
            x += width
        if item.detail and x + self.GAP < right:
            painter.setFont(normal)
            painter.setPen(detail_color)
            detail = metrics[False].elidedText(
                item.detail, Qt.TextElideMode.ElideRight, right - x - self.GAP
            )
            painter.drawText(x + self.GAP, baseline, detail)
        painter.restore()


class Picker(QFrame):
    """Quick-input popup: ``open(...)`` it, read the choice from ``accepted``/``on_accept``."""

    accepted = Signal(object)  # the chosen PickerItem (not emitted when nothing was chosen)

    MAX_WIDTH = 600
    MAX_VISIBLE_ROWS = 12

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.top_margin = 6  # distance from the top of the parent
        self._is_open = False
        self._provider: Provider | None = None
        self._on_accept: AcceptCallback | None = None
        self._restore_focus: QWidget | None = None

        self.setObjectName("Picker")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFrameShadow(QFrame.Shadow.Raised)
        self.setAutoFillBackground(True)

        self.query_edit = QLineEdit(self)
        self.model = _PickerModel(self)
        self.list_view = QListView(self)
        self.list_view.setModel(self.model)
        self.list_view.setItemDelegate(_PickerDelegate(self.list_view))
        self.list_view.setUniformItemSizes(True)
        self.list_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the edit
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list_view.setFrameShape(QFrame.Shape.NoFrame)
        self.empty_label = QLabel("No matching results", self)
        self.empty_label.setContentsMargins(8, 4, 8, 4)
        self.empty_label.setEnabled(False)

        self._layout = layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.query_edit)
        layout.addWidget(self.list_view)
        layout.addWidget(self.empty_label)

        self.query_edit.textChanged.connect(self._refresh)
        self.query_edit.installEventFilter(self)
        self.list_view.clicked.connect(self._accept_index)
        parent.installEventFilter(self)
        self.hide()

    # ------------------------------------------------------------------ public API
    def open(
        self,
        placeholder: str,
        provider: Provider,
        initial_text: str = "",
        on_accept: AcceptCallback | None = None,
    ) -> None:
        """Show the picker with *provider*'s rows for *initial_text* and focus the query."""
        if not self._is_open:
            focus = QApplication.focusWidget()
            self._restore_focus = None if focus is None or self.isAncestorOf(focus) else focus
            _app().focusChanged.connect(self._on_focus_changed)
        self._is_open = True
        self._provider = provider
        self._on_accept = on_accept
        self.query_edit.setPlaceholderText(placeholder)
        self.query_edit.blockSignals(True)
        self.query_edit.setText(initial_text)
        self.query_edit.blockSignals(False)
        self.show()
        self.raise_()
        self.query_edit.setFocus(Qt.FocusReason.PopupFocusReason)
        self._refresh()

    def close_picker(self) -> None:
        """Close without accepting and give the focus back to where it was."""
        self._close(restore_focus=True)

    def is_open(self) -> bool:
        return self._is_open

    def refresh(self, provider: Provider) -> None:
        """Rows that changed while open (text read later): ask *provider* again for the
        query, keeping the current row; nothing when the picker shows another provider's."""
        if not self._is_open or self._provider is not provider:
            return
        row = self.list_view.currentIndex().row()
        self._refresh()
        if 0 < row < len(self.model.items):
            self.list_view.setCurrentIndex(self.model.index(row))

    def items(self) -> list[PickerItem]:
        """The rows currently shown."""
        return list(self.model.items)

    def current_item(self) -> PickerItem | None:
        index = self.list_view.currentIndex()
        if index.isValid() and 0 <= index.row() < len(self.model.items):
            return self.model.items[index.row()]
        return None

    # ------------------------------------------------------------------ internals
    def _close(self, *, restore_focus: bool) -> None:
        if not self._is_open:
            return
        self._is_open = False
        _app().focusChanged.disconnect(self._on_focus_changed)
        target = self._restore_focus
        self._restore_focus = None
        self._provider = None
        self._on_accept = None
        self.hide()
        self.model.set_items([])
        if restore_focus and target is not None and shiboken6.isValid(target):
            # QWidget.setFocus explicitly: ScintillaEdit.setFocus is SCI_SETFOCUS(bool)
            QWidget.setFocus(target, Qt.FocusReason.PopupFocusReason)

    def _refresh(self) -> None:
        if self._provider is None:
            return
        self.model.set_items(self._provider(self.query_edit.text()))
        count = len(self.model.items)
        if count:
            self.list_view.setCurrentIndex(self.model.index(0))
        self.list_view.setVisible(count > 0)
        self.empty_label.setVisible(count == 0)
        self._update_geometry()

    def _row_height(self) -> int:
        return QFontMetrics(self.list_view.font()).height() + 8

    def _update_geometry(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        available = parent.width() - 16
        width = max(min(self.MAX_WIDTH, available), min(300, available))
        rows = min(len(self.model.items), self.MAX_VISIBLE_ROWS)
        self.list_view.setFixedHeight(rows * self._row_height() + 2 * self.list_view.frameWidth())
        self.setFixedWidth(max(width, 100))
        self._layout.activate()
        self.setFixedHeight(self._layout.sizeHint().height())
        self.move((parent.width() - self.width()) // 2, self.top_margin)

    def _move_current(self, delta: int, *, wrap: bool) -> None:
        count = len(self.model.items)
        if not count:
            return
        row = self.list_view.currentIndex().row()
        row = max(row, 0) + delta
        row = row % count if wrap else max(0, min(count - 1, row))
        index = self.model.index(row)
        self.list_view.setCurrentIndex(index)
        self.list_view.scrollTo(index)

    def _page(self) -> int:
        return max(1, self.list_view.viewport().height() // self._row_height())

    def _accept_index(self, index: QModelIndex) -> None:
        if index.isValid():
            self.list_view.setCurrentIndex(index)
            self._accept()

    def _accept(self) -> None:
        item = self.current_item()
        if item is None and self.model.items:
            item = self.model.items[0]
        query = self.query_edit.text()
        callback = self._on_accept
        self._close(restore_focus=True)  # first: the callback may move the focus itself
        if item is not None:
            self.accepted.emit(item)
        if callback is not None:
            callback(item, query)

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if new is not None and new is not self and not self.isAncestorOf(new):
            self._close(restore_focus=False)

    def _key_action(self, event: QKeyEvent) -> Callable[[], None] | None:
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods != Qt.KeyboardModifier.NoModifier:
            return None
        actions: dict[int, Callable[[], None]] = {
            Qt.Key.Key_Escape: self.close_picker,
            Qt.Key.Key_Return: self._accept,
            Qt.Key.Key_Enter: self._accept,
            Qt.Key.Key_Down: lambda: self._move_current(1, wrap=True),
            Qt.Key.Key_Up: lambda: self._move_current(-1, wrap=True),
            Qt.Key.Key_PageDown: lambda: self._move_current(self._page(), wrap=False),
            Qt.Key.Key_PageUp: lambda: self._move_current(-self._page(), wrap=False),
        }
        return actions.get(key)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        etype = event.type()
        if watched is self.query_edit and isinstance(event, QKeyEvent):
            if etype in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride):
                action = self._key_action(event)
                if action is not None:
                    if etype == QEvent.Type.ShortcutOverride:
                        event.accept()  # keep Esc/Enter/arrows from window shortcuts
                    else:
                        action()
                    return True
        elif watched is self.parentWidget() and etype == QEvent.Type.Resize and self._is_open:
            self._update_geometry()
        return super().eventFilter(watched, event)
