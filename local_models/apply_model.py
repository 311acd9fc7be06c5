"""Apply's model path: the model rewrites the windows the edit addresses, with speculative
edits (no Qt, no gRPC). The one model path: the service's backends (``llama`` and ``openai``),
the tests' in-process ``EngineApply`` (tests/helpers) and ``bench apply`` all run it, behind the
one pipeline (``forecode_core.apply.pipeline``: the deterministic path first, the end's checks)
that the editor runs.

``apply_block`` has the pure parts (the deterministic path, the safety check, the versioned
whole-file prompt); ``apply_windows`` finds the windows, builds their prompt and stitches.

* ``rewrite_file(engine, input)``: the model path. ``plan_windows`` finds the region(s) each
  segment of the block addresses (named definitions, a shorthand wrapper as an anchor, unique
  lines, fuzzy lines; with an instruction, the selected lines), and ``rewrite_windows`` has the
  model rewrite each window (its original text is the draft of ``Engine.rewrite``), with
  read-only context above and below; the rest of the file is kept byte for byte. ``on_text``
  gets the new file in order, LF: the unchanged text before a window at once, the window as
  the model writes it, ..., the tail. A small file (``WHOLE_FILE_LINES``), or a block nothing
  places, is rewritten whole (``rewrite_whole_file``: ``render_apply``'s prompt, the file as
  the draft). ``ModelRewrite.text`` has the original's line endings back (``to_file_text``);
  an answer that never closed its fence is ``complete=False``, and so is one that is not the
  file (``find_rewrite_defect``: an elision marker like ``# ... existing code ...`` left in
  place of code, or most of the file dropped; a window answer that copies the read-only
  context, ``stop_reason`` "context"): ``ModelRewrite.defect`` says which where it can.
* ``rewrite_with(model, input)``: the same on any ``WindowModel`` (``EngineModel`` wraps an
  engine; the ``openai`` backend has an HTTP one).

Engines for apply verify long drafts: create them with ``max_outputs=APPLY_MAX_OUTPUTS``
(``open_engine``) and a context that holds a window's prompt and answer (a whole-file
rewrite needs about twice the file plus the block, and the file again).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from forecode_core.apply.block import (
    APPLY_PROMPT_VERSION,
    ApplyInput,
    RewriteDefect,
    find_missed_line,
    find_rewrite_defect,
    format_apply_prompt,
    to_file_text,
)
from forecode_core.apply.budget import SLACK_TOKENS, token_guess
from forecode_core.apply.rewrite_stop import RewriteStop
from forecode_core.apply.windows import (
    WINDOW_RULES_EDIT,
    WindowPlan,
    expected_answer,
    file_lines,
    format_window_prompt,
    plan_windows,
    repeats_context,
    stream_pieces,
    window_context,
)
from forecode_core.chat.prompt_formats import render_chat
from forecode_core.chat.types import ChatMessage, ChatParams, Role
from forecode_core.profiles import ChatFormat, profile_of
from local_models.engine import Engine, RewriteMetrics

__all__ = [
    "APPLY_MAX_OUTPUTS",
    "ApplyTooLarge",
    "EngineModel",
    "ModelRewrite",
    "RenderedApply",
    "RewriteRequest",
    "WindowAnswer",
    "WindowModel",
    "chat_format_of",
    "open_engine",
    "plan_for",
    "render_apply",
    "rewrite_file",
    "rewrite_whole_file",
    "rewrite_windows",
    "rewrite_with",
    "unfinished_message",
    "warm_for_apply",
    "whole_file_request",
]

# Rows of logits one verify batch may have: drafts of up to 63 tokens. Longer batches gain
# little on a CPU (the cost per row levels off by 32) and cost 2 MiB of buffers a row.
APPLY_MAX_OUTPUTS = 64
# Tokens the answer may have beyond the original file and the block (a model that adds more
# than the block holds has left the task).
_SLACK_TOKENS = SLACK_TOKENS


class ApplyTooLarge(ValueError):
    """The file and block do not fit the engine's context."""


@dataclass(frozen=True)
class RenderedApply:
    text: str  # the whole prompt, ending with the answer's opening fence
    stop: tuple[str, ...]  # the closing fence
    draft_text: str  # what the answer is expected to mostly repeat: the file (LF) + fence
    chat_format: str | None  # the chat format's id, None for a plain document
    version: int


@dataclass(frozen=True)
class ModelRewrite:
    """The model path's answer."""

    text: str  # the new file, with the original's line endings (partial unless complete)
    complete: bool  # the model closed the file's fence, and what it wrote is the whole file
    stop_reason: str  # a ``RewriteStop`` (``forecode_core.apply.rewrite_stop``): STOP when
    #                   complete, else the engine's, a defect's kind, or CONTEXT
    metrics: RewriteMetrics
    defect: RewriteDefect | None = None  # why a closed answer is not the file


def chat_format_of(engine: Engine) -> ChatFormat | None:
    """The chat format to wrap the apply prompt in: the model's own when its GGUF has a chat
    template, None (a plain document) for a base model."""
    info = engine.info
    if info.chat_template is None:
        return None
    return profile_of(info).chat


def render_apply(
    inp: ApplyInput, chat: ChatFormat | None, version: int = APPLY_PROMPT_VERSION
) -> RenderedApply:
    """The prompt for ``inp`` as the engine evaluates it (BOS not included)."""
    prompt = format_apply_prompt(inp, version)
    if chat is None:
        text = f"{prompt.text}\n\n{prompt.response_prefix}"
        fmt_id = None
    else:
        params = ChatParams("", (ChatMessage(Role.USER, prompt.text),))
        text = render_chat(params, chat, system_prompt="") + prompt.response_prefix
        fmt_id = chat.id
    original = inp.original.replace("\r\n", "\n")
    if original and not original.endswith("\n"):
        original += "\n"
    return RenderedApply(text, prompt.stop, original + prompt.stop[0], fmt_id, prompt.version)


def open_engine(
    model_path: str | os.PathLike[str], *, n_ctx: int = 8192, n_threads: int | None = None
) -> Engine:
    """An engine made for apply: verify batches of up to ``APPLY_MAX_OUTPUTS`` tokens."""
    return Engine(model_path, n_ctx=n_ctx, n_threads=n_threads, max_outputs=APPLY_MAX_OUTPUTS)


@dataclass(frozen=True)
class RewriteRequest:
    """One ``Engine.rewrite`` call of the whole-file rewrite, tokenized."""

    prompt: list[int]
    draft: list[int]  # the file with the block merged in (``expected_answer``), the fence
    alt: list[int]  # the file as it is (where the model keeps what the block changes)
    max_tokens: int
    stop: tuple[str, ...]


def whole_file_request(
    engine: Engine, inp: ApplyInput, version: int = APPLY_PROMPT_VERSION
) -> RewriteRequest:
    """The whole-file rewrite's prompt, drafts and bounds for ``inp`` (``bench apply`` times
    the same call). Raises ``ApplyTooLarge`` when they do not fit the context."""
    rendered = render_apply(inp, chat_format_of(engine), version)
    prompt = engine.tokenize(rendered.text, add_bos=True)
    original = rendered.draft_text[: -len(rendered.stop[0])]
    as_is = engine.tokenize(rendered.draft_text)
    # The draft: the file with the block merged in (what the model most likely writes); the
    # file as it is, where the model keeps what the block changes (see rewrite_windows).
    if inp.block.strip() and not inp.instruction.strip():
        draft = engine.tokenize(
            _with_newline(expected_answer(original, inp.block)) + rendered.stop[0]
        )
        alt = engine.tokenize(original)
    else:
        draft, alt = as_is, []
    max_tokens = len(as_is) + len(engine.tokenize(inp.block)) + _SLACK_TOKENS
    if len(prompt) + max_tokens >= engine.n_ctx:
        raise ApplyTooLarge(
            f"the file and the edit need {len(prompt) + max_tokens} tokens of "
            f"context; the engine has {engine.n_ctx}"
        )
    return RewriteRequest(prompt, draft, alt, max_tokens, rendered.stop)


def rewrite_whole_file(
    engine: Engine,
    inp: ApplyInput,
    *,
    on_text: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_batch: int | None = None,
    version: int = APPLY_PROMPT_VERSION,
) -> ModelRewrite:
    """The model rewrites the whole file with speculative edits (module doc).
    ``on_text`` receives the new file's text as it is written (LF). Raises
    ``ApplyTooLarge`` when the prompt and answer do not fit the context."""
    req = whole_file_request(engine, inp, version)
    done = engine.rewrite(
        req.prompt,
        req.draft,
        max_tokens=req.max_tokens,
        stop=req.stop,
        on_text=on_text,
        should_stop=should_stop,
        max_batch=max_batch,
        alt=req.alt,
    )
    metrics = done.metrics
    assert isinstance(metrics, RewriteMetrics)
    complete = done.stop_reason == RewriteStop.STOP
    text = to_file_text(inp.original, done.text) if complete else done.text
    if complete:
        defect = _defect(inp, text)
        if defect is not None:
            return ModelRewrite(text, False, defect.kind, metrics, defect)
    return ModelRewrite(text, complete, done.stop_reason, metrics)


# ----- windowed apply: one pipeline for every model -----------------------------------------


@dataclass(frozen=True)
class WindowAnswer:
    """What a model wrote for one prompt: ``text`` up to the closing fence (excluded),
    ``stop_reason`` "stop" when it closed the fence."""

    text: str
    stop_reason: str
    metrics: RewriteMetrics


class WindowModel(Protocol):
    """A model that answers a user turn whose answer starts with ``response_prefix`` and
    mostly repeats ``draft_text`` (speculative edits where it can). ``EngineModel`` is
    llama.cpp in this process; the service's ``openai`` backend has an HTTP one."""

    def rewrite(
        self,
        user_text: str,
        response_prefix: str,
        stop: tuple[str, ...],
        draft_text: str,
        extra_tokens: int,
        *,
        on_text: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
        alt_text: str = "",
    ) -> WindowAnswer: ...


class EngineModel:
    """``WindowModel`` on an ``Engine``: the prompt in the model's chat format (a plain
    document for a base model), ``Engine.rewrite`` with the draft tokenized."""

    def __init__(self, engine: Engine, max_batch: int | None = None) -> None:
        self.engine = engine
        self.max_batch = max_batch

    def rewrite(
        self,
        user_text: str,
        response_prefix: str,
        stop: tuple[str, ...],
        draft_text: str,
        extra_tokens: int,
        *,
        on_text: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
        alt_text: str = "",
    ) -> WindowAnswer:
        engine = self.engine
        prompt = engine.tokenize(_chat_text(engine, user_text, response_prefix), add_bos=True)
        draft = engine.tokenize(draft_text)
        max_tokens = len(draft) + extra_tokens + _SLACK_TOKENS
        if len(prompt) + max_tokens >= engine.n_ctx:
            raise ApplyTooLarge(
                f"the window and the edit need {len(prompt) + max_tokens} "
                f"tokens of context; the engine has {engine.n_ctx}"
            )
        done = engine.rewrite(
            prompt,
            draft,
            max_tokens=max_tokens,
            stop=stop,
            on_text=on_text,
            should_stop=should_stop,
            max_batch=self.max_batch,
            alt=engine.tokenize(alt_text) if alt_text else (),
        )
        metrics = done.metrics
        assert isinstance(metrics, RewriteMetrics)
        return WindowAnswer(done.text, done.stop_reason, metrics)


def _defect(inp: ApplyInput, text: str) -> RewriteDefect | None:
    """Why a complete model rewrite is not offered: not the whole file
    (``find_rewrite_defect``), or, for a block, a line of the edit left out
    (``find_missed_line``)."""
    defect = find_rewrite_defect(inp.original, inp.block, text)
    if defect is None and not inp.instruction.strip():
        defect = find_missed_line(inp.block, text)
    return defect


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _chat_text(engine: Engine, user_text: str, response_prefix: str) -> str:
    chat = chat_format_of(engine)
    if chat is None:
        return f"{user_text}\n\n{response_prefix}"
    params = ChatParams("", (ChatMessage(Role.USER, user_text),))
    return render_chat(params, chat, system_prompt="") + response_prefix


def warm_for_apply(engine: Engine) -> int:
    """Evaluate the fixed opening every window prompt of a block starts with
    (``WINDOW_RULES_EDIT`` in the model's chat format) into ``engine``'s cache, so that the
    first apply re-uses it. Returns the tokens that opening has (the prompt's common prefix:
    where a real prompt tokenizes differently at the join, less is re-used)."""
    text = _chat_text(engine, WINDOW_RULES_EDIT + "File", "")
    tokens = engine.tokenize(text, add_bos=True)
    full = engine.tokenize(_chat_text(engine, WINDOW_RULES_EDIT + "File x", "```\n"), add_bos=True)
    k = 0
    while k < min(len(tokens), len(full)) and tokens[k] == full[k]:
        k += 1
    prefix = tokens[: max(1, k - 1)]
    engine.warm(prefix)
    return len(prefix)


def _token_guess(text: str) -> int:
    return token_guess(text)  # the estimate a client sizes requests with (apply.budget)


def rewrite_windows(
    model: WindowModel,
    inp: ApplyInput,
    plan: WindowPlan,
    *,
    on_text: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelRewrite:
    """The model rewrites each window of ``plan`` (``apply_windows``), the rest of the file is
    kept; ``on_text`` receives the new file in order (LF): the unchanged text before a window
    at once, the window as the model writes it, ... the unchanged tail. A window the model
    does not close, or closes with a placeholder in it, ends the rewrite (not complete)."""
    pieces = stream_pieces(inp.original, plan)
    lines = file_lines(inp.original)
    written: list[str] = []
    total = RewriteMetrics()
    sent: list[str] = []

    def send(text: str) -> None:
        if text:
            sent.append(text)
            if on_text is not None:
                on_text(text)

    for k, window in enumerate(plan.windows):
        send(pieces[2 * k])
        prompt = format_window_prompt(
            inp.original, window, path=inp.path, language=inp.language, instruction=inp.instruction
        )
        part = "".join(lines[window.start : window.end])
        # The draft: the window with the block's changes merged in (what the model most
        # likely writes); the window as it is, where the model keeps what the block changes.
        draft = prompt.draft_text
        if window.block.strip():
            draft = _with_newline(expected_answer(part, window.block)) + prompt.stop[0]
        answer = model.rewrite(
            prompt.text,
            prompt.response_prefix,
            prompt.stop,
            draft,
            _token_guess(window.block) + _token_guess(inp.instruction),
            on_text=send,
            should_stop=should_stop,
            alt_text=part if draft != prompt.draft_text else "",
        )
        total.add(answer.metrics)
        if answer.stop_reason != RewriteStop.STOP:
            return ModelRewrite("".join(sent), False, answer.stop_reason, total)
        new = answer.text
        if part.endswith("\n") and new and not new.endswith("\n"):
            new += "\n"
            send("\n")
        defect = find_rewrite_defect(part, window.block or part, new)
        if defect is not None and defect.kind == "elision":
            return ModelRewrite("".join(sent), False, defect.kind, total, defect)
        above, _, below = window_context(inp.original, window)
        if repeats_context(new, part, above, below, window.block):
            # The model copied the code around the window instead of rewriting it.
            return ModelRewrite("".join(sent), False, RewriteStop.CONTEXT, total)
        written.append(new)
    tail = pieces[-1]
    stitched = "".join(sent) + tail
    if tail:
        send(tail)
    text = to_file_text(inp.original, stitched)
    defect = _defect(inp, text)
    if defect is not None:
        return ModelRewrite(text, False, defect.kind, total, defect)
    return ModelRewrite(text, True, RewriteStop.STOP, total)


def plan_for(inp: ApplyInput) -> WindowPlan | None:
    """The windows the model rewrites for ``inp`` (None: the whole file, as nothing places
    the block; ``plan.whole``: the file is small)."""
    return plan_windows(inp.original, inp.block, inp.instruction)


def rewrite_with(
    model: WindowModel,
    inp: ApplyInput,
    *,
    on_text: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelRewrite:
    """``rewrite_file`` on any ``WindowModel`` (an HTTP upstream): the windows the block (or
    the selection) addresses; a small file, or a block nothing places, whole."""
    plan = plan_for(inp)
    if plan is not None and not plan.whole:
        return rewrite_windows(model, inp, plan, on_text=on_text, should_stop=should_stop)
    rendered = format_apply_prompt(inp)
    original = inp.original.replace("\r\n", "\n")
    if original and not original.endswith("\n"):
        original += "\n"
    answer = model.rewrite(
        rendered.text,
        rendered.response_prefix,
        rendered.stop,
        original + rendered.stop[0],
        _token_guess(inp.block),
        on_text=on_text,
        should_stop=should_stop,
    )
    if answer.stop_reason != RewriteStop.STOP:
        return ModelRewrite(answer.text, False, answer.stop_reason, answer.metrics)
    text = to_file_text(inp.original, answer.text)
    defect = _defect(inp, text)
    if defect is not None:
        return ModelRewrite(text, False, defect.kind, answer.metrics, defect)
    return ModelRewrite(text, True, RewriteStop.STOP, answer.metrics)


def rewrite_file(
    engine: Engine,
    inp: ApplyInput,
    *,
    on_text: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_batch: int | None = None,
    version: int = APPLY_PROMPT_VERSION,
) -> ModelRewrite:
    """The model path: the windows the block (or the selection) addresses rewritten with
    speculative edits, the rest kept (``rewrite_windows``); a small file, or a block nothing
    places, is rewritten whole (``rewrite_whole_file``). ``on_text`` receives the new file's
    text in order (LF). Raises ``ApplyTooLarge`` when a prompt does not fit the context."""
    plan = plan_for(inp)
    if plan is None or plan.whole:
        return rewrite_whole_file(
            engine,
            inp,
            on_text=on_text,
            should_stop=should_stop,
            max_batch=max_batch,
            version=version,
        )
    return rewrite_windows(
        EngineModel(engine, max_batch), inp, plan, on_text=on_text, should_stop=should_stop
    )


def unfinished_message(stop_reason: str) -> str:
    """Why a model answer that is not complete (and has no defect) is not offered."""
    if stop_reason == RewriteStop.CONTEXT:
        return "the model copied the code around the lines to change instead of rewriting them"
    return f"the model did not finish the file ({stop_reason})"
