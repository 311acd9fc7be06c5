"""Commands in one place: each is a row (id, title, shortcut, handler); the window binds the
keys of every owner's rows and the palette lists them (Helix's model: keys follow from the
commands, never the other way round)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import Qt, SignalInstance
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

__all__ = ["Command", "CommandOwner", "bind_commands"]


@dataclass(frozen=True)
class Command:
    """``shortcut``: VS Code's key ("" for none; alternatives joined by " or "; chords by
    ", "). ``enabled``: whether the command can act now (None: always); the palette leaves
    out a command that cannot (e.g. "Agent: Stop" while no agent runs)."""

    id: str
    title: str
    shortcut: str
    handler: Callable[[], object]
    enabled: Callable[[], bool] | None = None

    def available(self) -> bool:
        return self.enabled is None or self.enabled()

    def bindings(self) -> list[str]:
        return self.shortcut.split(" or ") if self.shortcut else []


class CommandOwner(Protocol):
    """What the window needs of an owner: its commands, and its status-bar messages
    (``message(text, timeout_ms)``)."""

    @property
    def message(self) -> SignalInstance: ...

    def commands(self) -> list[Command]: ...


def bind_commands(widget: QWidget, commands: Iterable[Command]) -> dict[str, QAction]:
    """One window-wide action per command, its keys bound; the actions by command id.
    Raises ``ValueError`` when two commands share an id or a key."""
    actions: dict[str, QAction] = {}
    keys: dict[str, str] = {}
    for command in commands:
        if command.id in actions:
            raise ValueError(f"two commands with the id {command.id}")
        for key in command.bindings():
            if key in keys:
                raise ValueError(f"{key} is bound to both {keys[key]} and {command.id}")
            keys[key] = command.id
        action = QAction(command.title, widget)
        if command.shortcut:
            action.setShortcuts([QKeySequence(k) for k in command.bindings()])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(command.handler)
        widget.addAction(action)
        actions[command.id] = action
    return actions
