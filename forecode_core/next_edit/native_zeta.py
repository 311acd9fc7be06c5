"""Zed's Zeta next-edit format: the prompt a Zeta GGUF was trained on, and its answer's parser.

Zeta (v1) is Zed's open next-edit model, a Qwen2.5-Coder-7B fine-tune (Hugging Face
``zed-industries/zeta``, Apache-2.0), published as GGUF by the community. A GGUF the profile
registry names ``zeta`` (``forecode_core.profiles``: "zeta" in its name on Qwen2's
architecture) gets this format instead of the instruct-chat one (``register_renderer`` below;
``local_models.next_edit`` imports this module), and its answers are read by
``parse_zeta_answer`` (``parser_for_format(metrics["format_id"])``, which the acceptance
policy's ``judge`` calls), then go through the very same filters as the chat format's
(``answer.check_answer``: cut off, outside the region, reverts a recent edit, changes most of
the region, unbalances brackets) into the same ``Suggestion``.

The format, as learned from public sources (read, not copied; this is Forecode's own code):
Zed's ``crates/zeta/src/zeta.rs`` (early 2025: the markers, ``prompt_for_excerpt``'s excerpt
layout, ``Event::to_prompt``'s "User edited" diff sections, ``parse_edits``: the text between
the one start marker's line and the one end marker, cursor markers removed), the prompt
template of vLLM's ``NextEditPredictionDataset`` (``benchmarks/datasets.py``, for the
``zed-industries/zeta`` data set) and the model card::

    ### Instruction:
    <one fixed sentence: the model's trained instruction>

    ### User Edits:

    User edited "path":
    ```diff
    @@ -12 +12 @@
    -old line
    +new line

    ```

    ### User Excerpt:

    ```path
    <|start_of_file|>            (only when the excerpt starts at the file's first line)
    context above
    <|editable_region_start|>
    region before the caret<|user_cursor_is_here|>region after it
    <|editable_region_end|>
    context below
    ```

    ### Response:

The model answers with the excerpt again, the region rewritten. Forecode prefills the answer
up to and including the start marker's line (the code fence, the start-of-file marker and the
context above, exactly as the prompt shows them), so the model writes the region at once, and
**the region's original text followed by ``<|editable_region_end|>`` is the speculative
draft** (``RenderedNextEdit.draft`` + ``end_marker``, as for the chat format: unchanged tokens
verified in batches, only the changed ones decoded), written as the prompt shows it, with the
cursor marker at the caret: the model echoes it (``DRAFT_WITH_CURSOR``, measured). The end
marker is the first stop string.

Differences from Zed's client, by design: the editable region is Forecode's own
(``input.editable_region``: a few blocks snapped to syntax, not Zed's byte window); each edit
event is rendered from its before/after pair (``EditPair``: whole lines) as one hunk without
context lines (Zed diffed whole snapshots with 3 lines of context); related excerpts are not
shown (Zeta v1's prompt has no section for them); ``\\r\\n`` is rendered as ``\\n`` and the
format's markers inside user text are broken (a zero-width space after their first
character), as in the chat format.

Under the token budget, in priority order (each kept when the whole rendering still fits):
the region (always), the newest edit, the near context (``NEAR_CONTEXT`` lines each side, in
blocks of ``CONTEXT_BLOCK``), older edits newest first (the first that does not fit ends them),
then further context blocks. Stable parts first (the instruction, then the edits oldest first,
then the excerpt), so the KV cache carries from one request to the next.

Bump ``ZETA_FORMAT_VERSION`` whenever the rendered text changes (golden in
tests/golden/next_edit_zeta/).

Sweep's next-edit model (another open one) is not done here: one format done end to end first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from forecode_core.next_edit.answer import Parsed, Rejected, parse_answer
from forecode_core.next_edit.input import (
    CONTEXT_BLOCK,
    NEAR_CONTEXT,
    EditPair,
    NextEditInput,
    RenderedNextEdit,
    memo_count,
    register_renderer,
)
from forecode_core.profiles import ModelProfile
from forecode_core.text.prompt_text import break_markers

__all__ = [
    "CURSOR",
    "REGION_END",
    "REGION_START",
    "START_OF_FILE",
    "ZETA_FORMAT_ID",
    "ZETA_FORMAT_VERSION",
    "ZETA_PROFILE_ID",
    "AnswerParser",
    "event_section",
    "parse_zeta_answer",
    "parser_for_format",
    "render_zeta_next_edit",
]

ZETA_PROFILE_ID = "zeta"
ZETA_FORMAT_VERSION = 1
ZETA_FORMAT_ID = f"zeta-v{ZETA_FORMAT_VERSION}"

CURSOR = "<|user_cursor_is_here|>"
START_OF_FILE = "<|start_of_file|>"
REGION_START = "<|editable_region_start|>"
REGION_END = "<|editable_region_end|>"
MARKERS = (CURSOR, START_OF_FILE, REGION_START, REGION_END)
# Qwen2.5's end-of-text and end-of-turn: a Zeta answer that ends there ended on its own.
_STOPS = (REGION_END, "<|endoftext|>", "<|im_end|>")

# The model's trained instruction (it must be this sentence: a fine-tune is prompted as it
# was trained).
INSTRUCTION = (
    "You are a code completion assistant and your task is to analyze user edits and then "
    "rewrite an excerpt that the user provides, suggesting the appropriate edits within the "
    "excerpt, taking into account the cursor location."
)

AnswerParser = Callable[..., Parsed | Rejected]

# The draft is the region as the prompt shows it, the cursor marker included: Zeta's answers
# echo the marker where the caret stays (Zed's parser removes it), and a draft without it
# leaves the model off the draft there. Measured 2026-12-05 (a Qwen2.5-Coder 0.5B GGUF renamed
# Zeta, not Zeta itself: no Zeta GGUF on this machine; two requests, each twice, 2-core machine
# at load 7.6-8): an unchanged region echoing the marker 19 -> 35 of 38 tokens from the draft,
# 6 -> 3 decoded one at a time, 5 -> 2 batches; an edit at the caret (no marker echoed) 11
# decoded either way.
DRAFT_WITH_CURSOR = True


# ---------------------------------------------------------------------------------------------
# rendering


def _plain(text: str) -> str:
    """User text as rendered: LF line ends, the format's markers broken."""
    return break_markers(text.replace("\r\n", "\n"), MARKERS)


def _path(path: str) -> str:
    """A path as the format shows it: ``/`` between its parts (as on the training data)."""
    return path.replace("\\", "/")


def _quoted(path: str) -> str:
    """A path as Zed wrote it in "User edited" (Rust's debug quoting of a path)."""
    return '"' + _path(path).replace('"', '\\"') + '"'


def _hunk_range(line: int, count: int) -> str:
    """A unified diff's range: 1-based start and count (count 1 left out; an empty side
    starts at the line before)."""
    if count == 0:
        return f"{line},0"
    return f"{line + 1}" if count == 1 else f"{line + 1},{count}"


def event_section(pair: EditPair) -> str:
    """One recent edit as Zeta's "User edited" section: a one-hunk unified diff of the pair's
    whole lines (no context lines)."""
    before = _plain(pair.before).split("\n")
    after = _plain(pair.after).split("\n")
    head = f"@@ -{_hunk_range(pair.line, len(before))} +{_hunk_range(pair.line, len(after))} @@"
    body = "".join(f"-{ln}\n" for ln in before) + "".join(f"+{ln}\n" for ln in after)
    return f"User edited {_quoted(pair.path)}:\n```diff\n{head}\n{body}\n```"


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True) if text else []


@dataclass(frozen=True)
class _Choice:
    events: int = 0  # the newest this many
    above: int = 0  # context lines
    below: int = 0


@dataclass(frozen=True)
class _Layout:
    """One input's pieces in Zeta's format; ``render`` writes a choice of them."""

    inp: NextEditInput
    above: list[str]  # context lines above the region (LF, markers broken)
    below: list[str]
    region: str  # with the cursor marker, ending with a line break

    @classmethod
    def of(cls, inp: NextEditInput) -> _Layout:
        region = (
            _plain(inp.excerpt[inp.region_start : inp.caret])
            + CURSOR
            + _plain(inp.excerpt[inp.caret : inp.region_end])
        )
        if not region.endswith("\n"):
            region += "\n"
        return cls(
            inp,
            _lines(_plain(inp.excerpt[: inp.region_start])),
            _lines(_plain(inp.excerpt[inp.region_end :])),
            region,
        )

    def head(self, c: _Choice) -> str:
        """The excerpt up to and including the start marker's line: shown in the prompt, and
        written again as the answer's prefilled opening."""
        shown = self.above[len(self.above) - c.above :] if c.above else []
        first_line = self.inp.first_line + len(self.above) - len(shown)
        sof = f"{START_OF_FILE}\n" if first_line == 0 else ""
        return f"```{_path(self.inp.path)}\n{sof}{''.join(shown)}{REGION_START}\n"

    def render(self, c: _Choice) -> str:
        inp = self.inp
        events = inp.events[len(inp.events) - c.events :] if c.events else ()
        edits = "\n\n".join(event_section(e) for e in events)
        below = "".join(self.below[: c.below])
        head = self.head(c)
        excerpt = f"{head}{self.region}{REGION_END}\n{below}```"
        return (
            f"### Instruction:\n{INSTRUCTION}\n\n### User Edits:\n\n{edits}\n\n"
            f"### User Excerpt:\n\n{excerpt}\n\n### Response:\n{head}"
        )


def _grow(c: _Choice, fits: Callable[[_Choice], bool], up_to: tuple[int, int]) -> _Choice:
    """More context, a block at a time on each side, while it fits (at most ``up_to``)."""
    up = down = True
    while up or down:
        if up:
            k = min(up_to[0], c.above + CONTEXT_BLOCK)
            trial = _Choice(c.events, k, c.below)
            up = k > c.above and fits(trial)
            c = trial if up else c
        if down:
            k = min(up_to[1], c.below + CONTEXT_BLOCK)
            trial = _Choice(c.events, c.above, k)
            down = k > c.below and fits(trial)
            c = trial if down else c
    return c


def _choose(layout: _Layout, fits: Callable[[_Choice], bool]) -> _Choice:
    """What is shown, by priority (module doc)."""
    n_events = len(layout.inp.events)
    n_above, n_below = len(layout.above), len(layout.below)
    c = _Choice(events=1) if n_events and fits(_Choice(events=1)) else _Choice()
    c = _grow(c, fits, (min(NEAR_CONTEXT, n_above), min(NEAR_CONTEXT, n_below)))
    while 0 < c.events < n_events and fits(_Choice(c.events + 1, c.above, c.below)):
        c = _Choice(c.events + 1, c.above, c.below)
    return _grow(c, fits, (n_above, n_below))


def render_zeta_next_edit(
    inp: NextEditInput,
    profile: ModelProfile,
    count_tokens: Callable[[str], int],
    budget_tokens: int,
) -> RenderedNextEdit:
    """Zeta's prompt for ``inp`` within ``budget_tokens`` (module doc); the answer is
    prefilled up to the region's start. Over budget even with the region alone, that is what
    it renders."""
    layout = _Layout.of(inp)
    count = memo_count(count_tokens)
    chosen = _choose(layout, lambda c: count(layout.render(c)) <= budget_tokens)
    text = layout.render(chosen)
    if DRAFT_WITH_CURSOR:
        draft = layout.region  # as rendered, the cursor marker at the caret
    else:
        draft = inp.region.replace("\r\n", "\n")
        if not draft.endswith("\n"):
            draft += "\n"  # as rendered: the end marker on a line of its own
    return RenderedNextEdit(
        text=text,
        stop=_STOPS,
        end_marker=REGION_END,
        draft=draft,
        events_included=chosen.events,
        related_included=(),
        lines_above=chosen.above,
        lines_below=chosen.below,
        token_estimate=count(text),
        add_bos=profile.add_bos,
        format_id=ZETA_FORMAT_ID,
    )


register_renderer(ZETA_PROFILE_ID, render_zeta_next_edit)


# ---------------------------------------------------------------------------------------------
# the answer

# What may follow the end marker: blank lines, the excerpt's closing fence.
_AFTER_END = re.compile(r"\s*(```+\s*)?")


def parse_zeta_answer(answer: str, *, finished: bool) -> Parsed | Rejected:
    """The rewritten region in a Zeta answer (the text after the prefilled start marker's
    line; an answer that starts with the start marker itself is read from after it), cursor
    markers removed; ``Rejected`` when it opens another region or the file again
    (``outside_region``), has text other than a closing fence after the end marker
    (``outside_region``), or stopped at the length limit without the end marker
    (``cut_off``). ``finished``: the model stopped on its own."""
    body = answer
    stripped = body.lstrip()
    if stripped.startswith(REGION_START):
        body = stripped[len(REGION_START) :].removeprefix("\r\n").removeprefix("\n")
    if REGION_START in body:
        return Rejected("outside_region", "a second region")
    if START_OF_FILE in body:
        return Rejected("outside_region", "the start-of-file marker: the answer left the region")
    end = body.find(REGION_END)
    if end >= 0:
        rest = body[end + len(REGION_END) :]
        if not _AFTER_END.fullmatch(rest):
            return Rejected("outside_region", f"text after the end marker: {rest.strip()[:40]!r}")
        return Parsed(body[:end].replace(CURSOR, ""), True)
    if not finished:
        return Rejected("cut_off", "stopped at the length limit")
    return Parsed(body.replace(CURSOR, ""), False)


_PARSERS: dict[str, AnswerParser] = {ZETA_FORMAT_ID: parse_zeta_answer}


def parser_for_format(format_id: str | None) -> AnswerParser:
    """The answer parser of a rendering's ``format_id`` (a prediction's
    ``metrics["format_id"]``): Zeta's for Zeta's, else the chat format's
    (``answer.parse_answer``)."""
    return _PARSERS.get(format_id or "", parse_answer)
