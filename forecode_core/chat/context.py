"""What goes along with a chat question: context items under a token budget, @file mentions.

The chat panel gathers *sources* (the selection, the current file, the files the user
mentioned with ``@path``, the hits of an ``@codebase`` search) and ``assemble_context`` turns
them into the ``ContextItem``s of a request, highest priority first: selection, then the
current file, then the mentions in the order they were typed, then the codebase hits best
first. A source that does not fit what is left of the budget is cut to fit — the current file
around the cursor (so the code being asked about survives), others from the top — or dropped
when too little is left; every decision is reported so the panel can show what was included,
truncated or dropped. A current file that does not fit whole leaves room for the files after it
(``_room_for_the_rest``: what they need, at most half of what is left): in a user run the
current file (jinja's 659-line utils.py) took all of the default 6,000 tokens and the file the
user had named with ``@`` was dropped, as Cursor never does with an explicit mention.

Codebase hits (``codebase_sources``) are line ranges of workspace files. A hit is dropped when
the code it holds is already sent (its file whole, or the lines of a truncated file or an
earlier hit that cover it). On the wire a hit is a ``file`` item with its line range (the
contract has no kind of its own for it; the chat prompt shows "File path (lines a-b)").

Tokens are estimated, not counted: the editor has no tokenizer for the service's model, and a
budget only needs to be roughly right. ``estimate_tokens`` uses 3.5 characters per token, which
is close for code and English with BPE tokenizers (Gemma, Llama, GPT) and errs on the high side
for prose.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from forecode_core.chat.types import ChatMessage, ContextItem, ContextKind, Role
from forecode_core.index.codebase import CodeHit

__all__ = [
    "CHARS_PER_TOKEN",
    "CODEBASE_MENTION",
    "ITEM_OVERHEAD_TOKENS",
    "MIN_USEFUL_TOKENS",
    "ContextPlan",
    "ContextReport",
    "ContextSource",
    "Mention",
    "SourceKind",
    "Status",
    "assemble_context",
    "codebase_query",
    "codebase_sources",
    "estimate_tokens",
    "find_mentions",
    "format_mention",
    "has_codebase_mention",
    "parse_mentions",
    "remove_codebase_mention",
    "remove_mention",
    "trim_history",
]

CHARS_PER_TOKEN = 3.5
# The service wraps each item in a header (path, kind, lines) and a fence.
ITEM_OVERHEAD_TOKENS = 12
# Less room than this left for an item: drop it rather than send a few useless lines.
MIN_USEFUL_TOKENS = 48


class SourceKind(StrEnum):
    """What a source is: the wire's kinds (``ContextKind``) plus ``CODEBASE``, a search hit
    (sent as a ``file`` range)."""

    FILE = "file"
    SELECTION = "selection"
    CURRENT_FILE = "current_file"
    CODEBASE = "codebase"

    @property
    def wire(self) -> ContextKind:
        """The kind its item has on the wire."""
        return ContextKind.FILE if self is SourceKind.CODEBASE else ContextKind(self.value)


_PRIORITY: dict[str, int] = {
    SourceKind.SELECTION: 0,
    SourceKind.CURRENT_FILE: 1,
    SourceKind.FILE: 2,
    SourceKind.CODEBASE: 3,
}


class Status(StrEnum):
    """What the budget did with a source."""

    FULL = "full"
    TRUNCATED = "truncated"
    DROPPED = "dropped"


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens ``text`` is: characters / 3.5, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ContextSource:
    """A candidate context item, before the budget.

    ``start_line`` is the 1-based line of ``text``'s first line in its file (a selection that
    starts on line 10 has ``start_line=10``; a whole file has 1). ``focus_line`` is the 0-based
    line of ``text`` to keep when the text must be cut (the cursor's line in the current file;
    in a multi-file edit also a mention's definition that the question names).
    """

    kind: SourceKind
    path: str
    text: str
    language: str = ""
    start_line: int = 1
    focus_line: int = 0

    @property
    def end_line(self) -> int:
        return self.start_line + self.text.count("\n")


@dataclass(frozen=True)
class ContextReport:
    """What happened to one source: included whole, truncated (to lines ``start_line`` to
    ``end_line`` of its file) or dropped (``reason`` says why)."""

    kind: SourceKind
    path: str
    status: Status
    tokens: int  # tokens sent for it (0 when dropped)
    full_tokens: int  # tokens the whole source would have taken
    start_line: int = 0
    end_line: int = 0
    reason: str = ""
    # A codebase hit's own range (``start_line``/``end_line`` are the lines sent of it).
    hit_start: int = 0
    hit_end: int = 0
    # A mention of a file already sent ("the current file", "a mention"): the report is that
    # file's (its status and lines), nothing more is sent for it (``tokens`` 0).
    included_as: str = ""

    @property
    def label(self) -> str:
        """A short human label: ``"util.py (truncated to lines 10–80)"``."""
        name = self.path
        if self.kind == SourceKind.CODEBASE:
            name = self.range_label
        elif self.kind == SourceKind.SELECTION:
            name = f"selection in {self.path} (lines {self.start_line}–{self.end_line})"
        elif self.kind == SourceKind.CURRENT_FILE:
            name = f"current file {self.path}"
        if self.included_as and self.status != Status.DROPPED:
            return f"{name} (sent once, as {self.included_as})"
        if self.status == Status.TRUNCATED:
            cut = f"{self.reason}:" if self.reason else "truncated to"  # an edit's excerpt
            return f"{name} ({cut} lines {self.start_line}–{self.end_line})"
        if self.status == Status.DROPPED:
            return f"{name} (not sent: {self.reason})"
        return name

    @property
    def range_label(self) -> str:
        """``path:start-end`` of the source (a codebase hit's whole range, even when cut)."""
        return f"{self.path}:{self.hit_start}-{self.hit_end}"


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
    focus = source.focus_line if source.kind == SourceKind.CURRENT_FILE else 0
    first, last = _cut_lines(lines, focus, max_chars)
    text = "\n".join(lines[first : last + 1])
    if len(text) > max_chars:  # one line longer than the whole budget
        text = text[:max_chars]
    return text, source.start_line + first, source.start_line + last


def _room_for_the_rest(ordered: Sequence[ContextSource], remaining: int) -> int:
    """The tokens a current file that does not fit whole leaves for the files after it (the
    mentions, the servers' problems): what they would take whole, at most half of
    ``remaining``. A file named twice, or the current file named again, counts once or not
    at all (it is dropped as such)."""
    current = {s.path for s in ordered if s.kind == SourceKind.CURRENT_FILE}
    seen: set[str] = set()
    wanted = 0
    for src in ordered:
        if src.kind != SourceKind.FILE or src.path in current or src.path in seen:
            continue
        seen.add(src.path)
        wanted += estimate_tokens(src.text) + ITEM_OVERHEAD_TOKENS
    return min(wanted, remaining // 2)


def _excerpt(src: ContextSource, room: int) -> tuple[ContextItem, int, int, int]:
    """A file that does not fit whole as an editable excerpt (``forecode_core.edits.excerpt``):
    the item (the whole text, the excerpt's lines as its range), its first and last line, and
    the tokens its excerpt takes in the prompt."""
    from forecode_core.edits.excerpt import choose_excerpt, excerpt_note, excerpt_text

    total = src.text.count("\n") + 1
    note = estimate_tokens(excerpt_note(total, total, total))  # the prompt's line above it
    max_chars = max(1, int((room - note) * CHARS_PER_TOKEN))
    first, last = choose_excerpt(src.text, max_chars, src.focus_line)
    shown = excerpt_text(src.text, first, last)
    used = estimate_tokens(shown) + note + ITEM_OVERHEAD_TOKENS
    item = ContextItem(
        SourceKind(src.kind).wire, src.path, src.text, first, last, src.language, False
    )
    return item, first, last, used


def _cut_item(
    src: ContextSource, room: int, excerpt: bool
) -> tuple[ContextItem, int, int, int, str]:
    """``src`` cut to ``room`` tokens: the item, its first and last line, the tokens it takes
    and what its report says of the cut ("": truncated). ``excerpt``: an editable excerpt
    (``_excerpt``) when ``src`` is a whole file."""
    if excerpt and src.start_line == 1:
        item, first, last, used = _excerpt(src, room)
        return item, first, last, used, "editable excerpt"
    text, first, last = _truncate(src, room)
    used = estimate_tokens(text) + ITEM_OVERHEAD_TOKENS
    item = ContextItem(SourceKind(src.kind).wire, src.path, text, first, last, src.language, True)
    return item, first, last, used, ""


def assemble_context(
    sources: Iterable[ContextSource], budget_tokens: int, *, excerpts: bool = False
) -> ContextPlan:
    """The context items for a request from ``sources`` under ``budget_tokens``.

    Sources are taken by priority (selection, current file, mentions in order, codebase hits
    in order); a mention of a path already included as the current file, or mentioned twice,
    is reported as that file (``included_as``: sent once, nothing more for it); a codebase
    hit whose lines are already sent is dropped. With
    ``excerpts`` (a multi-file edit) a current file or mention that does not fit whole is an
    editable excerpt around its ``focus_line`` (``_excerpt``), not a truncated text.
    """
    ordered = [
        src
        for _, src in sorted(enumerate(sources), key=lambda p: (_PRIORITY.get(p[1].kind, 9), p[0]))
    ]
    remaining = max(0, budget_tokens)
    items: list[ContextItem] = []
    reports: list[ContextReport] = []
    seen_files: dict[str, str] = {}
    # path -> (first, last, what) line ranges already sent (0, 0: the whole file)
    sent_ranges: dict[str, list[tuple[int, int, str]]] = {}
    for src in ordered:
        full = estimate_tokens(src.text) + ITEM_OVERHEAD_TOKENS
        whole_first, whole_last = src.start_line, src.end_line
        is_hit = src.kind == SourceKind.CODEBASE
        hit = (whole_first, whole_last) if is_hit else (0, 0)

        def report(
            status: Status,
            tokens: int,
            first: int = 0,
            last: int = 0,
            reason: str = "",
            src: ContextSource = src,
            full: int = full,
            hit: tuple[int, int] = hit,
        ) -> None:
            reports.append(
                ContextReport(
                    src.kind, src.path, status, tokens, full, first, last, reason, hit[0], hit[1]
                )
            )

        if is_hit:
            covering = _covered_by(sent_ranges.get(src.path, ()), whole_first, whole_last)
            if covering is not None:
                report(Status.DROPPED, 0, reason=f"already included in {covering}")
                continue
        elif src.kind != SourceKind.SELECTION and src.path in seen_files:
            reports.append(_again(reports, src, full, seen_files[src.path]))
            continue
        whole_range = src.kind in (SourceKind.CURRENT_FILE, SourceKind.FILE)
        if whole_range:
            is_current = src.kind == SourceKind.CURRENT_FILE
            seen_files[src.path] = "the current file" if is_current else "a mention"
        what = {
            SourceKind.CURRENT_FILE: "the current file",
            SourceKind.FILE: "a mention",
            SourceKind.SELECTION: "the selection",
        }.get(src.kind, f"{src.path}:{whole_first}-{whole_last}")
        if full <= remaining:
            remaining -= full
            is_range = src.kind in (SourceKind.SELECTION, SourceKind.CODEBASE)
            items.append(
                ContextItem(
                    SourceKind(src.kind).wire,
                    src.path,
                    src.text,
                    whole_first if is_range else 0,
                    whole_last if is_range else 0,
                    src.language,
                    False,
                )
            )
            report(Status.FULL, full, whole_first, whole_last)
            sent_ranges.setdefault(src.path, []).append(
                (0, 0, what) if whole_range else (whole_first, whole_last, what)
            )
            continue
        room = remaining - ITEM_OVERHEAD_TOKENS
        if src.kind == SourceKind.CURRENT_FILE:
            room -= _room_for_the_rest(ordered, remaining)
        if room < MIN_USEFUL_TOKENS:
            report(Status.DROPPED, 0, reason="over the context budget")
            continue
        item, first, last, used, note = _cut_item(src, room, excerpts and whole_range)
        remaining -= used
        items.append(item)
        report(Status.TRUNCATED, used, first, last, note)
        sent_ranges.setdefault(src.path, []).append((first, last, what))
    return ContextPlan(
        tuple(items), tuple(reports), max(0, budget_tokens) - remaining, max(0, budget_tokens)
    )


def _again(
    reports: Sequence[ContextReport], src: ContextSource, full: int, included_as: str
) -> ContextReport:
    """The report of ``src``, a file already planned as ``included_as``: that file's status
    and lines (it is sent once, or not at all when it did not fit), no tokens of its own."""
    earlier = next(
        r
        for r in reports
        if r.path == src.path and r.kind in (SourceKind.CURRENT_FILE, SourceKind.FILE)
    )
    reason = earlier.reason
    if earlier.status == Status.DROPPED:
        reason = f"the same file as {included_as}, {earlier.reason}"
    return dataclasses.replace(
        earlier,
        kind=src.kind,
        tokens=0,
        full_tokens=full,
        reason=reason,
        included_as=included_as,
    )


def _covered_by(ranges: Iterable[tuple[int, int, str]], first: int, last: int) -> str | None:
    """What already sent covers lines ``first``..``last`` (a whole file: (0, 0)), if any."""
    for lo, hi, what in ranges:
        if (lo, hi) == (0, 0) or (lo <= first and last <= hi):
            return what
    return None


# ----- @codebase -----------------------------------------------------------------------------

CODEBASE_MENTION = "codebase"
# "@codebase" as a word of its own (a quoted "@\"codebase\"" is a file of that name).
_CODEBASE = re.compile(r"(?:^|(?<=\s))@codebase(?=$|[\s,.;:!?)\]}\'`])")


def has_codebase_mention(text: str) -> bool:
    """True when ``text`` asks for a codebase search (``@codebase``)."""
    return _CODEBASE.search(text) is not None


def codebase_query(text: str) -> str:
    """The search query for a question: the question without its ``@codebase`` mentions,
    blanks collapsed."""
    return " ".join(_CODEBASE.sub(" ", text).split())


def remove_codebase_mention(text: str) -> str:
    """``text`` without its ``@codebase`` mentions (and the blank after each)."""
    out: list[str] = []
    pos = 0
    for m in _CODEBASE.finditer(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        if text[pos : pos + 1] == " ":
            pos += 1
    out.append(text[pos:])
    return "".join(out)


def codebase_sources(
    hits: Iterable[CodeHit],
    language_of: Callable[[str], str] | None = None,
) -> list[ContextSource]:
    """The context sources of search hits, best first; ``language_of(path)`` names each hit's
    language (for the code fence)."""
    out = []
    for hit in hits:
        if not hit.text.strip():
            continue
        language = language_of(hit.path) if language_of is not None else ""
        text = hit.text.replace("\r\n", "\n").rstrip("\n")
        out.append(
            ContextSource(
                SourceKind.CODEBASE, hit.path, text, language, start_line=max(1, hit.start_line)
            )
        )
    return out


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
    while len(kept) > 1 and kept[0].role != Role.USER:
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
        if stripped == CODEBASE_MENTION:  # "@codebase" is a search, not a file
            continue
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
        out.append(text[pos : mention.start])
        pos = mention.end
        if text[pos : pos + 1] == " ":
            pos += 1
    out.append(text[pos:])
    return "".join(out)
