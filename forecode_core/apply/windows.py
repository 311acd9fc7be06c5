"""Windowed apply: where in a file a code block (or an inline edit's selection) applies, the
prompt that has a model rewrite only that window, and the stitching (pure: no llama.cpp).

A model rewriting a whole 3,000-line file to change one function spends minutes repeating the
file. Here the model rewrites only the *windows* the edit addresses, each with some read-only
context around it, and the rest of the file is kept byte for byte:

* ``plan_windows(original, block, instruction)``: the windows, in file order, or None when the
  block cannot be placed without guessing. Each segment of the block (``parse_block``: the code
  between elisions) is placed by

  1. *named definitions*: a ``def``/``class``/``function``/``fn``... header whose name the file
     defines once (or once inside the class the segment wraps it in) addresses that definition
     (its decorators and body: indentation, and a closing bracket at its level). A wrapper
     (``class Foo:`` followed by methods, possibly a shorthand of the file's class line) is an
     anchor only: the methods it shows are the windows, not the whole class;
  2. *anchors*: the segment's other lines whose text (whitespace-normalised) occurs once in the
     file; the largest cluster of them (outliers far away are ignored) spans the window;
  3. *fuzzy matching*: failing both, the file line most similar to each segment line
     (``difflib`` ratio >= ``FUZZY_RATIO``, a unique best) anchors it.

  A segment of imports alone goes to the file's leading import section; another segment with
  no anchor joins its neighbour's window (new code next to changed code), or, for new
  definitions when nothing else anchors, the file's end. Windows get ``MARGIN`` lines either
  side (so the model can place new lines next to the region) and merge when they touch.
  With an instruction (Ctrl+K) the block is the selection: the window is exactly its lines
  (found verbatim, once), nothing else changes.
* ``format_window_prompt(...)``: the model's prompt for one window (``WINDOW_PROMPT_VERSION``):
  the context above, the part to rewrite, the context below, the block's part for this window
  (or the instruction), and the answer's opening fence. The draft is the window's text.
* ``stitch(original, plan, rewritten)``: the new file (LF) from the windows' new text.

Small files (``WHOLE_FILE_LINES`` or fewer) are rewritten whole by the caller when the request
is a block (``plan_windows`` returns a single whole-file window).
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from forecode_core.apply.block import Segment, is_elision, parse_block
from forecode_core.text.prompt_text import fence_for

__all__ = [
    "CONTEXT_LINES",
    "FUZZY_RATIO",
    "MARGIN",
    "WHOLE_FILE_LINES",
    "WINDOW_PROMPT_VERSION",
    "WINDOW_RULES_EDIT",
    "WINDOW_RULES_INSTRUCTION",
    "Window",
    "WindowPlan",
    "WindowPrompt",
    "definition_extent",
    "expected_answer",
    "file_lines",
    "fill_elisions",
    "format_window_prompt",
    "plan_windows",
    "repeats_context",
    "selection_lines",
    "stitch",
    "stream_pieces",
    "unique_selection",
    "window_context",
]

WHOLE_FILE_LINES = 40  # a block for a file this small: the whole file is one window (a window
#                       and its context cost about as much; a larger file costs more whole)
MARGIN = 2  # lines of the file rewritten around a segment's region (room to place new lines)
CONTEXT_LINES = 4  # read-only lines shown above and below a window (each costs prefill)
FUZZY_RATIO = 0.75
_WHOLE_FUNCTION_LINES = 80  # a wrapped function this short is rewritten whole
WINDOW_PROMPT_VERSION = 2

_DEF = re.compile(
    r"^\s*(?:@\w+\s+)?(?:export\s+)?(?:default\s+)?(?:pub(?:\([^)]*\))?\s+)?"
    r"(?:async\s+)?(?:static\s+)?"
    r"(?P<kind>def|class|function|fn|func|interface|struct|enum|trait|impl|module|type)\s+"
    r"(?P<name>[A-Za-z_$][\w$]*)"
)
_IMPORT = re.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|#include\s|use\s|using\s|"
    r"require\b|const\s+\w+\s*=\s*require\()"
)
_TRIVIAL = re.compile(
    r"^[\W_]*$|^(?:else|try|finally|pass|return|break|continue|end|"
    r"\}\s*else\s*\{|do|then|fi|done|esac)\W*$"
)


@dataclass(frozen=True)
class Window:
    """Original lines ``[start, end)`` (0-based) the model rewrites, and what it is told."""

    start: int
    end: int
    block: str  # the block's part for this window ("" with an instruction: the selection
    #             is the window itself)
    how: str  # "whole", "definition", "anchors", "fuzzy", "imports", "neighbour", "end",
    #           "selection"


@dataclass(frozen=True)
class WindowPlan:
    windows: tuple[Window, ...]
    n_lines: int  # the original's line count

    @property
    def whole(self) -> bool:
        return len(self.windows) == 1 and self.windows[0].how == "whole"

    @property
    def covered(self) -> int:
        return sum(w.end - w.start for w in self.windows)


@dataclass(frozen=True)
class WindowPrompt:
    text: str  # the user turn
    response_prefix: str  # the answer's opening fence line
    stop: tuple[str, ...]
    draft_text: str  # the window's text (LF) and the closing fence
    version: int


def file_lines(text: str) -> list[str]:
    """``text`` in LF, split into lines that keep their ``\\n`` (the last may lack it)."""
    return text.replace("\r\n", "\n").splitlines(keepends=True)


def _norm(line: str) -> str:
    return " ".join(line.split())


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _blank(line: str) -> bool:
    return not line.strip()


def definition_extent(lines: Sequence[str], header: int) -> tuple[int, int]:
    """``[start, end)`` of the definition whose header is ``lines[header]``: its decorators
    (``@...`` lines right above at its indentation), its body (more indented lines, blank lines
    inside), and a closing line at its level (``}``, ``end``, ``)``)."""
    width = _indent(lines[header])
    start = header
    while (
        start > 0
        and lines[start - 1].strip().startswith("@")
        and _indent(lines[start - 1]) == width
    ):
        start -= 1
    end = header + 1
    last = header
    # A header continued over several lines (parameters), up to the line ending in ':' or '{'.
    while (
        last < len(lines) - 1
        and not lines[last].rstrip().endswith((":", "{", "=>"))
        and (
            _indent(lines[last + 1]) > width or lines[last + 1].lstrip().startswith((")", "]"))
        )  # ') -> None:'
        and last - header < 20
    ):
        last += 1
    end = last + 1
    while end < len(lines):
        line = lines[end]
        if _blank(line) or _indent(line) > width:
            end += 1
            continue
        if re.match(r"^\s*(?:[})\]]|end\b)", line):
            end += 1
        break
    while end > header + 1 and _blank(lines[end - 1]):
        end -= 1
    return start, end


def _definitions(lines: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    inside_string = False
    for j, line in enumerate(lines):
        if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
            inside_string = not inside_string
            continue
        if inside_string:
            continue
        match = _DEF.match(line)
        if match is not None:
            out.setdefault(match.group("name"), []).append(j)
    return out


def _kind(line: str) -> str | None:
    match = _DEF.match(line)
    return match.group("kind") if match is not None else None


def _name(line: str) -> str | None:
    match = _DEF.match(line)
    return match.group("name") if match is not None else None


def _imports_only(seg: Sequence[str]) -> bool:
    code = [x for x in seg if x.strip()]
    return bool(code) and all(_IMPORT.match(x) for x in code)


def _import_section(lines: Sequence[str]) -> tuple[int, int]:
    """``[start, end)`` of the leading import lines (the first 200 lines), or (0, 0)."""
    found = [j for j, x in enumerate(lines[:200]) if _IMPORT.match(x) and _indent(x) == 0]
    if not found:
        return 0, 0
    return found[0], found[-1] + 1


def _cluster(positions: list[int], span: int) -> list[int]:
    """The largest run of sorted ``positions`` whose neighbours are at most ``span`` apart
    (the first such run on a tie)."""
    if not positions:
        return []
    positions = sorted(positions)
    best: list[int] = []
    run = [positions[0]]
    for p in positions[1:]:
        if p - run[-1] <= span:
            run.append(p)
        else:
            if len(run) > len(best):
                best = run
            run = [p]
    if len(run) > len(best):
        best = run
    return best


class _Index:
    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines
        self.defs = _definitions(lines)
        self.by_norm: dict[str, list[int]] = {}
        for j, line in enumerate(lines):
            self.by_norm.setdefault(_norm(line), []).append(j)

    def find_definition(
        self, name: str, kind: str | None, within: tuple[int, int] | None, width: int | None
    ) -> int | None:
        places = self.defs.get(name, [])
        if within is not None:
            places = [j for j in places if within[0] <= j < within[1]]
        if len(places) > 1 and kind is not None:
            places = [j for j in places if _kind(self.lines[j]) == kind] or places
        if len(places) > 1 and width is not None:
            places = [j for j in places if _indent(self.lines[j]) == width] or places
        return places[0] if len(places) == 1 else None

    def unique(self, line: str, within: tuple[int, int] | None = None) -> int | None:
        """The one line of the file (of ``within``, when given) with ``line``'s text."""
        norm = _norm(line)
        if len(norm) < 4 or _TRIVIAL.match(norm) or is_elision(line):
            return None
        places = self.by_norm.get(norm, [])
        if within is not None:
            places = [p for p in places if within[0] <= p < within[1]]
        return places[0] if len(places) == 1 else None

    def fuzzy(self, line: str) -> int | None:
        norm = _norm(line)
        if len(norm) < 12 or _TRIVIAL.match(norm):
            return None
        matcher = difflib.SequenceMatcher(None, "", norm, autojunk=False)
        scores: list[tuple[float, int]] = []
        for j, other in enumerate(self.lines):
            text = _norm(other)
            if abs(len(text) - len(norm)) > len(norm) // 2:
                continue
            matcher.set_seq1(text)
            if matcher.real_quick_ratio() < FUZZY_RATIO or matcher.quick_ratio() < FUZZY_RATIO:
                continue
            ratio = matcher.ratio()
            if ratio >= FUZZY_RATIO:
                scores.append((ratio, j))
        if not scores:
            return None
        scores.sort(reverse=True)
        if len(scores) > 1 and scores[1][0] == scores[0][0]:
            return None
        return scores[0][1]


def _segment_regions(
    index: _Index,
    seg: Sequence[str],
    within: tuple[int, int] | None,
    wrappers: dict[int, int] | None = None,
    open_end: bool = False,
) -> tuple[list[tuple[int, int]], str, tuple[int, int] | None]:
    """Regions ``[start, end)`` of the file that segment lines ``seg`` address, how they were
    found (``([], "")`` when nothing anchors), and the extent of a wrapper it opens for the
    next segments (``within``: the wrapper an earlier segment opened)."""
    lines = index.lines
    regions: list[tuple[int, int]] = []
    covered = [False] * len(seg)
    # 1. named definitions; a wrapper (a header whose body in the segment holds other
    #    definitions, or a last line whose body the elision after it stands for) only narrows
    #    where its members are looked for.
    last_code = max((k for k, x in enumerate(seg) if x.strip()), default=-1)
    for k, line in enumerate(seg):
        name = _name(line)
        if name is None:
            continue
        width = _indent(line)
        body_end = k + 1
        while body_end < len(seg) and (_blank(seg[body_end]) or _indent(seg[body_end]) > width):
            body_end += 1
        nested = [x for x in seg[k + 1 : body_end] if _name(x) is not None]
        inner = bool(nested) or k == last_code
        j = index.find_definition(name, _kind(line), within, None)
        if j is None and within is not None and width == 0:
            j = index.find_definition(name, _kind(line), None, None)
        if inner and k != last_code and j is not None and _kind(line) != "class":
            # A function shown whole with nested definitions (a decorator factory): a
            # wrapper only when the file's function has one of them too; else the function
            # is rewritten whole (its header may change: it is not a shorthand).
            extent = definition_extent(lines, j)
            inner = any(
                index.find_definition(str(_name(x)), _kind(x), extent, None) is not None
                for x in nested
            )
        if inner:
            covered[k] = True
            if j is not None:
                within = definition_extent(lines, j)
                if wrappers is not None:
                    wrappers[k] = j
            continue
        if j is None:
            continue  # a new definition: placed by its neighbours' anchors
        if any(covered[k:body_end]):
            continue
        extent = definition_extent(lines, j)
        if open_end and body_end == len(seg):
            # The definition's first lines, then an elision (``open_end``): the region ends
            # at the segment's last line where the file has it once in the definition, not at
            # the definition's end (the rest is what the elision keeps).
            last = next((x for x in reversed(seg) if x.strip()), "")
            p = index.unique(last, extent)
            if p is not None and p > j:
                extent = (extent[0], p + 1)
        regions.append(extent)
        for m in range(k, body_end):
            covered[m] = True
    how = "definition" if regions else ""
    # 2. anchors among the lines no definition covers.
    rest = [x for k, x in enumerate(seg) if not covered[k] and not _blank(x)]
    positions = [p for p in (index.unique(x, within) for x in rest) if p is not None]
    span = max(30, 2 * len(seg))
    positions = _cluster(positions, span)
    wrapped_function = (
        within is not None
        and not any(covered)
        and _kind(lines[_header_of(lines, within)]) not in ("class", None)
    )
    if positions:
        regions.append((positions[0], positions[-1] + 1))
        how = how or "anchors"
        if (
            wrapped_function
            and within is not None
            and within[1] - within[0] <= _WHOLE_FUNCTION_LINES
        ):
            # Part of a function whose header an earlier segment showed: where its new
            # lines end is not known, so the window is the whole function.
            regions.append(within)
    elif not regions:
        # 3. fuzzy: the best similar line of each segment line.
        fuzzy = [p for p in (index.fuzzy(x) for x in rest[:40]) if p is not None]
        if within is not None:
            fuzzy = [p for p in fuzzy if within[0] <= p < within[1]]
        fuzzy = _cluster(fuzzy, span)
        if fuzzy:
            regions.append((fuzzy[0], fuzzy[-1] + 1))
            how = "fuzzy"
        elif wrapped_function and within is not None and rest:
            # Lines of a function whose header an earlier segment showed (``def f(...):``
            # and an elision), nowhere else to be found: that function is the window.
            regions.append(within)
            how = "wrapper"
    return regions, how, within


def _header_of(lines: Sequence[str], extent: tuple[int, int]) -> int:
    """The header line of a definition extent (past its decorators)."""
    j = extent[0]
    while j < extent[1] - 1 and lines[j].strip().startswith("@"):
        j += 1
    return j


def selection_lines(original: str, selection: str) -> tuple[int, int] | None:
    """``[start, end)``: the lines of ``original`` equal to the lines of ``selection`` (the
    selected text, widened to whole lines), found once; None when absent or ambiguous."""
    lines = file_lines(original)
    sel = [x.rstrip() for x in file_lines(selection)]
    while sel and not sel[-1].strip():
        sel.pop()
    if not sel:
        return None
    stripped = [x.rstrip() for x in lines]
    found: list[int] = []
    n = len(sel)
    for j in range(len(lines) - n + 1):
        if n == 1:
            ok = sel[0].strip() != "" and sel[0] in stripped[j]
        else:
            ok = (
                stripped[j].endswith(sel[0])
                and stripped[j + n - 1].startswith(sel[-1])
                and stripped[j + 1 : j + n - 1] == sel[1 : n - 1]
            )
        if ok:
            found.append(j)
            if len(found) > 1:
                return None
    if len(found) != 1:
        return None
    return found[0], found[0] + n


def unique_selection(original: str, first: int, last: int) -> str:
    """The text of lines ``first..last`` (0-based, inclusive) of ``original`` (LF), widened
    one line at a time (above first, then below) until ``selection_lines`` finds it once: the
    block an inline edit sends, so that its window is exactly these lines."""
    lines = file_lines(original)
    if not lines:
        return ""
    first = max(0, min(first, len(lines) - 1))
    last = max(first, min(last, len(lines) - 1))
    lo, hi = first, last + 1
    while True:
        text = "".join(lines[lo:hi])
        if selection_lines(original, text) == (lo, hi) or (lo == 0 and hi == len(lines)):
            return text
        if (lo > 0 and (hi - lo) % 2 == 1) or hi == len(lines):
            lo -= 1
        else:
            hi += 1


def plan_windows(
    original: str,
    block: str,
    instruction: str = "",
    *,
    whole_file_lines: int = WHOLE_FILE_LINES,
    margin: int = MARGIN,
) -> WindowPlan | None:
    """The windows the model rewrites for ``block`` (module doc), or None when the block (or
    the selection, with an instruction) cannot be placed in a file too large to rewrite
    whole."""
    lines = file_lines(original)
    n = len(lines)
    whole = WindowPlan((Window(0, n, block, "whole"),), n)
    if instruction.strip():
        found = selection_lines(original, block)
        if found is None:
            return whole if n <= whole_file_lines else None
        return WindowPlan((Window(found[0], found[1], "", "selection"),), n)
    if n <= whole_file_lines:
        return whole
    parsed = parse_block(block)
    kept = [s for s in parsed.segments if any(x.strip() for x in s.lines)]
    segments = [list(s.lines) for s in kept]
    if not segments:
        return None
    index = _Index(lines)
    placed: list[tuple[int, int, str] | None] = []
    within: tuple[int, int] | None = None
    wrapper_lines: dict[int, int] = {}  # block line -> the file's header it stands for
    for seg in segments:
        if _imports_only(seg):
            lo, hi = _import_section(lines)
            placed.append((lo, hi, "imports"))
            continue
        wrapped: dict[int, int] = {}
        regions, how, within = _segment_regions(
            index, seg, within, wrapped, kept[len(placed)].elision_after is not None
        )
        for k, j in wrapped.items():
            wrapper_lines[kept[len(placed)].start + k] = j
        if regions:
            placed.append((min(r[0] for r in regions), max(r[1] for r in regions), how))
        else:
            placed.append(None)
    if all(p is None for p in placed):
        first = next(x for x in segments[-1] if x.strip())
        if _name(first) is not None and _indent(first) == 0:
            placed[-1] = (max(0, n - margin), n, "end")
        else:
            return None
    # An unanchored segment joins the previous placed one (or the next one at the start).
    resolved: list[tuple[int, int, str]] = []
    for k, p in enumerate(placed):
        if p is not None:
            resolved.append(p)
            continue
        before = next((placed[m] for m in range(k - 1, -1, -1) if placed[m] is not None), None)
        after = next((placed[m] for m in range(k + 1, len(placed)) if placed[m] is not None), None)
        if before is not None:
            resolved.append((before[1], before[1], "neighbour"))
        elif after is not None:
            resolved.append((after[0], after[0], "neighbour"))
        else:  # unreachable: at least one segment is placed
            return None
    # Margins, merging, and each window's part of the block.
    spans: list[tuple[int, int, list[int], str]] = []
    for k, (lo, hi, how) in enumerate(resolved):
        lo0, hi0 = lo, hi
        lo = max(0, lo - margin)
        hi = min(n, hi + margin)
        # A window starts and ends on code: a model drops blank lines at its edges.
        # Nor does it take in a less indented line (the class around a method, the next
        # definition): the model would rewrite it after the block's shorthand of it.
        while lo < lo0 and (
            _blank(lines[lo]) or (lo0 < n and _indent(lines[lo]) < _indent(lines[lo0]))
        ):
            lo += 1
        if lo0 < n and (_name(lines[lo0]) is not None or lines[lo0].lstrip().startswith("@")):
            # A window that starts at a definition takes nothing above it: those lines end
            # the definition before (a model given them without the block's mention of them
            # drops them).
            lo = lo0
        while hi > hi0 and (
            _blank(lines[hi - 1]) or (hi0 > 0 and _indent(lines[hi - 1]) < _indent(lines[hi0 - 1]))
        ):
            hi -= 1
        if spans and lo < spans[-1][0]:
            return None  # segments out of file order
        if spans and lo <= spans[-1][1]:
            s_lo, s_hi, members, s_how = spans[-1]
            members.append(k)
            spans[-1] = (s_lo, max(s_hi, hi), members, s_how)
            continue
        spans.append((lo, hi, [k], how))
    windows = []
    for lo, hi, members, how in spans:
        part = fill_elisions(
            "".join(lines[lo:hi]),
            _block_part(parsed.lines, [kept[m] for m in members], wrapper_lines, lines, (lo, hi)),
        )
        first = next((x for x in file_lines(part) if x.strip()), "")
        if _name(first) is not None:
            # The block shows the definition without its decorators: they stay outside the
            # window (a model given them without the block's mention of them drops them).
            k = lo
            while k < hi - 1 and (lines[k].lstrip().startswith("@") or _blank(lines[k])):
                k += 1
            if k > lo and _name(lines[k]) == _name(first):
                lo = k
        for w_lo, w_hi, w_part in _split(lines, *_narrow(lines, lo, hi, part)):
            windows.append(Window(w_lo, w_hi, w_part, how))
    return WindowPlan(tuple(windows), n)


# Lines a window keeps around what its part of the block changes when it is narrowed, and the
# fewest lines narrowing must save to be worth it.
_NARROW_KEEP = 2
_NARROW_MIN = 6


def _narrow(lines: Sequence[str], lo: int, hi: int, block: str) -> tuple[int, int, str]:
    """The window ``[lo, hi)`` and its part of the block without the lines at either end that
    the block repeats exactly (the same text and indentation, before any elision): a whole
    function given back with one change is rewritten around the change, not whole.
    ``_NARROW_KEEP`` equal lines stay at each end (and the window starts and ends on code)."""
    part = [x.rstrip() for x in lines[lo:hi]]
    new = file_lines(block)
    mine = [x.rstrip() for x in new]
    limit = min(len(part), len(mine))
    head = 0
    while head < limit and part[head] == mine[head] and not is_elision(new[head]):
        head += 1
    tail = 0
    while (
        tail < limit - head
        and part[-1 - tail] == mine[-1 - tail]
        and not is_elision(new[-1 - tail])
    ):
        tail += 1
    cut_head = max(0, head - _NARROW_KEEP)
    cut_tail = max(0, tail - _NARROW_KEEP)
    while cut_head > 0 and not part[cut_head].strip():
        cut_head -= 1
    while cut_tail > 0 and not part[len(part) - 1 - cut_tail].strip():
        cut_tail -= 1
    if cut_head + cut_tail < _NARROW_MIN:
        return lo, hi, block
    return (lo + cut_head, hi - cut_tail, "".join(new[cut_head : len(new) - cut_tail]))


# An unchanged run this long inside a window (the block repeats it exactly) splits the window:
# the model rewrites the changed stretches on either side, not the run between them.
_SPLIT_MIN = 24
_SPLIT_PIECE_MIN = 8  # nor is a piece cut this short (a model given 3 lines of a function
#                      and a long edit around them drops lines: markdown-it's _postProcess)


def _split(lines: Sequence[str], lo: int, hi: int, block: str) -> list[tuple[int, int, str]]:
    """The window ``[lo, hi)`` with its part of the block, split at each run of at least
    ``_SPLIT_MIN`` lines that the block repeats exactly (same text and indentation), so a long
    function with changes at its top and its bottom is rewritten in two small windows, not
    whole. Each piece keeps ``_NARROW_KEEP`` equal lines next to the cut and starts and ends on
    code; the lines between pieces are the same in the file and in the block, so stitching
    the pieces gives what one window would. Only a part without elisions is split (where an
    elision stands, which file lines it keeps is not known line by line)."""
    new = file_lines(block)
    if not new or any(is_elision(x) for x in new):
        return [(lo, hi, block)]
    part = [x.rstrip() for x in lines[lo:hi]]
    mine = [x.rstrip() for x in new]
    matcher = difflib.SequenceMatcher(None, part, mine, autojunk=False)
    pieces: list[tuple[int, int, str]] = []
    start_i = start_j = 0
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        if tag != "equal" or i1 == 0 or i2 == len(part) or i2 - i1 < _SPLIT_MIN:
            continue
        end = i1 + _NARROW_KEEP  # the piece before ends here (exclusive) ...
        while end > i1 and not part[end - 1].strip():
            end -= 1
        begin = i2 - _NARROW_KEEP  # ... and the next one starts here
        while begin < i2 and not part[begin].strip():
            begin += 1
        if end <= i1 or begin >= i2 or begin - end < _SPLIT_MIN - 2 * _NARROW_KEEP:
            continue
        if end - start_i < _SPLIT_PIECE_MIN or len(part) - begin < _SPLIT_PIECE_MIN:
            continue
        pieces.append((lo + start_i, lo + end, "".join(new[start_j : j1 + (end - i1)])))
        start_i, start_j = begin, j1 + (begin - i1)
    if not pieces:
        return [(lo, hi, block)]
    pieces.append((lo + start_i, hi, "".join(new[start_j:])))
    return pieces


def _block_part(
    block_lines: Sequence[str],
    members: Sequence[Segment],
    wrappers: dict[int, int],
    lines: Sequence[str],
    window: tuple[int, int],
) -> str:
    """The block's text from the first to the last of ``members`` (the segments one window
    gets), with the block's own elision lines between them. A wrapper line (a shorthand
    ``class Foo:`` / ``def f(self, ...):`` before an elision) is an anchor, not code: inside
    the window it reads as the file's own header line; outside it, it and the elision after
    it are left out (a model would copy them)."""
    first = members[0].start
    last = members[-1].start + len(members[-1].lines)
    out: list[str] = []
    skip_elision = False
    for i in range(first, last):
        line = block_lines[i]
        if skip_elision and (not line.strip() or is_elision(line)):
            skip_elision = not is_elision(line)
            continue
        skip_elision = False
        j = wrappers.get(i)
        if j is not None:
            if window[0] <= j < window[1]:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(indent + lines[j].strip() + "\n")
            else:
                skip_elision = True
            continue
        out.append(line + "\n")
    while out and not out[0].strip():
        out.pop(0)
    return "".join(out)


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def format_window_prompt(
    original: str,
    window: Window,
    *,
    path: str,
    language: str,
    instruction: str = "",
    context: int = CONTEXT_LINES,
    version: int = WINDOW_PROMPT_VERSION,
) -> WindowPrompt:
    """The model's prompt for rewriting ``window`` of ``original`` (module doc)."""
    if version not in (1, 2):
        raise ValueError(f"unknown window prompt version {version}")
    if version == 2:
        return _window_prompt_v2(
            original, window, path=path, language=language, instruction=instruction, context=context
        )
    lines = file_lines(original)
    n = len(lines)
    above = "".join(lines[max(0, window.start - context) : window.start])
    part = _with_newline("".join(lines[window.start : window.end]))
    below = _with_newline("".join(lines[window.end : window.end + context]))
    block = _with_newline(window.block.replace("\r\n", "\n"))
    fence = fence_for(above, part, below, block, instruction)
    a, b = window.start + 1, window.end
    parts = [f"Edit part of the file {path} ({n} lines): rewrite lines {a}-{b} only.\n"]
    if above:
        parts.append(
            f"Context above (unchanged, lines {max(1, a - context)}-{a - 1}):\n"
            f"{fence}{language}\n{above}{fence}\n"
        )
    if below.strip():
        parts.append(
            f"Context below (unchanged, lines {b + 1}-"
            f"{min(n, b + context)}):\n{fence}{language}\n{below}{fence}\n"
        )
    parts.append(f"Lines {a}-{b}, the part to rewrite:\n{fence}{language}\n{part}{fence}\n")
    if instruction.strip():
        parts.append(f"Instruction: {_with_newline(instruction.replace(chr(13), ''))}")
    if block.strip():
        parts.append(f"Edit:\n{fence}{language}\n{block}{fence}\n")
        parts.append(
            'The edit shows only what changes; "..." or "existing code" comments '
            "stand for code kept exactly as it is. Apply the edit to these lines. "
            "Change nothing else and keep the order of the lines."
        )
    else:
        parts.append("Apply the instruction to these lines. Change nothing else.")
    parts.append(f"Answer with the new text of lines {a}-{b} in one code block and nothing else.")
    return WindowPrompt("\n".join(parts), f"{fence}{language}\n", (fence,), part + fence, version)


# Version 2's fixed opening: the same tokens at the start of every window prompt of its kind,
# so the engine's cache keeps their evaluation from one window (and one apply) to the next.
WINDOW_RULES_EDIT = (
    'Rewrite part of a file as the edit asks. The edit shows only what changes: "..." or '
    '"existing code" comments stand for code kept exactly as it is. Change nothing else, '
    "keep the order of the lines, and answer with the new text of the part in one code block "
    "and nothing else.\n"
)
WINDOW_RULES_INSTRUCTION = (
    "Rewrite part of a file as the instruction asks. Change nothing else, keep the order of "
    "the lines, and answer with the new text of the part in one code block and nothing "
    "else.\n"
)


def _window_prompt_v2(
    original: str, window: Window, *, path: str, language: str, instruction: str, context: int
) -> WindowPrompt:
    """Version 2: the fixed rules first (a prefix the cache keeps), then the context above and
    below, the part, the edit (or the instruction)."""
    lines = file_lines(original)
    n = len(lines)
    above = "".join(lines[max(0, window.start - context) : window.start])
    part = _with_newline("".join(lines[window.start : window.end]))
    below = _with_newline("".join(lines[window.end : window.end + context]))
    block = _with_newline(window.block.replace("\r\n", "\n"))
    fence = fence_for(above, part, below, block, instruction)
    a, b = window.start + 1, window.end
    parts = [
        WINDOW_RULES_EDIT if block.strip() else WINDOW_RULES_INSTRUCTION,
        f"File {path} ({n} lines).",
    ]
    if above.strip():
        parts.append(
            f"Unchanged lines {max(1, a - context)}-{a - 1}:\n{fence}{language}\n{above}{fence}"
        )
    if below.strip():
        parts.append(
            f"Unchanged lines {b + 1}-{min(n, b + context)}:\n{fence}{language}\n{below}{fence}"
        )
    parts.append(f"Lines {a}-{b}, the part to rewrite:\n{fence}{language}\n{part}{fence}")
    if instruction.strip():
        parts.append(f"Instruction: {instruction.replace(chr(13), '').strip()}")
    if block.strip():
        parts.append(f"Edit:\n{fence}{language}\n{block}{fence}")
    parts.append(f"Answer with the new text of lines {a}-{b}.")
    return WindowPrompt("\n".join(parts), f"{fence}{language}\n", (fence,), part + fence, 2)


def fill_elisions(part: str, block: str) -> str:
    """``block`` (a window's part of the edit) with each elision comment between two lines
    that occur once each in ``part``, in that order, replaced by the part's lines between
    them (what the comment stands for: code kept exactly as it is). A small model copies an
    elision comment instead of the code; given the code it keeps it. Elisions without such
    neighbours (at the block's edges, next to new lines, or next to lines found twice) stay,
    and so does a block whose elision is not settled that way."""
    old = file_lines(part)
    new = [x if x.endswith("\n") else x + "\n" for x in file_lines(block)]
    if not any(is_elision(x) for x in new):
        return block
    where: dict[str, list[int]] = {}
    for j, line in enumerate(old):
        if line.strip():
            where.setdefault(_norm(line), []).append(j)
    out: list[str] = []
    for i, line in enumerate(new):
        if not is_elision(line):
            out.append(line)
            continue
        above = next((x for x in reversed(new[:i]) if x.strip()), None)
        below = next((x for x in new[i + 1 :] if x.strip()), None)
        a = where.get(_norm(above), []) if above is not None and not is_elision(above) else []
        b = where.get(_norm(below), []) if below is not None and not is_elision(below) else []
        if len(a) != 1 or len(b) != 1 or a[0] >= b[0]:
            out.append(line)
            continue
        while out and not out[-1].strip():
            out.pop()  # the part's own lines (blank ones included) fill the gap
        out.extend(old[a[0] + 1 : b[0]])
        k = i + 1
        while k < len(new) and not new[k].strip():
            k += 1
        new[i + 1 : k] = []  # the blank lines after the comment: the part's are used
    return "".join(out)


def expected_answer(part: str, block: str) -> str:
    """The answer a model most likely writes for ``part`` (a window's text, or a whole file)
    given ``block``: the part with the block's changes merged in, line by line (``difflib``
    on whitespace-normalised lines). Lines both have are the part's; lines the block adds or
    replaces are the block's, except its elision comments (the part's lines stay); lines of
    the part the block leaves out stay (the block may just not show them). Only a draft for
    speculative edits (every token is verified): a wrong guess costs time, never
    correctness."""
    old = file_lines(part)
    new = [x if x.endswith("\n") else x + "\n" for x in file_lines(block)]
    if not new:
        return part
    matcher = difflib.SequenceMatcher(
        None, [_norm(x) for x in old], [_norm(x) for x in new], autojunk=False
    )
    ops = matcher.get_opcodes()
    # The block's lines take the part's indentation (a method given without its class is
    # indented less than the file has it): the shift of the first line both have.
    shift = next(
        (
            len(old[i1]) - len(old[i1].lstrip()) - (len(new[j1]) - len(new[j1].lstrip()))
            for op, i1, _, j1, _ in ops
            if op == "equal" and old[i1].strip()
        ),
        0,
    )

    def shifted(line: str) -> str:
        if shift > 0 and line.strip():
            return " " * shift + line
        if shift < 0 and line[:-shift].strip() == "":
            return line[-shift:]
        return line

    out: list[str] = []
    for op, i1, i2, j1, j2 in ops:
        if op == "equal" or op == "delete":
            out.extend(old[i1:i2])
            continue
        added = [shifted(x) for x in new[j1:j2]]
        cut = next((k for k, x in enumerate(added) if is_elision(x)), None)
        if cut is not None:
            # "# ... existing code ...": the part's lines stay, the block's new lines around
            # the comment go before and after them
            out.extend(added[:cut])
            out.extend(old[i1:i2])
            out.extend(x for x in added[cut + 1 :] if not is_elision(x))
            continue
        out.extend(added)  # insert, or replace: the block's lines
    text = "".join(out)
    if part and not part.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


def window_context(
    original: str, window: Window, context: int = CONTEXT_LINES
) -> tuple[str, str, str]:
    """``(above, part, below)``: the read-only lines the prompt shows around ``window``, and
    its own lines (LF)."""
    lines = file_lines(original)
    return (
        "".join(lines[max(0, window.start - context) : window.start]),
        "".join(lines[window.start : window.end]),
        "".join(lines[window.end : window.end + context]),
    )


def repeats_context(answer: str, part: str, above: str, below: str, block: str = "") -> bool:
    """Whether ``answer`` (a window's new text) copies the read-only context instead of
    rewriting the part: two consecutive non-blank lines of the context above or below, in
    order, that neither the part nor the block holds."""
    own = {_norm(x) for x in file_lines(part) + file_lines(block) if x.strip()}
    new = [_norm(x) for x in file_lines(answer) if x.strip()]
    pairs = set(itertools.pairwise(new))
    for ctx in (above, below):
        lines = [_norm(x) for x in file_lines(ctx) if x.strip()]
        for pair in itertools.pairwise(lines):
            if pair in pairs and not (pair[0] in own and pair[1] in own):
                return True
    return False


def stitch(original: str, plan: WindowPlan, rewritten: Sequence[str]) -> str:
    """The new file (LF) with each window's lines replaced by its new text (LF)."""
    if len(rewritten) != len(plan.windows):
        raise ValueError("one rewritten text per window")
    return "".join(stream_pieces(original, plan, rewritten))


def stream_pieces(
    original: str, plan: WindowPlan, rewritten: Sequence[str] | None = None
) -> list[str]:
    """The new file's pieces in order: the unchanged text before each window, the window's
    new text (``rewritten[k]``; "" when ``rewritten`` is None), ..., the unchanged tail. With
    ``rewritten`` None the list has ``2 * len(windows) + 1`` pieces, the odd ones empty: the
    stream sends the even ones around the model's text."""
    lines = file_lines(original)
    out: list[str] = []
    at = 0
    for k, w in enumerate(plan.windows):
        out.append("".join(lines[at : w.start]))
        new = "" if rewritten is None else rewritten[k]
        if new and not new.endswith("\n") and w.end < len(lines):
            new += "\n"
        out.append(new)
        at = w.end
    tail = "".join(lines[at:])
    if (
        rewritten is not None
        and out
        and out[-1].endswith("\n")
        and not tail
        and lines
        and not lines[-1].endswith("\n")
    ):
        out[-1] = out[-1][:-1]  # the file had no final newline
    out.append(tail)
    return out
