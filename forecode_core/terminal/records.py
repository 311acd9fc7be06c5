"""One finished command in a terminal, as the shell integration's marks delimit it.

The terminal (``app.ui``'s panel) emits one ``CommandRecord`` per command the user ran; the
"Explain / Fix" flow and next-command prediction read them. ``output`` is the text between the
command's start (OSC 133 C) and its end (OSC 133 D), with escape sequences stripped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandRecord:
    command: str  # the command line as the shell ran it (OSC 633 E, else the typed line)
    cwd: str  # the folder it ran in (OSC 633 P;Cwd=, else the terminal's start folder)
    output: str  # what it printed, escapes stripped
    exit_code: int | None  # None: the shell did not report one (no integration, killed)

    @property
    def failed(self) -> bool:
        return self.exit_code not in (None, 0)
