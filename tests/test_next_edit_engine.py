"""Next-edit in the engine: the ``NextEdit`` message, the worker's supersede rules, the client's
``next_edit``, and ``local_models.next_edit.predict`` on real models.

The first tests drive the worker's scripted fake engine (its rewrite answers the draft: the
region unchanged); the last ones run the real worker with the default model (Gemma 3 270M)
and ``predict`` in-process with Qwen2.5-Coder 0.5B. Real-model tests assert what cannot depend
on rounding: the request completes, its answer is a suggestion inside the region that passed
every filter or a rejection with a reason, the region was verified as a draft, a cancelled
request never answers, and a second request re-uses the KV cache.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from conftest import REPO

from forecode_core.next_edit.answer import Edit, Reason, Rejected, Suggestion, check_answer
from forecode_core.next_edit.input import EditPair, NextEditInput, input_at
from forecode_core.profiles import profile_for
from forecode_core.protocol import (
    Complete,
    Done,
    NextEdit,
    ProtocolError,
    Warm,
    decode_message,
    encode_message,
)
from local_models.client import EngineClient
from local_models.next_edit import NEXT_EDIT_MAX_OUTPUTS, context_stop, predict
from local_models.worker import _supersedes

FAKE = "tests.helpers.fake_engine:make"

SOURCE = """import json


def load(path):
    with open(path) as fh:
        data = json.load(fh)
    return data


def save(path, data):
    with open(path, "w") as fh:
        json.dump(data, fh)
"""
# The user renamed ``fh`` to ``handle`` in load's ``with`` line: the next edit is its use below.
RENAMED = SOURCE.replace("open(path) as fh:", "open(path) as handle:")
RENAME = EditPair("a.py", 4, "    with open(path) as fh:", "    with open(path) as handle:")


def rename_input(extra: str = "") -> NextEditInput:
    text = RENAMED.replace("import json\n", f"import json{extra}\n")
    caret = text.index("handle:") + len("handle")
    return input_at(text, caret, path="a.py", language="python", events=(RENAME,))


def assert_valid(inp: NextEditInput, result: Suggestion | Rejected) -> None:
    """A suggestion lies inside the region and changes nothing outside it; a rejection names
    one of the filters."""
    if isinstance(result, Rejected):
        assert result.reason in get_args(Reason), result
        return
    lo, hi = inp.region_offset, inp.region_offset + len(inp.region)
    ends = [(e.start, e.end) for e in result.edits]
    assert ends == sorted(ends)
    assert all(lo <= s <= e <= hi for s, e in ends), (ends, lo, hi)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))
    doc = inp.excerpt  # the excerpt as a document: offsets shifted by its start
    shifted = dataclasses.replace(
        result,
        edits=tuple(
            Edit(e.start - inp.excerpt_offset, e.end - inp.excerpt_offset, e.text)
            for e in result.edits
        ),
    )
    after = shifted.apply(doc)
    assert after.startswith(doc[: inp.region_start])
    assert after.endswith(doc[inp.region_end :])


# ---------------------------------------------------------------------------------------------
# the message and the supersede rules


def test_next_edit_message_round_trips_and_checks_its_fields() -> None:
    msg = NextEdit(7, rename_input().to_json(), 96)
    assert decode_message(encode_message(msg)) == msg
    assert decode_message(encode_message(NextEdit(8, {}))) == NextEdit(8, {}, None)
    with pytest.raises(ProtocolError, match="max_tokens' must be positive"):
        decode_message(b'{"type": "next_edit", "id": 1, "input": {}, "max_tokens": 0}')
    with pytest.raises(ProtocolError, match="missing the field 'input'"):
        decode_message(b'{"type": "next_edit", "id": 1}')


@pytest.mark.parametrize(
    ("new", "older", "cancels"),
    [
        (NextEdit(2, {}), NextEdit.TYPE, True),
        (NextEdit(2, {}), Warm.TYPE, True),
        (NextEdit(2, {}), Complete.TYPE, False),  # the user waits for the completion
        (NextEdit(2, {}), "chat", False),
        (Complete(2, {}), Complete.TYPE, True),
        (Complete(2, {}), Warm.TYPE, True),
        (Complete(2, {}), NextEdit.TYPE, False),  # typing keeps the running prediction
        (Warm(2, {}), NextEdit.TYPE, False),
        (Warm(2, {}), Warm.TYPE, True),
    ],
)
def test_which_request_cancels_which(new: Any, older: str, cancels: bool) -> None:
    assert _supersedes(new, older) is cancels


def test_the_context_stop_is_the_lines_below_the_region_and_never_region_text() -> None:
    inp = rename_input()
    stop = context_stop(inp)
    assert stop is not None and stop.startswith("\n")
    below = inp.excerpt[inp.region_end :]
    assert below.lstrip("\n").startswith(stop[1:])  # blank lines right below are skipped
    assert stop not in "\n" + inp.region
    # Too little below the region: no stop string.
    short = input_at("a = 1\nb = 2\nc = 3\n", 2, path="a.py", language="python")
    assert context_stop(short) is None


# ---------------------------------------------------------------------------------------------
# the client and worker, with the scripted fake engine


class Recorder:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.log: list[tuple[Any, ...]] = []

    def add(self, *entry: Any) -> None:
        with self.cond:
            self.log.append(entry)
            self.cond.notify_all()

    def callbacks(self, chunks: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "on_done": lambda i, d: self.add("done", i, d),
            "on_error": lambda i, m: self.add("error", i, m),
        }
        if chunks:
            out["on_chunk"] = lambda i, t: self.add("chunk", i, t)
        return out

    def end_of(self, rid: int, timeout: float = 20.0) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.log:
                    if e[0] in ("done", "error") and e[1] == rid:
                        return e
                left = deadline - time.monotonic()
                assert left > 0, f"no answer for {rid}; log: {self.log}"
                self.cond.wait(left)

    def of(self, rid: int) -> list[tuple[Any, ...]]:
        with self.cond:
            return [e for e in self.log if e[1] == rid]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., EngineClient]]:
    clients: list[EngineClient] = []

    def make(model: str | None = None, request_timeout_s: float = 120) -> EngineClient:
        if model is None:
            env = dict(os.environ)
            env["FORECODE_FAKE_ENGINE"] = FAKE
            env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
            client = EngineClient(
                tmp_path / "model.gguf", env=env, request_timeout_s=request_timeout_s
            )
        else:
            client = EngineClient(model, request_timeout_s=120, start_timeout_s=180)
        clients.append(client)
        client.start()
        return client

    yield make
    for client in clients:
        client.close()


def test_a_next_edit_answers_once_with_the_rewrite_and_its_figures(
    make_client: Callable[..., EngineClient],
) -> None:
    client, rec = make_client(), Recorder()
    inp = rename_input()
    rid = client.next_edit(inp, **rec.callbacks())
    kind, _, done = rec.end_of(rid)
    assert kind == "done" and isinstance(done, Done)
    assert done.stop_reason == "stop"  # the fake echoes the draft up to the end marker
    assert done.text == inp.region
    assert done.metrics["draft_accepted"] > 0
    for key in ("cached_tokens", "decoded_tokens", "ms", "margin_mean", "format_id"):
        assert key in done.metrics
    assert check_answer(inp, done.text, finished=True) == Rejected("no_change")
    assert len(rec.of(rid)) == 1


def test_a_completion_never_cancels_a_running_next_edit(
    make_client: Callable[..., EngineClient],
) -> None:
    from forecode_core.completion.prompt import CompletionInput

    client, rec = make_client(), Recorder()
    edit = client.next_edit(rename_input("  # @@rewrite_delay=0.4"), **rec.callbacks())
    time.sleep(0.15)
    comp = client.complete(
        CompletionInput("a.py", "python", "x = ", ""), **rec.callbacks(chunks=True)
    )
    assert rec.end_of(edit)[2].stop_reason == "stop"
    assert rec.end_of(comp)[0] == "done"


def test_a_long_prediction_streams_signs_of_life_and_is_never_killed_as_hung(
    make_client: Callable[..., EngineClient],
) -> None:
    # The client kills a worker that owes an answer and says nothing for request_timeout_s.
    # A rewrite slower than that (a loaded machine) must still answer: the worker streams
    # the answer's text as chunks while it decides it.
    client, rec = make_client(request_timeout_s=0.8), Recorder()
    edit = client.next_edit(rename_input("  # @@rewrite_delay=2.5"), **rec.callbacks())
    outcome = rec.end_of(edit)
    assert outcome[0] == "done", outcome
    assert outcome[2].stop_reason == "stop"


def test_a_newer_next_edit_supersedes_the_older_and_a_cancelled_one_never_answers(
    make_client: Callable[..., EngineClient],
) -> None:
    client, rec = make_client(), Recorder()
    first = client.next_edit(rename_input("  # @@rewrite_delay=2"), **rec.callbacks())
    time.sleep(0.2)
    second = client.next_edit(rename_input("  # @@rewrite_delay=0.3"), **rec.callbacks())
    assert rec.end_of(second)[0] == "done"
    third = client.next_edit(rename_input("  # @@rewrite_delay=2"), **rec.callbacks())
    time.sleep(0.1)
    client.cancel(third)
    fourth = client.next_edit(rename_input(), **rec.callbacks())
    assert rec.end_of(fourth)[0] == "done"
    time.sleep(0.3)
    assert rec.of(first) == [] and rec.of(third) == []


# ---------------------------------------------------------------------------------------------
# real models


def _real(model_id: str) -> Path:
    """A broken engine or a missing model fails the test, never skips it."""
    from local_models.model_store import ensure_model

    return ensure_model(model_id)


@pytest.mark.slow
def test_the_real_worker_predicts_with_the_default_model(
    make_client: Callable[..., EngineClient],
) -> None:
    from local_models.model_store import ensure_small_model

    client, rec = make_client(str(ensure_small_model())), Recorder()
    inp = rename_input()
    rid = client.next_edit(inp, **rec.callbacks())
    kind, _, done = rec.end_of(rid, timeout=180)
    assert kind == "done", done
    assert done.stop_reason in ("stop", "eos", "length")
    m = done.metrics
    # (Gemma 3 270M, a base model, often leaves the draft at its first token: the draft's
    # verification is asserted with Qwen below.)
    assert m["prompt_tokens"] > 0 and m["draft_tokens"] > 0 and m["generated_tokens"] > 0
    assert_valid(inp, check_answer(inp, done.text, finished=done.stop_reason in ("stop", "eos")))

    # The same request again: its prompt is in the KV cache (stable parts first).
    again = client.next_edit(inp, **rec.callbacks())
    kind, _, done2 = rec.end_of(again, timeout=120)
    assert kind == "done", done2
    assert done2.metrics["cached_tokens"] >= done2.metrics["prompt_tokens"] - 1
    assert done2.metrics["evaluated_tokens"] <= 1

    # A cancelled request never answers, and the worker serves the next one.
    gone = client.next_edit(rename_input("  # cancelled"), **rec.callbacks())
    client.cancel(gone)
    last = client.next_edit(inp, **rec.callbacks())
    assert rec.end_of(last, timeout=120)[0] == "done"
    time.sleep(0.2)
    assert rec.of(gone) == []


@pytest.fixture(scope="module")
def qwen() -> Iterator[Any]:
    from local_models.engine import Engine

    engine = Engine(
        _real("qwen2.5-coder-0.5b-instruct"),
        n_ctx=4096,
        max_outputs=NEXT_EDIT_MAX_OUTPUTS,
        measure_batches=False,  # as the worker makes it
    )
    yield engine
    engine.close()


@pytest.mark.slow
def test_qwen_verifies_an_unchanged_region_from_the_draft(qwen: Any) -> None:
    profile = profile_for(
        qwen.info.architecture,
        qwen.info.name,
        fim_ids_present=qwen.info.has_fim,
        chat_template=qwen.info.chat_template,
    )
    inp = input_at(SOURCE, SOURCE.index("data = json"), path="a.py", language="python")
    p = predict(qwen, profile, inp)
    assert p.metrics["draft_accepted"] > 0
    assert p.metrics["decoded_tokens"] < p.metrics["generated_tokens"]
    assert_valid(inp, check_answer(inp, p.text, finished=p.finished))

    # The rename: whatever the model proposes passes the filters or is rejected with a reason.
    inp = rename_input()
    p = predict(qwen, profile, inp)
    assert p.stop_reason in ("stop", "eos", "length")
    assert_valid(inp, check_answer(inp, p.text, finished=p.finished))
    m = p.metrics  # the changed tokens' confidence: probabilities' differences
    if p.text != inp.region:  # the answer left the draft somewhere: that token has a margin
        assert m["margin_tokens"] > 0, m
    if m["margin_tokens"]:
        assert 0.0 <= m["margin_min"] <= m["margin_first"] <= 1.0
        assert m["margin_min"] <= m["margin_mean"] <= 1.0
    again = predict(qwen, profile, inp)
    assert again.metrics["cached_tokens"] >= again.metrics["prompt_tokens"] - 1

    # Cancelled before it starts: no text, "cancelled".
    stopped = predict(qwen, profile, inp, should_stop=lambda: True)
    assert stopped.stop_reason == "cancelled" and not stopped.finished


@pytest.mark.slow
def test_a_completion_on_the_engine_never_evicts_the_predictions_cache(qwen: Any) -> None:
    """The worker predicts on the engine's sibling (same weights, its own context): a
    completion in between leaves the prediction's prompt cached; on one shared context the
    completion's prompt takes its place."""
    profile = profile_for(
        qwen.info.architecture,
        qwen.info.name,
        fim_ids_present=qwen.info.has_fim,
        chat_template=qwen.info.chat_template,
    )
    other = qwen.tokenize("# a completion's prompt\n" + "def unrelated(x):\n    return x\n" * 40)
    inp = rename_input()

    predict(qwen, profile, inp)
    qwen.complete(other, max_tokens=2)
    shared = predict(qwen, profile, inp).metrics
    assert shared["evaluated_tokens"] > shared["prompt_tokens"] // 2  # evicted

    twin = qwen.sibling(n_ctx=2048)
    assert twin.n_ctx == 2048 and twin.info is qwen.info
    first = predict(twin, profile, inp)
    qwen.complete(other, max_tokens=2)
    again = predict(twin, profile, inp)
    assert again.metrics["cached_tokens"] >= again.metrics["prompt_tokens"] - 1
    assert again.metrics["evaluated_tokens"] <= 1
    assert again.text == first.text  # the same answer from its own cache
    twin.close()
    assert qwen.complete(other, max_tokens=2).stop_reason in ("length", "stop", "eos")


@pytest.mark.slow
def test_the_prediction_engine_runs_without_flash_attention(qwen: Any) -> None:
    """Next-edit's engine is a sibling without flash attention (``NEXT_EDIT_FLASH_ATTN``: long
    verify batches cost less a row); the main engine keeps it. Its rewrite still verifies an
    unchanged region from the draft and answers the rename with a suggestion or a reason, and
    a second request re-uses its cache."""
    from local_models.next_edit import NEXT_EDIT_FLASH_ATTN

    assert NEXT_EDIT_FLASH_ATTN is False
    profile = profile_for(
        qwen.info.architecture,
        qwen.info.name,
        fim_ids_present=qwen.info.has_fim,
        chat_template=qwen.info.chat_template,
    )
    twin = qwen.sibling(n_ctx=2048, flash_attn=NEXT_EDIT_FLASH_ATTN)
    try:
        assert twin.flash_attn is False and qwen.flash_attn is True
        plain = qwen.sibling(n_ctx=2048)  # flash_attn None: the engine's own
        assert plain.flash_attn is True
        plain.close()
        inp = input_at(SOURCE, SOURCE.index("data = json"), path="a.py", language="python")
        p = predict(twin, profile, inp)
        assert p.metrics["draft_accepted"] > 0
        assert p.metrics["decoded_tokens"] < p.metrics["generated_tokens"]
        assert_valid(inp, check_answer(inp, p.text, finished=p.finished))
        inp = rename_input()
        first = predict(twin, profile, inp)
        assert first.stop_reason in ("stop", "eos", "length")
        assert_valid(inp, check_answer(inp, first.text, finished=first.finished))
        again = predict(twin, profile, inp)
        assert again.metrics["evaluated_tokens"] <= 1
        assert again.text == first.text
    finally:
        twin.close()


def test_the_worker_makes_its_prediction_engine_as_next_edit_asks() -> None:
    """The worker's prediction engine is its engine's sibling with next-edit's context and
    flash-attention setting, made once (a recording engine at the seam; the real sibling is
    the test above)."""
    from local_models.next_edit import NEXT_EDIT_FLASH_ATTN
    from local_models.worker import NEXT_EDIT_CONTEXT, _Server

    class Recording:
        def __init__(self) -> None:
            self.asked: list[dict[str, Any]] = []

        def sibling(self, **kwargs: Any) -> Any:
            self.asked.append(kwargs)
            return twin

    twin: Any = object()
    engine = Recording()
    server: Any = _Server.__new__(_Server)
    server.engine = engine
    assert server._prediction_engine() is twin
    assert server._prediction_engine() is twin
    assert engine.asked == [{"n_ctx": NEXT_EDIT_CONTEXT, "flash_attn": NEXT_EDIT_FLASH_ATTN}]
