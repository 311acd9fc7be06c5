"""The current editor's commands: find and replace in the file (the find bar), go to line,
comments, multi-cursor, undo/redo and line moves. Each acts on the current tab's editor."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from ..editor import CodeEditor
from ..find_bar import FindBar
from ..picker import Picker, PickerItem
from .commands import Command
from .documents import Documents

__all__ = ["Editing"]


class Editing(QObject):
    message = Signal(str, int)

    def __init__(
        self,
        documents: Documents,
        find_bar: FindBar,
        picker: Picker,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._documents = documents
        self.find_bar = find_bar
        self._picker = picker

    def commands(self) -> list[Command]:
        ed = self._on_editor
        return [
            Command("view.gotoLine", "Go to Line...", "Ctrl+G", self.go_to_line),
            Command("edit.find", "Find", "Ctrl+F", self.open_find),
            Command("edit.replace", "Replace", "Ctrl+H", self.open_replace),
            Command("edit.findNext", "Find Next", "F3", lambda: self.find_step(True)),
            Command("edit.findPrev", "Find Previous", "Shift+F3", lambda: self.find_step(False)),
            Command(
                "edit.comment", "Toggle Line Comment", "Ctrl+/", ed(lambda e: e.toggle_comment())
            ),
            Command(
                "edit.addNext",
                "Add Selection to Next Find Match",
                "Ctrl+D",
                ed(lambda e: e.add_next_occurrence()),
            ),
            Command(
                "edit.selectAll",
                "Select All Occurrences of Find Match",
                "Ctrl+Shift+L",
                ed(self._select_all_occurrences),
            ),
            Command("edit.undo", "Undo", "", ed(lambda e: e.undo())),
            Command("edit.redo", "Redo", "Ctrl+Y", ed(lambda e: e.redo())),
            Command("edit.deleteLine", "Delete Line", "", ed(lambda e: e.lineDelete())),
            Command("edit.moveUp", "Move Line Up", "", ed(lambda e: e.moveSelectedLinesUp())),
            Command("edit.moveDown", "Move Line Down", "", ed(lambda e: e.moveSelectedLinesDown())),
        ]

    def _on_editor(self, fn: Callable[[CodeEditor], object]) -> Callable[[], None]:
        def run() -> None:
            doc = self._documents.current_document()
            if doc is not None:
                fn(doc.editor)

        return run

    def _select_all_occurrences(self, editor: CodeEditor) -> None:
        if editor.select_all_occurrences() > editor.SELECT_ALL_LIMIT:
            self.message.emit(
                f"Selected the first {editor.SELECT_ALL_LIMIT:,} occurrences (the most at once).",
                8000,
            )

    # ----- find --------------------------------------------------------------------------------
    def open_find(self) -> None:
        doc = self._documents.current_document()
        if doc is not None:
            self.find_bar.set_editor(doc.editor)
            self.find_bar.open_find()

    def open_replace(self) -> None:
        doc = self._documents.current_document()
        if doc is not None:
            self.find_bar.set_editor(doc.editor)
            self.find_bar.open_replace()

    def find_step(self, forward: bool) -> None:
        """F3 / Shift+F3 in the current tab (also after the bar was closed on another tab);
        with nothing searched yet, the find bar opens, as VS Code's."""
        doc = self._documents.current_document()
        if doc is None:
            return
        self.find_bar.set_editor(doc.editor)
        if not self.find_bar.query_edit.text():
            self.open_find()
        elif forward:
            self.find_bar.find_next()
        else:
            self.find_bar.find_previous()

    def follow(self, editor: CodeEditor | None) -> None:
        """The current tab changed: an open find bar searches the new one."""
        if editor is not None and self.find_bar.isVisible():
            self.find_bar.set_editor(editor)

    # ----- go to line --------------------------------------------------------------------------
    def go_to_line(self) -> None:
        doc = self._documents.current_document()
        if doc is None:
            return
        editor = doc.editor
        total = editor.lineCount()

        def parse(query: str) -> tuple[int, int] | None:
            parts = query.strip().lstrip(":").split(":")
            try:
                line = int(parts[0])
                col = int(parts[1]) if len(parts) > 1 and parts[1] else 1
            except ValueError:
                return None
            return line, col

        def provider(query: str) -> list[PickerItem]:
            target = parse(query)
            line, col = editor.caret_line_col()
            if target is None:
                return [
                    PickerItem(
                        f"Current line: {line}, character: {col}. "
                        f"Type a line number between 1 and {total}."
                    )
                ]
            return [PickerItem(f"Go to line {target[0]}, character {target[1]}", data=target)]

        def accept(_item: PickerItem | None, query: str) -> None:
            target = parse(query)
            if target is not None:
                editor.go_to_line(*target)

        self._picker.open("Type a line number to go to", provider, on_accept=accept)
