"""The embedding process's JSON lines as values (``local_models.index.embed_worker`` and its
client ``local_models.index.embed_client``): what a request line asks (``"op"``), what an
event line says (``"event"``). The members equal the strings on the wire, so the lines are
byte for byte what they were.

Requests: ``EMBED`` (``id``, ``texts``), ``CANCEL`` (``id``), ``SHUTDOWN``.
Events: ``CONVERTING`` (the model is written the first time), ``READY``; per request
``VECTORS`` and ``PROGRESS`` per batch, then one of ``DONE``, ``CANCELLED``, ``FAILED``
(``FAILED`` without an ``id``: the process cannot load its model).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EmbedEvent", "EmbedOp"]


class EmbedOp(StrEnum):
    EMBED = "embed"
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"


class EmbedEvent(StrEnum):
    CONVERTING = "converting"
    READY = "ready"
    VECTORS = "vectors"
    PROGRESS = "progress"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def ends_request(self) -> bool:
        """The request's last event (its outcome)."""
        return self in (EmbedEvent.DONE, EmbedEvent.CANCELLED, EmbedEvent.FAILED)
