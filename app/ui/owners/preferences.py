"""The preferences: the settings file (JSONC, VS Code's dotted keys), read at start and again
when it is saved in the editor; the theme toggle and zoom. Each new ``Settings`` value is
announced (``changed``); the window applies it to every owner and widget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from forecode_core.store.atomic import atomic_write
from forecode_core.store.private import PRIVATE_FILE, private_folder
from forecode_core.store.settings import Settings, default_settings_text, load_settings

from .commands import Command
from .documents import Documents

__all__ = ["Preferences"]


class Preferences(QObject):
    """``documents`` opens the settings file and shows its problems in its tab."""

    changed = Signal(object)  # the Settings now in force, to apply everywhere
    reloaded = Signal(object, object)  # (old, new) after the file was read again and applied
    message = Signal(str, int)

    def __init__(self, file: Path, documents: Documents, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.file = file
        self._documents = documents
        self.settings, self.problems = load_settings(file)

    def commands(self) -> list[Command]:
        return [
            Command(
                "view.toggleTheme", "Preferences: Toggle Dark/Light Theme", "", self.toggle_theme
            ),
            Command("view.zoomIn", "View: Zoom In", "Ctrl+= or Ctrl++", lambda: self.zoom(1)),
            Command("view.zoomOut", "View: Zoom Out", "Ctrl+-", lambda: self.zoom(-1)),
            Command("view.zoomReset", "View: Reset Zoom", "Ctrl+0", lambda: self.zoom(0)),
            Command(
                "prefs.settings", "Preferences: Open Settings (JSON)", "Ctrl+,", self.open_settings
            ),
        ]

    def apply(self, settings: Settings) -> None:
        self.settings = settings
        self.changed.emit(settings)

    def open_settings(self) -> None:
        path = self.file
        if not path.exists():
            try:
                private_folder(path.parent)  # settings are the user's alone
                atomic_write(path, default_settings_text().encode("utf-8"), mode=PRIVATE_FILE)
            except OSError as exc:
                self.message.emit(f"Cannot create {path}: {exc}", 10000)
                return
        doc = self._documents.open_file(path)
        if doc is not None and self.problems:
            doc.banner.show_message("\n".join(self.problems), "warning")

    def file_saved(self, path: Path) -> None:
        if path == self.file.resolve():
            self.reload()

    def reload(self) -> None:
        """Read the file again, apply it, and say what was wrong with it (in its tab too)."""
        old = self.settings
        new, self.problems = load_settings(self.file)
        self.apply(new)
        self.reloaded.emit(old, new)
        for doc in self._documents.documents():
            if doc.path == self.file.resolve():
                if self.problems:
                    doc.banner.show_message("\n".join(self.problems), "warning")
                else:
                    doc.banner.clear()
        if self.problems:
            self.message.emit("Settings: " + "; ".join(self.problems), 15000)
        else:
            self.message.emit("Settings applied.", 5000)

    def toggle_theme(self) -> None:
        new = "light" if self.settings.theme == "dark" else "dark"
        self.apply(replace(self.settings, theme=new))

    def zoom(self, step: int) -> None:
        size = self.settings.font_size + step if step else load_settings(self.file)[0].font_size
        self.apply(replace(self.settings, font_size=max(6, min(72, size))))
