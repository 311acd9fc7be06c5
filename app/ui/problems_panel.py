"""The Problems panel (VS Code's Ctrl+Shift+M): every diagnostic of the open files, grouped
by file, errors first within a file's lines; a click (or Enter) on a row asks to jump there.

Hints are not listed (``listed``), as in VS Code, whose Problems view and F8 take errors,
warnings and infos only: basedpyright reports every unused parameter or name as a hint ("x is
not accessed", drawn faded in the editor), and in a user run on jinja's environment.py 30 such
rows buried the file's errors. Infos are marked ``ℹ`` (U+2139, in DejaVu Sans, Linux's usual
fallback); ``ⓘ`` is in none of that machine's fonts and drew as a box.

The panel holds plain rows and knows nothing of language servers: the language owner
(``app.ui.owners.language``) fills it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTreeWidget, QTreeWidgetItem, QWidget

from forecode_core.lsp.diagnostics import Diagnostic, Severity

__all__ = [
    "ProblemRow",
    "ProblemsDock",
    "listed",
    "one_line",
    "place_bottom_dock",
    "severity_mark",
]

_MARKS = {
    Severity.ERROR: "⊗",
    Severity.WARNING: "⚠",
    Severity.INFORMATION: "ℹ",
    Severity.HINT: "ℹ",
}
ROW_ROLE = Qt.ItemDataRole.UserRole + 1


def severity_mark(severity: Severity) -> str:
    return _MARKS[severity]


def listed(severity: Severity) -> bool:
    """Whether a diagnostic of ``severity`` is a problem the panel lists and F8 visits (not a
    hint: module doc)."""
    return severity != Severity.HINT


def one_line(message: str) -> str:
    """A server's message as one row: its non-empty lines joined by " — " (``ruff server``
    writes "message\n\nhelp: fix"; a tree row shows a text's first line only, elided, which
    hid the source, the code and the position after it). The tooltip keeps the original."""
    return " — ".join(part.strip() for part in message.splitlines() if part.strip())


@dataclass(frozen=True)
class ProblemRow:
    """One diagnostic of one file: ``key`` names the document (its URI), ``shown`` is the
    file's name as the panel shows it (a workspace-relative path)."""

    key: str
    shown: str
    diagnostic: Diagnostic


def location_tree(dock: QDockWidget, picked: Callable[[QTreeWidgetItem, int], None]) -> QTreeWidget:
    """The tree of a dock that lists places grouped by file (problems, references): no header,
    uniform rows, ``picked`` on a click or Enter; set as ``dock``'s widget."""
    tree = QTreeWidget()
    tree.setHeaderHidden(True)
    tree.setRootIsDecorated(True)
    tree.setUniformRowHeights(True)
    tree.itemActivated.connect(picked)
    tree.itemClicked.connect(picked)
    dock.setWidget(tree)
    return tree


class ProblemsDock(QDockWidget):
    """A bottom dock with the problems tree. ``jump_requested(key, line, character)`` (LSP
    line and UTF-16 character) when the user picks a row."""

    jump_requested = Signal(str, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.setObjectName("problems")
        self.tree = location_tree(self, self._picked)
        self.rows: list[ProblemRow] = []

    def set_rows(self, rows: list[ProblemRow]) -> None:
        """Replace the contents (hints left out); files sorted by name, problems by
        position."""
        rows = [row for row in rows if listed(row.diagnostic.severity)]
        self.rows = rows
        collapsed = {item.text(0).split("  ")[0] for item in self._files() if not item.isExpanded()}
        self.tree.clear()
        by_file: dict[str, list[ProblemRow]] = {}
        for row in rows:
            by_file.setdefault(row.shown, []).append(row)
        for shown in sorted(by_file):
            group = sorted(
                by_file[shown], key=lambda r: (r.diagnostic.start, r.diagnostic.severity)
            )
            top = QTreeWidgetItem([f"{shown}  ({len(group)})"])
            for row in group:
                d = row.diagnostic
                where = f"[Ln {d.start.line + 1}, Col {d.start.character + 1}]"
                label = replace(d, message=one_line(d.message)).label()
                text = f"{severity_mark(d.severity)}  {label}  {where}"
                child = QTreeWidgetItem([text])
                child.setData(0, ROW_ROLE, row)
                child.setToolTip(0, d.message)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(shown not in collapsed)
        if not rows:
            self.tree.addTopLevelItem(QTreeWidgetItem(["No problems have been detected."]))

    def _files(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    def _picked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        row = item.data(0, ROW_ROLE)
        if isinstance(row, ProblemRow):
            d = row.diagnostic
            self.jump_requested.emit(row.key, d.start.line, d.start.character)

    def visible_texts(self) -> list[str]:
        """Every row's text, files and problems in order (for tests and screenshots)."""
        texts: list[str] = []
        for top in self._files():
            texts.append(top.text(0))
            for j in range(top.childCount()):
                child = top.child(j)
                if child is not None:
                    texts.append(child.text(0))
        return texts


def place_bottom_dock(window: QMainWindow, dock: QDockWidget, fraction: float = 0.0) -> None:
    """Add ``dock`` at the bottom, as a tab beside the bottom docks already there (Problems,
    References: VS Code's panel tabs), not squeezed into a strip beside them; its owner
    raises it when it has something to show. ``fraction``: the panel's height as a share of
    the window's (at least the dock's minimum), when given."""
    bottom = Qt.DockWidgetArea.BottomDockWidgetArea
    others = [
        d
        for d in window.findChildren(QDockWidget)
        if d is not dock and window.dockWidgetArea(d) == bottom and not d.isFloating()
    ]
    window.addDockWidget(bottom, dock)
    if others:
        window.tabifyDockWidget(others[0], dock)
    if fraction > 0:
        height = max(dock.minimumSizeHint().height(), int(window.height() * fraction))
        window.resizeDocks([dock], [height], Qt.Orientation.Vertical)
