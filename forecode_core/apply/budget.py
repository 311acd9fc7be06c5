"""What an apply request needs of a model's context, estimated before it is sent (pure).

The model path (``local_models.apply_model``) sends, per window of the plan (or the whole
file), the prompt and reserves for the answer the draft's tokens plus a guess for the block
and the instruction plus a slack; the engine refuses a request whose prompt and reserve do
not fit its ``n_ctx``. ``request_tokens`` does the same arithmetic with ``token_guess`` (the
model path's own estimate, about 3 characters a token: more than Qwen's tokenizer gives on
code, so the estimate errs on the large side) instead of the tokenizer, so a client can size
a request (the repair loop's, ``app.ui.repair_loop.fit_repair``) before it sends it.
"""

from __future__ import annotations

from forecode_core.apply.block import ApplyInput, format_apply_prompt
from forecode_core.apply.windows import (
    expected_answer,
    file_lines,
    format_window_prompt,
    plan_windows,
)

__all__ = ["CHAT_OVERHEAD_TOKENS", "SLACK_TOKENS", "request_tokens", "token_guess"]

SLACK_TOKENS = 64  # the answer's reserve beyond the draft and the guesses (the model path's)
CHAT_OVERHEAD_TOKENS = 32  # the chat template's turn markers around the prompt


def token_guess(text: str) -> int:
    """The apply path's token estimate of ``text``."""
    return len(text) // 3 + 1


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def request_tokens(inp: ApplyInput) -> int:
    """The context the model path needs for ``inp`` (its largest window's prompt and answer
    reserve; the whole file's when nothing places the block or the file is small)."""
    plan = plan_windows(inp.original, inp.block, inp.instruction)
    if plan is None or plan.whole:
        rendered = format_apply_prompt(inp)
        original = _with_newline(inp.original.replace("\r\n", "\n"))
        return (
            token_guess(rendered.text)
            + token_guess(original + rendered.stop[0])
            + token_guess(inp.block)
            + SLACK_TOKENS
            + CHAT_OVERHEAD_TOKENS
        )
    lines = file_lines(inp.original)
    need = 0
    for window in plan.windows:
        prompt = format_window_prompt(
            inp.original, window, path=inp.path, language=inp.language, instruction=inp.instruction
        )
        draft = prompt.draft_text
        if window.block.strip():
            part = "".join(lines[window.start : window.end])
            draft = _with_newline(expected_answer(part, window.block)) + prompt.stop[0]
        reserve = token_guess(draft) + token_guess(window.block) + token_guess(inp.instruction)
        need = max(need, token_guess(prompt.text) + reserve + SLACK_TOKENS + CHAT_OVERHEAD_TOKENS)
    return need
