"""The database branch's preview panel (issue 17): which database was branched and how, the
test run's exit code and summary line, the run's output (its tail, collapsed under "Show
output"), what the run changed per table (rows inserted /
updated / deleted, a few sample rows under each table), whether the dev database is still
byte-identical, and the decisions: "Keep branch", "Discard", "Open in terminal". Drawing only:
``app.ui.owners.db_branch`` runs everything and tells the panel what to show."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from forecode_core.dbbranch.preview import Change, Preview, TableChange, TestRun

__all__ = ["DbBranchPanel", "table_line"]

_SIGN = {Change.INSERTED: "+", Change.UPDATED: "~", Change.DELETED: "-"}
OUTPUT_LINES = 400  # the output's tail shown (the run keeps its last OUTPUT_TAIL characters)


def table_line(t: TableChange) -> str:
    """``items  +2 ~3 -1`` (and the table's note)."""
    counts = f"+{t.inserted} ~{t.updated} -{t.deleted}"
    return f"{t.table}  {counts}" + (f"  ({t.note})" if t.note else "")


class _Line(QLabel):
    """A wrapped label that takes no height while it has no text (the samples get it)."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.setWordWrap(True)
        self.setText(text)

    def setText(self, text: str) -> None:  # Qt's name
        super().setText(text)
        if not text:
            self.hide()
        elif self.parentWidget() is not None:  # never a window of its own
            self.show()


class DbBranchPanel(QWidget):
    keep_clicked = Signal()
    discard_clicked = Signal()
    terminal_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.database = _Line("No run yet: Run Tests on a Database Branch (palette)")
        self.result = _Line()
        self.notes = _Line()
        self.tables = QTreeWidget()
        self.tables.setHeaderLabels(["Table / sample row"])
        self.output_toggle = QPushButton("Show output")
        self.output_toggle.setCheckable(True)
        self.output_toggle.setEnabled(False)
        self.output_toggle.toggled.connect(self._show_output)
        self.output = QPlainTextEdit()  # the run's output tail: why "exit code 2 — 3 errors"
        self.output.setReadOnly(True)
        self.output.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.setMaximumBlockCount(OUTPUT_LINES)
        self.output.hide()
        self.split = QSplitter(Qt.Orientation.Vertical)  # the samples take the height left
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.tables)
        self.split.addWidget(self.output)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        self.keep = QPushButton("Keep branch")
        self.discard = QPushButton("Discard")
        self.terminal = QPushButton("Open in terminal")
        self.stop = QPushButton("Stop")
        buttons = QHBoxLayout()
        for button in (self.keep, self.discard, self.terminal, self.stop):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.output_toggle)
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 4, 6, 4)
        column.setSpacing(4)
        for widget in (self.database, self.result, self.notes):
            column.addWidget(widget)
        column.addWidget(self.split, 1)
        column.addLayout(buttons)
        self.keep.clicked.connect(self.keep_clicked)
        self.discard.clicked.connect(self.discard_clicked)
        self.terminal.clicked.connect(self.terminal_clicked)
        self.stop.clicked.connect(self.stop_clicked)
        self._decisions(False)
        self.stop.setEnabled(False)

    def _show_output(self, on: bool) -> None:
        self.output.setVisible(on)
        if on:  # shared 2 : 3 (the splitter kept the output's 0 from when it was hidden)
            height = max(self.split.height(), 5)
            self.split.setSizes([height * 2 // 5, height * 3 // 5])
        self.output_toggle.setText("Hide output" if on else "Show output")

    def _set_output(self, text: str) -> None:
        self.output.setPlainText(text.rstrip())  # the last OUTPUT_LINES lines stay
        self.output.moveCursor(self.output.textCursor().MoveOperation.End)
        self.output.ensureCursorVisible()  # the end: the summary and the errors above it
        self.output_toggle.setEnabled(bool(text.strip()))
        if not text.strip():
            self.output_toggle.setChecked(False)

    def _decisions(self, on: bool) -> None:
        for button in (self.keep, self.discard, self.terminal):
            button.setEnabled(on)

    def show_running(self, database: str, step: str) -> None:
        self.database.setText(database)
        self.result.setText(step)
        self.notes.setText("")
        self.tables.clear()
        self._set_output("")
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
        self._set_output(run.output)
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
