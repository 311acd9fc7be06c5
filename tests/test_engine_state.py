"""The engine's life-cycle states (``forecode_core.engine_state``): their values are the
strings the client always reported, and which of them ``start()`` spawns a worker from."""

from __future__ import annotations

import json

import pytest

from forecode_core.engine_state import EngineState

S = EngineState

# state -> (start() spawns a worker from it, a worker runs or will run without a start())
TABLE = [
    (S.STOPPED, True, False),
    (S.STARTING, False, True),
    (S.READY, False, True),
    (S.CRASHED, False, True),
    (S.FAILED, True, False),
]


@pytest.mark.parametrize(("state", "startable", "running"), TABLE)
def test_startable_and_running(state: EngineState, startable: bool, running: bool) -> None:
    assert (state.startable, state.running) == (startable, running)


def test_every_state_is_in_the_table_and_keeps_its_string() -> None:
    assert [row[0] for row in TABLE] == list(S)
    assert [s.value for s in S] == ["stopped", "starting", "ready", "crashed", "failed"]
    assert S("ready") is S.READY and S.READY == "ready" and f"{S.READY}" == "ready"
    assert json.dumps(S.FAILED) == '"failed"'
