"""The next-edit model's input: a versioned, serialisable ``NextEditInput`` and its renderer.

The input
---------
``NextEditInput`` (``NEXT_EDIT_INPUT_VERSION``; ``to_json``/``from_json`` round-trip it across
the process boundary) holds the file's path and language, an *excerpt* of whole lines around the
caret with the **editable region** inside it (the lines the model may rewrite), the caret, the
recent edit events as small before/after pairs (``EditPair``, newest last) and related excerpts
from other files (``RelatedExcerpt``). ``input_at`` builds one from a document, a caret offset,
events and related excerpts: what the editor and the benchmark both call.

The editable region (``editable_region``) is a few blocks around the caret, snapped to syntax
boundaries without a parser. Blocks start at the file's first line, at a line after a blank
line, and where the indentation decreases (a header stays with its indented body; blank lines
belong to the block above). The region is
the caret's block, grown by whole neighbouring blocks (the smaller neighbour first, above on a
tie) until it has ``REGION_MIN_LINES`` lines and its brackets are balanced (counted outside
strings and comments by ``brackets``: the depth at its end equals the depth at its start and
never drops below it inside; an unbalanced region grows on the side that balances it), never
more than ``REGION_MAX_ABOVE`` lines above the caret line nor ``REGION_MAX_BELOW`` below it
(where a cap cuts a block, the region ends at the cap).

The renderer
------------
``render_next_edit`` renders under a token budget with ``count_tokens`` (the model's tokenizer;
a fake in tests), in the profile's format: ``renderer_for(profile)`` gives the renderer
registered for the profile's id (``register_renderer``: a model with a native next-edit format
gets its own), else ``render_chat_next_edit``, the default instruct-chat format (the profile's
``ChatFormat``). Its layout, stable parts first so the KV cache carries from one request to
the next::

    [system] instructions (fixed text)
    [user]   related excerpts (input order)
             the recent edits, oldest first (the newest last, nearest the code)
             the excerpt: context above, REGION_START, the region with CARET, REGION_END,
             context below
    [assistant] REGION_START and a line break (prefilled: the model writes the region at once)

The model answers with the rewritten region and ``REGION_END`` (also a stop string). Under the
budget, in priority order: the region (always), the newest event, the near context
(``NEAR_CONTEXT`` lines each side, in blocks of ``CONTEXT_BLOCK``), older events newest first
(each whole; the first that does not fit ends them), related excerpts (each whole, in input
order; one that does not fit is skipped), then further context blocks. Each element is kept
when the whole rendering still fits (``count_tokens`` on whole renderings, once per element).

Text: ``\\r\\n`` is rendered as ``\\n``; the markers and the chat format's own special strings
inside user text are broken (a zero-width space after their first character). Bump
``NEXT_EDIT_FORMAT_VERSION`` whenever the rendered text changes (goldens in
tests/golden/next_edit/).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from forecode_core.jsonshape import check_keys, get
from forecode_core.next_edit.brackets import line_depths
from forecode_core.next_edit.events import EditEvent
from forecode_core.profiles import ChatFormat, ModelProfile
from forecode_core.text.prompt_text import break_markers, fence_for

__all__ = [
    "CARET",
    "CONTEXT_ABOVE",
    "CONTEXT_BELOW",
    "NEXT_EDIT_FORMAT_VERSION",
    "NEXT_EDIT_INPUT_VERSION",
    "REGION_END",
    "REGION_START",
    "EditPair",
    "NextEditInput",
    "NextEditRenderer",
    "RelatedExcerpt",
    "RenderedNextEdit",
    "editable_region",
    "input_at",
    "memo_count",
    "pair_of",
    "register_renderer",
    "render_chat_next_edit",
    "render_next_edit",
    "renderer_for",
]

NEXT_EDIT_INPUT_VERSION = 1
NEXT_EDIT_FORMAT_VERSION = 1

# Short markers: 3 tokens each in Gemma 3's and Qwen2.5's vocabularies (the Zeta-style
# "<|editable_region_end|>" is 7-8; long markers break region ends in small models).
REGION_START = "<region>"
REGION_END = "</region>"
CARET = "<cursor>"

# The region around the caret line: at least / at most this many lines above and below it.
# Measured on bench next_edit's cases (300, httpx/jinja/requests): 3 above / 5 below keeps the
# next edit inside the region 0.561 of the time (10/12: 0.572) with the region's characters at
# p50 177, p90 309 (290, 637): fewer draft tokens to verify, less to run on.
REGION_MIN_LINES = 4
REGION_MAX_ABOVE, REGION_MAX_BELOW = 3, 5
# Lines of context the input carries above and below the region (the renderer keeps what fits).
CONTEXT_ABOVE, CONTEXT_BELOW = 32, 16
NEAR_CONTEXT, CONTEXT_BLOCK = 8, 4
# An event pair longer than this (characters, each side) is cut to its trimmed core.
MAX_PAIR_CHARS = 600

INSTRUCTIONS = (
    "You predict a programmer's next edit. Rewrite the code between "
    f"{REGION_START} and {REGION_END} as it will be after their next edit, continuing "
    "the pattern of their recent edits. Never undo their edits. If nothing needs to change, "
    "repeat it unchanged. Answer with the rewritten code only, then "
    f"{REGION_END}."
)


# ---------------------------------------------------------------------------------------------
# the input


@dataclass(frozen=True)
class EditPair:
    """One recent edit: ``before`` became ``after`` at 0-based ``line`` of ``path``."""

    path: str
    line: int
    before: str
    after: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "before": self.before, "after": self.after}

    @classmethod
    def from_json(cls, d: object, where: str = "EditPair") -> EditPair:
        obj = check_keys(d, where, ("path", "line", "before", "after"))
        return cls(
            get(obj, where, "path", str),
            get(obj, where, "line", int),
            get(obj, where, "before", str),
            get(obj, where, "after", str),
        )


@dataclass(frozen=True)
class RelatedExcerpt:
    """Code from another file: ``text`` starts at 0-based ``start_line`` of ``path``."""

    path: str
    text: str
    start_line: int = 0

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "text": self.text, "start_line": self.start_line}

    @classmethod
    def from_json(cls, d: object, where: str = "RelatedExcerpt") -> RelatedExcerpt:
        obj = check_keys(d, where, ("path", "text", "start_line"))
        return cls(
            get(obj, where, "path", str),
            get(obj, where, "text", str),
            get(obj, where, "start_line", int),
        )


@dataclass(frozen=True)
class NextEditInput:
    path: str
    language: str
    excerpt: str  # whole lines of the document around the caret
    first_line: int  # 0-based document line of the excerpt's first line
    excerpt_offset: int  # document offset of the excerpt's first character
    region_start: int  # offsets into excerpt: the editable region (whole lines)
    region_end: int
    caret: int  # offset into excerpt, inside the region
    events: tuple[EditPair, ...] = ()  # newest last
    related: tuple[RelatedExcerpt, ...] = ()
    version: int = NEXT_EDIT_INPUT_VERSION

    def __post_init__(self) -> None:
        if self.version != NEXT_EDIT_INPUT_VERSION:
            raise ValueError(
                f"NextEditInput version {self.version} (this build reads {NEXT_EDIT_INPUT_VERSION})"
            )
        if not 0 <= self.region_start <= self.caret <= self.region_end <= len(self.excerpt):
            raise ValueError(
                "NextEditInput needs 0 <= region_start <= caret <= region_end <= len(excerpt), got "
                f"{self.region_start}, {self.caret}, {self.region_end}, {len(self.excerpt)}"
            )

    @property
    def region(self) -> str:
        return self.excerpt[self.region_start : self.region_end]

    @property
    def region_offset(self) -> int:
        """The region's start in the document."""
        return self.excerpt_offset + self.region_start

    @property
    def caret_offset(self) -> int:
        """The caret in the document."""
        return self.excerpt_offset + self.caret

    def line_of(self, excerpt_offset: int) -> int:
        """The 0-based document line of an offset into the excerpt."""
        return self.first_line + self.excerpt.count("\n", 0, excerpt_offset)

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "path": self.path,
            "language": self.language,
            "excerpt": self.excerpt,
            "first_line": self.first_line,
            "excerpt_offset": self.excerpt_offset,
            "region_start": self.region_start,
            "region_end": self.region_end,
            "caret": self.caret,
            "events": [e.to_json() for e in self.events],
            "related": [r.to_json() for r in self.related],
        }

    @classmethod
    def from_json(cls, d: object) -> NextEditInput:
        """The input ``to_json`` gave; ``ValueError`` on a missing, unknown or mistyped key or
        another version."""
        w = "NextEditInput"
        obj = check_keys(d, w, tuple(_INPUT_KEYS))
        ints = {k: get(obj, w, k, int) for k in _INPUT_KEYS if _INPUT_KEYS[k] is int}
        return cls(
            path=get(obj, w, "path", str),
            language=get(obj, w, "language", str),
            excerpt=get(obj, w, "excerpt", str),
            events=tuple(
                EditPair.from_json(e, f"{w}.events[{i}]")
                for i, e in enumerate(get(obj, w, "events", list))
            ),
            related=tuple(
                RelatedExcerpt.from_json(r, f"{w}.related[{i}]")
                for i, r in enumerate(get(obj, w, "related", list))
            ),
            **ints,
        )


_INPUT_KEYS: dict[str, type] = {
    "version": int,
    "path": str,
    "language": str,
    "excerpt": str,
    "first_line": int,
    "excerpt_offset": int,
    "region_start": int,
    "region_end": int,
    "caret": int,
    "events": list,
    "related": list,
}


def _blank(line: str) -> bool:
    return not line.strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_starts(lines: list[str]) -> list[int]:
    """Where blocks start: the first line, a line after a blank one, a line indented less than
    the line above (a header and its indented body stay one block; blank lines belong to the
    block above them); and ``len``."""
    starts = [0]
    for k in range(1, len(lines)):
        if _blank(lines[k]):
            continue
        if _blank(lines[k - 1]) or _indent(lines[k]) < _indent(lines[k - 1]):
            starts.append(k)
    return [*starts, len(lines)]


def editable_region(lines: list[str], caret_line: int, language: str) -> tuple[int, int]:
    """``(first, end)``: the region's lines (``end`` exclusive) around ``caret_line``: the
    caret's block, then neighbouring blocks (module doc)."""
    n = len(lines)
    depths = line_depths(lines, language)
    bounds = _block_starts(lines)
    lo_cap = max(0, caret_line - REGION_MAX_ABOVE)
    hi_cap = min(n, caret_line + 1 + REGION_MAX_BELOW)
    i = bisect.bisect_right(bounds, caret_line) - 1
    j = i + 1
    a, b = max(bounds[i], lo_cap), min(bounds[j], hi_cap)
    while True:
        inside = min(depths[a : b + 1])
        opens_more = depths[b] > depths[a]
        closes_above = inside < depths[a]
        if b - a >= REGION_MIN_LINES and not opens_more and not closes_above:
            return a, b
        up = bounds[i - 1] if i > 0 and bounds[i - 1] >= lo_cap else None
        down = bounds[j + 1] if j + 1 < len(bounds) and bounds[j + 1] <= hi_cap else None
        if opens_more and down is not None:
            go_up = False
        elif closes_above and up is not None:
            go_up = True
        elif up is not None and down is not None:
            go_up = a - up <= down - b  # the smaller neighbour first (above on a tie)
        elif up is not None or down is not None:
            go_up = up is not None
        else:
            return a, b
        if go_up:
            i -= 1
            a = bounds[i]
        else:
            j += 1
            b = bounds[j]


def pair_of(path: str, event: EditEvent, text: str) -> EditPair:
    """The event as a pair of whole lines of ``text`` (the document as it is now): the lines
    its span covers, before and after. A side longer than ``MAX_PAIR_CHARS`` is cut to the
    event's trimmed core."""
    start = text.rfind("\n", 0, event.offset) + 1
    end = text.find("\n", event.end)
    end = len(text) if end < 0 else end
    head, tail = text[start : event.offset], text[event.end : end]
    before, after = head + event.before + tail, head + event.after + tail
    if max(len(before), len(after)) > MAX_PAIR_CHARS:
        before, after = event.trimmed()
    line = event.line - text.count("\n", start, event.offset)
    return EditPair(path, line, before, after)


def input_at(
    text: str,
    offset: int,
    *,
    path: str,
    language: str,
    events: tuple[EditPair, ...] = (),
    related: tuple[RelatedExcerpt, ...] = (),
) -> NextEditInput:
    """The input for a caret at ``offset`` of ``text`` (the whole document)."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    caret_line = text.count("\n", 0, offset)
    a, b = editable_region(lines, caret_line, language)
    first = max(0, a - CONTEXT_ABOVE)
    last = min(len(lines), b + CONTEXT_BELOW)
    base = starts[first]

    def at(line: int) -> int:
        return min(len(text), starts[line]) - base

    return NextEditInput(
        path=path,
        language=language,
        excerpt=text[base : min(len(text), starts[last])],
        first_line=first,
        excerpt_offset=base,
        region_start=at(a),
        region_end=at(b),
        caret=offset - base,
        events=events,
        related=related,
    )


# ---------------------------------------------------------------------------------------------
# rendering


@dataclass(frozen=True)
class RenderedNextEdit:
    text: str  # the prompt (no BOS), ending where the model writes the region
    stop: tuple[str, ...]  # the end marker first
    end_marker: str  # what ends the region in the answer
    draft: str  # the region as shown (LF): the rewrite's speculative draft
    events_included: int  # the newest this many events are shown
    related_included: tuple[str, ...]  # "path:start_line" of each related excerpt shown
    lines_above: int  # context lines shown above the region
    lines_below: int
    token_estimate: int  # count_tokens(text)
    add_bos: bool
    format_id: str
    version: int = NEXT_EDIT_FORMAT_VERSION


NextEditRenderer = Callable[
    [NextEditInput, ModelProfile, Callable[[str], int], int], RenderedNextEdit
]

_RENDERERS: dict[str, NextEditRenderer] = {}


def memo_count(count_tokens: Callable[[str], int]) -> Callable[[str], int]:
    """``count_tokens`` remembered per text, for one render's budget search (it measures the
    same candidate text more than once while growing the shown parts)."""
    counts: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in counts:
            counts[text] = count_tokens(text)
        return counts[text]

    return count


def register_renderer(profile_id: str, renderer: NextEditRenderer) -> None:
    """Give the profile ``profile_id`` its own next-edit format (a model trained on one)."""
    _RENDERERS[profile_id] = renderer


def renderer_for(profile: ModelProfile) -> NextEditRenderer:
    """The profile's own next-edit renderer, else the instruct-chat one."""
    return _RENDERERS.get(profile.id, render_chat_next_edit)


def render_next_edit(
    inp: NextEditInput,
    profile: ModelProfile,
    count_tokens: Callable[[str], int],
    budget_tokens: int,
) -> RenderedNextEdit:
    """The prompt for ``inp`` in ``profile``'s next-edit format, within ``budget_tokens``."""
    return renderer_for(profile)(inp, profile, count_tokens, budget_tokens)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n")


def _neutralise(text: str, fmt: ChatFormat) -> str:
    return break_markers(_normalise(text), (REGION_START, REGION_END, CARET, *fmt.markers))


def _block(text: str, fmt: ChatFormat) -> str:
    body = _neutralise(text, fmt)
    if not body.endswith("\n"):
        body += "\n"
    fence = fence_for(body)
    return f"{fence}\n{body}{fence}\n"


@dataclass(frozen=True)
class _Chosen:
    events: int = 0  # the newest this many
    related: tuple[int, ...] = ()
    above: int = 0  # context lines
    below: int = 0


def _lines(text: str) -> list[str]:
    """Whole lines with their breaks (the last may lack one)."""
    return [line for line in text.splitlines(keepends=True) if line] if text else []


@dataclass(frozen=True)
class _ChatLayout:
    """One input's pieces in a chat format; ``render`` writes a choice of them."""

    inp: NextEditInput
    fmt: ChatFormat
    above: list[str]  # context lines above the region (LF)
    below: list[str]
    region: str  # with the caret marker, ending with a line break

    @classmethod
    def of(cls, inp: NextEditInput, fmt: ChatFormat) -> _ChatLayout:
        region = (
            _neutralise(inp.excerpt[inp.region_start : inp.caret], fmt)
            + CARET
            + _neutralise(inp.excerpt[inp.caret : inp.region_end], fmt)
        )
        if not region.endswith("\n"):
            region += "\n"
        return cls(
            inp,
            fmt,
            _lines(_normalise(inp.excerpt[: inp.region_start])),
            _lines(_normalise(inp.excerpt[inp.region_end :])),
            region,
        )

    def render(self, c: _Chosen) -> str:
        inp, fmt = self.inp, self.fmt
        parts: list[str] = []
        for i in c.related:
            r = inp.related[i]
            parts.append(
                f"Related code from {r.path} (line {r.start_line + 1}):\n{_block(r.text, fmt)}\n"
            )
        if c.events:
            parts.append("Recent edits, oldest first:\n")
            for e in inp.events[len(inp.events) - c.events :]:
                parts.append(
                    f"{e.path}, line {e.line + 1}, original:\n{_block(e.before, fmt)}"
                    f"updated:\n{_block(e.after, fmt)}\n"
                )
        above = "".join(self.above[len(self.above) - c.above :]) if c.above else ""
        below = "".join(self.below[: c.below])
        code = (
            _neutralise(above, fmt)
            + f"{REGION_START}\n{self.region}{REGION_END}\n"
            + _neutralise(below, fmt)
        )
        fence = fence_for(code)
        parts.append(f"Current file {inp.path}:\n{fence}\n{code}{fence}\n")
        if fmt.system_prefix is not None:
            head = f"{fmt.system_prefix}{INSTRUCTIONS}{fmt.turn_end}{fmt.user_prefix}"
        else:
            head = f"{fmt.user_prefix}{INSTRUCTIONS}\n\n"
        return f"{head}{''.join(parts)}{fmt.turn_end}{fmt.assistant_prefix}{REGION_START}\n"


def _grow(c: _Chosen, fits: Callable[[_Chosen], bool], up_to: tuple[int, int]) -> _Chosen:
    """More context lines, a block at a time on each side, while they fit (at most ``up_to``
    above and below)."""
    up = down = True
    while up or down:
        if up:
            k = min(up_to[0], c.above + CONTEXT_BLOCK)
            trial = _Chosen(c.events, c.related, k, c.below)
            up = k > c.above and fits(trial)
            c = trial if up else c
        if down:
            k = min(up_to[1], c.below + CONTEXT_BLOCK)
            trial = _Chosen(c.events, c.related, c.above, k)
            down = k > c.below and fits(trial)
            c = trial if down else c
    return c


def _choose(layout: _ChatLayout, fits: Callable[[_Chosen], bool]) -> _Chosen:
    """What is shown, by priority (module doc)."""
    inp = layout.inp
    n_above, n_below = len(layout.above), len(layout.below)
    chosen = _Chosen()
    if inp.events and fits(_Chosen(events=1)):
        chosen = _Chosen(events=1)
    chosen = _grow(chosen, fits, (min(NEAR_CONTEXT, n_above), min(NEAR_CONTEXT, n_below)))
    while 0 < chosen.events < len(inp.events):
        trial = _Chosen(chosen.events + 1, chosen.related, chosen.above, chosen.below)
        if not fits(trial):
            break
        chosen = trial
    for i, r in enumerate(inp.related):
        trial = _Chosen(chosen.events, (*chosen.related, i), chosen.above, chosen.below)
        if r.text.strip() and fits(trial):
            chosen = trial
    return _grow(chosen, fits, (n_above, n_below))


def render_chat_next_edit(
    inp: NextEditInput,
    profile: ModelProfile,
    count_tokens: Callable[[str], int],
    budget_tokens: int,
) -> RenderedNextEdit:
    """The default format: an instruct-chat turn in the profile's ``ChatFormat`` (module doc).
    Over budget even with the region alone, that is what it renders."""
    fmt = profile.chat
    layout = _ChatLayout.of(inp, fmt)
    count = memo_count(count_tokens)
    chosen = _choose(layout, lambda c: count(layout.render(c)) <= budget_tokens)
    text = layout.render(chosen)
    return RenderedNextEdit(
        text=text,
        stop=(REGION_END, *fmt.stop),
        end_marker=REGION_END,
        draft=_normalise(inp.region),
        events_included=chosen.events,
        related_included=tuple(
            f"{inp.related[i].path}:{inp.related[i].start_line}" for i in chosen.related
        ),
        lines_above=chosen.above,
        lines_below=chosen.below,
        token_estimate=count(text),
        add_bos=fmt.add_bos,
        format_id=f"chat-{fmt.id}",
    )
