"""``local_models.next_edit.predict``'s own rules on a scripted engine: the early stop once the
answer has rejoined the region after its change (``rejoin_point``, a table), the stop of an
answer that runs on past the region, and the phases' figures. The real models' end-to-end
tests are tests/test_next_edit_engine.py's."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import local_models.next_edit as next_edit_module
from forecode_core.completion.model import Completion, RewriteMetrics
from forecode_core.next_edit.answer import Suggestion, check_answer
from forecode_core.next_edit.input import CARET, REGION_END, NextEditInput, input_at
from forecode_core.profiles import get_profile
from local_models.next_edit import Prediction, predict, rejoin_point

REGION = (
    "def total(items):\n"
    "    result = 0\n"
    "    for item in items:\n"
    "        result += item.price\n"
    "    return result\n"
)

# (answer so far, the whole answer rejoin_point makes of it, or None: decode on)
REJOIN = {
    "not_left_yet": (REGION[:40], None),
    "left_but_no_whole_line_after": ("def total(items):\n    result = 0.0\n", None),
    "one_line_after_is_too_few": (
        "def total(items):\n    result = 0.0\n    for item in items:\n",
        None,
    ),
    "two_lines_after": (
        "def total(items):\n    result = 0.0\n    for item in items:\n"
        "        result += item.price\n",
        REGION.replace("= 0\n", "= 0.0\n"),
    ),
    "a_partial_line_is_not_counted": (
        "def total(items):\n    result = 0.0\n    for item in items:\n        result +",
        None,
    ),
    "the_caret_marker_is_ignored": (
        f"def total(items):\n    result = 0.0{CARET}\n    for item in items:\n"
        "        result += item.price\n",
        REGION.replace("= 0\n", "= 0.0\n"),
    ),
    # lines copied from above where the answer left the region: a duplicate, not a rejoin
    "lines_from_above_the_change_do_not_count": (
        "def total(items):\n    result = 0\n    for item in items:\n"
        "        def total(items):\n    result = 0\n",
        None,
    ),
    "an_inserted_line_then_two_lines_rejoined": (
        "def total(items):\n    result = 0\n    for item in items:\n"
        "        if item is None:\n            continue\n"
        "        result += item.price\n    return result\n",
        REGION.replace("items:\n", "items:\n        if item is None:\n            continue\n"),
    ),
}


@pytest.mark.parametrize("case", sorted(REJOIN))
def test_the_rejoin_point(case: str) -> None:
    answer, whole = REJOIN[case]
    at = rejoin_point(REGION, answer)
    if whole is None:
        assert at is None, at
    else:
        assert at is not None
        assert answer.replace(CARET, "")[: at[0]] + REGION[at[1] :] == whole


def test_short_lines_never_make_a_rejoin() -> None:
    region = "a = (\n    1,\n)\n)\nb = 2\n"
    assert rejoin_point(region, "a = (\n    2,\n)\n)\n") is None  # ")\n)\n": 2 characters


class Scripted:
    """A ``NextEditModel`` that writes ``answer`` a line at a time (each line one ``on_text``
    chunk, ``should_stop`` checked before each, 10 ms a line), as the engine's verify
    batches do; tokens are code points."""

    n_ctx = 4096
    max_outputs = 32

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.written = ""

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return "".join(map(chr, tokens))

    def complete(self, prompt: Sequence[int], **kw: object) -> Completion:
        raise AssertionError("predict uses rewrite")

    def warm(self, prompt: Sequence[int], *a: object, **kw: object) -> RewriteMetrics:
        return RewriteMetrics()

    def rewrite(
        self,
        prompt: Sequence[int],
        draft: Sequence[int],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        margins: list[float] | None = None,
    ) -> Completion:
        began = time.perf_counter()
        m = RewriteMetrics(prompt_tokens=len(prompt), draft_tokens=len(draft))
        time.sleep(0.02)  # the prefill
        m.prefill_ms = (time.perf_counter() - began) * 1000.0
        reason, text = "eos", None
        for line in self.answer.splitlines(keepends=True):
            if should_stop is not None and should_stop():
                reason = "cancelled"
                break
            time.sleep(0.01)
            sent = len(self.written)
            self.written += line
            m.batches += 1
            cut = [self.written.find(s) for s in stop if s and s in self.written]
            if cut:
                text, reason = self.written[: min(cut)], "stop"
                if on_text is not None and len(text) > sent:
                    on_text(text[sent:])
                break
            if on_text is not None:
                on_text(line)
        m.generated_tokens = len(self.written)
        m.total_ms = (time.perf_counter() - began) * 1000.0
        m.decode_ms = m.total_ms - m.prefill_ms
        out = self.written if text is None else text
        return Completion(out, self.tokenize(self.written), m, reason)


FLAT = (
    "def total(items):\n"
    "    result = 0\n"
    "    taxes = compute_taxes(items)\n"
    "    shipping = compute_shipping(items)\n"
    "    discount = compute_discount(items)\n"
    "    return result + taxes + shipping - discount\n"
)
DOC = (
    "import math\n\n\n" + FLAT.replace("result = 0\n", "result = 0ˇ\n") + "\n\n"
    "def average(items):\n    return total(items) / len(items)\n"
)


def doc_input() -> NextEditInput:
    return input_at(
        DOC.replace("ˇ", ""), DOC.index("ˇ"), path="shop.py", language="python", events=()
    )


PROFILE = get_profile("qwen2.5-coder")


def run(engine: Any, inp: NextEditInput, *, early: bool = False, **kw: Any) -> Prediction:
    """``predict`` on the scripted engine (a ``NextEditModel`` in all it uses); ``early``:
    with the early stop on (``EARLY_STOP``, off in the product)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(next_edit_module, "EARLY_STOP", early)
        return predict(engine, PROFILE, inp, **kw)


def test_the_answer_stops_once_it_rejoins_the_region_and_keeps_the_rest() -> None:
    inp = doc_input()
    assert inp.region.startswith(FLAT)  # the scripted answer's assumption
    changed = inp.region.replace("result = 0\n", "result = 0.0\n")
    engine = Scripted(changed + REGION_END + "\n")
    p = run(engine, inp, early=True)
    assert p.metrics["rejoined_early"] is True
    assert p.stop_reason == "stop" and p.finished
    assert p.text == changed
    assert "return result" not in engine.written  # never decoded: taken from the region
    assert "discount = " not in engine.written
    got = check_answer(inp, p.text, finished=p.finished)
    assert isinstance(got, Suggestion) and [e.text for e in got.edits] == [".0"]


def test_without_the_early_stop_the_whole_region_is_decoded() -> None:
    inp = doc_input()
    changed = inp.region.replace("result = 0\n", "result = 0.0\n")
    engine = Scripted(changed + REGION_END + "\n")
    p = run(engine, inp)  # the default: off (measured: see local_models.next_edit)
    assert p.metrics["rejoined_early"] is False
    assert p.text == changed and "discount = " in engine.written


def test_a_cancel_is_still_a_cancel() -> None:
    inp = doc_input()
    engine = Scripted(inp.region.replace("result = 0\n", "result = 0.0\n") + REGION_END)
    p = run(engine, inp, should_stop=lambda: True, early=True)
    assert p.stop_reason == "cancelled" and not p.finished
    assert p.metrics["rejoined_early"] is False


def test_an_unchanged_region_is_verified_to_its_end_marker() -> None:
    inp = doc_input()
    engine = Scripted(inp.region + REGION_END + "\n")
    p = run(engine, inp)
    assert p.metrics["rejoined_early"] is False
    assert p.text == inp.region and p.stop_reason == "stop"


def test_an_answer_running_on_past_the_region_is_stopped_as_cut_off() -> None:
    inp = doc_input()
    run_on = "".join(f"    print({i} + value_{i})\n" for i in range(40))
    engine = Scripted("# header\n" + run_on)
    p = run(engine, inp)
    assert p.stop_reason == "length" and not p.finished
    assert engine.written.count("\n") <= inp.region.count("\n") + 8  # stopped early
    assert check_answer(inp, p.text, finished=p.finished).reason == "cut_off"  # type: ignore[union-attr]


def test_the_phases_add_up_to_the_request() -> None:
    inp = doc_input()
    p = run(Scripted(inp.region + REGION_END), inp)
    m = p.metrics
    for key in ("render_ms", "prefill_ms", "decode_ms", "finish_ms", "ms"):
        assert isinstance(m[key], float) and m[key] >= 0.0, key
    assert m["prefill_ms"] >= 15.0  # the scripted prefill's sleep
    parts = m["render_ms"] + m["prefill_ms"] + m["decode_ms"] + m["finish_ms"]
    assert parts == pytest.approx(m["ms"], abs=5.0)
    assert m["batches"] == inp.region.count("\n") + 1  # a scripted batch a line, the marker's too


def test_an_answer_that_runs_into_the_code_below_keeps_the_regions_blank_lines() -> None:
    inp = doc_input()
    assert inp.region.endswith("discount\n\n")  # the blank line before average()
    changed = inp.region.rstrip("\n").replace("- discount", "- discount + 1") + "\n"
    engine = Scripted(changed + "\ndef average(items):\n    return total(items) / len(items)\n")
    p = run(engine, inp)
    assert p.metrics["ran_into_context"] is True and p.finished
    assert p.text == changed + "\n"
    got = check_answer(inp, p.text, finished=p.finished)
    assert isinstance(got, Suggestion) and [e.text for e in got.edits] == [" + 1"]
