"""The References panel (VS Code's references view): Shift+F12's answer kept as a list after
the quick picker closes, grouped by file (the file the search started in first, then by
name), each reference with its line number and the line's text; a click (or Enter) on a row
asks to jump there. Rows can come before their text (a file not open is read on a worker
thread): ``set_rows`` shows them with "…", ``fill_texts`` puts each file's lines in as they
arrive. Made like the Problems panel (``app.ui.problems_panel``): a bottom dock
with a tree of plain rows, knowing nothing of language servers (``app.ui.owners.lsp_actions``
fills it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDockWidget, QTreeWidgetItem, QWidget

from .problems_panel import location_tree

__all__ = ["ReferenceRow", "ReferencesDock"]

ROW_ROLE = Qt.ItemDataRole.UserRole + 1
MAX_LINE = 200  # a line's text shown at most this long


@dataclass(frozen=True)
class ReferenceRow:
    """One reference: ``uri``, ``shown`` (the file as the panel names it: workspace-relative),
    the LSP ``line`` and UTF-16 ``character``, and the ``text`` of its line (None: not read
    yet)."""

    uri: str
    shown: str
    line: int
    character: int
    text: str | None


class ReferencesDock(QDockWidget):
    """``jump_requested(uri, line, character)`` when the user picks a reference."""

    jump_requested = Signal(str, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("References", parent)
        self.setObjectName("references")
        self.tree = location_tree(self, self._picked)
        self.rows: list[ReferenceRow] = []
        self.symbol = ""
        self._items: dict[str, list[QTreeWidgetItem]] = {}  # uri -> its rows' items

    def set_rows(self, symbol: str, rows: list[ReferenceRow], first: str = "") -> None:
        """Show ``rows`` (references to ``symbol``): the file ``first`` (a ``shown`` name)
        leads, the others follow by name; references by position within a file."""
        self.rows, self.symbol = list(rows), symbol
        files = {r.shown for r in rows}
        n = len(rows)
        self.setWindowTitle(
            f"References: {symbol} — {n} result{'s' if n != 1 else ''} in "
            f"{len(files)} file{'s' if len(files) != 1 else ''}"
        )
        self.tree.clear()
        self._items = {}
        by_file: dict[str, list[ReferenceRow]] = {}
        for row in rows:
            by_file.setdefault(row.shown, []).append(row)
        for shown in sorted(by_file, key=lambda s: (s != first, s)):
            group = sorted(by_file[shown], key=lambda r: (r.line, r.character))
            top = QTreeWidgetItem([f"{shown}  ({len(group)})"])
            for row in group:
                child = QTreeWidgetItem([_label(row)])
                child.setData(0, ROW_ROLE, row)
                child.setToolTip(0, f"{shown}:{row.line + 1}:{row.character + 1}")
                top.addChild(child)
                self._items.setdefault(row.uri, []).append(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        if not rows:
            self.tree.addTopLevelItem(QTreeWidgetItem(["No references found."]))

    def fill_texts(self, uri: str, texts: Mapping[int, str]) -> None:
        """The lines of ``uri`` read meanwhile (line -> text; a line missing: empty)."""
        for item in self._items.get(uri, []):
            row = item.data(0, ROW_ROLE)
            if isinstance(row, ReferenceRow) and row.text is None:
                row = replace(row, text=texts.get(row.line, ""))
                item.setData(0, ROW_ROLE, row)
                item.setText(0, _label(row))
        self.rows = [
            replace(r, text=texts.get(r.line, "")) if r.uri == uri and r.text is None else r
            for r in self.rows
        ]

    def _picked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        row = item.data(0, ROW_ROLE)
        if isinstance(row, ReferenceRow):
            self.jump_requested.emit(row.uri, row.line, row.character)

    def items(self) -> list[QTreeWidgetItem]:
        """Every row's item, files and references in order."""
        found: list[QTreeWidgetItem] = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is None:
                continue
            found.append(top)
            found.extend(c for j in range(top.childCount()) if (c := top.child(j)) is not None)
        return found

    def visible_texts(self) -> list[str]:
        """Every row's text in order (for tests and screenshots)."""
        return [item.text(0) for item in self.items()]


def _label(row: ReferenceRow) -> str:
    if row.text is None:
        return f"{row.line + 1}:  …"
    text = row.text.strip()
    if len(text) > MAX_LINE:
        text = text[: MAX_LINE - 1] + "…"
    return f"{row.line + 1}:  {text}"
