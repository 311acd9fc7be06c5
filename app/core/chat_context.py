"""What goes along with a chat question: context items under a token budget, @file mentions.

The chat panel gathers *sources* (the selection, the current file, the files the user
mentioned with ``@path``) and ``assemble_context`` turns them into the ``ContextItem``s of a
request, highest priority first: selection, then the current file, then the mentions in the
order they were typed. A source that does not fit what is left of the budget is cut to fit —
the current file around the cursor (so the code being asked about survives), others from the
top — or dropped when too little is left; every decision is reported so the panel can show what
was included, truncated or dropped.

Tokens are estimated, not counted: the editor has no tokenizer for the service's model, and a
budget only needs to be roughly right. ``estimate_tokens`` uses 3.5 characters per token, which
is close for code and English with BPE tokenizers (Gemma, Llama, GPT) and errs on the high side
for prose.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from local_models.chat import ChatMessage, ContextItem, ContextKind

__all__ = [
    "CHARS_PER_TOKEN",
    "ITEM_OVERHEAD_TOKENS",
    "MIN_USEFUL_TOKENS",
    "ContextPlan",
    "ContextReport",
    "ContextSource",
    "Mention",
    "assemble_context",
    "estimate_tokens",
    "find_mentions",
    "format_mention",
    "parse_mentions",
    "remove_mention",
    "trim_history",
]

CHARS_PER_TOKEN = 3.5
# The service wraps each item in a header (path, kind, lines) and a fence.
ITEM_OVERHEAD_TOKENS = 12
# Less room than this left for an item: drop it rather than send a few useless lines.
MIN_USEFUL_TOKENS = 48

_PRIORITY: dict[str, int] = {"selection": 0, "current_file": 1, "file": 2}

Status = Literal["full", "truncated", "dropped"]


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens ``text`` is: characters / 3.5, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ContextSource:
    """A candidate context item, before the budget.

    ``start_line`` is the 1-based line of ``text``'s first line in its file (a selection that
    starts on line 10 has ``start_line=10``; a whole file has 1). ``focus_line`` is the 0-based
    line of ``text`` to keep when the text must be cut (the cursor's line in the current file).
    """

    kind: ContextKind
    path: str
    text: str
    language: str = ""
    start_line: int = 1
    focus_line: int = 0


@dataclass(frozen=True)
class ContextReport:
    """What happened to one source: included whole, truncated (to lines ``start_line`` to
    ``end_line`` of its file) or dropped (``reason`` says why)."""

    kind: ContextKind
    path: str
    status: Status
    tokens: int  # tokens sent for it (0 when dropped)
    full_tokens: int  # tokens the whole source would have taken
    start_line: int = 0
    end_line: int = 0
    reason: str = ""

    @property
    def label(self) -> str:
        """A short human label: ``"util.py (truncated to lines 10–80)"``."""
        name = self.path
        if self.kind == "selection":
            name = f"selection in {self.path} (lines {self.start_line}–{self.end_line})"
        elif self.kind == "current_file":
            name = f"current file {self.path}"
        if self.status == "truncated":
            return f"{name} (truncated to lines {self.start_line}–{self.end_line})"
        if self.status == "dropped":
            return f"{name} (not sent: {self.reason})"
        return name


@dataclass(frozen=True)
class ContextPlan:
    items: tuple[ContextItem, ...]
    reports: tuple[ContextReport, ...]  # one per source, in priority order
    used_tokens: int
    budget_tokens: int

    def report_for(self, kind: str, path: str) -> ContextReport | None:
        for report in self.reports:
            if report.kind == kind and report.path == path:
                return report
        return None


def _cut_lines(lines: Sequence[str], focus: int, max_chars: int) -> tuple[int, int]:
    """The widest range [first, last] of ``lines`` around ``focus`` whose text (with line
    breaks) fits ``max_chars``; grows below and above in turn. May be just ``focus``."""
    focus = max(0, min(focus, len(lines) - 1))
    first = last = focus
    used = len(lines[focus]) + 1
    grow_down = True
    while True:
        can_down = last + 1 < len(lines) and used + len(lines[last + 1]) + 1 <= max_chars
        can_up = first > 0 and used + len(lines[first - 1]) + 1 <= max_chars
        if not (can_down or can_up):
            return first, last
        if can_down and (grow_down or not can_up):
            last += 1
            used += len(lines[last]) + 1
        else:
            first -= 1
            used += len(lines[first]) + 1
        grow_down = not grow_down


def _truncate(source: ContextSource, max_tokens: int) -> tuple[str, int, int]:
    """``source.text`` cut to about ``max_tokens``: (text, first line, last line), 1-based
    lines of the file."""
    max_chars = max(1, int(max_tokens * CHARS_PER_TOKEN))
    lines = source.text.split("\n")
    focus = source.focus_line if source.kind == "current_file" else 0
    first, last = _cut_lines(lines, focus, max_chars)
    text = "\n".join(lines[first:last + 1])
    if len(text) > max_chars:  # one line longer than the whole budget
        text = text[:max_chars]
    return text, source.start_line + first, source.start_line + last


def assemble_context(sources: Iterable[ContextSource], budget_tokens: int) -> ContextPlan:
    """The context items for a request from ``sources`` under ``budget_tokens``.

    Sources are taken by priority (selection, current file, mentions in order); a mention of
    a path already included as the current file, or mentioned twice, is dropped as such.
    """
    ordered = sorted(enumerate(sources), key=lambda p: (_PRIORITY.get(p[1].kind, 9), p[0]))
    remaining = max(0, budget_tokens)
    items: list[ContextItem] = []
    reports: list[ContextReport] = []
    seen_files: dict[str, str] = {}
    for _, src in ordered:
        full = estimate_tokens(src.text) + ITEM_OVERHEAD_TOKENS
        n_lines = src.text.count("\n") + 1
        whole_first, whole_last = src.start_line, src.start_line + n_lines - 1
        if src.kind != "selection" and src.path in seen_files:
            reports.append(ContextReport(src.kind, src.path, "dropped", 0, full,
                                         reason=f"already included as {seen_files[src.path]}"))
            continue
        if src.kind != "selection":
            seen_files[src.path] = ("the current file" if src.kind == "current_file"
                                    else "a mention")
        if full <= remaining:
            remaining -= full
            is_range = src.kind == "selection"
            items.append(ContextItem(src.kind, src.path, src.text,
                                     whole_first if is_range else 0,
                                     whole_last if is_range else 0, src.language, False))
            reports.append(ContextReport(src.kind, src.path, "full", full, full,
                                         whole_first, whole_last))
            continue
        room = remaining - ITEM_OVERHEAD_TOKENS
        if room < MIN_USEFUL_TOKENS:
            reports.append(ContextReport(src.kind, src.path, "dropped", 0, full,
                                         reason="over the context budget"))
            continue
        text, first, last = _truncate(src, room)
        used = estimate_tokens(text) + ITEM_OVERHEAD_TOKENS
        remaining -= used
        items.append(ContextItem(src.kind, src.path, text, first, last, src.language, True))
        reports.append(ContextReport(src.kind, src.path, "truncated", used, full, first, last))
    return ContextPlan(tuple(items), tuple(reports), max(0, budget_tokens) - remaining,
                       max(0, budget_tokens))


def trim_history(messages: Sequence[ChatMessage], budget_tokens: int) -> tuple[ChatMessage, ...]:
    """The most recent messages that fit ``budget_tokens`` (the last one always kept), starting
    with a user turn, so a long conversation does not overflow the model's context."""
    if not messages:
        return ()
    kept = [messages[-1]]
    used = estimate_tokens(messages[-1].content)
    for message in reversed(messages[:-1]):
        cost = estimate_tokens(message.content) + 4
        if used + cost > budget_tokens:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while len(kept) > 1 and kept[0].role != "user":
        kept.pop(0)
    return tuple(kept)


# ----- @file mentions ----------------------------------------------------------------------

# "@" at the start or after whitespace, then a quoted path or a run of non-blank characters.
_MENTION = re.compile(r'(?:^|(?<=\s))@(?:"([^"\n]+)"|([^\s"@]+))')
_TRAILING = ",.;:!?)]}'`"


@dataclass(frozen=True)
class Mention:
    path: str
    start: int  # offsets of the whole "@path" in the text
    end: int


def find_mentions(text: str) -> list[Mention]:
    """Every ``@path`` / ``@"path with spaces"`` in ``text``; punctuation that ends a sentence
    (``@util.py,``) is not part of the path."""
    out: list[Mention] = []
    for m in _MENTION.finditer(text):
        if m.group(1) is not None:
            out.append(Mention(m.group(1), m.start(), m.end()))
            continue
        path = m.group(2)
        stripped = path.rstrip(_TRAILING)
        if stripped:
            out.append(Mention(stripped, m.start(), m.start() + 1 + len(stripped)))
    return out


def parse_mentions(text: str) -> list[str]:
    """The mentioned paths, each once, in the order first typed."""
    seen: dict[str, None] = {}
    for mention in find_mentions(text):
        seen.setdefault(mention.path, None)
    return list(seen)


def format_mention(path: str) -> str:
    """``@path``, quoted when the path holds a blank or a quote-less form would be misread."""
    if any(ch.isspace() for ch in path) or path[-1:] in _TRAILING or '"' in path:
        return f'@"{path}"'
    return f"@{path}"


def remove_mention(text: str, path: str) -> str:
    """``text`` without its mentions of ``path`` (and the blank after each)."""
    out: list[str] = []
    pos = 0
    for mention in find_mentions(text):
        if mention.path != path:
            continue
        out.append(text[pos:mention.start])
        pos = mention.end
        if text[pos:pos + 1] == " ":
            pos += 1
    out.append(text[pos:])
    return "".join(out)
