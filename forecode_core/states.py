"""States the editor's parts report and the window's owners act on, as values (``StrEnum``:
each member equals the string its producer has always sent, so a producer can adopt the enum
without a flag day). The engine's life cycle is ``forecode_core.engine_state.EngineState``.

- ``ServiceState``: the chat service connection (``CloudConnection.state_changed``);
- ``IndexState``: the codebase index (``IndexStatus.state``);
- ``DiskCheck``: what looking at an open file's disk state did (``Document.check_disk``);
- ``SaveChoice``: the answer to "save the changes?" when a modified tab closes.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DiskCheck", "IndexState", "SaveChoice", "ServiceState"]


class ServiceState(StrEnum):
    STARTING = "starting"
    CLOUD = "cloud"  # the service answers
    LOCAL = "local"  # no service: the local model answers chat
    OFFLINE = "offline"


class IndexState(StrEnum):
    STARTING = "starting"
    INDEXING = "indexing"
    SYNCED = "synced"
    OFFLINE = "offline"
    FULL = "full"  # the service's disk
    CANCELLED = "cancelled"
    ERROR = "error"
    STOPPED = "stopped"


class SaveChoice(StrEnum):
    SAVE = "save"
    DISCARD = "discard"
    CANCEL = "cancel"


class DiskCheck(StrEnum):
    SAME = "same"
    RELOADED = "reloaded"  # unmodified buffer: reloaded silently
    CONFLICT = "conflict"  # modified buffer: a banner asks
    CHANGED = "changed"  # a big file (or one in large-file mode): a banner offers a reload
    DELETED = "deleted"
    ERROR = "error"
