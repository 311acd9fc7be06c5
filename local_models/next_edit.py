"""The next-edit model in the engine: ``predict`` turns a ``NextEditInput`` into the model's
rewrite of the editable region (issue 15, "The engine").

How one prediction runs:

1. The input is rendered in the profile's next-edit format (``renderer_for(profile)``: a model
   with a native format gets its own, else the instruct-chat one) under a token budget
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
and ``margin_tokens``, and the rendering's ``format_id``, ``events_included``,
``related_included``, ``lines_above``, ``lines_below``, ``token_estimate``.

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
    "NEXT_EDIT_MAX_OUTPUTS",
    "NextEditModel",
    "Prediction",
    "context_stop",
    "predict",
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
    break and the first lines below it (module doc), or None (too little below, or the text
    also occurs in the region)."""
    below = inp.excerpt[inp.region_end :].replace("\r\n", "\n").split("\n")
    region = "\n" + inp.region.replace("\r\n", "\n")
    if not region.endswith("\n"):
        return None  # the region ends the file: nothing below it
    for n in range(1, min(CONTEXT_STOP_LINES, len(below)) + 1):
        lines = below[:n]
        if not lines[0].strip():
            return None  # blank lines right below: where the region ends is unclear
        if len("".join("".join(lines).split())) >= CONTEXT_STOP_CHARS:
            stop = "\n" + "\n".join(lines)
            return None if stop in region else stop
    return None


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
    margins: list[float] = []
    below = context_stop(inp)
    stops = (*rendered.stop, *DEGENERATE_STOPS, *((below,) if below else ()))
    done = engine.rewrite(
        prompt,
        draft,
        max_tokens=cap,
        stop=stops,
        should_stop=should_stop,
        on_text=on_text,
        margins=margins,
    )
    text = done.text
    ran_on = (
        below is not None
        and done.stop_reason == "stop"
        and engine.detokenize(done.tokens)[len(text) :].startswith(below)
    )
    if ran_on:
        text += "\n"  # the line break before the context is the region's last
    ms = (time.perf_counter() - began) * 1000.0
    metrics = _metrics(done, rendered, margins, ms, cap)
    metrics["ran_into_context"] = ran_on
    return Prediction(
        text=text,
        stop_reason=done.stop_reason,
        finished=done.stop_reason in ("stop", "eos"),
        metrics=metrics,
    )


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
