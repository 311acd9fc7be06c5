"""The agent loop with the real default chat model (Qwen2.5-Coder-1.5B-Instruct) through the
real gRPC service on loopback, on a tiny project with a failing test, in a real shadow with
real processes: the loop's guarantees, not the model's luck. It must end for a stated reason
(not a failure of the model: a broken engine fails this test, never skips it), every command
that ran was allowed by the list or approved, nothing outside ran, the user's files are as
they were, and whatever it changed is a reviewable set of the project's files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.services.agent_run import PlainEnvironment, ShadowTools, listing
from app.services.shadow import ShadowWorkspace
from bench.agent_loop import FIX_TASKS, TEST_COMMAND, real_service
from forecode_core.agent.allow import AllowList
from forecode_core.agent.loop import AgentLoop, Card, Decision, Limits, StopReason, drive
from forecode_core.edits.events import FileChangeKind
from tests.helpers.agent import NoChecker, python_dir

pytestmark = pytest.mark.slow


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.timeout(1200)
def test_the_real_model_completes_the_loop_protocol(tmp_path: Path) -> None:
    task = FIX_TASKS[0]
    root = tmp_path / "project"
    root.mkdir()
    for rel, text in task.tree().items():
        (root / rel).write_text(text)
    before = _digests(root)
    shadow = ShadowWorkspace(root, base=tmp_path / "data", checker=NoChecker(), scan_every_s=None)
    shadow.sync()
    tools = ShadowTools(root, shadow, PlainEnvironment(python_dir()))
    cards: list[Card] = []

    def refuse(card: Card) -> Decision:
        cards.append(card)
        return Decision.REJECT

    loop = AgentLoop(
        f"The test in test_it.py fails. Fix the code so that `{TEST_COMMAND}` passes.",
        Limits(max_steps=6, answer_tokens=400),
        AllowList.of([TEST_COMMAND]),
        listing=listing(root),
    )
    with real_service() as make_model:
        outcome = drive(loop, make_model(), tools, refuse)
    tools.close()
    shadow.close()
    assert outcome.reason is not StopReason.MODEL_FAILED, outcome.summary
    assert outcome.reason in set(StopReason) and outcome.summary
    assert outcome.steps >= 1 and outcome.tokens > 0
    assert all(
        c.approved_by == "allow-list" and AllowList.of([TEST_COMMAND]).matches(c.command)
        for c in outcome.commands
    )
    assert _digests(root) == before  # the user's files: never written
    for change in outcome.changes:
        assert change.kind in (FileChangeKind.MODIFIED, FileChangeKind.NEW)
        assert not change.path.startswith(("/", "..")) and change.new_text != change.original
    print(f"\nreal model: {outcome.reason} in {outcome.steps} steps, {len(cards)} cards refused")
