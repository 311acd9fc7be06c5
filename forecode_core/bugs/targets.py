"""What one tier-2 pass reviews, before any model is asked: the changed functions of a buffer,
each with its context pieces, HEAD's version and its own text.

``prepare`` is everything a pass computes from the file's text (Python's ``ast`` in pieces,
``difflib`` against HEAD's blob, the functions' spans and headers). The editor runs it in a
process of its own (``app.services.bug_targets``): ``ast.parse`` and the regular expressions
are C calls that hold the GIL to their end, and the UI thread waited for them (see that
module). The answer is small (a few functions, their context and text), plain JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forecode_core.bugs.functions import (
    Function,
    changed_among,
    changed_lines_between,
    functions_in,
    version_among,
)
from forecode_core.bugs.runner import Target, context_for

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """One function to review: its span, its context pieces, HEAD's version (None: new, or no
    HEAD copy) and its text in the buffer."""

    function: Function
    context: tuple[str, ...]
    before: str | None
    text: str

    def target(self, source: str, path: str) -> Target:
        """The runner's ``Target`` over the buffer's text ``source``."""
        return Target(source, self.function, self.context, path, self.before, self.text)

    def to_json(self) -> dict[str, Any]:
        f = self.function
        return {
            "name": f.name,
            "start": f.start_line,
            "end": f.end_line,
            "context": list(self.context),
            "before": self.before,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prepared:
        """Raises ``ValueError`` on a malformed item."""
        try:
            function = Function(str(data["name"]), int(data["start"]), int(data["end"]))
            context = tuple(str(piece) for piece in data["context"])
            before = data["before"]
            text = str(data["text"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a malformed target: {exc!r}") from exc
        if before is not None and not isinstance(before, str):
            raise ValueError("a malformed target: before is not text")
        return cls(function, context, before, text)


def prepare(path: str, text: str, head: str | None, limit: int) -> list[Prepared]:
    """The first ``limit`` functions of ``text`` (the buffer of file ``path``) that changed
    against ``head`` (HEAD's copy; None: not committed, every function), in source order, each
    with its context and HEAD's version. Each file is parsed once."""
    functions = functions_in(path, text)
    if head is None:
        targets, head_functions = functions, []
    else:
        targets = changed_among(functions, changed_lines_between(head, text))
        head_functions = functions_in(path, head)
    lines = text.splitlines(keepends=True)
    out: list[Prepared] = []
    for function in targets[:limit]:
        before = None if head is None else version_among(head_functions, head, function)
        own = "".join(lines[function.start_line - 1 : function.end_line])
        context = tuple(context_for(text, function, functions))
        out.append(Prepared(function, context, before, own))
    return out
