"""Go to definition's history (VS Code's Alt+Left / Alt+Right) and hover text for a call tip.

``NavigationHistory`` holds places (a file and a byte position); a jump records where the
caret was, Back returns there (remembering where it came from for Forward), and a new jump
after going back drops the forward half, as in a browser. At most 50 places; consecutive
duplicates are kept once."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = ["NavigationHistory", "Place", "hover_text"]

LIMIT = 50


@dataclass(frozen=True)
class Place:
    path: str
    position: int  # the editor's byte position


@dataclass(frozen=True)
class NavigationHistory:
    back: tuple[Place, ...] = ()
    forward: tuple[Place, ...] = ()

    def jumped(self, origin: Place) -> NavigationHistory:
        """A jump away from ``origin``."""
        if self.back and self.back[-1] == origin:
            return replace(self, forward=())
        return NavigationHistory((*self.back, origin)[-LIMIT:], ())

    def go_back(self, here: Place) -> tuple[NavigationHistory, Place | None]:
        if not self.back:
            return self, None
        target = self.back[-1]
        return NavigationHistory(self.back[:-1], (here, *self.forward)[:LIMIT]), target

    def go_forward(self, here: Place) -> tuple[NavigationHistory, Place | None]:
        if not self.forward:
            return self, None
        target = self.forward[0]
        return NavigationHistory((*self.back, here)[-LIMIT:], self.forward[1:]), target


_FENCE = re.compile(r"^```[\w+-]*\s*$")


def hover_text(markdown: str, max_lines: int = 20, max_width: int = 100) -> str:
    """A hover's markdown as a call tip's plain text: code fences and horizontal rules
    dropped, backslash escapes undone, at most ``max_lines`` lines of ``max_width``."""
    lines: list[str] = []
    for raw in markdown.strip().splitlines():
        line = raw.rstrip()
        if _FENCE.match(line.strip()) or line.strip() in ("---", "***", "___"):
            continue
        line = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>])", r"\1", line)
        if len(line) > max_width:
            line = line[: max_width - 1] + "…"
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], "…"]
    return "\n".join(lines)
