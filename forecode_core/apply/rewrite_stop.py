"""Why apply's model path ended (``local_models.apply_model.ModelRewrite.stop_reason``), as
values. A rewrite is complete only with ``STOP``: the model closed the file's fence and what it
wrote is the whole file. Otherwise the engine's own reason stands ("eos", "length",
"cancelled"), or, for a closed answer that is not the file, why not: a defect's kind
(``forecode_core.apply.block.RewriteDefect.kind``: "elision", "dropped", "missed") or
``CONTEXT`` (a window's answer copied the read-only code around it).

The values are the strings the engine, the service's log lines and ``bench apply``'s JSON
have always carried.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RewriteStop"]


class RewriteStop(StrEnum):
    STOP = "stop"  # complete
    EOS = "eos"  # the model ended its turn without closing the fence
    LENGTH = "length"  # cut at the token limit
    CANCELLED = "cancelled"
    CONTEXT = "context"  # a window answer that repeats the context around the window
    ELISION = "elision"  # a placeholder ("# ... existing code ...") left in place of code
    DROPPED = "dropped"  # most of the file left out
    MISSED = "missed"  # a line of the edit left out

    @property
    def complete(self) -> bool:
        return self is RewriteStop.STOP
