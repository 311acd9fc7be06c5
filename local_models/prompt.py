"""The completion prompt: a serialisable input, and a versioned formatter that fits it to a budget.

``CompletionInput`` is what the editor knows at the cursor (JSON-able: it crosses the process
boundary to the worker). ``render_prompt`` turns it into the text the model sees. The editor, the
worker, the service and the benchmarks all call it, so the same input, profile and
``PROMPT_FORMAT_VERSION`` always give byte-identical text; bump the version whenever the output
changes (the golden files in tests/golden/prompts/ catch changes that were not meant).

What is kept under the budget (the Priompt idea: priorities, then the highest cutoff that fits)
-------------------------------------------------------------------------------------------------
Elements in falling priority:

1. the cursor line (the prefix's last line and the suffix's first line), always kept;
2. the lines within ``NEAR_LINES`` of the cursor, by distance: the prefix line ``d`` above, then
   the suffix line ``d`` below (the prefix wins ties: the model continues it), ``d = 1, 2, ...``;
3. the snippets: recent edits, then open files, then retrieved ones, each in input order, each
   whole or not at all (a snippet of the current file that lies inside the near window is dropped:
   it repeats lines that are kept before it anyway);
4. the farther lines, by distance, as in 2.

The kept elements are always the first ``k`` of that list, so the kept prefix is a contiguous run
of lines ending at the cursor and the kept suffix one starting at it. ``count_tokens`` (a real
tokenizer: expensive) is called on whole candidate renderings only: a guess of ``k`` from the
character counts, a galloping search up from it, then a binary search, memoised: O(log n) calls.
If even the cursor line does not fit (a minified file), it is cut to its last characters before
the cursor and first after it, by another binary search. The token count of the chosen text is
``token_estimate``; it exceeds the budget only when the headers alone do.

Text: ``\\r\\n`` becomes ``\\n`` everywhere (models are trained on LF; the editor converts a
completion to the document's line ending when inserting).

Formats
-------
Context (both formats): each kept snippet as a comment block in the *edited file's* comment
syntax, least important first so the most relevant sits next to the code, then a header naming
the edited file. Line-comment languages comment every snippet line::

    # Path: src/util.py
    # def helper():
    #     return 1
    # Path: src/main.py
    <prefix>

Block-comment languages (HTML, Markdown, CSS...) wrap the snippet in one comment,
``<!-- Path: a.html`` ... ``-->``, and the file header is ``<!-- Path: index.html -->`` (a snippet
line containing the closing marker ends the comment early: accepted, it is only context).

* FIM profiles: ``{fim.prefix}{context}{prefix}{fim.suffix}{suffix}{fim.middle}``.
* Fallback (no FIM tokens, e.g. Gemma 3 270M): ``{context}{prefix}``. The suffix is not shown
  (the model was not trained to use it) and ranks nowhere; post-processing still uses it.

No BOS is written: the engine adds it when the profile says so.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from local_models.profiles import ModelProfile

__all__ = [
    "NEAR_LINES",
    "PROMPT_FORMAT_VERSION",
    "SNIPPET_KINDS",
    "CompletionInput",
    "RenderedPrompt",
    "Snippet",
    "comment_style",
    "render_prompt",
]

PROMPT_FORMAT_VERSION = 1

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
        ("python", "shell", "yaml", "toml", "makefile", "ini", "ruby", "perl", "r", "dockerfile",
         "powershell", "julia", "elixir", "nim", "diff", "plaintext"), ("#", "")),
    **dict.fromkeys(
        ("c", "cpp", "javascript", "typescript", "javascriptreact", "typescriptreact", "go",
         "rust", "java", "kotlin", "swift", "csharp", "scala", "dart", "php", "json", "jsonc",
         "zig", "scss", "less"), ("//", "")),
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
        _check_type("Snippet.path", self.path, str)
        _check_type("Snippet.text", self.text, str)
        _check_type("Snippet.start_line", self.start_line, int)
        _check_type("Snippet.kind", self.kind, str)
        if self.start_line < 1:
            raise ValueError(f"Snippet.start_line must be >= 1, got {self.start_line}")
        if self.kind not in SNIPPET_KINDS:
            raise ValueError(f"Snippet.kind must be one of {SNIPPET_KINDS}, got {self.kind!r}")

    @property
    def end_line(self) -> int:
        """1-based line of the text's last line."""
        return self.start_line + _normalise(self.text).rstrip("\n").count("\n")

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "text": self.text, "start_line": self.start_line,
                "kind": self.kind}

    @classmethod
    def from_json(cls, d: object, where: str = "snippet") -> Snippet:
        obj = _check_keys(d, where, ("path", "text", "start_line", "kind"))
        return cls(path=_get(obj, where, "path", str), text=_get(obj, where, "text", str),
                   start_line=_get(obj, where, "start_line", int),
                   kind=_get(obj, where, "kind", str))


@dataclass(frozen=True)
class CompletionInput:
    path: str  # workspace-relative path of the file being edited
    language: str  # language id, e.g. "python"
    prefix: str  # the file's text before the cursor (all of it; the renderer trims)
    suffix: str  # the file's text after the cursor
    # recent edits, open files, code the codebase index found ("retrieved"); any order: the
    # renderer ranks them by kind (SNIPPET_KINDS), then by input order
    snippets: tuple[Snippet, ...] = ()

    def __post_init__(self) -> None:
        for name in ("path", "language", "prefix", "suffix"):
            _check_type(f"CompletionInput.{name}", getattr(self, name), str)
        _check_type("CompletionInput.snippets", self.snippets, tuple)
        for i, s in enumerate(self.snippets):
            _check_type(f"CompletionInput.snippets[{i}]", s, Snippet)

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "language": self.language, "prefix": self.prefix,
                "suffix": self.suffix, "snippets": [s.to_json() for s in self.snippets]}

    @classmethod
    def from_json(cls, d: object) -> CompletionInput:
        """The input ``to_json`` gave; ``ValueError`` on a missing, unknown or mistyped key."""
        where = "CompletionInput"
        obj = _check_keys(d, where, ("path", "language", "prefix", "suffix", "snippets"))
        raw_snippets = _get(obj, where, "snippets", list)
        return cls(
            path=_get(obj, where, "path", str),
            language=_get(obj, where, "language", str),
            prefix=_get(obj, where, "prefix", str),
            suffix=_get(obj, where, "suffix", str),
            snippets=tuple(Snippet.from_json(s, f"{where}.snippets[{i}]")
                           for i, s in enumerate(raw_snippets)),
        )


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_type(what: str, value: object, kind: type) -> None:
    # bool is an int to Python, never to us.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{what} must be {kind.__name__}, got {_type_name(value)}")


def _check_keys(d: object, where: str, keys: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {_type_name(d)}")
    missing = [k for k in keys if k not in d]
    unknown = sorted(str(k) for k in d if k not in keys)
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return d


_T = TypeVar("_T")


def _get(obj: dict[str, object], where: str, key: str, kind: type[_T]) -> _T:
    value = obj[key]
    _check_type(f"{where}.{key}", value, kind)
    assert isinstance(value, kind)
    return value


# ---------------------------------------------------------------------------------------------
# The output


@dataclass(frozen=True)
class RenderedPrompt:
    text: str  # the prompt to tokenize (no BOS)
    prefix_lines: int  # prefix lines kept, the cursor line's part counted
    suffix_lines: int  # suffix lines shown, the cursor line's part counted (0 without FIM)
    snippets_included: tuple[str, ...]  # "path:start_line" of each kept snippet, by priority
    token_estimate: int  # count_tokens(text)
    version: int  # PROMPT_FORMAT_VERSION


# ---------------------------------------------------------------------------------------------
# Rendering

_PREFIX, _SUFFIX, _SNIPPET = 0, 1, 2


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


@dataclass(frozen=True)
class _Plan:
    """Everything render needs, precomputed once; ``render(k)`` keeps the first k elements."""

    prefix_lines: list[str]  # the last one is the cursor line's part
    suffix_lines: list[str]  # the first one is the cursor line's part (empty list: not shown)
    snippets: list[Snippet]  # in priority order
    blocks: list[str]  # their rendered comment blocks
    order: list[tuple[int, int]]  # (element kind, index) in priority order, after the cursor line
    header: str
    profile: ModelProfile


def _plan(inp: CompletionInput, profile: ModelProfile) -> _Plan:
    style = comment_style(inp.language)
    prefix_lines = _normalise(inp.prefix).split("\n")
    show_suffix = profile.fim is not None
    suffix_lines = _normalise(inp.suffix).split("\n") if show_suffix else []
    cursor_line = len(prefix_lines)  # 1-based
    # A snippet of this file inside the lines that outrank it repeats them (without FIM only the
    # lines above the cursor are shown).
    near_top = cursor_line - NEAR_LINES
    near_bottom = cursor_line + NEAR_LINES if show_suffix else cursor_line - 1

    def redundant(s: Snippet) -> bool:
        return (s.path == inp.path and s.start_line >= near_top and s.end_line <= near_bottom)

    rank = {kind: i for i, kind in enumerate(SNIPPET_KINDS)}
    snippets = sorted((s for s in inp.snippets if s.text.strip() and not redundant(s)),
                      key=lambda s: rank[s.kind])  # stable: input order within a kind

    def lines_at(d: int) -> list[tuple[int, int]]:
        out = []
        if d < len(prefix_lines):
            out.append((_PREFIX, len(prefix_lines) - 1 - d))
        if d < len(suffix_lines):
            out.append((_SUFFIX, d))
        return out

    far = max(len(prefix_lines), len(suffix_lines))
    order: list[tuple[int, int]] = []
    for d in range(1, min(NEAR_LINES, far - 1) + 1):
        order += lines_at(d)
    order += [(_SNIPPET, i) for i in range(len(snippets))]
    for d in range(NEAR_LINES + 1, far):
        order += lines_at(d)
    return _Plan(prefix_lines, suffix_lines, snippets, [_snippet_block(s, style) for s in snippets],
                 order, _file_header(inp.path, style), profile)


@dataclass(frozen=True)
class _Cut:
    prefix_lines: int
    suffix_lines: int
    snippets: tuple[int, ...]  # indices into _Plan.snippets, in priority order


def _cut(plan: _Plan, k: int) -> _Cut:
    """The first ``k`` elements: the cursor line plus ``order[:k - 1]``."""
    n_pre = 1
    n_suf = 1 if plan.suffix_lines else 0
    snippets: list[int] = []
    for kind, index in plan.order[: k - 1]:
        if kind == _PREFIX:
            n_pre += 1
        elif kind == _SUFFIX:
            n_suf += 1
        else:
            snippets.append(index)
    return _Cut(n_pre, n_suf, tuple(snippets))


def _text(plan: _Plan, cut: _Cut, cursor_chars: int | None = None) -> str:
    pre = plan.prefix_lines[len(plan.prefix_lines) - cut.prefix_lines:]
    suf = plan.suffix_lines[: cut.suffix_lines]
    if cursor_chars is not None:  # the cursor line alone is over budget: cut it
        pre = [pre[-1][len(pre[-1]) - cursor_chars:]]
        suf = [suf[0][:cursor_chars]] if suf else []
    context = "".join(plan.blocks[i] for i in reversed(cut.snippets)) + plan.header
    prefix = "\n".join(pre)
    fim = plan.profile.fim
    if fim is None:
        return context + prefix
    suffix = "\n".join(suf)
    return f"{fim.prefix}{context}{prefix}{fim.suffix}{suffix}{fim.middle}"


def _element_chars(plan: _Plan, kind: int, index: int) -> int:
    if kind == _PREFIX:
        return len(plan.prefix_lines[index]) + 1
    if kind == _SUFFIX:
        return len(plan.suffix_lines[index]) + 1
    return len(plan.blocks[index])


def _element_text(plan: _Plan, kind: int, index: int) -> str:
    if kind == _PREFIX:
        return plan.prefix_lines[index] + "\n"
    if kind == _SUFFIX:
        return plan.suffix_lines[index] + "\n"
    return plan.blocks[index]


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


def render_prompt(
    inp: CompletionInput,
    profile: ModelProfile,
    count_tokens: Callable[[str], int],
    budget_tokens: int,
    *,
    estimate_tokens: Callable[[str], int] | None = None,
) -> RenderedPrompt:
    """The prompt for ``inp`` in ``profile``'s format, within ``budget_tokens`` (module doc).

    ``count_tokens`` is exact and may be slow (the model's tokenizer over the whole text);
    the result depends on it only. ``estimate_tokens``, when given, prices one element (a
    line with its line break, a snippet block) quickly — the worker caches the count of every
    line it has seen — and only steers the search: with it, a request usually costs two or
    three exact counts instead of about ten."""
    plan = _plan(inp, profile)
    counts: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in counts:
            counts[text] = count_tokens(text)
        return counts[text]

    n = 1 + len(plan.order)
    if estimate_tokens is not None:
        # est[k - 1]: the estimated count of the first k elements (k = 1 is exact: the cursor
        # line in the format's frame). Pieces priced alone miss merges across line breaks, so
        # one exact count at the first guess rescales the rest: usually right to a line or two.
        est = [count(_text(plan, _cut(plan, 1)))]
        while len(est) < n and est[-1] <= 2 * budget_tokens:
            est.append(est[-1] + estimate_tokens(_element_text(plan, *plan.order[len(est) - 1])))

        def last_within(limit: float) -> int:
            return max(1, bisect.bisect_right(est, limit))

        guess = last_within(budget_tokens)
        if guess > 1:
            scale = count(_text(plan, _cut(plan, guess))) / est[guess - 1]
            if scale > 0:
                guess = last_within(budget_tokens / scale)
    else:
        char_budget = budget_tokens * _CHARS_PER_TOKEN_GUESS - len(plan.header)
        guess, chars = 1, len(plan.prefix_lines[-1]) + len(plan.suffix_lines[0]
                                                           if plan.suffix_lines else "")
        while guess < n:
            chars += _element_chars(plan, *plan.order[guess - 1])
            if chars > char_budget:
                break
            guess += 1

    k = _largest_fitting(n, guess, lambda k: count(_text(plan, _cut(plan, k))) <= budget_tokens)
    cursor_chars: int | None = None
    cut = _cut(plan, max(k, 1))
    if k == 0:
        longest = max(len(plan.prefix_lines[-1]), len(plan.suffix_lines[0]) if plan.suffix_lines
                      else 0)
        cursor_chars = max(0, _largest_fitting(
            longest + 1, max(1, longest // 2),
            lambda c: count(_text(plan, cut, c - 1)) <= budget_tokens) - 1)
    text = _text(plan, cut, cursor_chars)
    return RenderedPrompt(
        text=text,
        prefix_lines=cut.prefix_lines,
        suffix_lines=cut.suffix_lines,
        snippets_included=tuple(f"{plan.snippets[i].path}:{plan.snippets[i].start_line}"
                                for i in cut.snippets),
        token_estimate=count(text),
        version=PROMPT_FORMAT_VERSION,
    )
