"""Markdown of a chat reply, split so a streaming reply re-renders only its last part.

A reply is cut into *segments*: prose (rendered to HTML by markdown-it-py, shown in a label)
and fenced code blocks (shown in a read-only ``CodeEditor`` with the editor's own highlighting).
Prose is also cut at paragraph starts (a non-indented, non-list line after a blank line), so
only the last paragraph or code block changes while a reply streams: every flush re-scans and
re-renders that tail, never the whole reply. ``StreamSegmenter.rendered_chars`` counts the
characters re-scanned by the last update, which the tests bound.

The split is line based and follows CommonMark's fence rules (up to three spaces of indent,
three or more backticks or tildes, a closing fence of the same character at least as long);
an unclosed fence runs to the end of the reply, as in CommonMark. A fence indented four or more
spaces (inside a list item) stays in the prose and renders as a plain ``<pre>``.

Names are shown as written, not as emphasis: the path of a ``FILE:`` / ``NEW FILE:`` /
``DELETE FILE:`` header line becomes a code span (``FILE: httpx/__init__.py`` would otherwise
render "httpx/**init**.py"), and in running text a word that is a path or a module
(``pkg/_x.py``, ``a.__init__``) or a dunder name (``__init__``) keeps its underscores (an
inline rule before markdown-it's emphasis). ``__bold words__`` and ``_italic_`` still work.

Nothing here imports Qt: the widgets are in ``chat_view``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from forecode_core.edits.answer import FILE_HEADER
from forecode_core.text.languages import PLAIN_TEXT, Language, by_id, language_for_path

if TYPE_CHECKING:  # imported by the first reply rendered, not at start-up (issue 18)
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline

__all__ = [
    "Segment",
    "SegmentKind",
    "StreamSegmenter",
    "fence_language",
    "render_markdown",
    "segments_of",
]

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
_NAME_CHAR = re.compile(r"[\w./-]")
_DUNDER = re.compile(r"__\w+?__")
# What a model writes after ``` for languages whose id or extension differs.
_ALIASES = {
    "py": "python",
    "python3": "python",
    "js": "javascript",
    "jsx": "javascript",
    "node": "javascript",
    "ts": "typescript",
    "tsx": "typescript",
    "sh": "shell",
    "bash": "shell",
    "zsh": "shell",
    "console": "shell",
    "shell-session": "shell",
    "c++": "cpp",
    "cxx": "cpp",
    "hpp": "cpp",
    "h": "c",
    "rs": "rust",
    "golang": "go",
    "yml": "yaml",
    "md": "markdown",
    "htm": "html",
    "svg": "xml",
    "make": "makefile",
    "patch": "diff",
    "jsonc": "json",
    "json5": "json",
    "properties": "ini",
    "toml": "toml",
}


class SegmentKind(StrEnum):
    MARKDOWN = "markdown"  # prose, rendered as rich text
    CODE = "code"  # a fenced code block


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    text: str  # the markdown source, or the code inside the fence (no fence lines)
    info: str = ""  # a code block's info string ("python", "python app/x.py", ...)
    closed: bool = False  # no later text can change this segment
    start: int = 0  # offsets of the segment's source in the reply (fence lines included)
    end: int = 0


def _closes(line: str, char: str, length: int) -> bool:
    stripped = line.strip()
    indent = len(line) - len(line.lstrip(" "))
    return indent <= 3 and len(stripped) >= length and set(stripped) == {char}


def _paragraph_start(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not _LIST_ITEM.match(line)


def _scan(text: str, base: int, final: bool) -> list[Segment]:
    """Segments of ``text`` (which starts at offset ``base`` of the reply). Only complete
    lines open or close fences; with ``final`` the text is complete (its last line too) and
    every segment closed."""
    segments: list[Segment] = []
    lines = text.split("\n")
    complete = len(lines) - 1  # the last element is a partial line (possibly empty)
    kind = SegmentKind.MARKDOWN  # the scanner's mode: in prose or inside a fence
    seg_start = 0  # offset in text
    body: list[str] = []
    fence_char, fence_len, info = "", 0, ""
    pos = 0
    prev_blank = False
    for i, line in enumerate(lines):
        # A final text's last line is complete too (a closing fence with no newline after it).
        is_complete = i < complete or (final and bool(line))
        line_end = pos + len(line) + (1 if i < complete else 0)
        if kind is SegmentKind.MARKDOWN:
            opener = _FENCE_OPEN.match(line) if is_complete else None
            if opener and not (opener.group(1)[0] == "`" and "`" in opener.group(2)):
                if any(b.strip() for b in body):
                    segments.append(
                        Segment(
                            SegmentKind.MARKDOWN,
                            "\n".join(body).strip("\n"),
                            "",
                            True,
                            base + seg_start,
                            base + pos,
                        )
                    )
                kind, fence_char, fence_len = (
                    SegmentKind.CODE,
                    opener.group(1)[0],
                    len(opener.group(1)),
                )
                info, body, seg_start = opener.group(2).strip(), [], pos
            elif (
                is_complete
                and prev_blank
                and _paragraph_start(line)
                and any(b.strip() for b in body)
            ):
                segments.append(
                    Segment(
                        SegmentKind.MARKDOWN,
                        "\n".join(body).strip("\n"),
                        "",
                        True,
                        base + seg_start,
                        base + pos,
                    )
                )
                body, seg_start = [line], pos
            else:
                if not body:
                    seg_start = pos
                body.append(line)
            prev_blank = is_complete and not line.strip()
        else:
            if is_complete and _closes(line, fence_char, fence_len):
                segments.append(
                    Segment(
                        SegmentKind.CODE,
                        "\n".join(body),
                        info,
                        True,
                        base + seg_start,
                        base + line_end,
                    )
                )
                kind, body, seg_start, prev_blank = SegmentKind.MARKDOWN, [], line_end, False
            else:
                body.append(line)
        pos = line_end
    if kind is SegmentKind.CODE:
        code = "\n".join(body)
        if final and code.endswith("\n"):
            code = code[:-1]
        segments.append(
            Segment(SegmentKind.CODE, code, info, final, base + seg_start, base + len(text))
        )
    elif any(b.strip() for b in body):
        segments.append(
            Segment(
                SegmentKind.MARKDOWN,
                "\n".join(body).strip("\n"),
                "",
                final,
                base + seg_start,
                base + len(text),
            )
        )
    return segments


def segments_of(text: str) -> list[Segment]:
    """The segments of a complete reply (all closed)."""
    return _scan(text, 0, True)


class StreamSegmenter:
    """The segments of a reply that grows at its end.

    ``update(text)`` re-scans from the start of the last open segment only and returns the
    index of the first segment that changed; segments before it are unchanged objects.
    """

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.rendered_chars = 0
        self._text = ""

    def update(self, text: str, *, final: bool = False) -> int:
        if not text.startswith(self._text):  # not an extension: start over
            self.segments, self._text = [], ""
        keep = len(self.segments)
        while keep and not self.segments[keep - 1].closed:
            keep -= 1
        base = self.segments[keep - 1].end if keep else 0
        fresh = _scan(text[base:], base, final)
        self.rendered_chars = len(text) - base
        old_tail = self.segments[keep:]
        self.segments = self.segments[:keep] + fresh
        self._text = text
        first = keep
        for old, new in zip(old_tail, fresh, strict=False):
            if old != new:
                break
            first += 1
        return first


_MD: MarkdownIt | None = None


def _markdown() -> MarkdownIt:
    global _MD
    if _MD is None:
        from markdown_it import MarkdownIt

        # No raw HTML: a reply is untrusted text. Tables and ~~strike~~ as models write them.
        _MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
        _MD.inline.ruler.before("emphasis", "literal_names", _literal_name)
    return _MD


def _is_literal_name(word: str) -> bool:
    """A path, a dotted name or a dunder name: its underscores are never emphasis."""
    if "_" not in word:
        return False
    inner = word.strip("./-")
    return "/" in inner or "." in inner or bool(_DUNDER.fullmatch(inner))


def _literal_name(state: StateInline, silent: bool) -> bool:
    """At an ``_`` inside a word of ``_is_literal_name``: the rest of the word as text."""
    src, pos = state.src, state.pos
    if src[pos] != "_":
        return False
    start = pos
    while start > 0 and _NAME_CHAR.match(src[start - 1]):
        start -= 1
    end = pos
    while end < state.posMax and _NAME_CHAR.match(src[end]):
        end += 1
    if not _is_literal_name(src[start:end]):
        return False
    if not silent:
        state.push("text", "", 0).content = src[pos:end]
    state.pos = end
    return True


def _code_span(text: str) -> str:
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _header_as_code(line: str) -> str:
    """A ``FILE:`` header line with its path as a code span (the line itself otherwise).
    The path is all after the colon (the header's ``__`` decoration would eat the start of
    ``__init__.py``), less ``**`` around it and quotes."""
    header = FILE_HEADER.match(line)
    if header is None or line.startswith(("    ", "\t")):
        return line
    colon = line.index(":", header.end(1)) + 1
    raw = line[colon:].rstrip()
    body = raw.lstrip(" *")
    opening = raw[: len(raw) - len(body)]
    closing = body[len(body.rstrip("*")) :]
    path = body[: len(body) - len(closing)].strip().strip("`\"'")
    if not path or any(c.isspace() or c == "`" for c in path):
        return line  # prose ("Edit: see below"), not a path
    if "file" not in header.group(1).lower() and not ("/" in path or "." in path):
        return line  # "Edit: done" is prose; "Edit: app.py" a header
    return line[:colon] + opening + _code_span(path) + closing


def render_markdown(source: str) -> str:
    """HTML for a prose segment (Qt's rich-text subset renders it)."""
    if ":" in source:
        source = "\n".join(_header_as_code(line) for line in source.split("\n"))
    return str(_markdown().render(source))


@cache
def fence_language(info: str) -> tuple[Language, str]:
    """The language and path hint of a fence's info string: ``python``, ``py``,
    ``python app/x.py``, ``app/x.py``, ``python path=app/x.py`` or ``py title="x.py"``."""
    words = info.replace("{", " ").replace("}", " ").split()
    language: Language | None = None
    path = ""
    for word in words:
        value = word.split("=", 1)[1].strip("\"'") if "=" in word else word
        if "=" in word and word.split("=", 1)[0] not in ("path", "file", "filename", "title"):
            continue
        looks_like_path = "/" in value or "." in value.strip(".")
        if language is None and "=" not in word and not looks_like_path:
            lowered = value.lower().lstrip(".")  # pandoc's {.python}
            try:
                language = by_id(_ALIASES.get(lowered, lowered))
                continue
            except KeyError:
                guess = language_for_path(f"x.{lowered}")
                if guess is not PLAIN_TEXT:
                    language = guess
                    continue
        if not path and looks_like_path:
            path = value
    if language is None:
        language = language_for_path(path) if path else PLAIN_TEXT
    return language, path
