"""Keys a VS Code user presses whose features Forecode does not have yet, and the words the
status bar shows for each, so a key never does nothing in silence.

A key here is bound only while no real command owns it (``app.ui.not_yet``): when a feature
lands with its key in the window's command table, its row here stops mattering.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOT_YET", "NotYet", "message"]


@dataclass(frozen=True)
class NotYet:
    keys: str  # Qt key sequence text; "A or B" for several
    title: str  # VS Code's name of the command
    why: str  # what Forecode lacks for it, or what to use meanwhile


NOT_YET: tuple[NotYet, ...] = (
    NotYet("Ctrl+F12", "Go to Implementations", "there is no language server yet"),
    NotYet("Ctrl+Shift+O", "Go to Symbol in Editor", "there is no symbol index yet"),
    NotYet(
        "Ctrl+T",
        "Go to Symbol in Workspace",
        "there is no symbol index yet; Ctrl+P opens a file by name",
    ),
    NotYet("Ctrl+.", "Quick Fix", "there is no language server yet"),
    NotYet("Ctrl+Space", "Trigger Suggest", "inline completions appear as you type"),
    NotYet("Ctrl+Shift+Space", "Parameter Hints", "there is no language server yet"),
    NotYet("Ctrl+Shift+I", "Format Document", "there is no formatter yet"),
    NotYet("Ctrl+J", "Toggle Panel", "there is no bottom panel yet"),
    NotYet("Ctrl+Shift+F", "Find in Files", "it is not built yet"),
    NotYet("Ctrl+Shift+H", "Replace in Files", "it is not built yet"),
    NotYet("Ctrl+Shift+G", "Source Control", "there is no source control view yet"),
    NotYet("Ctrl+Shift+D", "Run and Debug", "there is no debugger yet"),
    NotYet("F5", "Start Debugging", "there is no debugger yet"),
    NotYet("Ctrl+F5", "Run Without Debugging", "there is no runner yet"),
    NotYet("Ctrl+Shift+X", "Extensions", "Forecode has no extensions"),
    NotYet("Ctrl+Shift+[", "Fold", "click the arrows in the fold margin"),
    NotYet("Ctrl+Shift+]", "Unfold", "click the arrows in the fold margin"),
    NotYet("Ctrl+\\", "Split Editor", "there are no split editors yet"),
)


def message(entry: NotYet, pressed: str) -> str:
    """The status bar's words for a key pressed: ``"F12: Go to Definition is not in
    Forecode yet (there is no language server yet)."``"""
    return f"{pressed}: {entry.title} is not in Forecode yet ({entry.why})."
