"""The welcome page, shown in the editor area while no folder and no file is open: recent
folders (click to open), Open Folder / Open File / New File, and the keys worth knowing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

__all__ = ["KEY_HINTS", "WelcomePage"]

#: (keys, what they do) on the welcome page.
KEY_HINTS: tuple[tuple[str, str], ...] = (
    ("Ctrl+P", "Go to a file by name"),
    ("Ctrl+Shift+P", "Show all commands"),
    ("Ctrl+L", "Chat about the code"),
    ("Ctrl+K", "Edit the selection with a model"),
    ("Tab", "Accept an inline completion"),
    ("Ctrl+F / Ctrl+H", "Find / Replace"),
    ("Ctrl+D", "Add the next occurrence to the selection"),
    ("Ctrl+,", "Settings"),
    ("Ctrl+Q", "Quit (unsaved work is kept for next time)"),
)


class WelcomePage(QScrollArea):
    openFolderRequested = Signal()  # the Open Folder dialog
    openFileRequested = Signal()
    newFileRequested = Signal()
    recentRequested = Signal(str)  # a recent folder, by path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WelcomePage")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        self.setWidget(body)
        outer = QHBoxLayout(body)
        outer.setContentsMargins(48, 40, 48, 40)
        column = QVBoxLayout()
        column.setSpacing(6)
        outer.addLayout(column, 3)
        outer.addStretch(1)

        title = QLabel("Forecode")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setWeight(QFont.Weight.Light)
        title.setFont(font)
        column.addWidget(title)
        subtitle = QLabel("A code editor with local models")
        subtitle.setEnabled(False)
        column.addWidget(subtitle)
        column.addSpacing(20)

        column.addWidget(self._heading("Start"))
        self.open_folder_button = self._link("Open Folder…", "Ctrl+K Ctrl+O")
        self.open_file_button = self._link("Open File…", "Ctrl+O")
        self.new_file_button = self._link("New File", "Ctrl+N")
        self.open_folder_button.clicked.connect(self.openFolderRequested)
        self.open_file_button.clicked.connect(self.openFileRequested)
        self.new_file_button.clicked.connect(self.newFileRequested)
        for button in (self.open_folder_button, self.open_file_button, self.new_file_button):
            column.addWidget(button)
        column.addSpacing(16)

        column.addWidget(self._heading("Recent"))
        self._recent_box = QVBoxLayout()
        self._recent_box.setSpacing(2)
        column.addLayout(self._recent_box)
        self.recent_buttons: list[QPushButton] = []
        self.no_recent = QLabel("No recent folders yet.")
        self.no_recent.setEnabled(False)
        self._recent_box.addWidget(self.no_recent)
        column.addSpacing(16)

        column.addWidget(self._heading("Keys"))
        keys = QGridLayout()
        keys.setHorizontalSpacing(16)
        keys.setVerticalSpacing(3)
        for row, (key, what) in enumerate(KEY_HINTS):
            key_label = QLabel(f"<code>{key}</code>")
            key_label.setTextFormat(Qt.TextFormat.RichText)
            keys.addWidget(key_label, row, 0)
            keys.addWidget(QLabel(what), row, 1)
        keys.setColumnStretch(2, 1)
        column.addLayout(keys)
        column.addStretch(1)

    @staticmethod
    def _heading(text: str) -> QLabel:
        label = QLabel(text)
        font = QFont(label.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        label.setFont(font)
        return label

    @staticmethod
    def _link(text: str, keys: str = "") -> QPushButton:
        button = QPushButton(f"{text}   {keys}" if keys else text)
        button.setFlat(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.setStyleSheet(
            "QPushButton { text-align: left; padding: 2px 4px; color: #3794ff; }"
            " QPushButton:hover { text-decoration: underline; }"
        )
        button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        return button

    def set_recent(self, folders: list[str]) -> None:
        """Show ``folders`` (newest first); one that no longer exists says so."""
        for button in self.recent_buttons:
            self._recent_box.removeWidget(button)
            button.deleteLater()
        self.recent_buttons = []
        self.no_recent.setVisible(not folders)
        for folder in folders:
            path = Path(folder)
            missing = "" if path.is_dir() else "   (not found)"
            button = self._link(f"{path.name or folder}   {path.parent}{missing}")
            button.setToolTip(folder)
            button.setObjectName("recent")
            button.clicked.connect(lambda _c=False, f=folder: self.recentRequested.emit(f))
            self._recent_box.addWidget(button)
            self.recent_buttons.append(button)
