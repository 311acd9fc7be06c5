"""Find in files: the search logic behind the Search panel (Ctrl+Shift+F), pure (no process,
no Qt): ``app.services.find_in_files`` runs it in a worker process and streams its results.

What a search is
    ``SearchQuery``: a literal or a Python regular expression (``re``), match case, whole word,
    include and exclude globs (comma-separated, VS Code style), a cap on matches (20,000) and on
    file size (huge files are skipped and counted). A regex is matched against each line: no
    match contains a line break, ``^`` and ``$`` are the line's ends, whatever the file's line
    endings (LF, CRLF, CR). ``compile_query`` turns a query into a compiled pattern or a
    ``QueryError`` with a message for the user.

Which files
    The workspace's one walker (``forecode_core.workspace.walk``) honours ``.gitignore``
    (``IgnoreRules``) and the user's ``files.exclude``; exclude globs prune folders too.
    Binary files (a NUL in the first 8 KiB, unless a UTF-16/32 byte order mark says otherwise)
    and files above ``max_file_bytes`` are skipped and counted. Text is decoded as the editor
    reads it (``textfile.decode_bytes``: byte order marks, coding declarations,
    UTF-8, legacy 8-bit encodings), so a legacy file is searchable and can be written back byte
    for byte; a file the editor opens read-only is searched but never rewritten.

Globs (``GlobSet``) are matched by a lazily built DFA over the glob's NFA: linear in the path,
never backtracking, whatever the user types (``a*a*a*a*a*b`` included).

Replacing
    Each match carries its replacement (computed in the worker, where the regex runs) and its
    place as (line, start column, end column) in the line's text; the file record carries the
    digest of what was searched. ``replace_in_file`` re-reads a closed file, refuses it when its
    bytes changed since the search, splices the ticked matches into the decoded text (line
    endings untouched), encodes it in the file's own encoding, checks that the original text
    encodes back to the original bytes (so everything outside the changes stays byte-exact),
    and writes it atomically. Open documents are edited in their buffers by the UI.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Final

from forecode_core.store.atomic import atomic_write
from forecode_core.text.textfile import (
    EDITABLE_ENCODINGS,
    decode_bytes,
    encode_text,
)
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.walk import walk_files

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_RESULTS",
    "Edit",
    "FileResult",
    "GlobSet",
    "LineResult",
    "Match",
    "QueryError",
    "ReplaceOutcome",
    "ReplaceStatus",
    "SearchItem",
    "SearchQuery",
    "SearchRequest",
    "SearchSummary",
    "apply_edits",
    "compile_query",
    "decode_for_search",
    "digest_bytes",
    "digest_text",
    "expand_replacement",
    "parse_globs",
    "replace_in_file",
    "search_text",
    "search_tree",
]

DEFAULT_MAX_RESULTS: Final = 20_000
DEFAULT_MAX_FILE_BYTES: Final = 4 * 1024 * 1024
PREVIEW_CHARS: Final = 240
"""A line longer than this is shown as a window around its first match."""
_PREVIEW_LEAD: Final = 40
_MAX_BRACE_ALTERNATIVES: Final = 256
_DFA_CACHE_LIMIT: Final = 20_000


class QueryError(ValueError):
    """A query that cannot run (a bad regex, a bad glob); the message is for the user."""


class SearchItem(StrEnum):
    """What a line from the search worker is (its JSON's ``"t"``) and what a search session
    hands on: a file's results, a progress summary, the final summary."""

    FILE = "file"
    PROGRESS = "progress"
    DONE = "done"


class ReplaceStatus(StrEnum):
    """What replacing in one file did (``ReplaceOutcome.status``)."""

    WRITTEN = "written"  # the closed file was rewritten
    BUFFER = "buffer"  # the open document's text was replaced (the editor does this)
    CHANGED = "changed"  # changed since the search: skipped
    FAILED = "failed"

    @property
    def replaced(self) -> bool:
        """The file's text now has the replacements."""
        return self in (ReplaceStatus.WRITTEN, ReplaceStatus.BUFFER)


# ----- globs ---------------------------------------------------------------------------------

# NFA token kinds
_LIT, _ANY, _CLS, _STAR, _GSTAR, _ACCEPT = range(6)
_Token = tuple[int, Any, int]  # (kind, argument, epsilon skip target or -1)


def _expand_braces(glob: str) -> list[str]:
    """``a{b,c}d`` -> ``abd``, ``acd`` (nested braces too), at most 256 alternatives."""
    depth = 0
    start = -1
    for i, ch in enumerate(glob):
        if ch == "\\":
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = glob[start + 1 : i]
                parts: list[str] = []
                level, last = 0, 0
                for j, c in enumerate(inner):
                    if c == "{":
                        level += 1
                    elif c == "}":
                        level -= 1
                    elif c == "," and level == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                out: list[str] = []
                for part in parts:
                    for tail in _expand_braces(part + glob[i + 1 :]):
                        out.append(glob[:start] + tail)
                        if len(out) > _MAX_BRACE_ALTERNATIVES:
                            raise QueryError(f"The glob {glob!r} has too many {{…}} alternatives.")
                return out
    return [glob]


def _class_matcher(body: str) -> tuple[bool, tuple[tuple[str, str], ...]]:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        lo = body[i]
        if i + 2 < len(body) and body[i + 1] == "-":
            ranges.append((lo, body[i + 2]))
            i += 3
        else:
            ranges.append((lo, lo))
            i += 1
    return negate, tuple(ranges)


def _tokenize(glob: str, base: int) -> list[_Token]:
    """One glob alternative as NFA tokens; positions are offset by ``base``."""
    tokens: list[_Token] = []
    i, n = 0, len(glob)
    while i < n:
        ch = glob[i]
        pos = base + len(tokens)
        if ch == "*":
            if glob.startswith("**", i) and (i == 0 or glob[i - 1] == "/"):
                j = i + 2
                while j < n and glob[j] == "*":
                    j += 1
                if j < n and glob[j] == "/":
                    # "**/": any number of whole folders, or none (skip the "/" too)
                    tokens.append((_GSTAR, None, pos + 2))
                    tokens.append((_LIT, "/", -1))
                    i = j + 1
                    continue
                if j == n:
                    tokens.append((_GSTAR, None, -1))
                    i = j
                    continue
            while i < n and glob[i] == "*":
                i += 1
            tokens.append((_STAR, None, -1))
            continue
        if ch == "?":
            tokens.append((_ANY, None, -1))
        elif ch == "[":
            close = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "^", "]") else i + 1)
            if close < 0:
                tokens.append((_LIT, "[", -1))
            else:
                tokens.append((_CLS, _class_matcher(glob[i + 1 : close]), -1))
                i = close
        elif ch == "\\" and i + 1 < n:
            i += 1
            tokens.append((_LIT, glob[i], -1))
        else:
            tokens.append((_LIT, ch, -1))
        i += 1
    return tokens


def parse_globs(text: str) -> list[str]:
    """A comma-separated glob list as the user typed it -> the globs (blank ones dropped).
    Commas inside ``{…}`` belong to the glob."""
    out: list[str] = []
    depth, last = 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[last:i])
            last = i + 1
    out.append(text[last:])
    return [g.strip() for g in out if g.strip()]


def _normalise_glob(glob: str) -> str:
    glob = glob.strip().replace("\\", "/") if os.sep == "\\" else glob.strip()
    if glob.startswith("./"):
        return glob[2:].rstrip("/")
    if glob.startswith("/"):
        return glob[1:].rstrip("/")
    glob = glob.rstrip("/")
    if "/" not in glob and not glob.startswith("**"):
        return "**/" + glob  # a bare name or pattern matches at any depth
    return glob


class GlobSet:
    """A set of globs matched against workspace-relative POSIX paths, VS Code style.

    ``*`` and ``?`` stay within one path segment, ``**`` crosses them, ``[a-z]``/``[!a]``
    classes, ``{a,b}`` alternatives. A glob without ``/`` matches at any depth; one with a
    ``/`` is relative to the folder (a leading ``/`` or ``./`` is allowed). A glob that matches
    a folder matches everything in it (``build``, ``src/vendor``).

    Matching walks the path once through a DFA built lazily from the globs' NFA (cached per
    state, bounded), so its cost is linear in the path whatever the globs are.
    """

    def __init__(self, globs: Sequence[str]) -> None:
        self.globs = tuple(globs)
        tokens: list[_Token] = []
        starts: list[int] = []
        for glob in globs:
            if len(glob) > 1000:
                raise QueryError("A glob may have at most 1,000 characters.")
            for alternative in _expand_braces(_normalise_glob(glob)):
                starts.append(len(tokens))
                tokens.extend(_tokenize(alternative, len(tokens)))
                tokens.append((_ACCEPT, None, -1))
        self._tokens = tokens
        self._ids: dict[frozenset[int], int] = {}
        self._states: list[frozenset[int]] = []
        self._accepting: list[bool] = []
        self._next: dict[tuple[int, str], int] = {}
        start = self._state_id(self._closure(starts))
        assert start is not None
        self._start = start

    def __bool__(self) -> bool:
        return bool(self.globs)

    def _closure(self, positions: Sequence[int] | set[int]) -> frozenset[int]:
        tokens = self._tokens
        seen: set[int] = set()
        stack = list(positions)
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            kind, _arg, skip = tokens[i]
            if kind in (_STAR, _GSTAR):
                stack.append(i + 1)
            if skip >= 0:
                stack.append(skip)
        return frozenset(seen)

    def _state_id(self, state: frozenset[int]) -> int | None:
        """The DFA state's id; None once the cache is full (the caller then steps the NFA
        without caching: still linear in the path)."""
        found = self._ids.get(state)
        if found is not None:
            return found
        if len(self._states) >= _DFA_CACHE_LIMIT:
            return None
        self._ids[state] = len(self._states)
        self._states.append(state)
        self._accepting.append(any(self._tokens[i][0] == _ACCEPT for i in state))
        return len(self._states) - 1

    def _is_accepting(self, state: frozenset[int]) -> bool:
        return any(self._tokens[i][0] == _ACCEPT for i in state)

    def _step(self, state: frozenset[int], ch: str) -> frozenset[int]:
        nxt: set[int] = set()
        slash = ch == "/"
        for i in state:
            kind, arg, _skip = self._tokens[i]
            if kind == _LIT:
                if arg == ch:
                    nxt.add(i + 1)
            elif kind == _ANY:
                if not slash:
                    nxt.add(i + 1)
            elif kind == _CLS:
                negate, ranges = arg
                if not slash and any(lo <= ch <= hi for lo, hi in ranges) != negate:
                    nxt.add(i + 1)
            elif kind == _STAR:
                if not slash:
                    nxt.add(i)
            elif kind == _GSTAR:
                nxt.add(i)
        return self._closure(nxt)

    def match(self, path: str) -> bool:
        """True when a glob matches ``path`` or one of its folders."""
        if not self.globs:
            return False
        sid: int | None = self._start
        state = self._states[self._start]
        for ch in path:
            if sid is not None:
                if ch == "/" and self._accepting[sid]:
                    return True
                nid = self._next.get((sid, ch))
                if nid is not None:
                    sid, state = nid, self._states[nid]
                    continue
            elif ch == "/" and self._is_accepting(state):
                return True
            state = self._step(state, ch)
            if not state:
                return False
            nid = self._state_id(state)
            if sid is not None and nid is not None:
                self._next[(sid, ch)] = nid
            sid = nid
        return self._accepting[sid] if sid is not None else self._is_accepting(state)


# ----- queries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    pattern: str
    regex: bool = False
    match_case: bool = False
    whole_word: bool = False
    include: str = ""
    exclude: str = ""
    replacement: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


# Constructs whose meaning differs when the regex can see past the line it matches in: with
# them every line is matched on its own (slower); without them one pass over the whole text
# finds the lines that can match.
_CONTEXT_SENSITIVE = ("(?=", "(?!", "(?<", "\\A", "\\Z", "(?>", "*+", "++", "?+", "}+")


@dataclass(frozen=True)
class _Compiled:
    pattern: re.Pattern[str]
    per_line_only: bool
    template: str | None  # for Match.expand (regex mode) or a literal replacement
    literal_replacement: bool


def _convert_template(template: str) -> str:
    """VS Code's ``$1``/``${1}``/``$&``/``$0``/``$$`` in a regex replacement, beside Python's
    ``\\1``/``\\g<name>`` (which ``Match.expand`` understands)."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch == "\\" and i + 1 < n:
            out.append(template[i : i + 2])
            i += 2
            continue
        if ch == "$" and i + 1 < n:
            nxt = template[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "&":
                out.append("\\g<0>")
                i += 2
                continue
            m = re.match(r"\{(\w+)\}|(\d{1,2})", template[i + 1 :])
            if m:
                out.append(f"\\g<{m.group(1) or m.group(2)}>")
                i += 1 + m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def compile_query(query: SearchQuery) -> _Compiled:
    """Compile ``query``'s pattern (and replacement) or raise ``QueryError``."""
    if not query.pattern:
        raise QueryError("Type something to search for.")
    if len(query.pattern) > 10_000:
        raise QueryError("The search text may have at most 10,000 characters.")
    source = query.pattern if query.regex else re.escape(query.pattern)
    if query.whole_word:
        source = rf"(?<!\w)(?:{source})(?!\w)"
    flags = re.MULTILINE | (0 if query.match_case else re.IGNORECASE)
    try:
        pattern = re.compile(source, flags)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise QueryError(f"Invalid regular expression{where}: {exc.msg}.") from exc
    except (OverflowError, RecursionError) as exc:
        raise QueryError("The regular expression is too complex.") from exc
    per_line = query.regex and any(token in query.pattern for token in _CONTEXT_SENSITIVE)
    template: str | None = None
    literal = not query.regex
    if query.replacement is not None:
        template = query.replacement if literal else _convert_template(query.replacement)
        if not literal:
            try:
                pattern.sub(template, "")  # checks its syntax and its group references
            except (re.error, IndexError) as exc:
                raise QueryError(f"Invalid replacement: {exc}.") from exc
    return _Compiled(pattern, per_line, template, literal)


def expand_replacement(compiled: _Compiled, match: re.Match[str]) -> str:
    if compiled.template is None:
        return ""
    if compiled.literal_replacement:
        return compiled.template
    return match.expand(compiled.template)


# ----- matching text ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    start: int  # column (characters) in the line's text
    end: int
    replacement: str | None = None


@dataclass(frozen=True)
class LineResult:
    line: int  # 1-based
    preview: str  # the line's text, or a window of it (see ``preview_offset``)
    preview_offset: int  # column of preview[0] in the line
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class FileResult:
    path: str  # POSIX, relative to the searched folder
    lines: tuple[LineResult, ...]
    digest: str  # of the bytes searched (or of an open buffer's text)
    encoding: str
    buffer: bool = False

    @property
    def match_count(self) -> int:
        return sum(len(line.matches) for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "t": SearchItem.FILE,
            "path": self.path,
            "digest": self.digest,
            "encoding": self.encoding,
            "buffer": self.buffer,
            "lines": [
                [
                    ln.line,
                    ln.preview,
                    ln.preview_offset,
                    [[m.start, m.end, m.replacement] for m in ln.matches],
                ]
                for ln in self.lines
            ],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FileResult:
        lines = tuple(
            LineResult(
                int(line),
                str(preview),
                int(offset),
                tuple(Match(int(s), int(e), None if r is None else str(r)) for s, e, r in matches),
            )
            for line, preview, offset, matches in obj["lines"]
        )
        return cls(
            str(obj["path"]),
            lines,
            str(obj["digest"]),
            str(obj["encoding"]),
            bool(obj.get("buffer", False)),
        )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _normalise_breaks(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _preview(line: str, first: int) -> tuple[str, int]:
    if len(line) <= PREVIEW_CHARS:
        return line, 0
    start = max(0, first - _PREVIEW_LEAD)
    return line[start : start + PREVIEW_CHARS], start


def _line_starts(norm: str) -> list[int]:
    starts = [0]
    total = 0
    for piece in norm.split("\n")[:-1]:
        total += len(piece) + 1
        starts.append(total)
    return starts


def search_text(text: str, compiled: _Compiled, limit: int) -> tuple[list[LineResult], int]:
    """The matching lines of ``text`` (any line endings) and their match count (at most
    ``limit`` matches). Each match lies within one line.

    One pass of the pattern over the whole text finds the matches; lines are located only
    around them. When a match spans a line break (or the pattern looks past its line:
    lookarounds, anchors of the whole text), matching goes on line by line from there, so a
    match never crosses a line and ``^``/``$`` are the line's ends."""
    norm = _normalise_breaks(text)
    pattern = compiled.pattern
    found: dict[int, tuple[int, list[Match]]] = {}  # line index -> (line start, matches)
    count = 0
    with_replacement = compiled.template is not None

    def add(line: int, line_start: int, m: re.Match[str]) -> None:
        nonlocal count
        repl = expand_replacement(compiled, m) if with_replacement else None
        entry = found.get(line)
        if entry is None:
            entry = found[line] = (line_start, [])
        entry[1].append(Match(m.start() - line_start, m.end() - line_start, repl))
        count += 1

    def per_line(first_line: int) -> None:
        starts = _line_starts(norm)
        for line in range(first_line, len(starts)):
            begin = starts[line]
            end = starts[line + 1] - 1 if line + 1 < len(starts) else len(norm)
            for m in pattern.finditer(norm, begin, end):
                add(line, begin, m)
                if count >= limit:
                    return

    if compiled.per_line_only:
        per_line(0)
    else:
        line, counted_to, line_start = 0, 0, 0
        for m in pattern.finditer(norm):
            start, end = m.span()
            line += norm.count("\n", counted_to, start)
            counted_to = start
            if norm.find("\n", start, end) >= 0:
                # a match across lines: from its first line on, match line by line
                for stale in [k for k in found if k >= line]:
                    count -= len(found.pop(stale)[1])
                per_line(line)
                break
            if line not in found:
                line_start = norm.rfind("\n", 0, start) + 1
            add(line, line_start, m)
            if count >= limit:
                break
    results: list[LineResult] = []
    for line in sorted(found):
        begin, matches = found[line]
        end = norm.find("\n", begin)
        text_line = norm[begin : end if end >= 0 else len(norm)]
        preview, offset = _preview(text_line, matches[0].start)
        results.append(LineResult(line + 1, preview, offset, tuple(matches)))
    return results, count


# ----- files -----------------------------------------------------------------------------------


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def digest_text(text: str) -> str:
    return digest_bytes(text.encode("utf-8", "surrogatepass"))


_BOMS: Final = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")  # UTF-8/16/32
_SNIFF: Final = 8192


def decode_for_search(data: bytes) -> tuple[str, str] | None:
    """``(text, encoding)`` for a file's bytes as the editor reads them
    (``textfile.decode_bytes``: byte order marks, coding declarations, UTF-8, legacy 8-bit
    encodings), or None for a binary file. A file the editor opens read-only (damaged UTF-8)
    is still searched, in the text the editor shows; its ``encoding`` is then a read-only label
    that ``replace_in_file`` refuses."""
    if not data.startswith(_BOMS):
        if b"\x00" in data[:_SNIFF]:
            return None  # binary (git's rule; decode_bytes would decode it all to say so)
        if b"coding" not in data[:2048]:  # no declaration: UTF-8 when valid, as decode_bytes
            try:
                return data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                pass
    decoded = decode_bytes(data)
    if decoded.binary:
        return None
    return decoded.text, decoded.encoding


def _encode(text: str, encoding: str) -> bytes:
    if encoding not in EDITABLE_ENCODINGS:
        raise ValueError(f"opens read-only in the editor ({encoding}) and is never rewritten")
    return encode_text(text, encoding)


@dataclass(frozen=True)
class SearchRequest:
    root: str
    query: SearchQuery
    extra_patterns: tuple[str, ...] = ()
    buffers: Mapping[str, str] = field(default_factory=dict)  # open documents: rel path -> text

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "query": asdict(self.query),
            "extra_patterns": list(self.extra_patterns),
            "buffers": dict(self.buffers),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SearchRequest:
        return cls(
            str(obj["root"]),
            SearchQuery(**obj["query"]),
            tuple(obj.get("extra_patterns", ())),
            dict(obj.get("buffers", {})),
        )


@dataclass
class SearchSummary:
    files_searched: int = 0
    files_matched: int = 0
    matches: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_unreadable: int = 0
    capped: bool = False
    cancelled: bool = False
    elapsed_s: float = 0.0
    first_result_s: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"t": SearchItem.DONE, **asdict(self)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SearchSummary:
        fields = {k: v for k, v in obj.items() if k != "t"}
        return cls(**fields)


def _read_at_most(path: str, limit: int) -> bytes | None:
    """The file's bytes, or None when it has more than ``limit`` (not read)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            return None
        chunks: list[bytes] = []
        total = 0
        while True:
            # the size from fstat (+1 to see the end at once); a file growing meanwhile is read
            # on in 64 KiB pieces up to the limit (never a buffer of the limit's size)
            chunk = os.read(fd, size + 1 if not chunks else 65536)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                return None
        return b"".join(chunks)
    finally:
        os.close(fd)


def search_tree(
    request: SearchRequest,
    emit: Callable[[FileResult], None],
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[SearchSummary], None] | None = None,
) -> SearchSummary:
    """Search the folder ``request.root``; ``emit`` gets each file with matches, in walk order.
    Runs in the calling thread (the worker process's); raises ``QueryError`` for a bad query."""
    started = time.monotonic()
    query = request.query
    compiled = compile_query(query)
    include = GlobSet(parse_globs(query.include))
    exclude = GlobSet(parse_globs(query.exclude))
    root = os.path.abspath(request.root)
    rules = IgnoreRules.for_folder(root, request.extra_patterns)
    summary = SearchSummary()
    buffers = request.buffers
    last_progress = started
    # The workspace's walk: a folder's files (by name) before its subfolders; ignored and
    # excluded folders are never entered; symlinked folders are not followed.
    skip = exclude.match if exclude else None
    for rel, _entry in walk_files(root, rules, skip=skip, should_stop=should_stop):
        if should_stop():
            summary.cancelled = True
            break
        if include and not include.match(rel):
            continue
        remaining = query.max_results - summary.matches
        buffer_text = buffers.get(rel)
        data: bytes | None = None
        if buffer_text is not None:
            text, encoding, digest = buffer_text, "buffer", digest_text(buffer_text)
        else:
            try:
                data = _read_at_most(os.path.join(root, rel), query.max_file_bytes)
            except OSError:
                summary.skipped_unreadable += 1
                continue
            if data is None:
                summary.skipped_large += 1
                continue
            decoded = decode_for_search(data)
            if decoded is None:
                summary.skipped_binary += 1
                continue
            text, encoding = decoded
            digest = ""
        summary.files_searched += 1
        lines, count = search_text(text, compiled, remaining)
        if count:
            if data is not None:
                digest = digest_bytes(data)
            summary.matches += count
            summary.files_matched += 1
            if summary.first_result_s is None:
                summary.first_result_s = time.monotonic() - started
            emit(FileResult(rel, tuple(lines), digest, encoding, buffer_text is not None))
            if summary.matches >= query.max_results:
                summary.capped = True
                break
        now = time.monotonic()
        if progress is not None and now - last_progress > 0.1:
            last_progress = now
            summary.elapsed_s = now - started
            progress(summary)
    summary.elapsed_s = time.monotonic() - started
    return summary


# ----- replacing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    line: int  # 1-based
    start: int  # columns in the line's text
    end: int
    text: str


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with ``edits`` spliced in; its line endings (any mix) are kept. Raises
    ``ValueError`` when an edit does not fit the text (overlapping, past a line's end)."""
    if not edits:
        return text
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
    ends = [m.start() for m in _LINE_BREAK.finditer(text)] + [len(text)]
    pieces: list[str] = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.line, e.start, e.end)):
        index = edit.line - 1
        if not 0 <= index < len(starts):
            raise ValueError(f"line {edit.line} is past the end of the text")
        begin = starts[index] + edit.start
        end = starts[index] + edit.end
        if not (starts[index] <= begin <= end <= ends[index]) or begin < pos:
            raise ValueError(f"a change on line {edit.line} does not fit the text")
        pieces.append(text[pos:begin])
        pieces.append(edit.text)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


@dataclass(frozen=True)
class ReplaceOutcome:
    path: str
    status: ReplaceStatus
    replaced: int = 0
    message: str = ""


def replace_in_file(
    path: str | os.PathLike[str], digest: str, edits: Sequence[Edit]
) -> ReplaceOutcome:
    """Apply ``edits`` to the closed file at ``path`` if its bytes still have ``digest`` (what
    the search read); written atomically in the file's own encoding, byte-exact outside the
    edits."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return ReplaceOutcome(
            name, ReplaceStatus.FAILED, 0, f"cannot be read: {exc.strerror or exc}"
        )
    if digest_bytes(data) != digest:
        return ReplaceOutcome(name, ReplaceStatus.CHANGED, 0, "changed on disk since the search")
    decoded = decode_for_search(data)
    if decoded is None:
        return ReplaceOutcome(name, ReplaceStatus.FAILED, 0, "is binary")
    text, encoding = decoded
    try:
        if _encode(text, encoding) != data:
            return ReplaceOutcome(
                name, ReplaceStatus.FAILED, 0, f"cannot be written back exactly in {encoding}"
            )
        new = _encode(apply_edits(text, edits), encoding)
        atomic_write(path, new)
    except ValueError as exc:
        return ReplaceOutcome(name, ReplaceStatus.FAILED, 0, str(exc))
    except OSError as exc:
        return ReplaceOutcome(
            name, ReplaceStatus.FAILED, 0, f"cannot be written: {exc.strerror or exc}"
        )
    return ReplaceOutcome(name, ReplaceStatus.WRITTEN, len(edits))
