"""The terminal's processes (issue 17): the user's shell on a pseudo-terminal with Forecode's
shell integration (``shell/``: bash, zsh, PowerShell). No Qt here: the panel
(``app.ui.terminal``) gets the shell's bytes on the reader thread through a callback."""

from .launch import Launch, shell_launch
from .session import PtySession

__all__ = ["Launch", "PtySession", "shell_launch"]
