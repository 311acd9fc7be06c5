"""The agent's pieces in the chat transcript (issue 17): a step's line (``StepLine``), a
proposed command's card (``CommandCard``: the command, the folder it runs in, the model's
reason; Approve / Reject / Always allow; then its result) and the end (``AgentEndView``)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from forecode_core.agent.loop import AgentOutcome, Card, CommandResult, Decision

__all__ = ["AgentEndView", "CommandCard", "StepLine", "result_line"]

_OUTPUT_LINES = 12


def _label(text: str, mono: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if mono:
        label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return label


class StepLine(QLabel):
    """One step of the loop: the model's turn, a file read, an edit, a refusal."""

    def __init__(self, kind: str, text: str, parent: QWidget | None = None) -> None:
        # glyphs of the usual text fonts (DejaVu Sans has them all): the emoji here before drew
        # as empty boxes on a desktop without an emoji font (seen in a user run under Xvfb)
        prefix = {"model": "▸ ", "read": "≡ ", "edit": "✎ ", "refused": "⊘ "}.get(kind, "• ")
        shown = text if len(text) <= 4000 else text[:4000] + " …"
        super().__init__(prefix + shown, parent)
        self.kind = kind
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet("QLabel { padding: 2px 6px; color: palette(text); }")


def result_line(result: CommandResult) -> str:
    if result.timed_out:
        return f"{result.command}: timed out after {result.seconds:.0f} s (killed)"
    if result.exit_code is None:
        return f"{result.command}: stopped"
    verdict = "passed" if result.exit_code == 0 else "failed"
    return f"{result.command}: exit {result.exit_code} ({verdict}, {result.seconds:.1f} s)"


class CommandCard(QFrame):
    """A command the agent proposes; ``decided(step, Decision)`` on a click (once)."""

    decided = Signal(int, object)

    def __init__(self, card: Card, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.card = card
        self.decision: Decision | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("CommandCard { border: 1px solid #cca700; border-radius: 4px; }")
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 6, 8, 6)
        self.command_label = _label(card.command, mono=True)
        self.folder_label = _label(f"in {card.folder} (the workspace's shadow copy)")
        self.why_label = _label(f"Why: {card.why or '(no reason given)'}")
        self.status_label = _label("Waiting for your approval: nothing runs before a click.")
        column.addWidget(self.command_label)
        column.addWidget(self.folder_label)
        column.addWidget(self.why_label)
        row = QHBoxLayout()
        self.approve_button = QPushButton("Approve")
        self.reject_button = QPushButton("Reject")
        self.always_button = QPushButton("Always allow")
        self.always_button.setToolTip(
            "Run it, and let the agent run this command (with any further arguments) without "
            "asking for the rest of the session"
        )
        self.always_button.setEnabled(card.plain)  # shell syntax can never be allowed
        self.approve_button.clicked.connect(lambda: self._decide(Decision.APPROVE))
        self.reject_button.clicked.connect(lambda: self._decide(Decision.REJECT))
        self.always_button.clicked.connect(lambda: self._decide(Decision.ALWAYS))
        for button in (self.approve_button, self.reject_button, self.always_button):
            row.addWidget(button)
        row.addStretch(1)
        column.addLayout(row)
        column.addWidget(self.status_label)
        self.output_label = _label("", mono=True)
        self.output_label.hide()
        column.addWidget(self.output_label)

    def _decide(self, decision: Decision) -> None:
        if self.decision is not None:
            return
        self.decision = decision
        self.close_buttons(
            {
                Decision.APPROVE: "Approved: running…",
                Decision.ALWAYS: "Approved (always): running…",
                Decision.REJECT: "Rejected: it did not run.",
            }[decision]
        )
        self.decided.emit(self.card.step, decision)

    def close_buttons(self, status: str) -> None:
        for button in (self.approve_button, self.reject_button, self.always_button):
            button.setEnabled(False)
        self.status_label.setText(status)

    def show_result(self, result: CommandResult) -> None:
        self.close_buttons(result_line(result))
        tail = result.output.rstrip().splitlines()[-_OUTPUT_LINES:]
        if result.preview:
            tail += ["", result.preview]
        self.output_label.setText("\n".join(tail))
        self.output_label.setVisible(bool(tail))


class AgentEndView(QFrame):
    """The loop's end: why it ended, the last command's result (and the database branch's
    preview), and the set's review (``review_requested``)."""

    review_requested = Signal()

    def __init__(self, outcome: AgentOutcome, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outcome = outcome
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 6, 8, 6)
        column.addWidget(_label(f"Agent ended ({outcome.reason}): {outcome.summary}"))
        last = outcome.last_run
        self.last_label = _label("Last run: " + (result_line(last) if last else "none"))
        column.addWidget(self.last_label)
        if last is not None and last.preview:
            column.addWidget(_label(last.preview, mono=True))
        n = len(outcome.changes)
        self.review_button = QPushButton(f"Review the changes ({n} file{'s' if n != 1 else ''})")
        self.review_button.setEnabled(n > 0)
        self.review_button.clicked.connect(self.review_requested)
        column.addWidget(self.review_button)
