"""The next-edit model in the engine: ``predict`` turns a ``NextEditInput`` into the model's
rewrite of the editable region (issue 15, "The engine").

How one prediction runs:

1. The input is rendered in the profile's next-edit format (``renderer_for(profile)``: a model
   with a native format gets its own: a Zeta GGUF, ``native_zeta``; else the instruct-chat
   one) under a token budget
   counted with the model's own tokenizer: ``NEXT_EDIT_BUDGET`` tokens, less where the
   context is smaller (the answer must fit after the prompt). The renderer puts the stable
   parts first (instructions, related code, older edits), so the engine's KV cache carries
   from one request to the next (and moved runs are shifted, not evaluated again).
2. ``Engine.rewrite`` decodes the answer with **the region's original text as the speculative
   draft** (followed by the end marker, so a region that stays as it is ends at prefill speed
   too): unchanged tokens are verified in batches of up to the engine's ``max_outputs`` rows;
   only where the answer leaves the region does the model decode token by token (or verify
   prompt-lookup drafts: the recent edits' text is in the prompt), until it rejoins the
   region. It stops at ``REGION_END`` (the first stop string) or the format's end of turn,
   or where it runs on into the context below the region (or loses the format:
   ``DEGENERATE_STOPS``): small instruct models often copy
   on past the region's end instead of writing the marker (measured: Qwen2.5-Coder 0.5B and
   1.5B on a rename, both). The lines right below the region (enough of them to hold
   ``CONTEXT_STOP_CHARS`` non-blank characters, and never text the region itself holds) are
   a stop string; an answer stopped there ends where they start, as if it had written the
   marker (``ran_into_context`` in the figures).
   **Early stop** (``EARLY_STOP``; off, measured below): once the answer has left the
   region's text and then followed it again for ``REJOIN_LINES`` whole lines
   (``rejoin_point``: lines that occur once in the region, at or after the line where the
   answer left it), the rest of the region is taken as it is, not verified token by token:
   the request stops there (``rejoined_early`` in the figures) and the answer is what the
   model wrote plus the region's remaining text. A
   second change further down the same region is then not predicted (the next request,
   after this one is taken, can); the saving is the rest of the region's verify batches and
   any running on past the region. Measured (bench next_edit's model arm, Qwen2.5-Coder 0.5B,
   12 cases, 2026-12-05-c): it fired on 4, saving 0.1-2 s each, but it only ever turns
   answers into shown ones: 2 that the whole decode went on to spoil (cut off: rejected)
   became shown wrong suggestions, one hid a second change lower in the region; precision
   first, so it is off until a model that rejoins reliably is measured. An answer
   ``MAX_EXTRA_LINES`` lines longer than the region is stopped as cut off ("length"): it is
   copying on past the region (always on).
3. The answer's text, whether the model finished on its own (``stop_reason`` "stop"/"eos":
   not the token cap, not cancelled) and plain figures go back; the editor runs
   ``forecode_core.next_edit.answer.check_answer`` and the acceptance gate on them.

The figures (``Prediction.metrics``, JSON-ready): the engine's ``RewriteMetrics`` fields,
(``draft_accepted``: the region's tokens verified and kept; ``accepted_tokens`` adds those of
prompt-lookup drafts), plus ``cached_tokens`` (prompt tokens taken from the cache: common
prefix and moved runs), ``decoded_tokens`` (tokens the model chose one position at a time:
generated minus verified), ``ms`` (the whole request),
``margin_mean`` / ``margin_min`` / ``margin_first`` (the top-1 minus top-2 probability of the
changed tokens: the first is where the answer leaves the region; None when nothing changed)
and ``margin_tokens``, the phases' times (``render_ms``: rendering and tokenizing the prompt
and the draft; the engine's ``prefill_ms`` (cache sync and prompt evaluation of
``evaluated_tokens``) and ``decode_ms`` (``batches`` verify batches and single steps:
``draft_accepted`` draft tokens kept, ``decoded_tokens`` chosen one at a time);
``finish_ms``: the answer's text after the engine), ``rejoined_early``, and the
rendering's ``format_id``, ``events_included``, ``related_included``, ``lines_above``,
``lines_below``, ``token_estimate``.

The worker serves ``NextEdit`` requests with this (``local_models.worker``); the benchmark calls
``predict`` on an ``Engine`` in-process.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from forecode_core.completion.model import Completion, CompletionModel
from forecode_core.next_edit.input import (
    CARET,
    REGION_START,
    NextEditInput,
    RenderedNextEdit,
    renderer_for,
)
from forecode_core.profiles import ModelProfile

__all__ = [
    "NEXT_EDIT_BUDGET",
    "NEXT_EDIT_FLASH_ATTN",
    "NEXT_EDIT_MAX_OUTPUTS",
    "NextEditModel",
    "Prediction",
    "context_stop",
    "predict",
    "rejoin_point",
    "render_tokens",
]

# The prompt's token budget: the region, the newest edits, near context and related code fit;
# on a 2-core CPU the first request of a file costs ~2-4 s of prefill at this size, later ones
# only what changed (the KV cache).
NEXT_EDIT_BUDGET = 1024
# Rows of logits the worker's engine may verify in one batch: next-edit drafts the whole
# region (~60-200 tokens), and per-row cost levels off by 32 rows on a CPU (drafters'
# ROW_COST_PRIOR); a row costs one vocabulary of floats twice (1 MiB for Gemma 3's 262k).
NEXT_EDIT_MAX_OUTPUTS = 32
# llama.cpp's flash attention for the prediction engine (``Engine.sibling(flash_attn=...)``):
# off. Measured 2026-12-05 (/tmp/h5, raw llama.cpp at the engine's settings, 760 tokens of
# context, one thread, ``chrt -f 1``, load 33-42): a 32-row verify batch with logits on every
# row costs 13.6 instead of 16.6 ms a row (Qwen2.5-Coder 0.5B) and 7.8 instead of 8.8 (Gemma
# 3 270M), a one-row decode about the same, prefill the same; on bench next_edit's 21 cases
# (0.5B) 18 answers identical, 3 flipped on near-ties (batched rounding: verify batches past 7
# rows are never bit-identical to one-row decodes, flash or not), show rate, located and
# correct when shown unchanged. Completions keep it on (their drafts stay within 7 rows).
NEXT_EDIT_FLASH_ATTN = False
# Tokens the answer may have beyond the draft (the region and its end marker): a larger
# insertion is rare and the filters reject rewrites that change most of the region.
SLACK_TOKENS = 64
# The stop string made of the lines below the region holds at least this many non-blank
# characters (at most CONTEXT_STOP_LINES lines): a lone "}" or "return" would cut answers
# that legitimately write one.
CONTEXT_STOP_CHARS = 12
CONTEXT_STOP_LINES = 4
# An answer that opens a second region on a line of its own, or writes the caret marker on
# lines of its own twice in a row, has lost the format (measured: Gemma 3 270M writes
# ``<cursor>`` or ``<region>`` line after line until the token cap, 5-10 s on the 2-core
# machine): stop there; ``check_answer`` rejects what is left (no end marker, incomplete).
DEGENERATE_STOPS = ("\n" + REGION_START, CARET + "\n" + CARET)
# The early stop (module doc): whole lines the answer must follow the region again for, after
# it left it, and the non-blank characters they must hold (a lone ")" or blank lines say
# little about where the answer is).
EARLY_STOP = False
REJOIN_LINES = 2
REJOIN_MIN_CHARS = 12
# An answer with this many more lines than the region is running on past it (measured: the
# small models copy the code below the region, or the prompt's edit pairs, until the token
# cap): stop it as cut off ("length"; ``check_answer`` rejects it) instead of decoding on.
MAX_EXTRA_LINES = 6


@runtime_checkable
class NextEditModel(CompletionModel, Protocol):
    """An engine that can rewrite with a draft and report its confidence: the keywords of
    ``local_models.engine.Engine.rewrite`` that ``predict`` uses (the worker's test fake has
    the same)."""

    @property
    def max_outputs(self) -> int: ...

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
    ) -> Completion: ...


@dataclass(frozen=True)
class Prediction:
    """The model's answer: ``text`` up to the end marker (not included), ``stop_reason`` as
    the engine's, ``finished`` (stopped on its own: a stop string or end of turn)."""

    text: str
    stop_reason: str
    finished: bool
    metrics: dict[str, Any]


def context_stop(inp: NextEditInput) -> str | None:
    """The stop string that says the answer ran on into the lines below the region: a line
    break and the first non-blank lines below it (module doc; blank lines right below are
    skipped: an answer stopped there keeps the region's own blank lines at its end), or None
    (too little below, or the text also occurs in the region)."""
    below = inp.excerpt[inp.region_end :].replace("\r\n", "\n").lstrip("\n").split("\n")
    region = "\n" + inp.region.replace("\r\n", "\n")
    if not region.endswith("\n"):
        return None  # the region ends the file: nothing below it
    for n in range(1, min(CONTEXT_STOP_LINES, len(below)) + 1):
        lines = below[:n]
        if not lines[0].strip():
            return None  # a line of spaces: where the region ends is unclear
        if len("".join("".join(lines).split())) >= CONTEXT_STOP_CHARS:
            stop = "\n" + "\n".join(lines)
            return None if stop in region else stop
    return None


def rejoin_point(draft: str, answer: str) -> tuple[int, int] | None:
    """Where ``answer`` (the text written so far, caret markers ignored) has rejoined
    ``draft`` (the region) after leaving it: ``(kept, rest)`` where ``answer[:kept]`` is
    kept and ``draft[rest:]`` follows it; None while the answer has not left the draft, or
    has not yet followed it again for ``REJOIN_LINES`` whole lines (at least
    ``REJOIN_MIN_CHARS`` non-blank characters) that occur once in the draft, at or after the
    line where the answer left it (lines the answer copies from above that line, as in a
    duplicated line, never count)."""
    text = answer.replace(CARET, "")
    if draft.startswith(text):
        return None  # not left yet
    left = 0
    while left < len(text) and left < len(draft) and text[left] == draft[left]:
        left += 1
    left_line = draft.rfind("\n", 0, left) + 1  # the draft line where the answer left it
    changed_end = text.find("\n", left)  # the end of the answer's changed line
    kept = text.rfind("\n") + 1  # whole lines only
    if changed_end < 0 or kept <= changed_end + 1:
        return None
    lines = text[changed_end + 1 : kept].split("\n")[:-1]
    if len(lines) < REJOIN_LINES:
        return None
    tail = "\n".join(lines[-REJOIN_LINES:]) + "\n"
    if len("".join(tail.split())) < REJOIN_MIN_CHARS:
        return None
    at = ("\n" + draft).find("\n" + tail)  # line-aligned, in the draft's offsets
    if at < 0 or at < left_line or ("\n" + draft).find("\n" + tail, at + 1) >= 0:
        return None
    return kept, at + len(tail)


def render_tokens(
    engine: CompletionModel,
    profile: ModelProfile,
    inp: NextEditInput,
    *,
    max_tokens: int | None = None,
    budget_tokens: int | None = None,
) -> tuple[RenderedNextEdit, list[int], list[int], int]:
    """``(rendered, prompt tokens, draft tokens, max_tokens)`` for ``inp``: the draft is the
    region as rendered plus the end marker; the budget is ``budget_tokens`` (default
    ``NEXT_EDIT_BUDGET``) cut so that the prompt and ``max_tokens`` (default: the draft plus
    ``SLACK_TOKENS``) fit the context."""
    rendered_region = inp.region.replace("\r\n", "\n")
    if not rendered_region.endswith("\n"):
        rendered_region += "\n"
    draft_guess = len(engine.tokenize(rendered_region)) + 8
    cap = max_tokens or draft_guess + SLACK_TOKENS
    budget = min(budget_tokens or NEXT_EDIT_BUDGET, engine.n_ctx - 2 - cap)
    if budget <= draft_guess:
        raise ValueError(
            f"the editable region ({draft_guess} tokens) does not fit the model's context "
            f"({engine.n_ctx} tokens) with room for the answer"
        )
    counted: dict[str, int] = {}

    def count(text: str) -> int:
        n = counted.get(text)
        if n is None:
            n = counted[text] = len(engine.tokenize(text))
        return n

    rendered = renderer_for(profile)(inp, profile, count, budget)
    prompt = engine.tokenize(rendered.text, add_bos=rendered.add_bos)
    draft = engine.tokenize(rendered.draft + rendered.end_marker)
    cap = max_tokens or len(draft) + SLACK_TOKENS
    cap = max(1, min(cap, engine.n_ctx - 1 - len(prompt)))
    return rendered, prompt, draft, cap


def predict(
    engine: NextEditModel,
    profile: ModelProfile,
    inp: NextEditInput,
    *,
    max_tokens: int | None = None,
    budget_tokens: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Prediction:
    """The model's rewrite of ``inp``'s editable region (module doc). ``should_stop`` may be
    flipped from any thread: the engine stops within one decode step ("cancelled").
    ``on_text`` gets the answer's text as it is decided (the worker streams it so that a long
    rewrite on a busy machine is never taken for a hung worker). Raises ``ValueError`` when
    the region alone does not fit the model's context."""
    began = time.perf_counter()
    rendered, prompt, draft, cap = render_tokens(
        engine, profile, inp, max_tokens=max_tokens, budget_tokens=budget_tokens
    )
    rendered_at = time.perf_counter()
    margins: list[float] = []
    below = context_stop(inp)
    stops = (*rendered.stop, *DEGENERATE_STOPS, *((below,) if below else ()))
    early = _EarlyStop(rendered.draft, on_text, should_stop, rejoin=EARLY_STOP)
    done = engine.rewrite(
        prompt,
        draft,
        max_tokens=cap,
        stop=stops,
        should_stop=early.should_stop,
        on_text=early.on_text,
        margins=margins,
    )
    decoded_at = time.perf_counter()
    text, reason = done.text, done.stop_reason
    ours = reason == "cancelled" and not early.cancelled()  # stopped by the early stop
    rejoined = ours and early.point is not None
    if rejoined:
        assert early.point is not None
        text, reason = early.point, "stop"
    elif ours and early.ran_on:
        reason = "length"
    ran_on = (
        not rejoined
        and below is not None
        and reason == "stop"
        and engine.detokenize(done.tokens)[len(text) :].startswith(below)
    )
    if ran_on:  # the line break before the context is the region's last; its blank lines
        blank_tail = len(rendered.draft) - len(rendered.draft.rstrip("\n"))
        text = text.rstrip("\n") + "\n" * max(1, blank_tail)
    end = time.perf_counter()
    metrics = _metrics(done, rendered, margins, (end - began) * 1000.0, cap)
    metrics["ran_into_context"] = ran_on
    metrics["rejoined_early"] = rejoined
    metrics["render_ms"] = round((rendered_at - began) * 1000.0, 2)
    metrics["finish_ms"] = round((end - decoded_at) * 1000.0, 2)
    return Prediction(
        text=text, stop_reason=reason, finished=reason in ("stop", "eos"), metrics=metrics
    )


class _EarlyStop:
    """The early stop's state during one rewrite (module doc): the text so far (from the
    engine's ``on_text``, passed on), and once ``rejoin_point`` finds the answer back on the
    region (``rejoin``), ``point``: the whole answer (what was written plus the region's
    rest); from then ``should_stop`` says stop, as it does once the answer ``ran_on`` past
    the region. The caller's own ``should_stop`` still cancels."""

    def __init__(
        self,
        draft: str,
        on_text: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
        *,
        rejoin: bool,
    ) -> None:
        self._draft = draft
        self._rejoin = rejoin
        self._on_text = on_text
        self._should_stop = should_stop
        self._text = ""
        self._max_lines = draft.count("\n") + MAX_EXTRA_LINES
        self.point: str | None = None
        self.ran_on = False

    def on_text(self, chunk: str) -> None:
        if self._on_text is not None:
            self._on_text(chunk)
        if self.point is not None:
            return
        self._text += chunk
        if "\n" in chunk:
            at = rejoin_point(self._draft, self._text) if self._rejoin else None
            if at is not None:
                self.point = self._text.replace(CARET, "")[: at[0]] + self._draft[at[1] :]
            elif self._text.count("\n") > self._max_lines:
                self.ran_on = True

    def cancelled(self) -> bool:
        return self._should_stop is not None and self._should_stop()

    def should_stop(self) -> bool:
        return self.point is not None or self.ran_on or self.cancelled()


def _metrics(
    done: Completion, rendered: RenderedNextEdit, margins: list[float], ms: float, cap: int
) -> dict[str, Any]:
    m = dataclasses.asdict(done.metrics)
    generated, accepted = int(m["generated_tokens"]), int(m["accepted_tokens"])
    return {
        **m,
        "cached_tokens": int(m["reused_prefix_tokens"]) + int(m["reused_shifted_tokens"]),
        "decoded_tokens": max(0, generated - accepted),
        "ms": round(ms, 2),
        "max_tokens": cap,
        "margin_tokens": len(margins),
        "margin_mean": sum(margins) / len(margins) if margins else None,
        "margin_min": min(margins) if margins else None,
        "margin_first": margins[0] if margins else None,
        "format_id": rendered.format_id,
        "events_included": rendered.events_included,
        "related_included": list(rendered.related_included),
        "lines_above": rendered.lines_above,
        "lines_below": rendered.lines_below,
        "token_estimate": rendered.token_estimate,
    }
