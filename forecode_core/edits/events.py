"""A multi-file edit as a stream of the shared contract (``forecode_core.streams``).

``Started`` (a model slot took the request), ``Delta``s (the model's answer as it writes it:
its explanation and the per-file blocks), ``Notice``s (a file being resolved, a file the
answer does not change), then one ``EditsDone`` whose ``files`` are the set to review: each
``FileChange`` is a new file, a deleted file, a modified file (the whole new text, resolved
by the apply pipeline against the text the client sent) or a file that could not be resolved
(``FAILED``, with the reason; the rest of the set is still offered). An answer that is not a
well-formed set raises ``StreamError("incomplete")`` with the parser's reason: nothing is
offered, nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from forecode_core.streams import Call, Delta, Done, Notice, Started, Subject

__all__ = [
    "EDITS",
    "EditsCall",
    "EditsDone",
    "EditsEvent",
    "FileChange",
    "FileChangeKind",
]


class FileChangeKind(StrEnum):
    """What a multi-file edit does to one file (the wire's ``FileEditKind``)."""

    MODIFIED = "modified"
    NEW = "new"
    DELETED = "deleted"
    FAILED = "failed"  # the answer's edit could not be resolved against the file


@dataclass(frozen=True)
class FileChange:
    """One file of a proposed set. ``original``: the text the change was computed against
    (what the client sent; "" for a new file); ``new_text``: the file after the change ("" for
    a deleted or failed one); ``block``: the model's block for it; ``source``: the apply path
    that resolved it ("deterministic", "model"; "" for new and deleted files); ``error``: why a
    FAILED change could not be resolved; ``warning``: code the change removes that its block
    does not mention (the apply's safety check), for the review to show."""

    path: str
    kind: FileChangeKind
    original: str = ""
    new_text: str = ""
    block: str = ""
    source: str = ""
    error: str = ""
    warning: str = ""

    @property
    def reviewable(self) -> bool:
        return self.kind is not FileChangeKind.FAILED


@dataclass(frozen=True, kw_only=True)
class EditsDone(Done):
    """The end of a multi-file edit: the set to review (in the answer's order)."""

    files: tuple[FileChange, ...] = field(default_factory=tuple)


EditsEvent = Started | Delta | Notice | Done
"""A multi-file edit's events; its ``Done`` is an ``EditsDone``."""

EditsCall = Call[EditsEvent]

EDITS = Subject(
    name="multi-file edit",
    service="The edits service",
    work="The multi-file edit",
    too_large="The files are too large for the edits service",
)
"""The nouns of the failure table (``forecode_core.streams.describe_failure``)."""
