"""The terminal panel (issue 17): the user's shell in tabs in a bottom dock under the editor.

Ctrl+` shows the panel and focuses it (a first tab starts then), or hides it when the
terminal has the focus; Ctrl+Shift+` / "Terminal: New" opens another tab, "Terminal: Kill"
ends the current one's shell. Each tab is a ``TerminalView`` running the user's shell
(``app.services.terminal.shell_launch``) in the workspace's folder, with Forecode's shell
integration, so every finished command comes out as a ``CommandRecord``
(``command_finished``, from every tab). For the Explain/Fix and next-command flows:
``input_line_changed`` (the current tab's typed prompt line) and ``set_suggestion`` (ghost
text on it; Right/End accepts it into the line, the user presses Enter). A shell that exits
closes its tab; closing the window kills every shell.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QTabWidget,
    QToolButton,
    QWidget,
)

from app.services.terminal import Launch, shell_launch

from ..terminal.view import TerminalView
from ..theme import Theme
from .commands import Command

__all__ = ["TerminalOwner"]


class TerminalOwner(QObject):
    message = Signal(str, int)
    command_finished = Signal(object)  # CommandRecord, from any tab
    input_line_changed = Signal(str)  # the current tab's prompt line as typed so far

    def __init__(
        self,
        root: Callable[[], Path | None],
        theme: Callable[[], Theme],
        place_dock: Callable[[QDockWidget], None],
        window: QWidget,
        launch: Callable[[], Launch] = shell_launch,
    ) -> None:
        super().__init__(window)
        self._root = root
        self._theme = theme
        self._place_dock = place_dock
        self._launch = launch
        self.dock: QDockWidget | None = None
        self.tabs: QTabWidget | None = None
        self._current: TerminalView | None = None
        self._return_focus: QWidget | None = None  # the focus before the terminal took it
        window.installEventFilter(self)  # the window's close kills the shells

    def commands(self) -> list[Command]:
        return [
            Command("terminal.toggle", "View: Toggle Terminal", "Ctrl+`", self.toggle),
            Command("terminal.new", "Terminal: New", "Ctrl+Shift+`", self.new_terminal),
            Command("terminal.kill", "Terminal: Kill", "", self.kill_terminal),
        ]

    # ----- the API for the terminal's AI flows --------------------------------------------------
    @property
    def view(self) -> TerminalView | None:
        """The current tab."""
        return self._current

    @property
    def views(self) -> list[TerminalView]:
        tabs = self.tabs
        if tabs is None:
            return []
        return [w for i in range(tabs.count()) if isinstance(w := tabs.widget(i), TerminalView)]

    def set_suggestion(self, text: str) -> None:
        if self._current is not None:
            self._current.set_suggestion(text)

    # ----- commands -----------------------------------------------------------------------------
    def toggle(self) -> None:
        dock = self.dock
        if dock is not None and dock.isVisible() and self._has_focus():
            dock.hide()
            back = self._return_focus
            if back is not None and shiboken6.isValid(back) and back.isVisible():
                # where the user was (the editor; Scintilla's own setFocus is another thing)
                QWidget.setFocus(back)
            return
        if not self.views:
            self.new_terminal()
            return
        self._show()

    def new_terminal(self) -> TerminalView:
        tabs = self._ensure_dock()
        folder = self._root() or Path.home()
        view = TerminalView(self._launch(), folder, self._theme, tabs)
        view.command_finished.connect(self.command_finished)
        view.input_line_changed.connect(lambda line, v=view: self._typed(v, line))
        view.exited.connect(lambda _status, v=view: self._exited(v))
        index = tabs.addTab(view, f"{Path(view.session.launch.argv[0]).name} {tabs.count() + 1}")
        tabs.setCurrentIndex(index)
        self._show()
        view.start()
        return view

    def kill_terminal(self) -> None:
        if self._current is None:
            self.message.emit("No terminal to kill", 3000)
            return
        self._remove(self._current)

    def close_all(self) -> None:
        for view in self.views:
            view.kill()

    # ----- internals ----------------------------------------------------------------------------
    def _ensure_dock(self) -> QTabWidget:
        if self.tabs is not None:
            return self.tabs
        dock = QDockWidget("Terminal")
        dock.setObjectName("terminal-dock")
        tabs = QTabWidget(dock)
        tabs.setTabsClosable(True)
        tabs.setDocumentMode(True)
        tabs.tabCloseRequested.connect(lambda i: self._remove_at(i))
        tabs.currentChanged.connect(self._current_changed)
        plus = QToolButton(tabs)
        plus.setText("+")
        plus.setToolTip("New Terminal (Ctrl+Shift+`)")
        plus.clicked.connect(self.new_terminal)
        tabs.setCornerWidget(plus, Qt.Corner.TopRightCorner)
        dock.setWidget(tabs)
        self.dock, self.tabs = dock, tabs
        self._place_dock(dock)  # the window places it, a third of its height (VS Code's panel)
        return tabs

    def _show(self) -> None:
        if self.dock is None:
            return
        if not self._has_focus():
            self._return_focus = QApplication.focusWidget()
        self.dock.show()
        self.dock.raise_()
        if self._current is not None:
            self._current.setFocus()

    def _has_focus(self) -> bool:
        focus = QApplication.focusWidget()
        return focus is not None and self.dock is not None and self.dock.isAncestorOf(focus)

    def _current_changed(self, _index: int) -> None:
        tabs = self.tabs
        widget = tabs.currentWidget() if tabs is not None else None
        self._current = widget if isinstance(widget, TerminalView) else None
        if self._current is not None:
            self.input_line_changed.emit(self._current.input_line() or "")

    def _typed(self, view: TerminalView, line: str) -> None:
        if view is self._current:
            self.input_line_changed.emit(line)

    def _exited(self, view: TerminalView) -> None:
        if view.session.error:  # the shell never started: say why, the tab goes
            self.message.emit(view.session.error, 15000)
        self._remove(view)

    def _remove_at(self, index: int) -> None:
        if self.tabs is not None and isinstance(view := self.tabs.widget(index), TerminalView):
            self._remove(view)

    def _remove(self, view: TerminalView) -> None:
        view.kill()
        tabs = self.tabs
        if tabs is None or (index := tabs.indexOf(view)) < 0:
            return
        tabs.removeTab(index)
        view.deleteLater()
        if tabs.count() == 0 and self.dock is not None:
            self.dock.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close:
            self.close_all()
        return False
