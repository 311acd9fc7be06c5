"""Apply a model-written code block to a file: the pure part (no Qt, no llama.cpp, no gRPC).

A chat model answers "change X" with a *code block*, not a file: unchanged parts are left out
behind elision comments (``# ... existing code ...``), a method comes without its class, new
imports come alone, several places are touched in one block. This module turns such a block
into the complete new file when that can be done without guessing, checks any result (this
one or a model's) for code it removes that the block does not account for, and renders the
prompt of the model path that handles the rest.

Parsing (``parse_block``)
-------------------------
The block (a code fence around it is dropped) is split at its *elision lines* into
*segments*. An elision line is a comment in any common syntax (``#``, ``//``, ``--``, ``;``,
``%``, ``/* */``, ``<!-- -->``, ``{/* */}``, ``(* *)``, ``{- -}``) whose text starts or ends
with an ellipsis (``...`` or ``…``) or is one of the phrases models write ("existing code",
"rest of the file unchanged", "keep existing imports", "unchanged", ...; ``_ELISION_PHRASES``),
or a bare ``...`` / ``…`` / ``[...]`` line. Blank lines next to an elision or at the block's ends
are not part of a segment (the elision stands for the file's own blank lines).

The deterministic path (``apply_deterministic``)
------------------------------------------------
Each segment replaces one contiguous region of the original; everything outside the regions
(under the elisions, and before the first and after the last segment) is kept byte for byte.

1. *Anchors*: a segment line anchors on an original line when its whitespace-normalised text
   occurs exactly once in the segment's window and once in the segment; when it occurs several
   times, the exact text (after the segment's re-indentation) must occur once. Failing both, a
   definition header (``def``/``function``/``fn``/``class``... with a name) anchors on the one
   definition of that name (and kind, then indentation) in the window: a changed signature.
   Windows narrow as neighbouring segments anchor (segments are in file order), and to a
   header's body when the previous segment shows the header and the elision and segment after
   it are indented into it. Anchors must be in order, and consecutive anchors may not skip
   more than ``MAX_UNMARKED_DROP`` lines the block does not show. Lines too common to anchor
   on (``else:``, ``return``, ``}``...) and lines inside triple-quoted strings never anchor as
   headers.
2. *Indentation*: the anchors give the segment's re-indentation: unchanged, a prefix added or
   removed (a method given without its class), or a change of unit (2 spaces for 4, tabs for
   spaces); mixed re-indentations need a two-thirds majority (the rest are real re-indents),
   and a shift is refused when some anchored lines already sit at the file's indentation (a
   body dedented under a guard clause or wrapped in a new loop: a restructured definition).
3. *Context*: from each anchor, lines extend outward while they equal the original's
   neighbours. The first and last matched lines bound the region; lines between two matched
   lines replace whatever lies between them in the original. Context lines keep the file's own
   text and line ending.
4. *Edges*: the lines before the first matched one are context found once just above, new
   definitions or decorators inserted before the first matched code line, or line for line
   modifications (as below); the lines after the last matched one are, in this order of rules,
   - followed by context: the segment's last lines are found once just below (within the
     lines the new ones could replace, plus ``MAX_UNMARKED_DROP`` when the context is not too
     common): what lies between is replaced;
   - new definitions, imports or decorators (their name is nowhere in the file): inserted after
     the last matched code line (refused when that would split a block), the file's blank lines
     kept after them;
   - the rest of a function whose header the segment shows, the segment ending at or above the
     function's level (the elision after it is not indented into the body): the rest of that
     function's original body is replaced;
   - the end of their block (the file's next lines are less indented; or the elision after
     them is less indented than they are, or nothing follows, or they end with a
     return/raise/break/continue, and the rest of the block is no longer than they are): the
     rest of the block is replaced (nothing, when it is empty);
   - line for line modifications of the original lines next to them (each pair equal or with
     the same key: definition name, import module, assignment target, mapping key).
   Anything else is refused.
5. Segments with no anchor: only import lines of modules the file does not import yet go
   after the file's leading import section; a segment of one import line that changes the
   file's one single-line import of that module replaces it (other changes to an existing
   import are refused); a
   last segment after an elision whose first line is a new definition goes at the end of the
   class the previous segment shows (when indented into it), right after the definition whose
   header the previous segment ends with (when the elision is indented into that definition:
   ``def f(...):`` / ``# ... existing code ...`` / ``def new():`` adds ``new`` after ``f``), or
   at the end of the file (when at the top level), separated by the blank lines the block
   shows (else as the file separates its definitions there). A block that is only a new
   top-level definition (its name nowhere in the file, nothing of it anchored: chat's answer to
   "add a function ...") goes at the end of the file too, as an editor's user expects. A
   segment of closing brackets alone after an elision is dropped (it closes what the elision
   stands for). Anything else is
   refused: "ambiguous" when a line matched several places or the segment matches only out of
   order, else "no_anchor".
6. Regions must come in block order without overlapping. An elision marker that also occurs
   verbatim in the file is refused (it might be code, like a ``...`` body).
7. *Wrappers are anchors, not replacements*: a definition header matched by name that is the
   last line of its segment with an elision after it (``class ParamType:`` then
   ``# ... existing code ...``) keeps the file's line when it abbreviates it (bases, parameters,
   annotations or return type left out, or ``...``; ``_wrapper_agrees``); a header with ``...``
   among its parameters keeps the file's whole (multi-line) header wherever it stands. A
   wrapper that says something else is refused, unless it only adds parameters to (or changes
   defaults of) a one-line signature, which is applied; a class line without the file's bases
   followed by code is refused (dropped or abbreviated: it cannot be told).
8. *Imports*: the blank lines of the file's leading import section that a block writes its
   imports without (a reflowed section) are kept where the block shows the lines around them
   next to each other, and refused where it also adds or drops lines there (the grouping
   cannot be told); a block whose imports start (without an elision above) below some of the
   file's leading imports is refused (dropped or left out).

The result keeps the original's line endings (new lines take the dominant one; mixed files stay
mixed) and its final newline or lack of one.

The safety check (``find_unaccounted_removals``)
------------------------------------------------
For any result: the original lines the result removes (difflib, whitespace-insensitive) are
accounted for when they lie where the block wrote code: at a result position inside a segment's
span in the result, and within that segment's reach in the original (its matched lines, plus as
many lines as it has unmatched ones at each edge, plus the rest of a function whose header and
body it shows). Also flagged, wherever removed: a definition whose name the block never mentions.

A result that is not a file (``find_rewrite_defect``)
-----------------------------------------------------
Never offered as the new file, from any path: a result with an elision marker line (a comment
such as ``# ... existing code ...``, or ``…``; not a bare ``...``, which is Python's Ellipsis)
more often than the original has it (the writer left a placeholder where the code should be),
or, when the block has elisions (it asks to keep the rest), a result shorter than half the
original's non-blank lines that removes at least half of them unaccounted for.

The model path's prompt (``format_apply_prompt``)
-------------------------------------------------
``ApplyInput`` is the serialisable input (JSON-able: it crosses to the worker and the service);
``format_apply_prompt(input, version)`` renders it, versioned and golden-tested
(tests/golden/apply/). The model answers with the whole file in a fenced block;
``to_file_text`` gives its LF answer the original's line endings.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Literal

from forecode_core.completion.prompt import comment_style
from forecode_core.text.prompt_text import fence_for

__all__ = [
    "APPLY_PROMPT_VERSION",
    "MAX_UNMARKED_DROP",
    "MOST_OF_THE_FILE",
    "Applied",
    "ApplyInput",
    "ApplyPrompt",
    "ParsedBlock",
    "Placement",
    "Refused",
    "Removal",
    "RewriteDefect",
    "Segment",
    "apply_deterministic",
    "find_missed_line",
    "find_rewrite_defect",
    "find_unaccounted_removals",
    "format_apply_prompt",
    "is_elision",
    "parse_block",
    "to_file_text",
]

# Consecutive anchors of one segment may skip at most this many original lines more than the
# block shows between them (and not more than twice as many): past that, the block would drop
# code without an elision, which is more likely a lazy block than an intended deletion.
MAX_UNMARKED_DROP = 12

# ---------------------------------------------------------------------------------------------
# Lines


def _split_lines(text: str) -> tuple[list[str], list[str]]:
    """The lines' contents and their endings (``"\\r\\n"``, ``"\\n"``, or ``""`` for a last
    line without one). Only ``\\n`` ends a line (a form feed is content)."""
    if not text:
        return [], []
    parts = text.split("\n")
    last = parts.pop()
    endings = ["\r\n" if p.endswith("\r") else "\n" for p in parts]
    contents = [p[:-1] if p.endswith("\r") else p for p in parts]
    if last:
        contents.append(last)
        endings.append("")
    return contents, endings


def _dominant_eol(endings: Iterable[str]) -> str:
    counts = Counter(endings)
    return "\r\n" if counts["\r\n"] > counts["\n"] else "\n"


def _norm(line: str) -> str:
    return " ".join(line.split())


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(line: str) -> int:
    return len(_indent(line).expandtabs(8))


def _blank(line: str) -> bool:
    return not line.strip()


# ---------------------------------------------------------------------------------------------
# Elision markers

# (opening, closing) comment delimiters, longest first; closing "" for line comments.
_COMMENT_WRAPPERS: tuple[tuple[str, str], ...] = (
    ("<!--", "-->"),
    ("{/*", "*/}"),
    ("/*", "*/"),
    ("(*", "*)"),
    ("{-", "-}"),
    ("///", ""),
    ("//", ""),
    ("#", ""),
    ("--", ""),
    (";", ""),
    ("%", ""),
)
_BARE_ELISIONS = frozenset({"...", "…", "[...]", "(...)", "{...}", "<...>", "[…]", "(…)"})
_LEADING_ELLIPSIS = re.compile(r"^(?:\.{3,}|…)")
_TRAILING_ELLIPSIS = re.compile(r"(?:\.{3,}|…)$")
# Words that make "<words> ..." an elision ("other methods ...") rather than a sentence that
# trails off ("try again...").
_TRAILING_WORDS = re.compile(
    r"^(?:the )?(?:other|more|rest|existing|remaining|previous|same|"
    r"unchanged|original|etc)\b",
    re.IGNORECASE,
)
_CODE_NOUNS = (
    r"(?:code|lines?|methods?|functions?|imports?|file|class(?:es)?|body|"
    r"implementation|tests?|fields?|propert(?:y|ies)|members?|attributes?|cases?|"
    r"definitions?|content|logic|parts?|sections?|settings|config(?:uration)?|rules?|"
    r"styles?|elements?|markup|handlers?|routes?|exports?|declarations?|"
    r"statements?|constants?|types?|variables?|stuff)"
)
# Comment texts (ellipses and brackets stripped, case-insensitive) that stand for kept code.
_ELISION_PHRASES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^(?:keep(?:ing)? )?(?:all )?(?:the )?(?:rest|remainder) of\b",
        r"^(?:keep(?:ing)? )?(?:all )?(?:the )?(?:existing|remaining|previous|original|unchanged)"
        r"\b(?: \w+)? " + _CODE_NOUNS + r"\b",
        r"^(?:keep(?:ing)? )?(?:all )?(?:the )?(?:existing|remaining|previous|original|unchanged)"
        r"(?: \w+)?$",
        r"\b(?:unchanged|remains? (?:the )?same|stays? (?:the )?same|as before|as is|"
        r"omitted(?: for brevity)?|not shown|no changes?)$",
        r"^keep(?:ing)? (?:the )?(?:rest|existing|everything|all|as is|unchanged|original|same)\b",
    )
)
_MAX_PHRASE_WORDS = 10


def _comment_text(stripped: str) -> str | None:
    """The text inside a comment that is the whole (stripped) line, or None."""
    for opening, closing in _COMMENT_WRAPPERS:
        if stripped.startswith(opening):
            inner = stripped[len(opening) :]
            if closing and inner.rstrip().endswith(closing):
                inner = inner.rstrip()[: -len(closing)]
            return inner.strip().strip("*").strip()
    return None


def _elision_text(text: str) -> bool:
    if not text:
        return False
    if _LEADING_ELLIPSIS.search(text):
        return True
    trails = _TRAILING_ELLIPSIS.search(text) is not None
    text = text.strip("[](){}<>.…:;,-–— ")
    if trails and _TRAILING_WORDS.search(text):
        return True
    if not text or len(text.split()) > _MAX_PHRASE_WORDS:
        return False
    return any(p.search(text) for p in _ELISION_PHRASES)


def is_elision(line: str) -> bool:
    """Whether ``line`` is an elision marker: a comment standing for unchanged code
    (``# ... existing code ...``, ``// rest of the file unchanged``, ``<!-- ... -->``) or a
    bare ``...`` line (also followed by a comment)."""
    stripped = line.strip()
    if stripped in _BARE_ELISIONS:
        return True
    if stripped.startswith(("...", "…")):
        rest = stripped.lstrip(".…").strip()
        return not rest or _comment_text(rest) is not None
    inner = _comment_text(stripped)
    return inner is not None and _elision_text(inner)


# ---------------------------------------------------------------------------------------------
# Parsing the block


@dataclass(frozen=True)
class Segment:
    """The code between two elisions (or an elision and an end of the block)."""

    lines: tuple[str, ...]  # without line endings, the block's own indentation
    start: int  # index of the first line in ``ParsedBlock.lines``
    elision_before: str | None  # the elision line before it, None at the block's start
    elision_after: str | None  # the elision line after it, None at the block's end
    blank_before: int  # blank lines dropped before it (next to the elision or block start)
    blank_after: int


@dataclass(frozen=True)
class ParsedBlock:
    lines: tuple[str, ...]  # the block's lines, fence dropped, LF
    segments: tuple[Segment, ...]
    elisions: tuple[str, ...]  # the elision lines, in order


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def _strip_fence(lines: list[str]) -> list[str]:
    first = next((k for k, x in enumerate(lines) if not _blank(x)), None)
    if first is None:
        return []
    match = _FENCE.match(lines[first])
    if match is None:
        return lines
    fence = match.group(1)
    body = lines[first + 1 :]
    last = next((k for k in range(len(body) - 1, -1, -1) if not _blank(body[k])), None)
    if last is not None and body[last].strip() == fence:
        body = body[:last]
    return body


def parse_block(block: str) -> ParsedBlock:
    """The block's segments and elisions (module doc). Accepts CRLF and a code fence."""
    lines = _strip_fence(_split_lines(block)[0])
    segments: list[Segment] = []
    elisions: list[str] = []
    current: list[str] = []
    start = 0
    before: str | None = None

    def close(after: str | None) -> None:
        lead = 0
        while lead < len(current) and _blank(current[lead]):
            lead += 1
        trail = len(current)
        while trail > lead and _blank(current[trail - 1]):
            trail -= 1
        code = current[lead:trail]
        if before is not None and all(_is_closer(x) for x in code if not _blank(x)):
            return  # only the closing brackets of what the elision stands for
        if trail > lead:
            segments.append(
                Segment(tuple(code), start + lead, before, after, lead, len(current) - trail)
            )

    for k, line in enumerate(lines):
        if is_elision(line):
            close(line)
            elisions.append(line)
            current = []
            start = k + 1
            before = line
        else:
            current.append(line)
    close(None)
    return ParsedBlock(tuple(lines), tuple(segments), tuple(elisions))


# ---------------------------------------------------------------------------------------------
# Line kinds: definitions, imports, keys

_FUNCTION_HEADERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*(?:async\s+)?def\s+(\w+)"),
    re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(\w+)"),
    re.compile(r"^\s*func\s+(?:\([^)]*\)\s*)?(\w+)"),
    re.compile(
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?(?:const\s+)?"
        r"(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)"
    ),
    re.compile(r"^\s*(?:sub|proc|procedure)\s+(\w+)"),
)
_CLASS_HEADERS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?(?:public\s+|private\s+|"
        r"protected\s+|internal\s+)?(?:static\s+)?(?:final\s+)?(?:sealed\s+)?"
        r"(?:data\s+)?class\s+(\w+)"
    ),
    re.compile(
        r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|trait|interface|union|module|"
        r"namespace|object|protocol|record)\s+(\w+)"
    ),
    re.compile(r"^\s*impl(?:<[^>]*>)?\s+(?:[\w:<>]+\s+for\s+)?(\w+)"),
    re.compile(r"^\s*type\s+(\w+)\s+(?:struct|interface)\b"),
)
# A C-family function or method: a type (or modifiers) then ``name(``, or ``name(...) {``.
_C_FUNCTION = re.compile(r"^\s*(?:[A-Za-z_][\w:<>,\[\]*&]*\s+[*&]*)+([A-Za-z_~][\w:~]*)\s*\(")
_JS_METHOD = re.compile(
    r"^\s*(?:(?:static|async|get|set|public|private|protected|override)\s+)*"
    r"\*?([A-Za-z_$][\w$]*)\s*\([^;]*\)\s*(?::[^{;=]*)?\{\s*$"
)
_CONTROL_WORDS = frozenset(
    (
        "if",
        "for",
        "while",
        "switch",
        "catch",
        "return",
        "else",
        "do",
        "sizeof",
        "new",
        "delete",
        "throw",
        "case",
        "elif",
        "except",
        "with",
        "assert",
        "await",
        "yield",
        "print",
        "raise",
        "not",
        "and",
        "or",
        "in",
        "is",
        "lambda",
        "goto",
        "using",
        "typeof",
        "instanceof",
        "void",
        "import",
        "from",
        "when",
        "match",
        "foreach",
        "synchronized",
        "using",
        "defer",
        "go",
    )
)


_COMMENT_STARTS = ("#", "//", "/*", "*", "--", ";", "%", "<!--")


# A line without one of these words and without a parenthesis defines nothing (a cheap test
# before the patterns).
_DEFINITION_WORDS = re.compile(
    r"\b(?:def|function|func|fn|sub|proc|procedure|class|struct|"
    r"enum|trait|interface|union|module|namespace|object|protocol|"
    r"record|impl|type)\b"
)


@lru_cache(maxsize=1 << 16)
def _function_name(line: str) -> str | None:
    if line.lstrip().startswith(_COMMENT_STARTS):
        return None
    has_word = _DEFINITION_WORDS.search(line) is not None
    if has_word:
        for pattern in _FUNCTION_HEADERS:
            match = pattern.match(line)
            if match:
                return match.group(1)
    stripped = line.rstrip()
    if not stripped.endswith(("{", ")", ",", "(")) or "=" in stripped.split("(", 1)[0]:
        return None
    for pattern in (_C_FUNCTION, _JS_METHOD):
        match = pattern.match(line)
        if match:
            words = line.split("(", 1)[0].split()
            if match.group(1) not in _CONTROL_WORDS and not _CONTROL_WORDS & set(words):
                return match.group(1)
    return None


@lru_cache(maxsize=1 << 16)
def _class_name(line: str) -> str | None:
    if line.lstrip().startswith(_COMMENT_STARTS) or _DEFINITION_WORDS.search(line) is None:
        return None
    for pattern in _CLASS_HEADERS:
        match = pattern.match(line)
        if match:
            return match.group(1)
    return None


def _definition_name(line: str) -> str | None:
    return _class_name(line) or _function_name(line)


def _past_decorators(lines: Sequence[str]) -> str:
    """The first line of ``lines`` that is not a decorator (``@name...``) nor blank: a
    definition's header when the lines start with one ("" when there is none)."""
    return next((x for x in lines if not _blank(x) and not x.lstrip().startswith("@")), "")


_IMPORTS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*from\s+([\w.]+)\s+import\b"),  # Python
    re.compile(r"^\s*import\s+(?:static\s+)?([\w.*]+)\s*;?\s*(?:#.*)?$"),  # Python, Java, Kotlin
    re.compile(r"^\s*import\s+([\w.]+)\s+as\s+\w+\s*(?:#.*)?$"),  # Python
    re.compile(
        r"^\s*import\s+([\w.]+)(?:\s+as\s+\w+)?"  # Python: import a, b
        r"(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)+\s*(?:#.*)?$"
    ),
    re.compile(r"^\s*import\b.*\bfrom\s+['\"]([^'\"]+)['\"]"),  # JavaScript, TypeScript
    re.compile(r"^\s*import\s+['\"]([^'\"]+)['\"]"),  # JavaScript side effects
    re.compile(r"^\s*import\s+(?:\w+\s+)?\"([^\"]+)\"\s*$"),  # Go (one line)
    re.compile(r"^\s*(?:const|let|var)\s+.*=\s*require\(\s*['\"]([^'\"]+)['\"]\s*\)"),
    re.compile(r"^\s*#\s*include\s*[<\"]([^>\"]+)[>\"]"),  # C, C++
    re.compile(r"^\s*(?:pub\s+)?use\s+([\w:]+)"),  # Rust
    re.compile(r"^\s*using\s+([\w.]+)\s*;"),  # C#
    re.compile(r"^\s*require(?:_relative)?\s*\(?\s*['\"]([^'\"]+)['\"]"),  # Ruby, Lua
)


_IMPORT_WORDS = ("import", "include", "use", "using", "require")


@lru_cache(maxsize=1 << 16)
def _import_module(line: str) -> str | None:
    if not any(word in line for word in _IMPORT_WORDS):
        return None
    for pattern in _IMPORTS:
        match = pattern.match(line)
        if match:
            return match.group(1)
    return None


_ASSIGNMENT = re.compile(
    r"^\s*(?:(?:const|let|var|final|static|private|public|protected|readonly|val)\s+)*"
    r"([A-Za-z_$][\w.$]*(?:\[[^\]]*\])?)\s*(?::\s*[^=]+)?(?<![=!<>+\-*/%&|^])=(?!=)"
)
_MAPPING_KEY = re.compile(r"^\s*[\"']?([\w.$-]+)[\"']?\s*:\s*\S")


def _line_key(line: str) -> tuple[str, str] | None:
    """What a line defines, for telling a modified line from an added one: a definition's
    name, an import's module, an assignment's target or a mapping's key."""
    name = _definition_name(line)
    if name is not None:
        return ("def", name)
    module = _import_module(line)
    if module is not None:
        return ("import", module)
    match = _ASSIGNMENT.match(line)
    if match:
        return ("assign", match.group(1))
    match = _MAPPING_KEY.match(line)
    if match and match.group(1) not in _CONTROL_WORDS:
        return ("key", match.group(1))
    return None


# A statement after which nothing in the same block runs.
_TERMINAL = re.compile(r"^\s*(?:return|raise|throw|break|continue)\b")


def _opens_block(line: str) -> bool:
    code = line.split(" #", 1)[0].split(" //", 1)[0].rstrip()
    return code.endswith((":", "{"))


def _is_closer(line: str) -> bool:
    stripped = line.strip()
    return stripped[:1] in ("}", ")", "]") or stripped in ("end", "fi", "done", "esac")


# Lines too common to anchor on even when they occur once.
_TRIVIAL = frozenset(
    (
        "else:",
        "try:",
        "finally:",
        "pass",
        "return",
        "break",
        "continue",
        "end",
        "else {",
        "} else {",
        "return;",
        "break;",
        "continue;",
        "default:",
        "do",
        "then",
        "fi",
        "done",
        "esac",
        "return None",
        "return True",
        "return False",
        "raise",
        "else",
        "begin",
        "return self",
        "return result",
        "});",
        "})",
        "]);",
        "end if",
        "end function",
        "#endif",
        "#else",
    )
)


def _anchorable(norm: str) -> bool:
    return len(norm) >= 3 and norm not in _TRIVIAL and any(c.isalnum() for c in norm)


# ---------------------------------------------------------------------------------------------
# Wrapper lines: a definition header the block shows only to say where its next lines go

_ELLIPSIS_ITEMS = frozenset(("...", "…"))


def _signature_end(lines: Sequence[str], j: int, limit: int = 40) -> int:
    """One past the last line of the header starting at line ``j``: the line where the
    brackets opened on it close and the header ends (``:`` or ``{``), at most ``limit``
    lines."""
    depth = 0
    k = j
    for k in range(j, min(len(lines), j + limit)):
        code = lines[k].split(" #", 1)[0].split(" //", 1)[0].rstrip()
        depth += sum(code.count(c) for c in "([") - sum(code.count(c) for c in ")]")
        if depth <= 0 and (
            code.endswith((":", "{")) or depth < 0 or not code.endswith(("(", ",", "[", "\\"))
        ):
            break
    return k + 1


def _signature(lines: Sequence[str], j: int, limit: int = 40) -> str:
    """The header starting at line ``j`` joined into one line (``_signature_end``)."""
    return " ".join(
        x.split(" #", 1)[0].split(" //", 1)[0].strip()
        for x in lines[j : _signature_end(lines, j, limit)]
    )


def _single_import(line: str) -> bool:
    """A whole import statement on one line (no bracket or backslash continued)."""
    code = line.split(" #", 1)[0].rstrip()
    return code.count("(") == code.count(")") and not code.endswith("\\")


def _elided_params(line: str) -> bool:
    """Whether a header's parameters include ``...`` (``def f(self, ...):``): a shorthand,
    never code."""
    params = _split_header(line)[1]
    return params is not None and any(x in _ELLIPSIS_ITEMS for x in _params(params))


def _split_header(header: str) -> tuple[str, str | None, str]:
    """(what comes before the parameters, the parameters or None, what follows them), all
    without spaces; the header's final ``:`` or ``{`` dropped."""
    text = header.strip()
    if text.endswith((":", "{")):
        text = text[:-1]
    start = text.find("(")
    if start < 0:
        return "".join(text.split()), None, ""
    depth = 0
    for k in range(start, len(text)):
        depth += text[k] in "([{"
        depth -= text[k] in ")]}"
        if depth == 0:
            return (
                "".join(text[:start].split()),
                "".join(text[start + 1 : k].split()),
                "".join(text[k + 1 :].split()),
            )
    return "".join(text[:start].split()), "".join(text[start + 1 :].split()), ""


def _params(text: str) -> list[str]:
    """Top-level comma-separated items (spaces already removed), a trailing comma dropped."""
    items: list[str] = []
    depth = 0
    current = ""
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += c
    items.append(current)
    return [x for x in items if x]


def _param_name(item: str) -> str:
    return re.split(r"[:=]", item.lstrip("*&"), maxsplit=1)[0]


def _shorthand_params(block: str, file: str) -> bool:
    """Whether the block's parameter list abbreviates the file's: the same, empty or ``...``,
    ``self``/``cls`` alone, items then ``...`` (each item the file's, or its bare name), or
    the file's names with their annotations and defaults left out."""
    b, f = _params(block), _params(file)
    if b == f or not b or (len(b) == 1 and b[0] in _ELLIPSIS_ITEMS):
        return True
    if len(b) == 1 and b[0] in ("self", "cls") and f and _param_name(f[0]) == b[0]:
        return True
    elided = b[-1] in _ELLIPSIS_ITEMS
    if elided:
        b = b[:-1]
    if len(b) > len(f) or (not elided and len(b) != len(f)):
        return False
    return all(x == y or x == _param_name(y) for x, y in zip(b, f, strict=False))


def _header_extends(block_line: str, file_header: str) -> bool:
    """Whether the block's header is the file's with parameters (or bases) added or their
    annotations and defaults changed: every name of the file's list is in the block's, in
    the same order (a signature change the block means, not a shorthand)."""
    b_pre, b_params, _ = _split_header(block_line)
    f_pre, f_params, _ = _split_header(file_header)
    if b_pre != f_pre or b_params is None or f_params is None:
        return False
    b_names = [_param_name(x) for x in _params(b_params)]
    f_names = [_param_name(x) for x in _params(f_params)]
    if any(x in _ELLIPSIS_ITEMS for x in b_names):
        return False
    k = 0
    for name in b_names:
        if k < len(f_names) and name == f_names[k]:
            k += 1
    return k == len(f_names)


_MODIFIERS = frozenset(
    (
        "export",
        "default",
        "public",
        "private",
        "protected",
        "internal",
        "abstract",
        "sealed",
        "final",
        "static",
        "pub",
        "open",
        "override",
        "partial",
        "declare",
    )
)


def _header_words(line: str) -> list[str]:
    """A class header's words without modifiers and its final ``{`` or ``:``."""
    text = line.strip().rstrip("{:").strip()
    return [w for w in re.findall(r"[\w.$<>\[\],]+", text) if w not in _MODIFIERS]


def _wrapper_agrees(block_line: str, file_header: str) -> bool:
    """Whether a header the block shows as a wrapper (followed by an elision) names the
    file's header ``file_header`` (joined into one line) in shorthand: the same definition,
    with the bases, parameters, annotations or return type left out or abbreviated (``...``).
    False when it says something else (other bases, another parameter, ``async`` added or
    dropped): then the block may mean a change it does not show."""
    b_pre, b_params, b_rest = _split_header(block_line)
    f_pre, f_params, f_rest = _split_header(file_header)
    if _class_name(block_line) is not None and b_params is None and b_pre != f_pre:
        # ``class Store {`` for ``export class Store extends Base {``: the block's words, less
        # modifiers, begin the file's.
        b_words = _header_words(block_line)
        f_words = _header_words(file_header.split("(", 1)[0])
        return b_words == f_words[: len(b_words)] and len(b_words) >= 2
    if b_pre != f_pre:
        return False
    if b_params is None:  # ``class Name:`` for ``class Name(Base):``
        return not b_rest
    if f_params is None:
        return b_params in ("", *_ELLIPSIS_ITEMS) and not b_rest
    if _class_name(block_line) is not None:
        return (b_params == f_params or b_params in ("", *_ELLIPSIS_ITEMS)) and (
            not b_rest or b_rest == f_rest
        )
    if not _shorthand_params(b_params, f_params):
        return False
    return not b_rest or b_rest == f_rest or b_rest.lstrip("->:") in _ELLIPSIS_ITEMS


# ---------------------------------------------------------------------------------------------
# Indentation


def _indent_unit(lines: Sequence[str]) -> tuple[int, str]:
    """(width, text) of one indentation level: a tab, or the most common step in spaces."""
    tabbed = sum(1 for x in lines if x.startswith("\t"))
    spaced = sum(1 for x in lines if x.startswith(" ") and not _blank(x))
    if tabbed > spaced:
        return 8, "\t"
    steps: Counter[int] = Counter()
    previous = 0
    for line in lines:
        if _blank(line):
            continue
        width = _width(line)
        if width > previous and width - previous in (2, 3, 4, 8):
            steps[width - previous] += 1
        previous = width
    step = steps.most_common(1)[0][0] if steps else 4
    return step, " " * step


@dataclass(frozen=True)
class _Reindent:
    """How a segment's indentation maps onto the file's."""

    kind: Literal["same", "add", "remove", "levels"]
    prefix: str = ""
    block_unit: int = 4
    file_unit: str = "    "
    offset: int = 0

    def apply(self, line: str) -> str | None:
        """The line re-indented, None when it cannot be (less indented than what is removed)."""
        if _blank(line) or self.kind == "same":
            return line
        if self.kind == "add":
            return self.prefix + line
        if self.kind == "remove":
            return line[len(self.prefix) :] if line.startswith(self.prefix) else None
        width = _width(line)
        level, rest = divmod(width, self.block_unit)
        if level + self.offset < 0:
            return None
        return self.file_unit * (level + self.offset) + " " * rest + line.lstrip(" \t")

    def width(self, line: str) -> int:
        out = self.apply(line)
        return _width(out) if out is not None else 0


_SAME = _Reindent("same")


def _reindent_between(block_indent: str, file_indent: str) -> _Reindent:
    if block_indent == file_indent:
        return _SAME
    if file_indent.endswith(block_indent):
        return _Reindent("add", file_indent[: len(file_indent) - len(block_indent)])
    if block_indent.endswith(file_indent):
        return _Reindent("remove", block_indent[: len(block_indent) - len(file_indent)])
    return _Reindent("levels")  # placeholder: not a prefix change


def _choose_reindent(
    pairs: Sequence[tuple[str, str]], block_unit: int, file_unit: tuple[int, str]
) -> _Reindent | None:
    """The re-indentation that the (block line, file line) anchor pairs agree on, or None."""
    if not pairs:
        return _SAME
    simple = Counter(_reindent_between(_indent(b), _indent(f)) for b, f in pairs)
    if len(simple) == 1:
        (only,) = simple
        if only.kind != "levels":
            return only
    # A change of indentation unit: levels map with one offset.
    offsets: set[int | None] = set()
    for b, f in pairs:
        level_b, rest_b = divmod(_width(b), block_unit)
        level_f, rest_f = divmod(_width(f), file_unit[0])
        if rest_b or rest_f or (file_unit[1] == "\t" and _indent(f).strip("\t")):
            offsets.add(None)
        else:
            offsets.add(level_f - level_b)
    if len(offsets) == 1:
        (offset,) = offsets
        if offset is not None:
            return _Reindent("levels", block_unit=block_unit, file_unit=file_unit[1], offset=offset)
    best, count = simple.most_common(1)[0]
    if (
        best.kind != "levels"
        and count >= 2
        and count * 3 >= 2 * len(pairs)
        and (best == _SAME or _SAME not in simple)
    ):
        # The others are lines the block re-indents on purpose. Not when some lines already
        # sit at the file's indentation and most would be shifted: the block may as well
        # re-indent most lines on purpose (a body dedented under a guard clause, wrapped in
        # a new loop): a restructured definition, which only a rewrite can follow.
        return best
    return None


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Placement:
    """Where one segment went: it replaced original lines ``[start, end)`` (0-based)."""

    segment: int
    start: int
    end: int
    how: str  # "anchored", "imports", "end of class", "end of file", "after definition"


@dataclass(frozen=True)
class Applied:
    text: str  # the complete new file
    placements: tuple[Placement, ...]
    status: Literal["applied"] = "applied"


RefusalKind = Literal["ambiguous", "no_anchor"]


@dataclass(frozen=True)
class Refused:
    status: RefusalKind
    reason: str  # one sentence, names the segment's line; never the whole block
    segment: int | None  # index of the segment refused, None for the block as a whole


class _Refuse(Exception):
    def __init__(self, status: RefusalKind, reason: str, segment: int | None = None) -> None:
        super().__init__(reason)
        self.status: RefusalKind = status
        self.reason = reason
        self.segment = segment


def _short(line: str) -> str:
    text = line.strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")


# ---------------------------------------------------------------------------------------------
# The original file, indexed


class _File:
    """The original's lines and the indexes the placer looks things up in (built lazily)."""

    def __init__(self, text: str) -> None:
        self.lines, self.endings = _split_lines(text)
        self.n = len(self.lines)
        self.norms = [_norm(x) for x in self.lines]
        self.code = _code_flags(self.lines)
        self._ends: dict[int, int] = {}

    @cached_property
    def by_norm(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = defaultdict(list)
        for j, norm in enumerate(self.norms):
            index[norm].append(j)
        return index

    @cached_property
    def by_def(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = defaultdict(list)
        for j in range(self.n):
            name = self.definition(j)
            if name is not None:
                index[name].append(j)
        return index

    @cached_property
    def imports(self) -> set[str]:
        return {m for m in map(_import_module, self.lines) if m is not None}

    @cached_property
    def unit(self) -> tuple[int, str]:
        return _indent_unit(self.lines)

    def definition(self, j: int) -> str | None:
        """The name line ``j`` defines (not inside a triple-quoted string), or None."""
        return _definition_name(self.lines[j]) if self.code[j] else None

    def function(self, j: int) -> str | None:
        return _function_name(self.lines[j]) if self.code[j] else None

    def klass(self, j: int) -> str | None:
        return _class_name(self.lines[j]) if self.code[j] else None

    def block_end(self, j: int) -> int:
        """One past the last non-blank line of the block that line ``j`` opens (by
        indentation, a closing bracket at the header's level included)."""
        if j in self._ends:
            return self._ends[j]
        width = _width(self.lines[j])
        opened = _opens_block(self.lines[j])
        in_string = _toggles_string(self.lines[j], False)
        last = j
        k = j + 1
        while k < self.n:
            line = self.lines[k]
            if _blank(line):
                k += 1
                continue
            if in_string or _width(line) > width:
                last = k
            elif _is_closer(line) and _width(line) == width:
                last = k
                if opened:
                    break
                opened = _opens_block(line)
            else:
                break
            in_string = _toggles_string(line, in_string)
            k += 1
        self._ends[j] = last + 1
        return last + 1

    def next_nonblank(self, j: int) -> int | None:
        while j < self.n:
            if not _blank(self.lines[j]):
                return j
            j += 1
        return None


def _code_flags(lines: Sequence[str]) -> list[bool]:
    """For each line, whether it starts outside a triple-quoted string."""
    flags = []
    inside = False
    for line in lines:
        flags.append(not inside)
        inside = _toggles_string(line, inside)
    return flags


def _toggles_string(line: str, inside: bool) -> bool:
    """Whether a triple-quoted string is open after ``line``."""
    for quote in ('"""', "'''"):
        if line.count(quote) % 2:
            inside = not inside
    return inside


def _within(positions: Sequence[int], lo: int, hi: int) -> list[int]:
    start = bisect_left(positions, lo)
    end = bisect_left(positions, hi)
    return list(positions[start:end])


@dataclass(frozen=True)
class _Anchor:
    i: int  # line in the segment
    j: int  # line in the original
    header: bool  # a definition header matched by name (the line itself changed)


# ---------------------------------------------------------------------------------------------
# The deterministic path


# A line of a segment found once in the file, but this far (in lines) outside the span its
# neighbours in the block anchor, is a new line that happens to exist elsewhere, not an anchor.
STRAY_ANCHOR_DISTANCE = 40


def _drop_stray_anchors(found: list[_Anchor]) -> list[_Anchor]:
    """``found`` (sorted by block line) without its stray anchors: a line whose neighbours
    in the block (the anchors just before and after it) are in order with each other while
    its own file line lies more than ``STRAY_ANCHOR_DISTANCE`` lines outside the span between
    them (``if not name:`` added to one function, found once in another far away). Such a
    line is new code. A definition header is never stray, and neither is a line close to the
    span (the block may move it: reading it as new would duplicate it). If more than one
    anchor in four would be stray, nothing is dropped (the order check refuses)."""
    if len(found) < 3 or all(a.j < b.j for a, b in pairwise(found)):
        return found
    stray = {
        k
        for k in range(1, len(found) - 1)
        if not found[k].header
        and found[k - 1].j < found[k + 1].j
        and (
            found[k].j < found[k - 1].j - STRAY_ANCHOR_DISTANCE
            or found[k].j > found[k + 1].j + STRAY_ANCHOR_DISTANCE
        )
    }
    if not stray or 4 * len(stray) > len(found):
        return found
    return [a for k, a in enumerate(found) if k not in stray]


class _Placer:
    def __init__(self, original: str, parsed: ParsedBlock) -> None:
        self.file = _File(original)
        self.parsed = parsed
        self.segments = parsed.segments
        code = [x for s in parsed.segments for x in s.lines]
        self.block_unit = _indent_unit(code)[0]
        self.ambiguity: dict[int, tuple[str, int]] = {}  # segment -> a line found several times
        for marker in parsed.elisions:
            if marker.strip() and _norm(marker) in self.file.by_norm:
                raise _Refuse(
                    "ambiguous",
                    f"the elision marker {_short(marker)} also occurs in the file: it may be code",
                )

    # -- anchoring -------------------------------------------------------------------------

    def anchors(self, s: int, lo: int, hi: int) -> list[_Anchor]:
        f = self.file
        lines = self.segments[s].lines
        norms = [_norm(x) for x in lines]
        counts = Counter(norms)
        code = _code_flags(lines)
        found: list[_Anchor] = []
        several: list[tuple[int, list[int]]] = []
        unseen: list[int] = []
        for i, norm in enumerate(norms):
            if not _anchorable(norm):
                continue
            positions = _within(f.by_norm.get(norm, ()), lo, hi)
            if counts[norm] > 1:
                continue
            if len(positions) == 1:
                found.append(_Anchor(i, positions[0], False))
            elif positions:
                several.append((i, positions))
            elif norm not in f.by_norm and code[i]:
                unseen.append(i)
        reindent = self.reindent(s, found)
        if reindent is None:
            reindent = _SAME
        unique = sorted(found, key=lambda a: a.i)
        for i, positions in several:
            # Between the segment's unique anchors around it, when both sides have one: a
            # line found only elsewhere in the file is new here (``if not name:`` added to a
            # function, the same line in another function), not an anchor out of order.
            before = [a.j for a in unique if a.i < i]
            after = [a.j for a in unique if a.i > i]
            if before and after:
                positions = [j for j in positions if before[-1] < j < after[0]]
                if not positions:
                    continue
            text = reindent.apply(lines[i])
            exact = [j for j in positions if f.lines[j] == text]
            if len(exact) == 1:
                found.append(_Anchor(i, exact[0], False))
            elif s not in self.ambiguity:
                self.ambiguity[s] = (lines[i], len(positions))
        for i in unseen:
            name = _definition_name(lines[i])
            if name is None:
                continue
            function = _function_name(lines[i]) is not None
            positions = [
                j
                for j in _within(f.by_def.get(name, ()), lo, hi)
                if (f.function(j) is not None) == function
            ]
            if len(positions) > 1:  # the same name at several levels: the indentation decides
                width = reindent.width(lines[i])
                positions = [j for j in positions if _width(f.lines[j]) == width]
            if len(positions) == 1:
                found.append(_Anchor(i, positions[0], True))
            elif positions and s not in self.ambiguity:
                self.ambiguity[s] = (lines[i], len(positions))
        found.sort(key=lambda a: a.i)
        found = _drop_stray_anchors(found)
        for a, b in pairwise(found):
            if b.j <= a.j:
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: {_short(lines[b.i])} comes after "
                    f"{_short(lines[a.i])} in the block but not in the file",
                    s,
                )
        return found

    def reindent(self, s: int, anchors: Sequence[_Anchor]) -> _Reindent | None:
        lines = self.segments[s].lines
        pairs = [(lines[a.i], self.file.lines[a.j]) for a in anchors if not _blank(lines[a.i])]
        chosen = _choose_reindent(pairs, self.block_unit, self.file.unit)
        if chosen is not None or not pairs:
            return chosen
        # The anchors disagree. When the segment's outermost line is an anchored definition
        # header (a whole definition shown, its body restructured), that header frames it:
        # its re-indentation holds for the segment, the deeper lines are re-indented on
        # purpose. The header must be the segment's first code line and no line may be less
        # indented than it.
        first = next(
            i for i, x in enumerate(lines) if not _blank(x) and not x.lstrip().startswith("@")
        )
        frame = next((a for a in anchors if a.i == first), None)
        if (
            frame is None
            or self.file.definition(frame.j) is None
            or any(_width(x) <= _width(lines[first]) for x in lines[first + 1 :] if not _blank(x))
        ):
            return None
        kind = _reindent_between(_indent(lines[first]), _indent(self.file.lines[frame.j]))
        return None if kind.kind == "levels" else kind

    # -- placing an anchored segment ---------------------------------------------------------

    def place_anchored(
        self, s: int, anchors: list[_Anchor], lo: int, hi: int
    ) -> tuple[int, int, list[str | int], dict[int, int]]:
        f = self.file
        seg = self.segments[s]
        reindent = self.reindent(s, anchors)
        if reindent is None:
            raise _Refuse(
                "ambiguous",
                f"segment {s + 1}: its lines are indented inconsistently with the file",
                s,
            )
        new: list[str] = []
        for line in seg.lines:
            out = reindent.apply(line)
            if out is None:
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: {_short(line)} is less indented "
                    "than the rest of the segment",
                    s,
                )
            new.append(out)
        matched = self.extend(new, anchors, lo, hi)
        # A blank line matched at an edge only by extension says nothing about where the
        # lines next to it go: the edge rules decide (else a line added after it would take
        # the file's blank line from what follows).
        anchored = {a.i for a in anchors}
        for edge in (max, min):
            while len(matched) > 1:
                i = edge(matched)
                if i in anchored or not _blank(new[i]):
                    break
                del matched[i]
        items = sorted(matched.items())
        for (ia, ja), (ib, jb) in pairwise(items):
            shown, skipped = ib - ia - 1, jb - ja - 1
            if skipped - shown > MAX_UNMARKED_DROP and skipped > 2 * shown:
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: the block goes from "
                    f"{_short(new[ia])} to {_short(new[ib])} without an elision, "
                    f"dropping {skipped - shown} lines of the file",
                    s,
                )
        headers = {a.i for a in anchors if a.header}
        keep, continued = self.wrappers(s, anchors, new, matched)
        gaps = self.import_gaps(s, new, items)
        i0, j0 = items[0]
        i1, j1 = items[-1]
        start = self.head(s, new[:i0], j0, lo, matched)
        end = self.tail(s, new[i1 + 1 :], j1, hi, matched, reindent)
        self.check_leading_imports(s, new, start, end)
        body: list[str | int] = []
        for i, line in enumerate(new):
            body.extend(gaps.get(i, ()))
            j = matched.get(i)
            if j is not None and (
                i in keep
                or (i not in headers and (_blank(line) or line.rstrip() == f.lines[j].rstrip()))
            ):
                body.append(j)  # context: the file's own line (trailing spaces, ending kept)
                body.extend(continued.get(i, ()))
            else:
                body.append(line)
        if any(k >= end for lines in continued.values() for k in lines):
            raise _Refuse(
                "ambiguous",
                f"segment {s + 1}: cannot tell what replaces the rest "
                "of the file's header after its shorthand",
                s,
            )
        return start, end, body, matched

    def check_leading_imports(self, s: int, new: Sequence[str], start: int, end: int) -> None:
        """A block that starts with imports (no elision above them) matched below some of
        the file's leading imports is refused: it may have dropped those or left them out."""
        f = self.file
        seg = self.segments[s]
        first = next(x for x in new if not _blank(x))
        if seg.elision_before is not None or _import_module(first) is None:
            return
        section = self.import_section_end()
        if section is None or start >= section:
            return
        above = [
            k
            for k in range(start)
            if _width(f.lines[k]) == 0 and f.code[k] and _import_module(f.lines[k]) is not None
        ]
        if above:
            raise _Refuse(
                "ambiguous",
                f"segment {s + 1}: the block's imports start at "
                f"{_short(first)}, below the file's {_short(f.lines[above[0]])}: "
                "cannot tell whether it drops the imports above",
                s,
            )
        # An import section written out (three or more of the file's import lines, all of
        # the segment imports) that stops above the file's last imports: dropped or elided?
        shown = [x for x in new if not _blank(x)]
        imports = [x for x in shown if _import_module(x) is not None]
        kept = [x for x in imports if _norm(x) in self.file.by_norm]
        if len(kept) < 3 or any(
            _width(x) == 0 and _import_module(x) is None and not _is_closer(x) for x in shown
        ):
            return
        last = max(
            (
                j
                for j in range(section)
                if f.code[j] and _width(f.lines[j]) == 0 and _import_module(f.lines[j]) is not None
            ),
            default=-1,
        )
        if end <= last:
            raise _Refuse(
                "ambiguous",
                f"segment {s + 1}: the block writes the imports out "
                f"but stops above the file's {_short(f.lines[last])}: cannot tell "
                "whether it drops it",
                s,
            )

    def wrappers(
        self, s: int, anchors: Sequence[_Anchor], new: Sequence[str], matched: dict[int, int]
    ) -> tuple[set[int], dict[int, list[int]]]:
        """The segment's header lines matched by name that stand for the file's header (a
        *wrapper*: the segment's last line, an elision after it, in shorthand such as
        ``class Name:`` for ``class Name(Base):``; or a header with ``...`` among its
        parameters anywhere): the file's line stays (and, for the latter, the rest of the
        file's multi-line header after it). A wrapper that says something else, or a class
        line without the file's bases followed by code, is refused (the block may mean a
        change it does not show)."""
        f = self.file
        seg = self.segments[s]
        last = max(i for i, x in enumerate(seg.lines) if not _blank(x))
        keep: set[int] = set()
        continued: dict[int, list[int]] = {}
        for a in anchors:
            if not a.header:
                continue
            line = new[a.i]
            header = _signature(f.lines, a.j)
            if _elided_params(line) and not (a.i == last and seg.elision_after is not None):
                end = _signature_end(f.lines, a.j)
                later = [j for i, j in matched.items() if i > a.i]
                if not _wrapper_agrees(line, header) or (later and min(later) < end):
                    raise _Refuse(
                        "ambiguous",
                        f"segment {s + 1}: {_short(line)} does not abbreviate {_short(header)}",
                        s,
                    )
                keep.add(a.i)
                continued[a.i] = list(range(a.j + 1, end))
            elif a.i == last and seg.elision_after is not None:
                if _wrapper_agrees(line, header):
                    keep.add(a.i)
                elif not (_header_extends(line, header) and header == _signature(f.lines, a.j, 1)):
                    raise _Refuse(
                        "ambiguous",
                        f"segment {s + 1}: {_short(line)} stands for "
                        f"{_short(header)} but differs from it, and the elision "
                        "after it hides what that change means",
                        s,
                    )
            elif _class_name(line) is not None and _wrapper_agrees(line, header):
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: cannot tell whether "
                    f"{_short(line)} drops what {_short(header)} says or "
                    "abbreviates it",
                    s,
                )
        return keep, continued

    def import_gaps(
        self, s: int, new: Sequence[str], items: Sequence[tuple[int, int]]
    ) -> dict[int, list[int]]:
        """Blank lines of the file's import section that the block writes its imports
        without (a reflowed import section): kept (segment line -> the file's lines to put
        before it) when the block shows the lines around them next to each other; refused
        when it adds or drops lines there (the grouping cannot be told)."""
        f = self.file
        section = self.import_section_end()
        gaps: dict[int, list[int]] = {}
        if section is None:
            return gaps
        for (ia, ja), (ib, jb) in pairwise(items):
            if jb >= section or jb - ja < 2:
                continue
            between = range(ja + 1, jb)
            if not any(_blank(f.lines[k]) for k in between) or any(
                _blank(new[k]) for k in range(ia + 1, ib)
            ):
                continue
            if ib == ia + 1 and all(_blank(f.lines[k]) for k in between):
                gaps[ib] = list(between)
                continue
            raise _Refuse(
                "ambiguous",
                f"segment {s + 1}: the block writes the imports around "
                f"{_short(new[ib])} without the file's blank lines and changes "
                "them: cannot tell how they are grouped",
                s,
            )
        return gaps

    def extend(
        self, new: Sequence[str], anchors: Sequence[_Anchor], lo: int, hi: int
    ) -> dict[int, int]:
        f = self.file
        matched = {a.i: a.j for a in anchors}
        order = sorted(matched.items())
        for k, (i, j) in enumerate(order):
            prev_i, prev_j = order[k - 1] if k else (-1, lo - 1)
            next_i, next_j = order[k + 1] if k + 1 < len(order) else (len(new), hi)
            bi, bj = i - 1, j - 1
            while (
                bi > prev_i
                and bj > prev_j
                and bi not in matched
                and (_norm(new[bi]) == f.norms[bj])
            ):
                matched[bi] = bj
                bi, bj = bi - 1, bj - 1
            fi, fj = i + 1, j + 1
            while (
                fi < next_i
                and fj < next_j
                and fi not in matched
                and (_norm(new[fi]) == f.norms[fj])
            ):
                matched[fi] = fj
                fi, fj = fi + 1, fj + 1
        return matched

    def is_new(self, line: str) -> bool:
        """A definition or import the file does not have anywhere."""
        name = _definition_name(line)
        if name is not None:
            return name not in self.file.by_def
        module = _import_module(line)
        return module is not None and module not in self.file.imports

    def same_line(self, new: str, old: str) -> bool:
        if _blank(new) or _blank(old):
            return _blank(new) and _blank(old)
        if _norm(new) == _norm(old):
            return True
        key = _line_key(new)
        return key is not None and key == _line_key(old)

    def head(self, s: int, lines: list[str], j0: int, lo: int, matched: dict[int, int]) -> int:
        """Where the region starts, given the segment's lines before its first matched one."""
        if not lines:
            return j0
        f = self.file
        first = lines[0]
        anchor = next(j for _, j in sorted(matched.items()) if not _blank(f.lines[j]))
        decorators = all(x.strip().startswith("@") for x in lines if not _blank(x)) and (
            f.function(anchor) is not None
            and not (anchor and f.lines[anchor - 1].strip().startswith("@"))
        )
        start = self.context_before(lines, j0, lo)
        if start is not None:
            return start
        if self.is_new(first) or decorators:
            if _width(first) != _width(f.lines[anchor]):
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: {_short(first)} is added above "
                    f"{_short(f.lines[anchor])} at another indentation",
                    s,
                )
            # Before the anchor itself: the file's blank lines stay above the new lines and
            # the block's (matched) blank lines come between them and the anchor.
            return anchor
        start = j0 - len(lines)
        if start >= lo and all(self.same_line(x, f.lines[start + t]) for t, x in enumerate(lines)):
            return start
        raise _Refuse(
            "ambiguous",
            f"segment {s + 1}: cannot tell whether {_short(first)} "
            f"replaces lines above {_short(f.lines[anchor])} or is added",
            s,
        )

    def tail(
        self,
        s: int,
        lines: list[str],
        j1: int,
        hi: int,
        matched: dict[int, int],
        reindent: _Reindent,
    ) -> int:
        """Where the region ends, given the segment's lines after its last matched one."""
        if not lines:
            return j1 + 1
        f = self.file
        seg = self.segments[s]
        first = next(x for x in lines if not _blank(x))
        last_code = max(j for j in matched.values() if not _blank(f.lines[j]))
        found = self.context_after(lines, j1, hi)
        if found is not None:
            return found
        if self.is_new(first):
            after = f.next_nonblank(j1 + 1)
            if after is not None and (
                _width(f.lines[after]) > _width(first)
                or (_is_closer(f.lines[after]) and _width(f.lines[after]) >= _width(first))
            ):
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: adding {_short(first)} after "
                    f"{_short(f.lines[last_code])} would split a block",
                    s,
                )
            if _opens_block(f.lines[last_code]) and _width(first) > _width(f.lines[last_code]):
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: cannot tell where in "
                    f"{_short(f.lines[last_code])} to add {_short(first)}",
                    s,
                )
            # After the last matched code line: the block's blank lines separate it from the
            # new lines, the file's own blank lines follow them.
            return last_code + 1
        header = self.enclosing_function(matched, j1)
        if header is not None:
            width = _width(f.lines[header])
            elision = seg.elision_after
            if all(_width(x) > width for x in lines if not _blank(x)) and (
                elision is None or reindent.width(elision) <= width
            ):
                end = f.block_end(header)
                if end <= hi:
                    return max(end, j1 + 1)
        # The lines are the end of the block they are in (the elision after them is less
        # indented, or the block ends, or they end with a return/raise/break/continue, after
        # which nothing can follow): they replace what is left of that block in the file,
        # when that is no more lines than they are.
        width = min(_width(x) for x in lines if not _blank(x))
        rest = 0
        end = j1 + 1
        for k in range(j1 + 1, f.n):
            if _blank(f.lines[k]):
                continue
            if f.code[k] and _width(f.lines[k]) < width:
                break
            rest += 1
            end = k + 1
        elision = seg.elision_after
        closes = (
            (elision is None and s == len(self.segments) - 1)
            or (elision is not None and reindent.width(elision) < width)
            or (_TERMINAL.match(lines[-1]) is not None and _width(lines[-1]) == width)
        )
        if rest == 0 or (closes and rest <= sum(1 for x in lines if not _blank(x)) and end <= hi):
            return end
        end = j1 + 1 + len(lines)
        if end <= hi and all(self.same_line(x, f.lines[j1 + 1 + t]) for t, x in enumerate(lines)):
            return end
        raise _Refuse(
            "ambiguous",
            f"segment {s + 1}: cannot tell whether {_short(first)} "
            f"replaces lines below {_short(f.lines[last_code])} or is added",
            s,
        )

    def _matches(self, lines: Sequence[str], at: int) -> bool:
        return all(_norm(x) == self.file.norms[at + t] for t, x in enumerate(lines))

    def context_after(self, lines: Sequence[str], j1: int, hi: int) -> int | None:
        """The end of the region when the segment's last lines are context found once just
        below ``j1`` (the lines before them replace what lies between): the longest such
        context wins; None when there is none."""
        for d in range(1, len(lines)):
            context = lines[d:]
            if all(_blank(x) for x in context):
                break
            # Context too common to anchor on is only looked for where the d new lines would
            # replace at most d lines.
            reach = MAX_UNMARKED_DROP if any(_anchorable(_norm(x)) for x in context) else 0
            last = min(hi, j1 + 1 + d + reach + len(context)) - len(context)
            hits = [p for p in range(j1 + 1, last + 1) if self._matches(context, p)]
            if len(hits) == 1:
                return hits[0] + len(context)
            if hits:
                return None
        return None

    def context_before(self, lines: Sequence[str], j0: int, lo: int) -> int | None:
        """The start of the region when the segment's first lines are context found once
        just above ``j0`` (mirror of ``context_after``)."""
        for d in range(1, len(lines)):
            context = lines[: len(lines) - d]
            if all(_blank(x) for x in context):
                break
            reach = MAX_UNMARKED_DROP if any(_anchorable(_norm(x)) for x in context) else 0
            first = max(lo, j0 - d - reach - len(context))
            hits = [q for q in range(first, j0 - len(context) + 1) if self._matches(context, q)]
            if len(hits) == 1:
                return hits[0]
            if hits:
                return None
        return None

    def container_end(self, s: int, previous: Sequence[_Anchor]) -> int:
        """Where the block ends that segment ``s`` lies in, by indentation: when the previous
        segment shows a header whose block it ends in, and the elision between them and
        segment ``s`` are indented deeper than that header, segment ``s`` is in its body."""
        f = self.file
        seg = self.segments[s]
        prev_lines = self.segments[s - 1].lines
        if seg.elision_before is None:
            return f.n
        deeper = min(_width(seg.elision_before), min(_width(x) for x in seg.lines if not _blank(x)))
        last = previous[-1].j
        best: tuple[int, int] | None = None
        for a in previous:
            line = f.lines[a.j]
            if (f.definition(a.j) is not None or _opens_block(line)) and (
                _width(prev_lines[a.i]) < deeper
                and f.block_end(a.j) > last
                and (best is None or a.j > best[0])
            ):
                best = (a.j, f.block_end(a.j))
        return best[1] if best is not None else f.n

    def enclosing_function(self, matched: dict[int, int], j1: int) -> int | None:
        f = self.file
        best: int | None = None
        for j in matched.values():
            if j <= j1 and f.function(j) is not None and f.block_end(j) > j1:
                best = j if best is None else max(best, j)
        return best

    # -- segments without an anchor ----------------------------------------------------------

    def import_section_end(self) -> int | None:
        """One past the last line of the file's leading imports, None when it has none.

        The leading part is a shebang, comments, a module docstring, package lines and
        top-level imports (with their parenthesised continuation lines); other code ends it."""
        f = self.file
        end: int | None = None
        j = 0
        while j < f.n:
            line = f.lines[j]
            stripped = line.strip()
            if not stripped or _width(line) > 0:
                j += 1
                continue
            if _import_module(line) is not None or re.match(r"import\s*\(", stripped):
                depth = line.count("(") - line.count(")")
                j += 1
                while depth > 0 and j < f.n:
                    depth += f.lines[j].count("(") - f.lines[j].count(")")
                    j += 1
                end = j
                continue
            if end is None and stripped.startswith(('"""', "'''", 'r"""')):
                inside = _toggles_string(line, False)
                j += 1
                while inside and j < f.n:
                    inside = _toggles_string(f.lines[j], inside)
                    j += 1
                continue
            if stripped.startswith(
                ("#", "//", "/*", "*", "--", "package ", "module ", '"use strict"', "'use strict'")
            ):
                j += 1
                continue
            break
        return end

    def place_imports(self, s: int) -> tuple[int, int, list[str | int]]:
        at = self.import_section_end()
        if at is None:
            raise _Refuse(
                "no_anchor",
                f"segment {s + 1}: the file has no import section to add these imports to",
                s,
            )
        f = self.file
        lines = self.segments[s].lines
        for line in lines:
            module = _import_module(line)
            if module is None or module not in f.imports:
                continue
            # One import line that changes the file's one single-line import of that module
            # (``from m import a`` -> ``from m import a, b``) replaces it in place.
            same = [
                j
                for j in range(at)
                if f.code[j] and _width(f.lines[j]) == 0 and _import_module(f.lines[j]) == module
            ]
            if (
                len(lines) == 1
                and len(same) == 1
                and _width(line) == 0
                and _single_import(line)
                and _single_import(f.lines[same[0]])
            ):
                return same[0], same[0] + 1, [line]
            raise _Refuse(
                "ambiguous",
                f"segment {s + 1}: {_short(line)} changes an import "
                f"of {module} the file already has: cannot tell which line it "
                "replaces",
                s,
            )
        return at, at, list(self._shift(s, lines, ""))

    def place_last_definition(
        self,
        s: int,
        previous: tuple[int, dict[int, int]] | None,
    ) -> tuple[int, int, list[str | int], str]:
        """A new definition after an elision at the end of the block: at the end of the class
        the previous segment shows, or of the file."""
        f = self.file
        seg = self.segments[s]
        first = seg.lines[0]
        if previous is not None:
            prev_s, matched = previous
            prev_lines = self.segments[prev_s].lines
            best: tuple[int, int] | None = None  # (file line, segment line) of the class
            for i, j in matched.items():
                if (
                    f.klass(j) is not None
                    and _width(prev_lines[i]) < _width(first)
                    and (best is None or j > best[0])
                ):
                    best = (j, i)
            if best is not None:
                header, i = best
                end = f.block_end(header)
                body = f.next_nonblank(header + 1)
                if body is None or body >= end:
                    raise _Refuse(
                        "no_anchor",
                        f"segment {s + 1}: the class "
                        f"{_short(f.lines[header])} has no body to add to",
                        s,
                    )
                target = _indent(f.lines[body])
                lines = self._shift(s, seg.lines, target)
                gap = self._separation(header, end, _width(target), seg.blank_before)
                return end, end, [*[""] * gap, *lines], "end of class"
            after = self.after_definition(s, prev_s, matched)
            if after is not None:
                return after
        if _width(first) == min(_width(x) for x in seg.lines if not _blank(x)):
            end = len(f.lines)
            while end > 0 and _blank(f.lines[end - 1]):
                end -= 1
            lines = self._shift(s, seg.lines, "")
            gap = self._separation(-1, end, 0, seg.blank_before) if end else 0
            return end, end, [*[""] * gap, *lines], "end of file"
        raise _Refuse("no_anchor", f"segment {s + 1}: no line of it matches the file", s)

    def _shift(self, s: int, lines: Sequence[str], target: str) -> list[str]:
        reindent = _reindent_between(_indent(lines[0]), target)
        if reindent.kind == "levels":
            raise _Refuse(
                "ambiguous", f"segment {s + 1}: cannot map its indentation onto the file's", s
            )
        out = []
        for line in lines:
            shifted = reindent.apply(line)
            if shifted is None:
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: {_short(line)} is less indented than its first line",
                    s,
                )
            out.append(shifted)
        return out

    def after_definition(
        self, s: int, prev_s: int, matched: dict[int, int]
    ) -> tuple[int, int, list[str | int], str] | None:
        """A new definition after ``def f(...):`` and an elision indented into ``f`` (it
        stands for the rest of ``f``'s body), at ``f``'s level: right after ``f`` -- where the
        block shows it -- not at the end of the file or class. None otherwise."""
        f = self.file
        seg = self.segments[s]
        first = seg.lines[0]
        elision = seg.elision_before or ""
        prev_lines = self.segments[prev_s].lines
        last = max(matched.items(), key=lambda item: item[1], default=None)
        if last is None or _width(elision) <= _width(first):
            return None
        i, j = last
        if f.definition(j) is None or _width(prev_lines[i]) != _width(first):
            return None
        end = f.block_end(j)
        lines = self._shift(s, seg.lines, _indent(f.lines[j]))
        gap = self._separation(-1, end, _width(f.lines[j]), seg.blank_before)
        return end, end, [*[""] * gap, *lines], "after definition"

    def lone_definition(self, s: int) -> bool:
        """Segment ``s`` is the whole block: a new top-level definition (its header at the
        block's least indentation, which is the file's top level) with nothing to anchor it, as
        chat answers "add a function ..." -- it goes at the end of the file, as an editor's
        user expects (and as ``windows.plan_windows`` places it for the model)."""
        seg = self.segments[s]
        header = _past_decorators(seg.lines)
        return (
            len(self.segments) == 1
            and _definition_name(header) is not None
            and _width(seg.lines[0]) == 0
            and _width(header) == 0
        )

    def _separation(self, header: int, end: int, width: int, shown: int) -> int:
        """Blank lines before a definition added at ``width`` in lines (header, end): as the
        block shows, else as before the last sibling definition there, else one."""
        f = self.file
        if shown:
            return shown
        for j in range(end - 1, header, -1):
            line = f.lines[j]
            if not _blank(line) and _width(line) == width and f.definition(j):
                k = j
                while k > 0 and _blank(f.lines[k - 1]):
                    k -= 1
                if k < j:
                    return j - k
        return 1

    # -- everything ---------------------------------------------------------------------------

    def place(self) -> list[tuple[Placement, list[str | int]]]:
        f = self.file
        count = len(self.segments)
        found: list[list[_Anchor] | None] = [None] * count
        progress = True
        while progress:
            progress = False
            for s in range(count):
                if found[s] is not None:
                    continue
                lo = max((a[-1].j + 1 for a in found[:s] if a), default=0)
                hi = min((a[0].j for a in found[s + 1 :] if a), default=f.n)
                before = found[s - 1] if s else None
                if before:
                    hi = min(hi, self.container_end(s, before))
                anchors = self.anchors(s, lo, hi)
                if anchors:
                    found[s] = anchors
                    progress = True
        spans = [(a[0].j, a[-1].j) for a in found if a]
        for (_, end), (start, _) in pairwise(spans):
            if start <= end:
                raise _Refuse("ambiguous", "the block's parts match the file in another order")
        placed: dict[int, tuple[Placement, list[str | int]]] = {}
        matches: dict[int, dict[int, int]] = {}
        lo = 0
        for s in range(count):
            mine = found[s]
            if not mine:
                continue
            hi = min((a[0].j for a in found[s + 1 :] if a), default=f.n)
            before = found[s - 1] if s else None
            if before:
                hi = min(hi, self.container_end(s, before))
            start, end, lines, matches[s] = self.place_anchored(s, mine, lo, hi)
            placed[s] = (Placement(s, start, end, "anchored"), lines)
            lo = end
        for s in range(count):
            if found[s]:
                continue
            seg = self.segments[s]
            code = [x for x in seg.lines if not _blank(x)]
            if all(_import_module(x) is not None for x in code) and all(
                not found[t] for t in range(s)
            ):
                start, end, lines = self.place_imports(s)
                placed[s] = (Placement(s, start, end, "imports"), lines)
            elif (
                s == count - 1
                and seg.elision_after is None
                and self.is_new(_past_decorators(seg.lines))
                and (seg.elision_before is not None or self.lone_definition(s))
            ):
                previous = (s - 1, matches[s - 1]) if s - 1 in matches else None
                start, end, lines, how = self.place_last_definition(s, previous)
                placed[s] = (Placement(s, start, end, how), lines)
            elif self.anchors(s, 0, f.n):
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: it matches the file only out of the block's order",
                    s,
                )
            elif s in self.ambiguity:
                line, places = self.ambiguity[s]
                raise _Refuse(
                    "ambiguous",
                    f"segment {s + 1}: {_short(line)} matches {places} "
                    "places in the file and no line of the segment matches one",
                    s,
                )
            else:
                raise _Refuse(
                    "no_anchor",
                    f"segment {s + 1}: no line of it matches the file "
                    f"(it starts {_short(seg.lines[0])})",
                    s,
                )
        ordered = [placed[s] for s in range(count)]
        for (a, _), (b, _) in pairwise(ordered):
            if b.start < a.end:
                raise _Refuse(
                    "ambiguous",
                    f"segments {a.segment + 1} and {b.segment + 1} overlap in the file",
                    b.segment,
                )
        return ordered


def _assemble(f: _File, placed: Sequence[tuple[Placement, list[str | int]]], trailing: bool) -> str:
    eol = _dominant_eol(f.endings)
    out: list[tuple[str, str]] = []
    pos = 0
    for placement, lines in placed:
        out.extend(
            zip(f.lines[pos : placement.start], f.endings[pos : placement.start], strict=True)
        )
        out.extend((f.lines[x], f.endings[x]) if isinstance(x, int) else (x, eol) for x in lines)
        pos = placement.end
    out.extend(zip(f.lines[pos:], f.endings[pos:], strict=True))
    if not out:
        return ""
    parts = [content + (ending or eol) for content, ending in out[:-1]]
    content, ending = out[-1]
    parts.append(content + ((ending or eol) if trailing else ""))
    return "".join(parts)


def apply_deterministic(original: str, block: str) -> Applied | Refused:
    """The complete new file when every segment of ``block`` anchors unambiguously in
    ``original`` (module doc), else the refusal and its reason (then the model path runs)."""
    parsed = parse_block(block)
    if not parsed.segments:
        return Refused("no_anchor", "the block has no code", None)
    try:
        placer = _Placer(original, parsed)
        placed = placer.place()
    except _Refuse as refusal:
        return Refused(refusal.status, refusal.reason, refusal.segment)
    trailing = original == "" or original.endswith("\n")
    text = _assemble(placer.file, placed, trailing)
    # Never offered when the safety check would flag it: code removed that the block does not
    # account for means the placement misread the block.
    removals = find_unaccounted_removals(original, block, text)
    if removals:
        first = removals[0]
        return Refused(
            "ambiguous",
            f"the placement would remove {_short(first.lines[0])} "
            f"(line {first.start + 1}), which the block does not account for "
            f"({first.reason})",
            None,
        )
    return Applied(text, tuple(p for p, _ in placed))


# ---------------------------------------------------------------------------------------------
# Line endings of a model's answer


def to_file_text(original: str, text: str) -> str:
    """``text`` (a model's answer: LF) with ``original``'s line endings: lines equal to an
    original line keep that line's ending, others take the dominant one; the final newline is
    the original's (present or not)."""
    old, old_endings = _split_lines(original)
    new, _ = _split_lines(text.replace("\r\n", "\n"))
    if not new:
        return ""
    eol = _dominant_eol(old_endings)
    endings = [eol] * len(new)
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            endings[block.b + k] = old_endings[block.a + k] or eol
    trailing = original == "" or original.endswith("\n")
    endings[-1] = endings[-1] if trailing else ""
    return "".join(c + e for c, e in zip(new, endings, strict=True))


# ---------------------------------------------------------------------------------------------
# The safety check


@dataclass(frozen=True)
class Removal:
    """Original lines ``[start, end)`` (0-based) that a result removes unaccounted for."""

    start: int
    end: int
    lines: tuple[str, ...]
    reason: str

    @property
    def count(self) -> int:
        """Non-blank lines removed."""
        return sum(1 for x in self.lines if not _blank(x))


_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")


def find_unaccounted_removals(original: str, block: str, result: str) -> tuple[Removal, ...]:
    """The original code that ``result`` (from any path) removes and ``block`` does not
    account for: removed where the block has no code (under an elision, or outside the block),
    or beyond what the code the block shows there can replace; and any removed definition the
    block never names. Whitespace-only changes are not removals."""
    f = _File(original)
    new_lines, _ = _split_lines(result)
    new_norms = [_norm(x) for x in new_lines]
    parsed = parse_block(block)
    opcodes = _opcodes(f.norms, new_norms)
    new_to_old: dict[int, int] = {}
    for tag, a1, a2, b1, _ in opcodes:
        if tag == "equal":
            for k in range(a2 - a1):
                new_to_old[b1 + k] = a1 + k

    # Each segment's lines located in the result, by one monotone alignment of the whole block.
    sequence: list[str] = []
    owners: list[tuple[int, int] | None] = []
    for s, seg in enumerate(parsed.segments):
        for i, line in enumerate(seg.lines):
            sequence.append(_norm(line))
            owners.append((s, i))
        sequence.append(f"\x00elision {s}")
        owners.append(None)
    located: dict[int, dict[int, int]] = defaultdict(dict)  # segment -> line -> result line
    for m in SequenceMatcher(None, sequence, new_norms, autojunk=False).get_matching_blocks():
        for k in range(m.size):
            owner = owners[m.a + k]
            if owner is not None and sequence[m.a + k]:
                located[owner[0]][owner[1]] = m.b + k

    spans: list[tuple[int, int, int | None, int | None]] = []  # result lo/hi, original lo/hi
    rewritten: list[tuple[int, int]] = []  # functions whose whole body a segment replaces
    for s, where in located.items():
        o_lo, o_hi, bodies = _reach(f, parsed.segments[s], where, new_to_old)
        spans.append((min(where.values()), max(where.values()), o_lo, o_hi))
        rewritten.extend(bodies)

    def accounted(o: int, tag: str, b1: int, b2: int) -> bool:
        for r_lo, r_hi, o_lo, o_hi in spans:
            if o_lo is None or o_hi is None:  # all new lines: only inside what it replaced
                if (b1 <= r_hi and b2 - 1 >= r_lo) if tag == "replace" else r_lo < b1 <= r_hi:
                    return True
            elif (
                (b1 <= r_hi + 1 and b2 >= r_lo) if tag == "replace" else r_lo <= b1 <= r_hi + 1
            ) and o_lo <= o <= o_hi:
                return True
        return False

    mentioned = set(_IDENTIFIER.findall("\n".join(parsed.lines)))
    flagged: dict[int, str] = {}
    removed: set[int] = set()
    for tag, a1, a2, b1, b2 in opcodes:
        if tag in ("delete", "replace"):
            removed.update(range(a1, a2))
            for o in range(a1, a2):
                if not accounted(o, tag, b1, b2):
                    flagged[o] = "removed where the block does not show code"
    for o in sorted(removed):
        name = f.definition(o)
        nested = any(start < o < end for start, end in rewritten)
        if name is not None and name not in mentioned and not nested:
            for k in range(o, f.block_end(o)):
                if k in removed:
                    flagged[k] = f"removes {name}, which the block never mentions"
    # A definition's header removed with no header of that name left in the result: the
    # definition is gone although the block may show it (a shorthand ``def f(self, ...):``
    # before an elision is the file's header kept, not a line to drop).
    # (Counted: a class's method may share its name with other classes' methods.)
    before = Counter(n for n in (f.definition(j) for j in range(f.n)) if n is not None)
    after = Counter(n for n in (_definition_name(x) for x in new_lines) if n is not None)
    for o in sorted(removed):
        name = f.definition(o)
        if name is not None and after[name] < before[name] and o not in flagged:
            flagged[o] = f"removes the header of {name}, which the block keeps"

    out: list[Removal] = []
    run: list[int] = []

    def flush() -> None:
        while run and _blank(f.lines[run[-1]]):
            run.pop()
        if any(not _blank(f.lines[k]) for k in run):
            first = next(k for k in run if not _blank(f.lines[k]))
            reasons = Counter(flagged[k] for k in run if k in flagged)
            out.append(
                Removal(
                    first,
                    run[-1] + 1,
                    tuple(f.lines[first : run[-1] + 1]),
                    reasons.most_common(1)[0][0],
                )
            )
        run.clear()

    for o in range(f.n):
        if o in flagged or (run and o in removed and _blank(f.lines[o])):
            run.append(o)
        else:
            flush()
    flush()
    return tuple(out)


_OPCODE_MARGIN = 64


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """``SequenceMatcher(a, b).get_opcodes()`` with the common first and last lines taken as
    equal up front (an edit touches a small part of a big file: the matcher then only sees
    that part)."""
    n = min(len(a), len(b))
    head = 0
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    # The matcher still sees a margin of the equal lines on each side, so that it aligns
    # the changed part as it would in the whole file (a greedy cut could pair a repeated
    # last line with the wrong one).
    head = max(0, head - _OPCODE_MARGIN)
    tail = max(0, tail - _OPCODE_MARGIN)
    out: list[tuple[str, int, int, int, int]] = []
    if head:
        out.append(("equal", 0, head, 0, head))
    middle = SequenceMatcher(
        None, a[head : len(a) - tail], b[head : len(b) - tail], autojunk=False
    ).get_opcodes()
    for tag, a1, a2, b1, b2 in middle:
        if a1 == a2 and b1 == b2:
            continue
        out.append((tag, a1 + head, a2 + head, b1 + head, b2 + head))
    if tail:
        out.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return out


def _reach(
    f: _File,
    seg: Segment,
    where: dict[int, int],
    new_to_old: dict[int, int],
) -> tuple[int | None, int | None, list[tuple[int, int]]]:
    """The original lines ``[lo, hi]`` a segment can replace (None: it keeps no original
    line): from its first to its last line kept from the original, widened by its unmatched
    lines at each edge and to the end of a function whose header and new body it shows; and
    those functions' ``(header, end)``."""
    kept = {
        i: new_to_old[r] for i, r in where.items() if r in new_to_old and not _blank(seg.lines[i])
    }
    if not kept:
        return None, None, []
    first_i, last_i = min(kept), max(kept)
    lo = kept[first_i] - first_i
    hi = kept[last_i] + (len(seg.lines) - 1 - last_i)
    bodies: list[tuple[int, int]] = []
    code = _code_flags(seg.lines)
    for i, line in enumerate(seg.lines):
        name = _function_name(line) if code[i] else None
        if name is None:
            continue
        if i in kept:
            header = kept[i]
        else:
            positions = f.by_def.get(name, [])
            if len(positions) != 1:
                continue
            header = positions[0]
        width = _width(line)
        body = [x for x in seg.lines[i + 1 :] if not _blank(x)]
        after = seg.elision_after
        if (
            body
            and all(_width(x) > width for x in body)
            and (after is None or _width(after) <= width)
        ):
            hi = max(hi, f.block_end(header) - 1)
            lo = min(lo, header)
            bodies.append((header, f.block_end(header)))
    return lo, hi, bodies


# ---------------------------------------------------------------------------------------------
# A rewrite that is not a file to apply

# A block with elisions asks to keep what they stand for: a result shorter than this share of
# the original's non-blank lines that removes at least that share unaccounted for dropped the
# file rather than edited it.
MOST_OF_THE_FILE = 0.5


@dataclass(frozen=True)
class RewriteDefect:
    """Why a result is not a file to apply (``find_rewrite_defect``)."""

    kind: Literal["elision", "dropped", "missed"]
    line: int  # 0-based: the result's marker line ("elision"); the original's first removed
    #            line ("dropped")
    text: str  # that line
    message: str  # what went wrong, for the user (a clause: the caller says what follows)


def _marker_key(line: str) -> str | None:
    """The normalised text of ``line`` when it is an elision marker that cannot be code, else
    None. A bare ``...`` line (also followed by a comment) is Python's Ellipsis (a stub's
    body), so it does not count: only comments (``# ... existing code ...``) and ``…``."""
    stripped = line.strip()
    if stripped.startswith("...") or not is_elision(line):
        return None
    return _norm(line)


def find_rewrite_defect(
    original: str, block: str, result: str, removals: Sequence[Removal] | None = None
) -> RewriteDefect | None:
    """Why ``result`` (a rewrite of ``original`` for ``block``, from any path) must not be
    offered as the new file, or None:

    - "elision": it has an elision marker line (``# ... existing code ...``,
      ``// rest unchanged``) that the original does not have (or has fewer of): the writer
      left a placeholder where the file's code should be;
    - "dropped": the block has elisions (it asks to keep the rest), yet the result has fewer
      than ``MOST_OF_THE_FILE`` of the original's non-blank lines and removes at least that
      share unaccounted for (``find_unaccounted_removals``; pass ``removals`` when they are
      already computed).

    A block without elisions may be a whole new file: what it removes is for the review's
    safety warning, not a defect."""
    have: Counter[str] = Counter()
    for line in _split_lines(original)[0]:
        key = _marker_key(line)
        if key is not None:
            have[key] += 1
    new_lines = _split_lines(result)[0]
    for n, line in enumerate(new_lines):
        key = _marker_key(line)
        if key is None:
            continue
        if have[key] > 0:
            have[key] -= 1
            continue
        return RewriteDefect(
            "elision",
            n,
            line,
            f"the rewrite is not the whole file: its line {n + 1} is the placeholder "
            f"{_short(line)} where the file's code should be",
        )
    if not parse_block(block).elisions:
        return None
    total = sum(1 for x in _split_lines(original)[0] if not _blank(x))
    kept = sum(1 for x in new_lines if not _blank(x))
    if total < 2 or kept >= total * MOST_OF_THE_FILE:
        return None
    if removals is None:
        removals = find_unaccounted_removals(original, block, result)
    removed = sum(r.count for r in removals)
    if removed < total * MOST_OF_THE_FILE:
        return None
    first = removals[0]
    return RewriteDefect(
        "dropped",
        first.start,
        first.lines[0],
        f"the rewrite drops {removed} of the file's {total} lines that the block does not "
        f"touch (from line {first.start + 1}), though the block asks to keep them",
    )


def _full_signature(line: str) -> bool:
    """A function header written out on one line (``def wrap(text, width=72):``), not a
    shorthand (``def send(self, ...):``) nor a class line (``class Foo:`` may stand for the
    file's ``class Foo(Base):``)."""
    stripped = line.rstrip()
    return (
        _function_name(line) is not None
        and "..." not in line
        and "(" in line
        and ")" in line
        and stripped.endswith((":", "{"))
    )


def find_missed_line(block: str, result: str) -> RewriteDefect | None:
    """A code line of ``block`` that ``result`` (a complete model rewrite for it) does not
    have (whitespace aside), or None: the model left out part of the edit. Class lines,
    shorthand function headers and decorators are not counted (a wrapper such as
    ``class Foo:`` or ``def send(self, ...):`` only says where the code goes; a function
    header written out on one line is counted), nor elisions, blank lines and
    lines of one or two characters (closers), nor imports (a block may reflow them). Not for
    an instruction's rewrite (its block is the selection, the old text)."""
    have = {_norm(x) for x in _split_lines(result)[0]}
    for segment in parse_block(block).segments:
        for line in segment.lines:
            norm = _norm(line)
            if (
                len(norm) <= 2
                or is_elision(line)
                or norm in have
                or norm.startswith("@")
                or _import_module(line) is not None
            ):
                continue
            if _definition_name(line) is not None and not _full_signature(line):
                continue
            return RewriteDefect(
                "missed", 0, line, f"the rewrite leaves out the edit's line {_short(line)}"
            )
    return None


# ---------------------------------------------------------------------------------------------
# The model path's input and prompt

APPLY_PROMPT_VERSION = 1
"""Bumped whenever the rendered prompt of any input changes."""


@dataclass(frozen=True)
class ApplyInput:
    """Everything the model path needs; JSON-able (it crosses to the worker and the service)."""

    path: str  # workspace-relative POSIX path of the file
    language: str  # language id, e.g. "python"
    original: str  # the file's text as in the buffer (any line endings)
    block: str  # the code block, without its fence
    instruction: str = ""  # the user's request (inline edit), "" for a chat block

    def __post_init__(self) -> None:
        for name in ("path", "language", "original", "block", "instruction"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(
                    f"ApplyInput.{name} must be str, got {type(getattr(self, name)).__name__}"
                )

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "language": self.language,
            "original": self.original,
            "block": self.block,
            "instruction": self.instruction,
        }

    @classmethod
    def from_json(cls, d: object) -> ApplyInput:
        """The input ``to_json`` gave; ``ValueError`` on a missing, unknown or mistyped key."""
        keys = ("path", "language", "original", "block", "instruction")
        if not isinstance(d, dict):
            raise ValueError(f"ApplyInput must be a JSON object, got {type(d).__name__}")
        missing = [k for k in keys if k not in d]
        unknown = sorted(str(k) for k in d if k not in keys)
        if missing or unknown:
            raise ValueError(
                f"ApplyInput: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}"
            )
        values = {k: d[k] for k in keys}
        for k, v in values.items():
            if not isinstance(v, str):
                raise ValueError(f"ApplyInput.{k} must be str, got {type(v).__name__}")
        return cls(**values)


@dataclass(frozen=True)
class ApplyPrompt:
    """The rendered prompt: ``text`` is the user's turn (the engine wraps it in the model's
    chat format), ``response_prefix`` starts the model's answer (the opening fence: the answer
    is then the file itself, which speculative edits draft from the original), and generation
    stops at one of ``stop`` (the closing fence)."""

    text: str
    response_prefix: str
    stop: tuple[str, ...]
    version: int


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


def _format_v1(inp: ApplyInput) -> ApplyPrompt:
    original = _with_newline(inp.original.replace("\r\n", "\n"))
    block = _with_newline(inp.block.replace("\r\n", "\n"))
    fence = fence_for(original, block)
    start, end = comment_style(inp.language)
    marker = f"{start} ... existing code ...{' ' + end if end else ''}"
    # The file comes first and the edit last: applies to the same file share the prompt's
    # long prefix, which the engine's KV cache keeps.
    parts = [
        f"Apply an edit to the file {inp.path} and write the complete new file.\n",
        f"File {inp.path}:\n{fence}{inp.language}\n{original}{fence}\n",
    ]
    if inp.instruction.strip():
        parts.append(f"Instruction: {_with_newline(inp.instruction.replace(chr(13), ''))}")
    parts.append(f"Edit:\n{fence}{inp.language}\n{block}{fence}\n")
    parts.append(
        f'The edit shows only what changes. Where it says "{marker}" or similar, or leaves '
        "code out, keep the file's code exactly as it is. Change nothing else and keep the "
        "order of the lines. Answer with the whole new file in one code block and nothing "
        "else."
    )
    return ApplyPrompt("\n".join(parts), f"{fence}{inp.language}\n", (fence,), 1)


_FORMATTERS: dict[int, Callable[[ApplyInput], ApplyPrompt]] = {1: _format_v1}


def format_apply_prompt(inp: ApplyInput, version: int = APPLY_PROMPT_VERSION) -> ApplyPrompt:
    """The model path's prompt for ``inp`` in format ``version``; byte-identical for the same
    input and version wherever it is built (editor, worker, service, benchmark)."""
    formatter = _FORMATTERS.get(version)
    if formatter is None:
        raise ValueError(
            f"unknown apply prompt version {version} (known: "
            f"{', '.join(str(v) for v in sorted(_FORMATTERS))})"
        )
    return formatter(inp)
