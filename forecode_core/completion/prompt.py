"""The completion prompt: a serialisable input, and a versioned formatter that fits it to a budget.

``CompletionInput`` is what the editor knows at the cursor (JSON-able: it crosses the process
boundary to the worker). ``render_prompt`` turns it into the text the model sees. The editor, the
worker, the service and the benchmarks all call it, so the same input, profile and
``PROMPT_FORMAT_VERSION`` always give byte-identical text; bump the version whenever the output
changes (the golden files in tests/golden/prompts/ catch changes that were not meant).

What is kept under the budget, and in what order (version 2)
--------------------------------------------------------------
The prompt is laid out so that its start stays the same while the caret moves: the KV cache
keeps what two requests share at the start (and moves what they share further on), so a
stable start is what makes a caret jump in a big file cheap.

1. **The stable start**: the snippets (recent edits, then open files, then retrieved code,
   each in input order, each whole or not at all; a snippet of the current file inside the
   ``NEAR_LINES`` around the cursor is dropped), the file header, and the *head*: the file's
   first lines past a leading docstring (``HEAD_LINES`` / ``HEAD_CHARS`` at most, kept in
   blocks of ``HEAD_BLOCK`` lines from the top). The editor sends the head apart
   (``CompletionInput.head``) when its window of lines does not reach the top. Head blocks,
   then snippets, are kept by priority as long as they fit ``STABLE_SHARE`` of the budget,
   decided without the window, so the same wherever the cursor is.
2. **The window**: the cursor line always; then the lines above it from a start on a multiple
   of ``WINDOW_GRID`` at least ``NEAR_LINES`` above (the near window), then (FIM) up to
   ``SUFFIX_LINES`` below it one by one, then further ``WINDOW_GRID`` blocks above while the
   budget lasts. A caret that moves a few lines keeps the window's start, so the prompt
   changes only from the old caret on. Where not even the near window fits, whole lines
   above the cursor that do.

Head lines the window also shows are not repeated. ``far=False`` (with a small
``near_lines``, ``grid`` and ``suffix_lines``) renders the worker's first-answer prompt: the
same stable start, only a few lines around the cursor.

``count_tokens`` (a real tokenizer: expensive) is called on whole candidate renderings only:
searches over the cut-off, steered by a guess (from ``estimate_tokens`` when given, else from
character counts). If even the cursor line does not fit (a minified file), it is cut to its last
characters before the cursor and first after it, by another binary search. The token count of
the chosen text is ``token_estimate``; it exceeds the budget only when the headers alone do.

Text: ``\\r\\n`` becomes ``\\n`` everywhere (models are trained on LF; the editor converts a
completion to the document's line ending when inserting).

Formats
-------
Context (both formats): each kept snippet as a comment block in the *edited file's* comment
syntax, least important first so the most relevant sits next to the code, then a header naming
the edited file, then the head (when shown apart). Line-comment languages comment every
snippet line::

    # Path: src/util.py
    # def helper():
    #     return 1
    # Path: src/main.py
    <prefix>

Block-comment languages (HTML, Markdown, CSS...) wrap the snippet in one comment,
``<!-- Path: a.html`` ... ``-->``, and the file header is ``<!-- Path: index.html -->`` (a snippet
line containing the closing marker ends the comment early: accepted, it is only context).

* FIM profiles: ``{fim.prefix}{context}{window}{fim.suffix}{suffix}{fim.middle}`` (the
  Qwen2.5-Coder / StarCoder / CodeGemma file-level FIM order: prefix, suffix, middle).
* Fallback (no FIM tokens, e.g. Gemma 3 270M): ``{context}{window}``. The suffix is not shown
  (the model was not trained to use it) and ranks nowhere; post-processing still uses it.

No BOS is written: the engine adds it when the profile says so.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from forecode_core.jsonshape import check_keys, check_type, get
from forecode_core.profiles import ModelProfile

__all__ = [
    "CONTEXT_LINES_ABOVE",
    "CONTEXT_LINES_BELOW",
    "HEAD_CHARS",
    "HEAD_LINES",
    "HEAD_SEND_LINES",
    "NEAR_LINES",
    "PROMPT_FORMAT_VERSION",
    "SNIPPET_KINDS",
    "SUFFIX_LINES",
    "WINDOW_GRID",
    "CompletionInput",
    "RenderedPrompt",
    "Snippet",
    "comment_style",
    "context_window",
    "input_at",
    "render_prompt",
]

PROMPT_FORMAT_VERSION = 2

# The window above the cursor starts on a line that is a multiple of this, so a caret that moves
# a few lines keeps the same prompt start (the KV cache's prefix stays valid).
WINDOW_GRID = 16
# Lines below the cursor shown to a FIM model (after the cursor line's rest).
SUFFIX_LINES = 8
# The file's first lines shown apart from a window that does not reach them (the stable head:
# imports, module constants): at most this many lines and characters.
HEAD_LINES, HEAD_CHARS = 40, 1600
HEAD_BLOCK = 8  # the head is kept in blocks of this many lines, from the top
# The most of the budget the stable start (the head and the snippets) may take.
STABLE_SHARE = 0.4
# What the editor sends of the file's head when its prefix does not start at the top.
HEAD_SEND_LINES = 160

# What the editor sends around the cursor: this many lines above it and below it (the renderer
# keeps what fits the budget). ``context_window`` / ``input_at`` are the one rule, shared by the
# editor (app.ui.inline_completion) and the benchmarks.
CONTEXT_LINES_ABOVE, CONTEXT_LINES_BELOW = 400, 120

# Lines of distance from the cursor that outrank the snippets.
NEAR_LINES = 32

# Snippet kinds in priority order. "retrieved": chunks the codebase index found for the lines
# around the cursor (app.ui.retrieved_context), the first to give way to the budget.
SNIPPET_KINDS: tuple[str, ...] = ("recent_edit", "open_file", "retrieved")

# A first guess of characters per token, to start the search near the answer (any value is
# correct; a good one saves tokenizer calls).
_CHARS_PER_TOKEN_GUESS = 3.5

# language id -> (comment start, comment end); end "" for line comments.
_COMMENT_STYLES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(
        (
            "python",
            "shell",
            "yaml",
            "toml",
            "makefile",
            "ini",
            "ruby",
            "perl",
            "r",
            "dockerfile",
            "powershell",
            "julia",
            "elixir",
            "nim",
            "diff",
            "plaintext",
        ),
        ("#", ""),
    ),
    **dict.fromkeys(
        (
            "c",
            "cpp",
            "javascript",
            "typescript",
            "javascriptreact",
            "typescriptreact",
            "go",
            "rust",
            "java",
            "kotlin",
            "swift",
            "csharp",
            "scala",
            "dart",
            "php",
            "json",
            "jsonc",
            "zig",
            "scss",
            "less",
        ),
        ("//", ""),
    ),
    **dict.fromkeys(("sql", "lua", "haskell"), ("--", "")),
    **dict.fromkeys(("html", "xml", "markdown", "vue", "svelte"), ("<!--", "-->")),
    "css": ("/*", "*/"),
}
_DEFAULT_COMMENT = ("#", "")


def comment_style(language: str) -> tuple[str, str]:
    """``(start, end)`` of a comment in ``language``; ``end`` is ``""`` for line comments."""
    return _COMMENT_STYLES.get(language, _DEFAULT_COMMENT)


# ---------------------------------------------------------------------------------------------
# The input


@dataclass(frozen=True)
class Snippet:
    path: str  # workspace-relative POSIX path
    text: str
    start_line: int = 1  # 1-based line of text's first line in its file
    kind: str = "open_file"  # one of SNIPPET_KINDS

    def __post_init__(self) -> None:
        check_type("Snippet.path", self.path, str)
        check_type("Snippet.text", self.text, str)
        check_type("Snippet.start_line", self.start_line, int)
        check_type("Snippet.kind", self.kind, str)
        if self.start_line < 1:
            raise ValueError(f"Snippet.start_line must be >= 1, got {self.start_line}")
        if self.kind not in SNIPPET_KINDS:
            raise ValueError(f"Snippet.kind must be one of {SNIPPET_KINDS}, got {self.kind!r}")

    @property
    def end_line(self) -> int:
        """1-based line of the text's last line."""
        return self.start_line + _normalise(self.text).rstrip("\n").count("\n")

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "text": self.text,
            "start_line": self.start_line,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, d: object, where: str = "snippet") -> Snippet:
        obj = check_keys(d, where, ("path", "text", "start_line", "kind"))
        return cls(
            path=get(obj, where, "path", str),
            text=get(obj, where, "text", str),
            start_line=get(obj, where, "start_line", int),
            kind=get(obj, where, "kind", str),
        )


@dataclass(frozen=True)
class CompletionInput:
    path: str  # workspace-relative path of the file being edited
    language: str  # language id, e.g. "python"
    prefix: str  # the file's text before the cursor (all of it; the renderer trims)
    suffix: str  # the file's text after the cursor
    # recent edits, open files, code the codebase index found ("retrieved"); any order: the
    # renderer ranks them by kind (SNIPPET_KINDS), then by input order
    snippets: tuple[Snippet, ...] = ()
    first_line: int = 0  # the 0-based file line ``prefix`` starts on
    head: str = ""  # the file's first lines (from line 0), when first_line > 0

    def __post_init__(self) -> None:
        for name in ("path", "language", "prefix", "suffix", "head"):
            check_type(f"CompletionInput.{name}", getattr(self, name), str)
        check_type("CompletionInput.snippets", self.snippets, tuple)
        for i, s in enumerate(self.snippets):
            check_type(f"CompletionInput.snippets[{i}]", s, Snippet)
        check_type("CompletionInput.first_line", self.first_line, int)
        if self.first_line < 0:
            raise ValueError(f"CompletionInput.first_line must be >= 0, got {self.first_line}")

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "language": self.language,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "snippets": [s.to_json() for s in self.snippets],
            "first_line": self.first_line,
            "head": self.head,
        }

    @classmethod
    def from_json(cls, d: object) -> CompletionInput:
        """The input ``to_json`` gave; ``ValueError`` on a missing, unknown or mistyped key
        (``first_line`` and ``head`` may be absent: an input from before they existed)."""
        where = "CompletionInput"
        if isinstance(d, dict):
            d = {"first_line": 0, "head": "", **d}
        obj = check_keys(
            d, where, ("path", "language", "prefix", "suffix", "snippets", "first_line", "head")
        )
        raw_snippets = get(obj, where, "snippets", list)
        return cls(
            path=get(obj, where, "path", str),
            language=get(obj, where, "language", str),
            prefix=get(obj, where, "prefix", str),
            suffix=get(obj, where, "suffix", str),
            snippets=tuple(
                Snippet.from_json(s, f"{where}.snippets[{i}]") for i, s in enumerate(raw_snippets)
            ),
            first_line=get(obj, where, "first_line", int),
            head=get(obj, where, "head", str),
        )


def context_window(cursor_line: int, line_count: int) -> tuple[int, int]:
    """``(first, end)``: the 0-based lines the editor sends for a cursor on ``cursor_line`` of
    a document of ``line_count`` lines: ``first`` is where the prefix starts, ``end`` (exclusive)
    the line the suffix stops before (``line_count``: the document's end)."""
    first = max(0, cursor_line - CONTEXT_LINES_ABOVE)
    end = min(line_count, cursor_line + CONTEXT_LINES_BELOW)
    if end <= cursor_line:
        end = line_count
    return first, end


def input_at(
    text: str, offset: int, *, path: str, language: str, snippets: tuple[Snippet, ...] = ()
) -> CompletionInput:
    """The input the editor builds for a cursor at character ``offset`` of ``text`` (the
    whole document): what ``InlineCompletion`` sends, for benchmarks and tests."""
    before, after = text[:offset], text[offset:]
    cursor_line = before.count("\n")
    line_count = text.count("\n") + 1
    first, end = context_window(cursor_line, line_count)
    start = 0
    for _ in range(first):
        start = text.index("\n", start) + 1
    stop = len(text)
    if end < line_count:
        stop = offset
        for _ in range(end - cursor_line):
            stop = text.index("\n", stop) + 1
    head_end = 0
    if first > 0:
        for _ in range(min(first, HEAD_SEND_LINES)):
            head_end = text.index("\n", head_end) + 1
    return CompletionInput(
        path=path,
        language=language,
        prefix=text[start:offset],
        suffix=text[offset:stop] if after else "",
        snippets=snippets,
        first_line=first,
        head=text[:head_end],
    )


# ---------------------------------------------------------------------------------------------
# The output


@dataclass(frozen=True)
class RenderedPrompt:
    text: str  # the prompt to tokenize (no BOS)
    prefix_lines: int  # window lines kept above and at the cursor, the cursor line's part counted
    suffix_lines: int  # suffix lines shown, the cursor line's part counted (0 without FIM)
    snippets_included: tuple[str, ...]  # "path:start_line" of each kept snippet, by priority
    token_estimate: int  # count_tokens(text)
    version: int  # PROMPT_FORMAT_VERSION
    head_lines: int = 0  # the file's first lines shown apart from the window (0: none)
    window_start: int = 0  # 0-based file line where the window starts


# ---------------------------------------------------------------------------------------------
# Rendering

_NEAR, _SUFFIX, _HEAD, _SNIPPET, _FAR = 0, 1, 2, 3, 4


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n")


def _snippet_block(snippet: Snippet, style: tuple[str, str]) -> str:
    start, end = style
    body = _normalise(snippet.text)
    if body.endswith("\n"):
        body = body[:-1]
    if end:
        return f"{start} Path: {snippet.path}\n{body}\n{end}\n"
    lines = "".join(f"{start} {line}\n" if line else f"{start}\n" for line in body.split("\n"))
    return f"{start} Path: {snippet.path}\n{lines}"


def _file_header(path: str, style: tuple[str, str]) -> str:
    start, end = style
    return f"{start} Path: {path} {end}\n" if end else f"{start} Path: {path}\n"


def _grid_floor(line: int, grid: int = WINDOW_GRID) -> int:
    return line - line % grid


@dataclass(frozen=True)
class _Plan:
    """Everything render needs, precomputed once; ``_cut(plan, k)`` keeps the first k elements
    of ``order`` (the cursor line is always kept)."""

    lines: list[str]  # the prefix's lines; the last one is the cursor line's part
    first_line: int  # the file line of lines[0]
    head: list[str]  # the file's first lines, shown apart when the window does not reach them
    head_start: int  # the file line of head[0] (past a leading docstring)
    suffix_lines: list[str]  # the first one is the cursor line's part (empty list: not shown)
    snippets: list[Snippet]  # in priority order
    blocks: list[str]  # their rendered comment blocks
    near_start: int  # file line where the near window starts
    far_starts: list[int]  # the window's start with 1, 2, ... far blocks kept
    order: list[tuple[int, int]]  # (element kind, index) in priority order
    header: str
    profile: ModelProfile

    @property
    def cursor_line(self) -> int:
        return self.first_line + len(self.lines) - 1


def _plan(
    inp: CompletionInput, profile: ModelProfile, near_lines: int, suffix_lines_max: int, grid: int
) -> _Plan:
    style = comment_style(inp.language)
    lines = _normalise(inp.prefix).split("\n")
    first = inp.first_line
    cursor = first + len(lines) - 1
    show_suffix = profile.fim is not None
    suffix_lines = _normalise(inp.suffix).split("\n")[: suffix_lines_max + 1] if show_suffix else []
    if first > 0:
        head = _normalise(inp.head).split("\n")[:first]
        if len(head) < first:  # the head does not reach the prefix: it ends with a whole line
            head = head[:-1] if head and not head[-1] else head
    else:
        head = lines[:-1]
    head_start, head = _head_lines(head)
    # The near window: at least ``near_lines`` lines above the cursor, starting on the grid.
    near = max(first, _grid_floor(max(0, cursor - near_lines), grid))
    fars: list[int] = []
    start = near
    while start > first:
        start = max(first, start - WINDOW_GRID)
        fars.append(start)
    # A snippet of this file inside the lines that outrank it repeats them (without FIM only the
    # lines above the cursor are shown).
    near_top = cursor + 1 - NEAR_LINES
    near_bottom = cursor + 1 + NEAR_LINES if show_suffix else cursor

    def redundant(s: Snippet) -> bool:
        return s.path == inp.path and s.start_line >= near_top and s.end_line <= near_bottom

    rank = {kind: i for i, kind in enumerate(SNIPPET_KINDS)}
    snippets = sorted(
        (s for s in inp.snippets if s.text.strip() and not redundant(s)), key=lambda s: rank[s.kind]
    )  # stable: input order within a kind
    order: list[tuple[int, int]] = []
    if near < cursor:
        order.append((_NEAR, 0))
    order += [(_SUFFIX, d) for d in range(1, len(suffix_lines))]
    if head and near > head_start:
        order += [(_HEAD, i) for i in range(-(-len(head) // HEAD_BLOCK))]
    order += [(_SNIPPET, i) for i in range(len(snippets))]
    order += [(_FAR, j) for j in range(len(fars))]
    return _Plan(
        lines,
        first,
        head,
        head_start,
        suffix_lines,
        snippets,
        [_snippet_block(s, style) for s in snippets],
        near,
        fars,
        order,
        _file_header(inp.path, style),
        profile,
    )


_DOCSTRING_QUOTES = ('"""', "'''")


def _skip_docstring(lines: list[str]) -> int:
    """The first line after a leading triple-quoted string (a module docstring), else 0."""
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
        i += 1
    if i == len(lines):
        return 0
    text = lines[i].lstrip().lstrip("rRbBuU")
    quote = next((q for q in _DOCSTRING_QUOTES if text.startswith(q)), None)
    if quote is None:
        return 0
    rest = text[3:]
    j = i
    while quote not in rest:
        j += 1
        if j == len(lines):
            return 0
        rest = lines[j]
    return j + 1


def _head_lines(lines: list[str]) -> tuple[int, list[str]]:
    """``(first line, lines)``: the file's top lines that are shown apart from the window
    (past a leading docstring): up to ``HEAD_LINES`` lines and ``HEAD_CHARS`` characters, whole
    lines, without blank lines at either end. Decided from the file's top alone, so it is the
    same wherever the cursor is."""
    start = _skip_docstring(lines)
    while start < len(lines) and not lines[start].strip():
        start += 1
    out: list[str] = []
    chars = 0
    for line in lines[start : start + HEAD_LINES]:
        chars += len(line) + 1
        if chars > HEAD_CHARS:
            break
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return start, out


@dataclass(frozen=True)
class _Cut:
    window_start: int  # file line
    window_lines: int  # shown in the window above the cursor line (0: the cursor line alone)
    suffix_lines: int
    head: int  # blocks of the head shown
    snippets: tuple[int, ...]  # indices into _Plan.snippets, in priority order


def _cut(plan: _Plan, k: int, window_lines: int | None = None) -> _Cut:
    """The first ``k`` elements: the cursor line plus ``order[:k - 1]`` (``window_lines``: a
    window of that many lines instead, for when not even the near window fits)."""
    cursor = plan.cursor_line
    start = cursor
    n_suf = 1 if plan.suffix_lines else 0
    head = 0
    snippets: list[int] = []
    for kind, index in plan.order[: k - 1]:
        if kind == _NEAR:
            start = plan.near_start
        elif kind == _SUFFIX:
            n_suf += 1
        elif kind == _HEAD:
            head = max(head, index + 1)
        elif kind == _SNIPPET:
            snippets.append(index)
        else:
            start = plan.far_starts[index]
    if window_lines is not None:
        start = cursor - window_lines
    return _Cut(start, cursor - start, n_suf, head, tuple(snippets))


def _text(plan: _Plan, cut: _Cut, cursor_chars: int | None = None) -> str:
    pre = plan.lines[cut.window_start - plan.first_line :]
    suf = plan.suffix_lines[: cut.suffix_lines]
    if cursor_chars is not None:  # the cursor line alone is over budget: cut it
        pre = [pre[-1][len(pre[-1]) - cursor_chars :]]
        suf = [suf[0][:cursor_chars]] if suf else []
    head = ""
    if cut.head:
        # lines the window shows are not repeated
        shown = plan.head[: min(cut.head * HEAD_BLOCK, max(0, cut.window_start - plan.head_start))]
        head = "".join(line + "\n" for line in shown)
    context = "".join(plan.blocks[i] for i in reversed(cut.snippets)) + plan.header + head
    prefix = "\n".join(pre)
    fim = plan.profile.fim
    if fim is None:
        return context + prefix
    suffix = "\n".join(suf)
    return f"{fim.prefix}{context}{prefix}{fim.suffix}{suffix}{fim.middle}"


def _element_text(plan: _Plan, kind: int, index: int) -> list[str]:
    """The pieces (lines with their line break, blocks) an element adds."""
    base = plan.first_line
    if kind == _NEAR:
        return [line + "\n" for line in plan.lines[plan.near_start - base : -1]]
    if kind == _SUFFIX:
        return [plan.suffix_lines[index] + "\n"]
    if kind == _HEAD:
        return [line + "\n" for line in plan.head[index * HEAD_BLOCK : (index + 1) * HEAD_BLOCK]]
    if kind == _SNIPPET:
        return [plan.blocks[index]]
    end = plan.near_start if index == 0 else plan.far_starts[index - 1]
    return [line + "\n" for line in plan.lines[plan.far_starts[index] - base : end - base]]


def _largest_fitting(n: int, guess: int, fits: Callable[[int], bool]) -> int:
    """The largest k in [1, n] with fits(k) (fits is taken as monotone), 0 if none.

    Probes ``guess`` first, then gallops away from it (steps 1, 2, 4, ...) up while it fits
    or down while it does not, then bisects the last step: a guess that is right costs two
    probes, one that is d off about 2 log2(d).
    """
    guess = min(max(guess, 1), n)
    if fits(guess):
        lo, hi, step = guess, n + 1, 1  # fits(hi) does not hold (n + 1: vacuously)
        while lo < n:
            probe = min(n, lo + step)
            if not fits(probe):
                hi = probe
                break
            lo, step = probe, step * 2
    else:
        lo, hi, step = 0, guess, 1  # fits(lo) holds (0: vacuously)
        while hi > 1:
            probe = max(1, hi - step)
            if fits(probe):
                lo = probe
                break
            hi, step = probe, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _fitted_plan(
    inp: CompletionInput,
    profile: ModelProfile,
    count: Callable[[str], int],
    budget_tokens: int,
    *,
    near_lines: int = NEAR_LINES,
    far: bool = True,
    suffix_lines: int = SUFFIX_LINES,
    grid: int = WINDOW_GRID,
    estimate_tokens: Callable[[str], int] | None = None,
) -> _Plan:
    """The plan whose ``order`` render_prompt searches: the stable start first (the head's
    blocks, then the snippets, by priority, as many as fit ``STABLE_SHARE`` of the budget,
    decided without the window, so the same wherever the cursor is), then the near window,
    the suffix lines and (``far``) the far blocks."""
    plan = _plan(inp, profile, near_lines, suffix_lines, grid)
    stable = [e for e in plan.order if e[0] in (_HEAD, _SNIPPET)]
    window = [e for e in plan.order if e[0] in (_NEAR, _SUFFIX) or (far and e[0] == _FAR)]
    if stable:
        alone = dataclasses.replace(plan, order=stable)
        limit = budget_tokens * STABLE_SHARE
        guess = len(stable) + 1
        if estimate_tokens is not None:  # steers the search only (as in render_prompt)
            total = count(_text(alone, _cut(alone, 1)))
            guess = 1
            for element in stable:
                total += sum(estimate_tokens(p) for p in _element_text(plan, *element))
                if total > limit:
                    break
                guess += 1
        j = (
            _largest_fitting(
                len(stable) + 1, guess, lambda k: count(_text(alone, _cut(alone, k))) <= limit
            )
            - 1
        )
        stable = stable[: max(0, j)]
    return dataclasses.replace(
        plan, order=stable + window, far_starts=plan.far_starts if far else []
    )


def render_prompt(
    inp: CompletionInput,
    profile: ModelProfile,
    count_tokens: Callable[[str], int],
    budget_tokens: int,
    *,
    estimate_tokens: Callable[[str], int] | None = None,
    near_lines: int = NEAR_LINES,
    far: bool = True,
    suffix_lines: int = SUFFIX_LINES,
    grid: int = WINDOW_GRID,
) -> RenderedPrompt:
    """The prompt for ``inp`` in ``profile``'s format, within ``budget_tokens`` (module doc).

    ``count_tokens`` is exact and may be slow (the model's tokenizer over the whole text);
    the result depends on it only. ``estimate_tokens``, when given, prices one piece (a
    line with its line break, a snippet block) quickly — the worker caches the count of every
    line it has seen — and only steers the search: with it, a request usually costs two or
    three exact counts instead of about ten.

    ``near_lines``: the least the window shows above the cursor before anything else is added
    (its start on a multiple of ``grid``); ``far=False`` stops there, and ``suffix_lines``
    caps the lines shown below the cursor line (the small first-answer prompt: the same head
    and snippets, so it shares the cached start of the full one)."""
    counts: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in counts:
            counts[text] = count_tokens(text)
        return counts[text]

    plan = _fitted_plan(
        inp,
        profile,
        count,
        budget_tokens,
        near_lines=near_lines,
        far=far,
        suffix_lines=suffix_lines,
        grid=grid,
        estimate_tokens=estimate_tokens,
    )
    n = 1 + len(plan.order)
    if estimate_tokens is not None:
        # est[k - 1]: the estimated count of the first k elements (k = 1 is exact: the cursor
        # line in the format's frame). Pieces priced alone miss merges across line breaks, so
        # one exact count at the first guess rescales the rest: usually right to a line or two.
        est = [count(_text(plan, _cut(plan, 1)))]
        while len(est) < n and est[-1] <= 2 * budget_tokens:
            pieces = _element_text(plan, *plan.order[len(est) - 1])
            est.append(est[-1] + sum(estimate_tokens(p) for p in pieces))

        def last_within(limit: float) -> int:
            return max(1, bisect.bisect_right(est, limit))

        guess = last_within(budget_tokens)
        if guess > 1:
            scale = count(_text(plan, _cut(plan, guess))) / est[guess - 1]
            if scale > 0:
                guess = last_within(budget_tokens / scale)
    else:
        char_budget = budget_tokens * _CHARS_PER_TOKEN_GUESS
        guess, chars = 1, len(_text(plan, _cut(plan, 1)))
        while guess < n:
            chars += sum(len(p) for p in _element_text(plan, *plan.order[guess - 1]))
            if chars > char_budget:
                break
            guess += 1

    k = _largest_fitting(n, guess, lambda k: count(_text(plan, _cut(plan, k))) <= budget_tokens)
    cursor_chars: int | None = None
    if k >= 1 and (_NEAR, 0) in plan.order[k - 1 :]:
        # Not even the near window fits: as many whole lines above the cursor as do.
        most = plan.cursor_line - plan.near_start
        guess = 1
        if estimate_tokens is not None:
            total = count(_text(plan, _cut(plan, k, 0)))
            for line in reversed(plan.lines[plan.near_start - plan.first_line : -1]):
                total += estimate_tokens(line + "\n")
                if total > budget_tokens:
                    break
                guess += 1
        w = _largest_fitting(
            most + 1, guess, lambda w: count(_text(plan, _cut(plan, k, w - 1))) <= budget_tokens
        )
        cut = _cut(plan, k, max(0, w - 1))
    else:
        cut = _cut(plan, max(k, 1))
    if k == 0:
        longest = max(len(plan.lines[-1]), len(plan.suffix_lines[0]) if plan.suffix_lines else 0)
        cursor_chars = max(
            0,
            _largest_fitting(
                longest + 1,
                max(1, longest // 2),
                lambda c: count(_text(plan, cut, c - 1)) <= budget_tokens,
            )
            - 1,
        )
    text = _text(plan, cut, cursor_chars)
    return RenderedPrompt(
        text=text,
        prefix_lines=cut.window_lines + 1 if cursor_chars is None else 1,
        suffix_lines=cut.suffix_lines,
        snippets_included=tuple(
            f"{plan.snippets[i].path}:{plan.snippets[i].start_line}" for i in cut.snippets
        ),
        token_estimate=count(text),
        version=PROMPT_FORMAT_VERSION,
        head_lines=min(
            len(plan.head), cut.head * HEAD_BLOCK, max(0, cut.window_start - plan.head_start)
        ),
        window_start=cut.window_start,
    )
