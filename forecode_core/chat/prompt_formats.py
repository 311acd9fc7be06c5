"""Chat prompts: a ``ChatParams`` rendered into the text a model sees, versioned and fitted.

Used by the service's llama.cpp backend, by the local worker (the router's fallback when the
service is unreachable) and by tests, so the same params, format and ``CHAT_PROMPT_VERSION``
always give byte-identical text; bump the version whenever the output changes (the golden files
in tests/golden/chat/ catch changes that were not meant).

The formats (``ChatFormat``) live in the model-profile registry, ``forecode_core.profiles``,
beside each model's completion quirks; a model's format is its profile's ``chat``, chosen by
GGUF ``general.architecture``, then by its chat template's markers (``profiles.format_for``):

* ``gemma`` (Gemma 2/3): ``<start_of_turn>user\\n...<end_of_turn>\\n<start_of_turn>model\\n``.
  Gemma has no system role: the system text is folded into the next user turn, followed by a
  blank line.
* ``chatml``, the documented generic fallback for any architecture not in the registry (and
  the format whose markers a GGUF's own chat template names): ``<|im_start|>system\\n...
  <|im_end|>\\n`` and likewise for ``user`` / ``assistant``. Most instruction-tuned open models
  (Qwen, many fine-tunes) speak it; a model that does not still gets readable turns.

What goes where
---------------
* System text: the leading ``system`` messages (joined by a blank line), or
  ``DEFAULT_SYSTEM_PROMPT`` when there is none. A later ``system`` message is rendered where it
  stands (folded into the following user turn for Gemma).
* Context items go into the *last* user turn, before the question, each as a fenced code block
  under a header naming the path and line range (``user_content``). Earlier turns never carry
  context, so a turn renders the same however many turns follow it: the prompt of turn N, plus
  the model's reply and the end-of-turn marker, is a prefix of the prompt of turn N+1 (tests
  check it byte for byte) and the engine's KV cache only evaluates the new turn. Context sent
  again with a follow-up (the same file) is a run of tokens the engine already holds, which its
  chunk reuse moves instead of evaluating.
* The format's own marker strings inside user text (a file that contains ``<end_of_turn>``) are
  broken with a zero-width space after their first character: the engine's tokenizer parses
  special tokens, and user text must not be able to close a turn or open a system one.
* ``\\r\\n`` becomes ``\\n`` (models are trained on LF).

Fitting (``fit_chat``): with a token counter and a budget, the oldest turns are dropped first
(the last user turn always stays); then the context items are cut to their first ``k`` lines,
``k`` found by binary search; then, if even the bare question does not fit, ``ChatTooLong``.

No BOS is written: the engine adds it when ``ChatFormat.add_bos`` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from forecode_core.chat.types import ChatMessage, ChatParams, ContextItem, Role
from forecode_core.profiles import ChatFormat
from forecode_core.text.prompt_text import break_markers, fence_for

__all__ = [
    "CHAT_PROMPT_VERSION",
    "DEFAULT_SYSTEM_PROMPT",
    "ChatTooLong",
    "RenderedChat",
    "fit_chat",
    "render_chat",
    "render_context_item",
    "system_text",
    "user_content",
]

CHAT_PROMPT_VERSION = 1
"""Bumped whenever the rendered text of any input changes."""

DEFAULT_SYSTEM_PROMPT = (
    "You are Forecode's coding assistant, inside a code editor. Answer the user's question "
    "about their code precisely and briefly. Put code in fenced code blocks with a language "
    "tag. When you change code, show the changed part with enough surrounding lines to find "
    "it. If you are not sure, say so."
)


class ChatTooLong(ValueError):
    """Even the last user turn alone (no history, no context) exceeds the token budget."""


@dataclass(frozen=True)
class RenderedChat:
    text: str  # the prompt, ending with the assistant's generation prefix
    format_id: str
    add_bos: bool
    stop: tuple[str, ...]
    token_estimate: int  # the counter's figure for ``text`` (0 when not fitted)
    dropped_messages: int = 0  # oldest messages left out to fit
    cut_context: int = 0  # context items shortened (or emptied) to fit
    version: int = CHAT_PROMPT_VERSION


# ---------------------------------------------------------------------------------------------
# rendering


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n")


def _neutralise(text: str, fmt: ChatFormat) -> str:
    """User text with the format's special strings broken (a zero-width space after their
    first character), so it cannot end a turn or start another."""
    return break_markers(_normalise(text), fmt.markers)


def _header(item: ContextItem) -> str:
    label = {"file": "File", "selection": "Selection from", "current_file": "Current file"}.get(
        item.kind, "File"
    )
    where = item.path or "(untitled)"
    notes: list[str] = []
    if item.start_line > 0:
        end = max(item.end_line, item.start_line)
        notes.append(
            f"line {item.start_line}"
            if end == item.start_line
            else f"lines {item.start_line}-{end}"
        )
    if item.truncated:
        notes.append("truncated")
    return f"{label} {where}" + (f" ({', '.join(notes)})" if notes else "")


def render_context_item(item: ContextItem) -> str:
    """One context item: a header line, then its text in a fenced block tagged with its
    language. (Not neutralised: ``user_content`` does that for the whole turn.)"""
    body = _normalise(item.text)
    if body and not body.endswith("\n"):
        body += "\n"
    fence = fence_for(body)
    return f"{_header(item)}\n{fence}{item.language}\n{body}{fence}"


def user_content(question: str, context: Sequence[ContextItem]) -> str:
    """The last user turn's text: the context blocks, a blank line apart, then the question.
    (The OpenAI-compatible backend sends this as the last user message.)"""
    blocks = [render_context_item(c) for c in context]
    return "\n\n".join([*blocks, _normalise(question)])


def _system_text(messages: Sequence[ChatMessage], system_prompt: str) -> tuple[str, int]:
    """The leading system text and how many leading messages it used."""
    n = 0
    while n < len(messages) and messages[n].role == Role.SYSTEM:
        n += 1
    if n:
        return "\n\n".join(_normalise(m.content) for m in messages[:n]), n
    return system_prompt, 0


def system_text(params: ChatParams, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> str:
    """The system text a rendering of ``params`` starts with: its leading ``system`` messages,
    else ``system_prompt`` (what the reply guard keeps out of the reply)."""
    return _system_text(params.messages, system_prompt)[0]


def render_chat(
    params: ChatParams, fmt: ChatFormat, *, system_prompt: str = DEFAULT_SYSTEM_PROMPT
) -> str:
    """The whole prompt for ``params`` (no budget), ending with the generation prefix."""
    return _render(params.messages, params.context, fmt, system_prompt)


def _render(
    messages: Sequence[ChatMessage],
    context: Sequence[ContextItem],
    fmt: ChatFormat,
    system_prompt: str,
) -> str:
    system, start = _system_text(messages, system_prompt)
    last_user = max((i for i, m in enumerate(messages) if m.role == Role.USER), default=-1)
    parts: list[str] = []
    pending = _neutralise(system, fmt) if system else ""

    def flush_system() -> None:
        nonlocal pending
        if pending and fmt.system_prefix is not None:
            parts.append(f"{fmt.system_prefix}{pending}{fmt.turn_end}")
            pending = ""

    flush_system()
    for i in range(start, len(messages)):
        message = messages[i]
        if message.role == Role.SYSTEM:
            text = _neutralise(message.content, fmt)
            pending = f"{pending}\n\n{text}" if pending else text
            flush_system()
        elif message.role == Role.USER:
            if i == last_user:
                text = _neutralise(user_content(message.content, context), fmt)
            else:
                text = _neutralise(message.content, fmt)
            if pending:  # only for formats without a system role
                text = f"{pending}\n\n{text}"
                pending = ""
            parts.append(f"{fmt.user_prefix}{text}{fmt.turn_end}")
        else:
            parts.append(f"{fmt.assistant_prefix}{_neutralise(message.content, fmt)}{fmt.turn_end}")
    if pending:  # system text with no user turn after it (Gemma): a user turn of its own
        parts.append(f"{fmt.user_prefix}{pending}{fmt.turn_end}")
    parts.append(fmt.assistant_prefix)
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# fitting to a budget


def _cut_item(item: ContextItem, lines: int) -> ContextItem:
    """``item`` with at most its first ``lines`` lines (marked truncated when cut)."""
    text = _normalise(item.text)
    kept = text.splitlines(keepends=True)
    if len(kept) <= lines:
        return item
    new_text = "".join(kept[:lines])
    end = item.end_line
    if item.start_line > 0:
        end = item.start_line + max(lines, 1) - 1
    return replace(item, text=new_text, end_line=end, truncated=True)


def fit_chat(
    params: ChatParams,
    fmt: ChatFormat,
    count_tokens: Callable[[str], int],
    budget: int,
    *,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
) -> RenderedChat:
    """The prompt for ``params`` in at most ``budget`` tokens (by ``count_tokens``).

    Drops the oldest messages after the leading system ones (whole user/assistant exchanges,
    so the kept history still starts with a user turn), then cuts the context items' lines;
    raises ``ChatTooLong`` when the system text and the bare last user turn alone exceed the
    budget. ValueError when there is no user message at all.
    """
    messages = params.messages
    if not any(m.role == Role.USER for m in messages):
        raise ValueError("a chat needs at least one user message")
    _, lead = _system_text(messages, system_prompt)
    last_user = max(i for i, m in enumerate(messages) if m.role == Role.USER)

    def make(drop: int, context: Sequence[ContextItem]) -> tuple[str, int]:
        kept = [*messages[:lead], *messages[lead + drop :]]
        text = _render(kept, context, fmt, system_prompt)
        return text, count_tokens(text)

    def done(text: str, tokens: int, drop: int, cut: int) -> RenderedChat:
        return RenderedChat(text, fmt.id, fmt.add_bos, fmt.stop, tokens, drop, cut)

    text, tokens = make(0, params.context)
    if tokens <= budget:
        return done(text, tokens, 0, 0)
    # Drop history: candidates start at a user message (never past the last one).
    starts = [i - lead for i in range(lead + 1, last_user + 1) if messages[i].role == Role.USER]
    if last_user - lead not in starts:
        starts.append(last_user - lead)
    for drop in starts:
        text, tokens = make(drop, params.context)
        if tokens <= budget:
            return done(text, tokens, drop, 0)
    drop = last_user - lead
    # Cut the context: the largest per-item line count that fits, by binary search.
    items = params.context
    longest = max((len(_normalise(c.text).splitlines()) for c in items), default=0)

    def with_lines(k: int) -> tuple[str, int, int]:
        cut = [_cut_item(c, k) for c in items]
        changed = sum(1 for a, b in zip(items, cut, strict=True) if a is not b)
        t, n = make(drop, cut)
        return t, n, changed

    if items:
        best = with_lines(0)
        if best[1] <= budget:
            lo, hi = 0, longest  # with_lines(lo) fits; with_lines(longest) does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                attempt = with_lines(mid)
                if attempt[1] <= budget:
                    lo, best = mid, attempt
                else:
                    hi = mid
            return done(best[0], best[1], drop, best[2])
        bare_text, bare_tokens = make(drop, ())
        if bare_tokens <= budget:  # not even the headers fit: leave the context out
            return done(bare_text, bare_tokens, drop, len(items))
        tokens = bare_tokens
    raise ChatTooLong(
        f"the question is too long for the model's context: {tokens} tokens "
        f"with the system prompt, {budget} allowed"
    )
