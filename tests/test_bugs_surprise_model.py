"""The surprise score with the real model through the editor's worker (EngineClient's score
request, the worker's Engine.score): a comparison turned around in a small function is
flagged against HEAD, and the fix of it (HEAD then had the bug) is not. Fails, never skips,
when the engine is broken."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.services.bug_review import EngineScore, review_changes
from forecode_core.bugs.functions import functions_in
from forecode_core.bugs.runner import Scoring, Target, review
from local_models.client import EngineClient
from local_models.model_store import ensure_model

CLEAN = '''\
import os


def clamp(value, low, high):
    """Return value limited to the range low..high."""
    if value < low:
        return low
    if value > high:
        return high
    return value
'''
BUGGY = CLEAN.replace("if value > high:", "if value < high:")
BUG_LINE = 8


@pytest.fixture(scope="module")
def client() -> Iterator[EngineClient]:
    # the 0.5B: the guarantee is the product's rule on the model's numbers; the 1.5B's
    # margins on this bug are larger (bench bugs)
    engine = EngineClient(
        ensure_model("qwen2.5-coder-0.5b-instruct"),
        start_timeout_s=300.0,
        request_timeout_s=300.0,
    )
    engine.start()
    yield engine
    engine.close()


def _review(client: EngineClient, text: str, head: str):  # type: ignore[no-untyped-def]
    functions = functions_in("m.py", text)
    function = next(f for f in functions if f.name == "clamp")
    head_fn = next(f for f in functions_in("m.py", head) if f.name == "clamp").text(head)
    score = EngineScore(client, timeout_s=300.0)
    return review(Target(text, function, ["import os"], "m.py", head_fn), None, Scoring(score))


@pytest.mark.timeout(900)  # the worker's start and 8 scores: minutes on the loaded machine
def test_a_turned_comparison_is_flagged_and_its_fix_is_not(client: EngineClient) -> None:
    buggy = _review(client, BUGGY, CLEAN)
    assert buggy.finding is not None, buggy.margins
    assert buggy.finding.line == BUG_LINE
    assert "value > high" in buggy.finding.reason
    fixed = _review(client, CLEAN, BUGGY)
    assert fixed.finding is None, fixed.margins
    # the same numbers seen from the other side: the fix's margins are negative
    assert fixed.margins and max(fixed.margins[0][1]) < 0


@pytest.mark.timeout(600)
def test_the_worker_scores_given_tokens(client: EngineClient) -> None:
    score = EngineScore(client, timeout_s=300.0)
    prefix = CLEAN.split("    if value > high:")[0]
    rows = score(prefix, "    if value > high:\n")
    assert rows is not None and len(rows) >= 4
    assert all(lp <= top + 1e-4 and top <= 0.0 for lp, top in rows)
    same = score(prefix, "    if value > high:\n")
    assert same is not None and len(same) == len(rows)
    flat = [x for row in rows for x in row]
    # the prefix from the cache the second time: the same numbers
    assert [x for row in same for x in row] == pytest.approx(flat, abs=1e-3)


@pytest.mark.timeout(600)
def test_review_changes_passes_the_score_through(client: EngineClient) -> None:
    diff = "@@ -8 +8 @@\n-    if value > high:\n+    if value < high:\n"
    reviews = review_changes(
        None, "m.py", BUGGY, diff, head=CLEAN, score=EngineScore(client, timeout_s=300.0)
    )
    assert [r.finding.line if r.finding else None for r in reviews] == [BUG_LINE]
