"""The database branch's preview panel (issue 17): which database was branched and how, the
test run's exit code and summary line, what the run changed per table (rows inserted /
updated / deleted, a few sample rows under each table), whether the dev database is still
byte-identical, and the decisions: "Keep branch", "Discard", "Open in terminal". Drawing only:
``app.ui.owners.db_branch`` runs everything and tells the panel what to show."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from forecode_core.dbbranch.preview import Change, Preview, TableChange, TestRun

__all__ = ["DbBranchPanel", "table_line"]

_SIGN = {Change.INSERTED: "+", Change.UPDATED: "~", Change.DELETED: "-"}


def table_line(t: TableChange) -> str:
    """``items  +2 ~3 -1`` (and the table's note)."""
    counts = f"+{t.inserted} ~{t.updated} -{t.deleted}"
    return f"{t.table}  {counts}" + (f"  ({t.note})" if t.note else "")


class DbBranchPanel(QWidget):
    keep_clicked = Signal()
    discard_clicked = Signal()
    terminal_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.database = QLabel("No run yet: Run Tests on a Database Branch (palette)")
        self.database.setWordWrap(True)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.tables = QTreeWidget()
        self.tables.setHeaderLabels(["Table / sample row"])
        self.keep = QPushButton("Keep branch")
        self.discard = QPushButton("Discard")
        self.terminal = QPushButton("Open in terminal")
        self.stop = QPushButton("Stop")
        buttons = QHBoxLayout()
        for button in (self.keep, self.discard, self.terminal, self.stop):
            buttons.addWidget(button)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        for widget in (self.database, self.result, self.notes):
            column.addWidget(widget)
        column.addWidget(self.tables, 1)
        column.addLayout(buttons)
        self.keep.clicked.connect(self.keep_clicked)
        self.discard.clicked.connect(self.discard_clicked)
        self.terminal.clicked.connect(self.terminal_clicked)
        self.stop.clicked.connect(self.stop_clicked)
        self._decisions(False)
        self.stop.setEnabled(False)

    def _decisions(self, on: bool) -> None:
        for button in (self.keep, self.discard, self.terminal):
            button.setEnabled(on)

    def show_running(self, database: str, step: str) -> None:
        self.database.setText(database)
        self.result.setText(step)
        self.notes.setText("")
        self.tables.clear()
        self._decisions(False)
        self.stop.setEnabled(True)

    def show_error(self, text: str) -> None:
        self.result.setText(text)
        self._decisions(False)
        self.stop.setEnabled(False)

    def show_result(
        self,
        database: str,
        run: TestRun,
        preview: Preview,
        notes: list[str],
        unchanged: bool | None,
    ) -> None:
        self.database.setText(database)
        code = "stopped" if run.exit_code is None else f"exit code {run.exit_code}"
        self.result.setText(f"{run.command}: {code} — {run.summary}")
        lines = list(notes)
        if unchanged is not None:
            lines.append(
                "The dev database is unchanged (checksums match)."
                if unchanged
                else "The dev database CHANGED during the run (not by the branch's tests?)."
            )
        ins, upd, dele = preview.totals()
        lines.append(f"The run changed {len(preview.changed)} table(s): +{ins} ~{upd} -{dele}")
        self.notes.setText("\n".join(lines))
        self.tables.clear()
        for table in preview.changed:
            item = QTreeWidgetItem([table_line(table)])
            if table.columns:
                item.addChild(QTreeWidgetItem(["  " + " | ".join(table.columns)]))
            for sample in table.samples:
                text = f"{_SIGN[sample.change]} " + " | ".join(sample.cells)
                item.addChild(QTreeWidgetItem([text]))
            self.tables.addTopLevelItem(item)
            item.setExpanded(True)
        self._decisions(True)
        self.stop.setEnabled(False)

    def show_decided(self, text: str) -> None:
        self.notes.setText(self.notes.text() + "\n" + text)
        self._decisions(False)

    def table_lines(self) -> list[str]:
        """The tables shown (tests, screenshots)."""
        items = (self.tables.topLevelItem(i) for i in range(self.tables.topLevelItemCount()))
        return [item.text(0) for item in items if item is not None]
