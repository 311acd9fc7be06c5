"""When to restart a language server that exited: back-off as a value.

A crash restarts after 0.5 s, then 1, 2, 4 ... up to 30 s; a server that ran a minute since
its last start counts as healthy again (the delay starts over). Five crashes in a row, none
lasting a minute, and it stays stopped with a message (VS Code's language client gives up
after five crashes in three minutes)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["RestartPolicy", "ServerState"]


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    healthy_after_s: float = 60.0
    max_crashes: int = 5
    crashes: int = 0  # crashes in a row, each within healthy_after_s of its start

    def after_exit(self, ran_s: float) -> RestartPolicy:
        """The policy after a server exited unasked, having run ``ran_s`` seconds."""
        crashes = 1 if ran_s >= self.healthy_after_s else self.crashes + 1
        return replace(self, crashes=crashes)

    @property
    def gave_up(self) -> bool:
        return self.crashes >= self.max_crashes

    def delay_s(self) -> float:
        """Seconds to wait before the next start (0 before any crash)."""
        if self.crashes == 0:
            return 0.0
        return min(self.max_delay_s, self.first_delay_s * float(2 ** (self.crashes - 1)))


class ServerState(StrEnum):
    """A language server's life cycle, as the status bar says it."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # it crashed or hung; a new one starts after the back-off
    MISSING = "missing"  # its command is not installed
    FAILED = "failed"  # it could not start, or crashed too often: left stopped
    STOPPED = "stopped"  # shut down by the editor
