"""Whether the frozen executable is a console program (read by ``forecode.spec``).

Windows: windowed (``console=False``), so a user sees only the editor's window, never a
console beside it; ``FORECODE_FREEZE_CONSOLE=1`` (``build.py dir --console``) makes the
diagnostic console build, whose tool switches and logs print to the terminal it runs in.
Linux: the flag changes nothing (an ELF has no subsystem); kept a console program.
macOS: kept a console program inside ``Forecode.app`` as before (its launch is Finder's).
"""

from __future__ import annotations

from collections.abc import Mapping

CONSOLE_ENV = "FORECODE_FREEZE_CONSOLE"


def wants_console(platform: str, env: Mapping[str, str]) -> bool:
    """``console=`` for PyInstaller's ``EXE`` on ``platform`` (``sys.platform``)."""
    if env.get(CONSOLE_ENV, "") not in ("", "0"):
        return True
    return platform != "win32"
