"""The local engine's life cycle as its client reports it (``local_models.client.EngineClient``:
``on_state(state, detail)`` and ``state``), shared by the editor, the chat router's local
fallback and the benchmarks. The values are the strings the client always reported, so a
``StrEnum`` member equals them and crosses a Qt ``Signal(str, str)`` unchanged.

::

    stopped --start--> starting --Ready--> ready --crash--> crashed --backoff--> starting
       ^                  |                  |                 |
       +----close---------+------------------+-----------------+   (any) --give up--> failed
    failed --start--> starting
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EngineState"]


class EngineState(StrEnum):
    STOPPED = "stopped"  # not started, or closed
    STARTING = "starting"  # a worker is loading the model (the detail says which)
    READY = "ready"  # requests go to the worker
    CRASHED = "crashed"  # the worker died; it restarts after a backoff (the detail says when)
    FAILED = "failed"  # the model cannot load, or too many crashes in a row: no restart loop

    @property
    def startable(self) -> bool:
        """``start()`` spawns a worker from here (a failed client can be started again)."""
        return self in (EngineState.STOPPED, EngineState.FAILED)

    @property
    def running(self) -> bool:
        """A worker runs or will run without a ``start()``: requests wait for it."""
        return not self.startable
