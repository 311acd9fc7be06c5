"""Why apply's model path ended (``forecode_core.apply.rewrite_stop.RewriteStop``): one value
for the engine's stop reasons, the defect kinds and a window that copied its context."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from forecode_core.apply import block
from forecode_core.apply.rewrite_stop import RewriteStop
from forecode_core.protocol import STOP_REASONS


@pytest.mark.parametrize(
    ("member", "value", "complete"),
    [
        (RewriteStop.STOP, "stop", True),
        (RewriteStop.EOS, "eos", False),
        (RewriteStop.LENGTH, "length", False),
        (RewriteStop.CANCELLED, "cancelled", False),
        (RewriteStop.CONTEXT, "context", False),
        (RewriteStop.ELISION, "elision", False),
        (RewriteStop.DROPPED, "dropped", False),
        (RewriteStop.MISSED, "missed", False),
    ],
)
def test_a_rewrite_is_complete_only_when_it_stopped(
    member: RewriteStop, value: str, complete: bool
) -> None:
    assert member == value and RewriteStop(value) is member
    assert member.complete is complete


def test_every_engine_stop_reason_and_defect_kind_is_a_member() -> None:
    assert set(STOP_REASONS) <= set(RewriteStop)
    hints = typing.get_type_hints(block.RewriteDefect)
    (kind,) = (f for f in dataclasses.fields(block.RewriteDefect) if f.name == "kind")
    assert set(typing.get_args(hints[kind.name])) <= set(RewriteStop)
