"""The ``next_edit`` benchmark: does Tab predict the next change of real commits, and how fast?

Cases come from the git history of real repositories this project did not write
(``bench.next_edit_cases``: each commit's change cut into units in file order; after the first k
units, the rest are the answers; never pallets/click, kept for a held-out check). The default
repositories are the mirrors of encode/httpx, pallets/jinja and psf/requests (``--repos`` takes
any work trees or bare git directories).

Arms, each on the same cases:

- ``noop``: shows nothing (the floor: every figure but ``false_show_rate`` is 0);
- ``propagation``: ``forecode_core.next_edit.propagation.propose`` from the recent edits (the
  last ``MAX_EVENTS``, as the editor's ``EditEvent``s: offsets in the current text), its first
  proposal; timed with the lexer mask computed by the scanner (the editor has Scintilla's
  styles: this is the slower case);
- ``model:<id>``: the real local model in-process, through the worker's own path
  (``forecode_core.next_edit.input.input_at`` with the recent edits as ``pair_of`` pairs, then
  ``local_models.next_edit.predict`` on a ``local_models.engine.Engine`` built as the worker
  builds it, then the product's whole policy, ``acceptance.judge``: ``check_answer``'s filters
  and the acceptance gate with the shipped prior and no recent rejects, as ``ModelSource``
  does); no related excerpts. Each answer the filters pass is judged even when the gate holds
  it back (the sample's ``candidate``: features, probability, verdict): ``gate_study`` fits
  the gate on such labelled answers and compares it with the prior on held-out ones, and
  ``gate_cv`` leaves one repository out, replaying the both arm under the fitted gate
  (``both_under``) at each threshold;
- ``both:<id>``: the product's policy (the model's suggestion as gated above;
  ``forecode_core.next_edit.session``: both sources offered
  to a ``Session``, its ``shown``: a model suggestion on the caret's line first, else
  propagation's first site, else the model's suggestion elsewhere; reverts dropped).

Per arm and slice (``same_line``, ``elsewhere``, ``rename_template``, ``other_file``,
``nothing_remains``, ``in_file`` = the first two, ``all``):

- ``show_rate``: shown / cases;
- ``location_accuracy_when_shown``: the shown edit's first line falls in a remaining unit's
  lines (a unit that inserts lines also counts the line above: a suggestion typed from the end
  of that line) / shown; nothing in this file is right where nothing remains in it;
- ``exact_match``: applying the suggestion gives exactly the text with a run of consecutive
  remaining units made / cases (a case with nothing shown is a miss); ``exact_when_shown`` too;
- ``correct_when_shown``: the suggestion is a step on the way to the file's final text (the
  characters it changes, in a window around it: edit distance current -> suggested ->
  final equals current -> final), or it is exact (a run of the remaining units made: the
  distances need not add up when a later unit rewrites the same words again);
- ``chars_kept_per_shown``: the characters the suggestion inserts or removes that the final
  text agrees with (a character alignment of the window), per shown suggestion;
- ``reversal_rate``: the suggestion takes back a recent edit (at its place, its after text back
  to its before) / shown (target 0);
- ``false_show_rate``: shown / cases where nothing remains in the commit.

``propagation_precision``: propagation's first proposal ``correct`` / cases where it proposes
(also ``propagation_precision_exact``). Latency: ``model_p50``/``model_p90`` (warm: the model
loaded and one request made; the request and ``check_answer``), ``propagation_p50`` (mask and
``propose``), ``after_accept_p50`` (after accepting propagation's first proposal, the next:
``propose`` again on the new text with the accept as the newest edit; the model's next
suggestion is prefetched, so propagation's is what Tab waits for). ``next_edit_in_model_region``:
per slice, the share of cases whose next unit starts inside the model's editable region (the
model rewrites only the region: elsewhere it cannot be right). ``related_files``:
``bench.related_files``' replay (``forecode_core.next_edit.related.replay``) over the same
repositories, the default parameters, queries weighted: ``rose_top3`` (= ``hit_at_3``) is the
figure ROSE published as 64 % and ``recall_at_3`` the one it published as 26 % (``ROSE_NOTE``).

The top-level figures are the ``both`` arm with the chosen model: the one with the best
``exact_match`` on ``in_file`` cases among those whose p50 meets ``MODEL_P50_TARGET_MS``
(``model`` None and propagation's figures when none does; ``model_p50`` is then the fastest
model's, ``model_timed``). Cases are drawn with an equal quota per slice
(``bench.next_edit_cases``), so ``all`` is over that mix. ``--propagation-cases`` draws a
larger set for the arms without a model (``propagation_wide``); ``--cases`` is its
per-repository subset the model arms run on.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from .next_edit_cases import STRATA, Case, Unit, apply_units, sample_cases, stratum

__all__ = [
    "DEFAULT_ROUNDS",
    "GateCase",
    "Predictor",
    "Shown",
    "Verdict",
    "add_arguments",
    "both_under",
    "fit_gate",
    "gate_cases",
    "gate_cv",
    "gate_figures",
    "gate_records",
    "gate_study",
    "judge",
    "run",
    "run_arms",
    "summarise",
]

DEFAULT_ROUNDS = 1
MIRRORS = Path("/work/.mirror")
DEFAULT_REPOS = ("encode+httpx", "pallets+jinja", "psf+requests")
HELD_OUT = ("click",)
MAX_EVENTS = 8  # the editor keeps this many edit events per buffer (events.MAX_EVENTS)
MODEL_P50_TARGET_MS = 500.0
SLICES = (*STRATA, "in_file", "all")
LANGUAGE = "python"

#: ``(input) -> (answer text, finished, metrics)``: a model's answer to a next-edit input.
Predictor = Callable[[Any], tuple[str, bool, dict[str, Any]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repos",
        nargs="+",
        default=None,
        help="repositories (work trees or bare git dirs; default: the httpx, jinja and requests "
        f"mirrors under {MIRRORS})",
    )
    parser.add_argument("--cases", type=int, default=30, help="cases per repository, model arms")
    parser.add_argument(
        "--propagation-cases",
        type=int,
        default=300,
        help="cases per repository for the arms without a model (default 300)",
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--model",
        default=None,
        help="comma-separated model ids (default: every installed chat model); 'none' skips "
        "the model arms",
    )
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument(
        "--related-commits",
        type=int,
        default=2000,
        help="commits per repository for the related-files replay (0 skips it)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run (tests): 5 cases, 10 propagation cases, 200 related commits",
    )
    parser.add_argument(
        "--no-samples", action="store_true", help="leave the per-case rows out of the JSON"
    )


# ---------------------------------------------------------------- judging


@dataclass(frozen=True)
class Shown:
    """A suggestion shown: ``edits`` in the case's text offsets; ``line`` of the first."""

    edits: tuple[Unit, ...]
    line: int


@dataclass(frozen=True)
class Verdict:
    located: bool
    exact: bool
    correct: bool
    kept: int  # characters inserted or removed that the final text agrees with
    reversal: bool


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset)


def _located(case: Case, shown: Shown) -> bool:
    text = case.text
    for u in case.remaining:
        first = _line(text, u.start)
        last = _line(text, max(u.start, u.end - 1))
        if u.start == u.end and (u.start == 0 or text[u.start - 1] == "\n"):
            first -= 1  # lines inserted: typed from the end of the line above too
        if first <= shown.line <= last:
            return True
    return False


def _exact(case: Case, suggested: str) -> bool:
    text, rem = case.text, case.remaining
    deltas = [len(u.new) - (u.end - u.start) for u in rem]
    for i in range(len(rem)):
        total = 0
        for j in range(i, len(rem)):
            total += deltas[j]
            if len(text) + total == len(suggested) and apply_units(text, rem[i : j + 1]) == (
                suggested
            ):
                return True
    return False


def _window(case: Case, shown: Shown) -> tuple[int, int]:
    """Whole lines of the case's text around the suggestion and every remaining unit that
    overlaps them."""
    text = case.text
    lo = min(e.start for e in shown.edits)
    hi = max(e.end for e in shown.edits)
    changed = True
    while changed:
        changed = False
        lo = text.rfind("\n", 0, lo) + 1
        nl = text.find("\n", hi)
        hi = len(text) if nl < 0 else nl + 1
        for u in case.remaining:
            if u.start < hi and lo < max(u.end, u.start + 1) and (u.start < lo or u.end > hi):
                lo, hi = min(lo, u.start), max(hi, u.end)
                changed = True
    return lo, hi


def _shift(units: Iterable[Unit], pos: int) -> int:
    """How far ``pos`` (outside every unit) moves when ``units`` are made."""
    return sum(len(u.new) - (u.end - u.start) for u in units if u.end <= pos and u.start < pos)


def _inserted_mask(edits: Sequence[Unit], lo: int) -> tuple[list[tuple[int, int]], int]:
    """The spans the edits insert, in the suggested window's offsets, and the chars removed."""
    spans, shift, removed = [], 0, 0
    for e in sorted(edits, key=lambda e: e.start):
        at = e.start - lo + shift
        spans.append((at, at + len(e.new)))
        shift += len(e.new) - (e.end - e.start)
        removed += e.end - e.start
    return spans, removed


def _aligned(a: str, b: str) -> list[bool]:
    """Which characters of ``a`` a character alignment with ``b`` keeps."""
    out = [False] * len(a)
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            for p in range(op.src_start, op.src_end):
                out[p] = True
    return out


def _kept_and_correct(case: Case, shown: Shown, suggested: str) -> tuple[int, bool]:
    lo, hi = _window(case, shown)
    final = apply_units(case.text, case.remaining)
    f_lo = lo + _shift(case.remaining, lo)
    f_hi = hi + _shift(case.remaining, hi)
    s_hi = hi + sum(len(e.new) - (e.end - e.start) for e in shown.edits)
    cur, sug, fin = case.text[lo:hi], suggested[lo:s_hi], final[f_lo:f_hi]
    correct = sug != cur and Levenshtein.distance(cur, sug) + Levenshtein.distance(
        sug, fin
    ) == Levenshtein.distance(cur, fin)
    spans, _removed = _inserted_mask(shown.edits, lo)
    in_final = _aligned(sug, fin)
    kept = sum(1 for a, b in spans for p in range(a, b) if in_final[p])
    # removed characters the final text removes too: not aligned from current to final
    cur_kept = _aligned(cur, fin)
    for e in shown.edits:
        kept += sum(1 for p in range(e.start - lo, e.end - lo) if not cur_kept[p])
    return kept, correct


def _trim(before: str, after: str) -> tuple[str, str]:
    from forecode_core.next_edit.propagation import shared_ends

    p, q = shared_ends(before, after)
    return before[p : len(before) - q], after[p : len(after) - q]


def _reversal(case: Case, shown: Shown, suggested: str) -> bool:
    text = case.text
    for r, before in zip(case.recent, case.recent_before, strict=True):
        if suggested == text[: r.start] + before + text[r.end :]:
            return True
        core = _trim(before, r.new)
        for e in shown.edits:
            touches = e.start <= r.end and r.start <= e.end
            if (
                touches
                and core != ("", "")
                and _trim(text[e.start : e.end], e.new)
                == (
                    core[1],
                    core[0],
                )
            ):
                return True
    return False


def _trimmed(text: str, e: Unit) -> Unit:
    old = text[e.start : e.end]
    p = 0
    while p < min(len(old), len(e.new)) and old[p] == e.new[p]:
        p += 1
    q = 0
    while q < min(len(old), len(e.new)) - p and old[-1 - q] == e.new[-1 - q]:
        q += 1
    return Unit(e.start + p, e.end - q, e.new[p : len(e.new) - q])


def judge(case: Case, shown: Shown) -> Verdict:
    """How a suggestion shown for ``case`` fares (module doc)."""
    shown = Shown(tuple(_trimmed(case.text, e) for e in shown.edits), shown.line)
    suggested = apply_units(case.text, shown.edits)
    kept, correct = _kept_and_correct(case, shown, suggested)
    exact = bool(case.remaining) and _exact(case, suggested)
    return Verdict(
        located=bool(case.remaining) and _located(case, shown),
        exact=exact,
        # a run of the commit's own remaining units made is a step towards its text even where
        # the edit distance does not add up (a unit that a later one rewrites again)
        correct=exact or (bool(case.remaining) and correct),
        kept=kept,
        reversal=_reversal(case, shown, suggested),
    )


# ---------------------------------------------------------------- arms


@dataclass
class Outcome:
    """One arm on one case."""

    shown: Shown | None = None
    verdict: Verdict | None = None
    ms: float | None = None
    after_accept_ms: float | None = None
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    case: Case
    arms: dict[str, Outcome] = field(default_factory=dict)


def _history(case: Case) -> list[Any]:
    from forecode_core.next_edit.propagation import Edit

    return [
        Edit(r.start, b, r.new)
        for r, b in zip(case.recent[-MAX_EVENTS:], case.recent_before[-MAX_EVENTS:], strict=True)
    ]


def _propose(text: str, history: Sequence[Any], caret: int, path: str) -> tuple[list[Any], float]:
    from forecode_core.next_edit.lexmask import mask_for
    from forecode_core.next_edit.propagation import propose

    began = time.perf_counter()
    mask = mask_for(text, path)
    found = propose(text, history, caret, path=path, mask=mask)
    return found, (time.perf_counter() - began) * 1000.0


def propagation_arm(case: Case) -> tuple[Outcome, list[Any]]:
    """Propagation's first proposal, timed, and the next one after accepting it."""
    from forecode_core.next_edit.propagation import Edit

    history = _history(case)
    found, ms = _propose(case.text, history, case.caret, case.path)
    out = Outcome(ms=ms)
    if not found:
        return out, found
    p = found[0]
    out.shown = Shown((Unit(p.start, p.end, p.new),), _line(case.text, p.start))
    out.reason = p.reason
    accepted = case.text[: p.start] + p.new + case.text[p.end :]
    _again, out.after_accept_ms = _propose(
        accepted,
        [*history, Edit(p.start, p.old, p.new)][-MAX_EVENTS:],
        p.start + len(p.new),
        case.path,
    )
    return out, found


def _input(path: str, text: str, caret: int, recent: Sequence[tuple[Unit, str]]) -> Any:
    from forecode_core.next_edit.events import EditEvent
    from forecode_core.next_edit.input import input_at, pair_of

    pairs = []
    for r, before in recent[-MAX_EVENTS:]:
        line = _line(text, r.start)
        event = EditEvent(r.start, before, r.new, line, 0.0, 0.0, line)
        pairs.append(pair_of(path, event, text))
    return input_at(text, caret, path=path, language=LANGUAGE, events=tuple(pairs))


def model_input(case: Case) -> Any:
    """The next-edit input the editor would build for the case (the recent edits as pairs)."""
    recent = list(zip(case.recent, case.recent_before, strict=True))
    return _input(case.path, case.text, case.caret, recent)


def previous_input(case: Case) -> Any:
    """The input of the request before the case's: the last recent edit not made yet, the
    caret where it starts (the editor asked there when the caret came to rest)."""
    last, before = case.recent[-1], case.recent_before[-1]
    text = case.text[: last.start] + before + case.text[last.end :]
    recent = list(zip(case.recent[:-1], case.recent_before[:-1], strict=True))
    return _input(case.path, text, last.start, recent)


def model_arm(
    case: Case, predictor: Predictor, *, warm: bool = False, gate: Any = None
) -> tuple[Outcome, Any]:
    """The model's suggestion through the product's whole policy (``acceptance.judge``:
    ``check_answer``'s filters, then the acceptance gate, no recent rejects), or why none,
    timed. ``gate``: the ``AcceptanceModel`` (default the shipped prior). A suggestion the
    filters pass is judged against the case even when the gate holds it back
    (``candidate``: the gate's features, its probability and the verdict, the rows a refit
    is fitted on). ``warm``: first (untimed) the request the editor made before this one
    (``previous_input``), so the model's cache holds what it would hold in the editor."""
    from forecode_core.next_edit.acceptance import PRIOR
    from forecode_core.next_edit.acceptance import judge as policy

    if warm:
        with contextlib.suppress(ValueError):  # the region does not fit: the timed one says
            predictor(previous_input(case))
    began = time.perf_counter()
    inp = model_input(case)
    try:
        answer, finished, metrics = predictor(inp)
    except ValueError as exc:  # the region does not fit the model's context
        return Outcome(reason=f"error: {exc}"), None
    judged = policy(
        inp,
        answer,
        finished=finished,
        metrics=metrics,
        recent_rejects=0,
        gate=PRIOR if gate is None else gate,
    )
    out = Outcome(ms=(time.perf_counter() - began) * 1000.0, metrics=metrics)
    if judged.features is not None:
        passed = judged.suggestion
        if passed is None:  # the gate held it back: judge what the filters let through
            passed = check_answer_again(inp, answer, finished, metrics.get("format_id"))
        candidate = Shown(tuple(Unit(e.start, e.end, e.text) for e in passed.edits), passed.line)
        out.metrics["candidate"] = {
            "features": judged.features.to_json(),
            "p": round(judged.probability, 4),
            "verdict": judge(case, candidate).__dict__,
            "line": candidate.line,
            "edits": [[e.start, e.end, e.new] for e in candidate.edits],
            "lines": _lines_touched(case.text, candidate.edits),
            "margin_first": metrics.get("margin_first"),
            "margin_tokens": metrics.get("margin_tokens"),
        }
    if judged.suggestion is None:
        out.reason = judged.reason.split(":", 1)[0].split(" (", 1)[0]
        return out, None
    result = judged.suggestion
    out.shown = Shown(tuple(Unit(e.start, e.end, e.text) for e in result.edits), result.line)
    return out, result


def _lines_touched(text: str, edits: Sequence[Unit]) -> int:
    """The lines a suggestion removes or writes: the old lines its edits span plus the new
    lines they insert."""
    spans = {n for e in edits for n in range(_line(text, e.start), _line(text, e.end) + 1)}
    return len(spans) + sum(e.new.count("\n") for e in edits)


def check_answer_again(inp: Any, answer: str, finished: bool, format_id: str | None = None) -> Any:
    """``check_answer``'s suggestion for an answer it passed (for the gate's labels), read by
    the rendering format's parser (a Zeta GGUF's own)."""
    from forecode_core.next_edit.answer import check_answer
    from forecode_core.next_edit.native_zeta import parser_for_format

    return check_answer(inp, answer, finished=finished, parse=parser_for_format(format_id))


def both_arm(case: Case, proposals: Sequence[Any], suggestion: Any) -> Outcome:
    """What the product shows with both sources on offer (``session.Session.shown``)."""
    from forecode_core.next_edit import session as ses

    history = _history(case)
    caret_line = _line(case.text, case.caret)
    s = ses.Session(version=1)
    s = ses.offer(
        s,
        ses.from_proposals(case.text, proposals),
        ses.Source.PROPAGATION,
        1,
        caret_line=caret_line,
        recent=history,
    )
    if suggestion is not None:
        s = ses.offer(
            s,
            [ses.from_suggestion(case.text, suggestion)],
            ses.Source.MODEL,
            1,
            caret_line=caret_line,
            recent=history,
        )
    o = s.shown
    if o is None:
        return Outcome()
    return Outcome(
        shown=Shown(tuple(Unit(e.start, e.end, e.new) for e in o.edits), o.line),
        reason=o.source.value,
    )


def run_arms(
    rows: Sequence[Row],
    predictors: dict[str, Predictor],
    *,
    propagation: bool = True,
    warm: bool = False,
) -> None:
    """Fill each row's outcomes: ``noop`` and ``propagation`` (when asked), then for each
    predictor ``model:<id>`` and ``both:<id>``."""
    for row in rows:
        case = row.case
        row.arms["noop"] = Outcome()
        prop, proposals = propagation_arm(case)
        if propagation:
            row.arms["propagation"] = prop
        for name, predictor in predictors.items():
            model, suggestion = model_arm(case, predictor, warm=warm)
            row.arms[f"model:{name}"] = model
            row.arms[f"both:{name}"] = both_arm(case, proposals, suggestion)
        for out in row.arms.values():
            if out.shown is not None:
                out.verdict = judge(case, out.shown)


# ---------------------------------------------------------------- figures


def _in(slice_: str, case: Case) -> bool:
    if slice_ == "all":
        return True
    if slice_ == "in_file":
        return case.slice in ("same_line", "elsewhere")
    if slice_ == "rename_template":
        return case.template
    return case.slice == slice_


def _ratio(n: int, d: int) -> float | None:
    return round(n / d, 3) if d else None


def _figures(outcomes: Sequence[tuple[Case, Outcome]]) -> dict[str, Any]:
    shown = [(c, o) for c, o in outcomes if o.verdict is not None]
    v = [o.verdict for _c, o in shown if o.verdict is not None]
    nothing = [(c, o) for c, o in outcomes if c.slice == "nothing_remains"]
    return {
        "cases": len(outcomes),
        "shown": len(shown),
        "show_rate": _ratio(len(shown), len(outcomes)),
        "location_accuracy_when_shown": _ratio(sum(x.located for x in v), len(v)),
        "exact_match": _ratio(sum(x.exact for x in v), len(outcomes)),
        "exact_when_shown": _ratio(sum(x.exact for x in v), len(v)),
        "correct_when_shown": _ratio(sum(x.correct for x in v), len(v)),
        "chars_kept_per_shown": round(sum(x.kept for x in v) / len(v), 1) if v else None,
        "reversal_rate": _ratio(sum(x.reversal for x in v), len(v)),
        "false_show_rate": _ratio(sum(o.shown is not None for _c, o in nothing), len(nothing)),
    }


def next_in_region(case: Case) -> bool:
    """Whether the next unit starts inside the model's editable region (a model can only be
    right where it is)."""
    if not case.remaining:
        return False
    inp = model_input(case)
    start: int = inp.region_offset
    return start <= case.remaining[0].start < start + len(inp.region)


def _reach(rows: Sequence[Row]) -> dict[str, float | None]:
    """Per slice with answers in the file: the share of cases whose next unit is in the region."""
    out: dict[str, float | None] = {}
    for s in ("same_line", "elsewhere", "rename_template", "in_file"):
        cases = [r.case for r in rows if _in(s, r.case)]
        out[s] = _ratio(sum(next_in_region(c) for c in cases), len(cases))
    return out


def _pct(values: Sequence[float], pct: float) -> float | None:
    from ._common import percentile

    return round(percentile(values, pct), 2) if values else None


def summarise(rows: Sequence[Row], arm: str) -> dict[str, Any]:
    """One arm's figures: overall (``all``), by slice, latency, and its rejection reasons."""
    pairs = [(r.case, r.arms[arm]) for r in rows if arm in r.arms]
    out: dict[str, Any] = _figures(pairs)
    out["by_slice"] = {s: _figures([(c, o) for c, o in pairs if _in(s, c)]) for s in SLICES}
    out["exact_match_by_slice"] = {s: out["by_slice"][s]["exact_match"] for s in SLICES}
    times = [o.ms for _c, o in pairs if o.ms is not None]
    after = [o.after_accept_ms for _c, o in pairs if o.after_accept_ms is not None]
    out["latency_ms"] = {
        "p50": _pct(times, 50),
        "p90": _pct(times, 90),
        "after_accept_p50": _pct(after, 50),
    }
    reasons: dict[str, int] = {}
    for _c, o in pairs:
        if o.shown is None and o.reason:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
    out["not_shown"] = reasons
    return out


_SAMPLE_METRICS = (
    "stop_reason",
    "prompt_tokens",
    "cached_tokens",
    "decoded_tokens",
    "accepted_tokens",
    "generated_tokens",
    "candidate",
)


def _sample(row: Row) -> dict[str, Any]:
    c = row.case
    arms: dict[str, Any] = {}
    for name, o in row.arms.items():
        if name == "noop":
            continue
        arms[name] = {
            "line": o.shown.line if o.shown else None,
            "edits": [[e.start, e.end, e.new] for e in o.shown.edits] if o.shown else None,
            "verdict": None if o.verdict is None else o.verdict.__dict__,
            "ms": None if o.ms is None else round(o.ms, 1),
            "reason": o.reason,
            **{k: o.metrics[k] for k in _SAMPLE_METRICS if k in o.metrics},
        }
    return {
        "repo": c.repo,
        "commit": c.commit[:12],
        "path": c.path,
        "k": c.k,
        "units": c.units,
        "slice": c.slice,
        "template": c.template,
        "caret_line": _line(c.text, c.caret),
        "next": None
        if not c.remaining
        else [
            _line(c.text, c.remaining[0].start),
            c.text[c.remaining[0].start : c.remaining[0].end],
            c.remaining[0].new,
        ],
        "arms": arms,
    }


# ---------------------------------------------------------------- the gate


def gate_records(result: dict[str, Any]) -> list[tuple[Any, bool, str]]:
    """``(Features, correct, slice)`` per model answer the filters passed, from a result's
    samples (every model arm): ``correct`` is the bench's verdict (a step towards the final
    text, or exact), the label a refit learns from."""
    from forecode_core.next_edit.acceptance import Features

    out = []
    for sample in result.get("samples", []):
        for name, arm in sample["arms"].items():
            cand = arm.get("candidate")
            if name.startswith("model:") and cand:
                v = cand["verdict"]
                label = bool(v["correct"] or v["exact"])
                out.append((Features.from_json(cand["features"]), label, sample["slice"]))
    return out


def _model_cases(result: dict[str, Any]) -> tuple[int, int]:
    """(model answers, of which on cases where nothing remains) over every model arm."""
    n = nothing = 0
    for sample in result.get("samples", []):
        for name in sample["arms"]:
            if name.startswith("model:"):
                n += 1
                nothing += sample["slice"] == "nothing_remains"
    return n, nothing


def gate_figures(
    records: Sequence[tuple[Any, bool, str]], gate: Any, cases: int, nothing: int
) -> dict[str, Any]:
    """What ``gate`` shows of ``records``: ``show_rate`` (of ``cases`` answers),
    ``precision_when_shown`` (the correct among shown), ``false_show_rate`` (shown where
    nothing remains / ``nothing`` such answers), ``correct_kept`` (correct ones shown / correct
    ones)."""
    shown = [(ok, sl) for f, ok, sl in records if gate.shows(f)]
    good = sum(ok for _f, ok, _sl in records)
    return {
        "shown": len(shown),
        "show_rate": _ratio(len(shown), cases),
        "precision_when_shown": _ratio(sum(ok for ok, _sl in shown), len(shown)),
        "false_show_rate": _ratio(sum(sl == "nothing_remains" for _ok, sl in shown), nothing),
        "correct_kept": _ratio(sum(ok for ok, _sl in shown), good),
    }


def gate_study(
    train: Sequence[dict[str, Any]], held_out: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The shipped prior against a refit on ``train`` results' labelled answers, both judged on
    ``held_out`` results (and on the training set: in-sample)."""
    from forecode_core.next_edit.acceptance import PRIOR, refit

    tr = [r for res in train for r in gate_records(res)]
    te = [r for res in held_out for r in gate_records(res)]
    fitted = refit([(f, ok) for f, ok, _sl in tr])
    tr_n = [sum(x) for x in zip(*(_model_cases(res) for res in train), strict=True)] or [0, 0]
    te_n = [sum(x) for x in zip(*(_model_cases(res) for res in held_out), strict=True)] or [0, 0]
    return {
        "train_records": len(tr),
        "train_correct": sum(ok for _f, ok, _sl in tr),
        "held_out_records": len(te),
        "held_out_correct": sum(ok for _f, ok, _sl in te),
        "fitted_weights": [round(w, 3) for w in fitted.weights],
        "fitted_on": fitted.fitted_on,
        "prior": {
            "train": gate_figures(tr, PRIOR, *tr_n),
            "held_out": gate_figures(te, PRIOR, *te_n),
        },
        "fitted": {
            "train": gate_figures(tr, fitted, *tr_n),
            "held_out": gate_figures(te, fitted, *te_n),
        },
    }


@dataclass(frozen=True)
class GateCase:
    """One model arm on one case, as ``gate_cv`` replays it under another gate: the answer the
    filters passed (``features`` None: none passed) and its verdict, propagation's first
    proposal's verdict (None: none), the repository and slice."""

    repo: str
    slice: str
    model: str
    features: Any
    verdict: dict[str, Any] | None
    propagation: dict[str, Any] | None


def gate_cases(result: dict[str, Any]) -> list[GateCase]:
    """Every (case, model arm) of a result's samples, for ``both_under``."""
    from forecode_core.next_edit.acceptance import Features

    out = []
    for sample in result.get("samples", []):
        prop = sample["arms"].get("propagation", {}).get("verdict")
        for name, arm in sample["arms"].items():
            if not name.startswith("model:"):
                continue
            cand = arm.get("candidate")
            out.append(
                GateCase(
                    sample.get("repo", ""),
                    sample["slice"],
                    name.split(":", 1)[1],
                    Features.from_json(cand["features"]) if cand else None,
                    cand["verdict"] if cand else None,
                    prop,
                )
            )
    return out


def both_under(cases: Sequence[GateCase], gate: Any) -> dict[str, Any]:
    """The both arm's figures had ``gate`` judged the model's answers (``session.Session.shown``:
    the model's suggestion on the caret's line first, else propagation's first proposal, else
    the model's elsewhere; reverts dropped): ``show_rate``, ``location_accuracy_when_shown``,
    ``exact_match``, ``correct_when_shown``, ``false_show_rate``, and the model arm's
    ``model_show_rate`` / ``model_located_when_shown``."""
    shown: list[tuple[GateCase, dict[str, Any]]] = []
    model_shown: list[dict[str, Any]] = []
    for c in cases:
        v = c.verdict
        model = v if v is not None and not v["reversal"] and gate.shows(c.features) else None
        if model is not None:
            model_shown.append(model)
        prop = c.propagation if c.propagation and not c.propagation["reversal"] else None
        pick = model if model is not None and c.features.distance == 0 else prop or model
        if pick is not None:
            shown.append((c, pick))
    nothing = sum(c.slice == "nothing_remains" for c in cases)
    return {
        "cases": len(cases),
        "shown": len(shown),
        "located": sum(bool(v["located"]) for _c, v in shown),
        "show_rate": _ratio(len(shown), len(cases)),
        "location_accuracy_when_shown": _ratio(
            sum(bool(v["located"]) for _c, v in shown), len(shown)
        ),
        "exact_match": _ratio(sum(bool(v["exact"]) for _c, v in shown), len(cases)),
        "correct_when_shown": _ratio(sum(bool(v["correct"]) for _c, v in shown), len(shown)),
        "false_show_rate": _ratio(sum(c.slice == "nothing_remains" for c, _v in shown), nothing),
        "model_show_rate": _ratio(len(model_shown), len(cases)),
        "model_located_when_shown": _ratio(
            sum(bool(v["located"]) for v in model_shown), len(model_shown)
        ),
    }


GATE_TARGET = 0.60  # issue 15: location accuracy when shown


def _hand_set() -> Any:
    from forecode_core.next_edit.acceptance import HAND_SET_WEIGHTS, AcceptanceModel

    return AcceptanceModel(HAND_SET_WEIGHTS, 0.25)


#: The first gate: hand-set weights at 0.25 (the refit's anchor, the "before" of the study).
HAND_SET = _hand_set()
THRESHOLDS = tuple(round(0.05 + 0.01 * i, 2) for i in range(76))


def _label(c: GateCase, label: str) -> bool:
    v = c.verdict or {}
    return (
        bool(v.get("located")) if label == "located" else bool(v.get("correct") or v.get("exact"))
    )


def fit_gate(
    cases: Sequence[GateCase], *, label: str = "located", l2: float | None = None
) -> tuple[float, ...]:
    """Weights fitted to ``cases``' labelled answers (``label``: ``located`` or ``correct``)
    by the product's ``acceptance.refit``, pulled toward the hand-set weights (not the shipped
    ones: those were fitted on these cases)."""
    from forecode_core.next_edit.acceptance import L2, refit

    records = [(c.features, _label(c, label)) for c in cases if c.features is not None]
    return refit(records, HAND_SET, l2=L2 if l2 is None else l2).weights


def _pooled(figs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    shown, located = sum(f["shown"] for f in figs), sum(f["located"] for f in figs)
    accs = [f["location_accuracy_when_shown"] for f in figs]
    return {
        "shown": shown,
        "located": located,
        "show_rate": _ratio(shown, sum(f["cases"] for f in figs)),
        "location_accuracy_when_shown": _ratio(located, shown),
        "worst_fold": min((a for a in accs if a is not None), default=None),
    }


def gate_cv(
    cases: Sequence[GateCase],
    *,
    fit_on: Sequence[GateCase] | None = None,
    label: str = "located",
    l2: float | None = None,
    target: float = GATE_TARGET,
) -> dict[str, Any]:
    """Leave one repository out: weights fitted (``fit_gate``) on the other repositories'
    ``fit_on`` answers (default ``cases``; e.g. every model's), the both arm judged on this
    one's ``cases`` at each threshold of ``THRESHOLDS``. ``threshold``: the lowest (the most
    shown) at which every held-out repository is located at least ``target`` of the time when
    shown (one repository's luck cannot carry it); ``folds`` at that threshold beside the
    shipped and the hand-set gates; ``weights``: fitted on every repository's answers."""
    from forecode_core.next_edit.acceptance import PRIOR, AcceptanceModel

    pool = cases if fit_on is None else fit_on
    repos = sorted({c.repo for c in cases})
    weights = {r: fit_gate([c for c in pool if c.repo != r], label=label, l2=l2) for r in repos}
    tests = {r: [c for c in cases if c.repo == r] for r in repos}
    sweep = []
    chosen = None
    for t in THRESHOLDS:
        figs = [both_under(tests[r], AcceptanceModel(weights[r], t)) for r in repos]
        row = {"threshold": t, **_pooled(figs)}
        sweep.append(row)
        worst = row["worst_fold"]
        if chosen is None and worst is not None and worst >= target:
            chosen = t
    folds: dict[str, dict[str, Any]] = {
        r: {
            "weights": [round(w, 3) for w in weights[r]],
            "fitted": None
            if chosen is None
            else both_under(tests[r], AcceptanceModel(weights[r], chosen)),
            "shipped": both_under(tests[r], PRIOR),
            "hand_set": both_under(tests[r], HAND_SET),
        }
        for r in repos
    }
    return {
        "label": label,
        "target": target,
        "threshold": chosen,
        "weights": [round(w, 3) for w in fit_gate(pool, label=label, l2=l2)],
        "folds": folds,
        "pooled": {
            k: _pooled([f[k] for f in folds.values() if f[k] is not None])
            for k in ("fitted", "shipped", "hand_set")
        },
        "sweep": sweep,
    }


# ---------------------------------------------------------------- the model


class LocalPredictor:
    """A model in-process, built and asked as the worker does (``local_models.worker``:
    ``Engine`` with ``NEXT_EDIT_MAX_OUTPUTS`` rows and ``NEXT_EDIT_FLASH_ATTN``, the GGUF's
    profile, ``predict``)."""

    def __init__(self, model_id: str, threads: int | None) -> None:
        from forecode_core.profiles import profile_of
        from local_models.engine import Engine
        from local_models.model_store import ensure_model
        from local_models.next_edit import NEXT_EDIT_FLASH_ATTN, NEXT_EDIT_MAX_OUTPUTS

        path = ensure_model(model_id)
        began = time.perf_counter()
        from local_models.gguf_info import read_model_info

        self.profile = profile_of(read_model_info(path))
        self.engine = Engine(
            path,
            n_ctx=self.profile.max_context,
            n_threads=threads,
            max_outputs=NEXT_EDIT_MAX_OUTPUTS,
            flash_attn=NEXT_EDIT_FLASH_ATTN,
        )
        self.load_ms = (time.perf_counter() - began) * 1000.0

    def __call__(self, inp: Any) -> tuple[str, bool, dict[str, Any]]:
        from local_models.next_edit import predict

        p = predict(self.engine, self.profile, inp)
        return p.text, p.finished, {**p.metrics, "stop_reason": p.stop_reason}

    def close(self) -> None:
        self.engine.close()


def _installed() -> list[str]:
    from local_models.model_store import installed_models

    return [m.id for m in installed_models() if "minilm" not in m.id and "embed" not in m.id]


def _choose(models: dict[str, dict[str, Any]]) -> str | None:
    """The best ``exact_match`` on in-file cases among models within the latency target;
    None when none is (the top-level figures are then propagation's: no model qualifies)."""
    if not models:
        return None

    def score(mid: str) -> tuple[float, float]:
        s = models[mid]
        return (s["by_slice"]["in_file"]["exact_match"] or 0.0, -(s["false_show_rate"] or 0.0))

    fast = [
        m
        for m, s in models.items()
        if s["latency_ms"]["p50"] is not None and s["latency_ms"]["p50"] <= MODEL_P50_TARGET_MS
    ]
    return max(fast, key=score) if fast else None


# ---------------------------------------------------------------- related files


def related_figures(repos: Sequence[tuple[str, str]], commits: int) -> dict[str, Any]:
    """``bench.related_files``' replay over ``repos`` (default parameters), weighted by
    queries."""
    from app.services.related_history import read_history
    from forecode_core.next_edit.related import Params, replay

    per: dict[str, Any] = {}
    q = 0
    sums = {"recall_at_3": 0.0, "hit_at_3": 0.0, "mrr": 0.0}
    for name, repo in repos:
        history = read_history(repo, max_commits=commits, timeout=120.0)
        if not history.usable:
            per[name] = {"error": f"{history.state} {history.message}"}
            continue
        r = replay(history.commits, Params())
        per[name] = {
            "commits": len(history.commits),
            "queries": r.queries,
            "recall_at_3": round(r.recall_at_k, 3),
            "hit_at_3": round(r.hit_at_k, 3),
            "mrr": round(r.mrr, 3),
        }
        q += r.queries
        sums["recall_at_3"] += r.recall_at_k * r.queries
        sums["hit_at_3"] += r.hit_at_k * r.queries
        sums["mrr"] += r.mrr * r.queries
    out: dict[str, Any] = {k: (round(v / q, 3) if q else None) for k, v in sums.items()}
    out["rose_top3"] = out["hit_at_3"]
    out["rose_source"] = ROSE_SOURCE
    out["note"] = ROSE_NOTE
    out["queries"] = q
    out["by_repo"] = per
    out["params"] = Params().__dict__
    return out


ROSE_SOURCE = (
    "Zimmermann, Weissgerber, Diehl, Zeller: Mining Version Histories to Guide Software "
    "Changes, ICSE 2004, https://www.st.cs.uni-saarland.de/papers/icse2004/"
)
ROSE_NOTE = (
    "ROSE's 'the topmost three suggestions contain a correct location with a likelihood of "
    "64%' is hit_at_3 here (rose_top3: a query whose top 3 holds at least one of the "
    "commit's other files); ROSE's 'correctly predict 26% of further files' is recall_at_3 "
    "(the share of the commit's other files in the top 3). Each commit is asked before it is "
    "learned: its own co-changes are never in the table it is scored with."
)


# ---------------------------------------------------------------- the run


def _repos(args: argparse.Namespace) -> list[tuple[str, str]]:
    from .next_edit_cases import git_dir

    given = args.repos or [str(MIRRORS / name / "repo") for name in DEFAULT_REPOS]
    out = []
    for repo in given:
        gd = git_dir(repo)
        name = Path(repo).name if Path(repo).name != "repo" else Path(repo).parent.name
        if any(h in name.lower() for h in HELD_OUT):
            print(f"note: {name} is the held-out repository", flush=True)
        out.append((name, gd))
    return out


def _subset(cases: Sequence[Case], n: int) -> list[Case]:
    """The first cases of each stratum: the quotas ``sample_cases(cases=n)`` would fill."""
    quota = {s: n // len(STRATA) + (1 if i < n % len(STRATA) else 0) for i, s in enumerate(STRATA)}
    out = []
    for c in cases:
        s = stratum(c)
        if quota[s] > 0:
            quota[s] -= 1
            out.append(c)
    return out


def _models(args: argparse.Namespace) -> list[str]:
    if args.model == "none":
        return []
    installed = _installed()
    wanted = [m.strip() for m in args.model.split(",")] if args.model else installed
    missing = [m for m in wanted if m not in installed]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (installed: {', '.join(installed)})")
    return wanted


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _run_models(
    model_rows: Sequence[Row], models: Sequence[str], threads: int | None
) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for mid in models:
        print(f"next_edit: {mid}, {len(model_rows)} cases", file=sys.stderr, flush=True)
        predictor = LocalPredictor(mid, threads)
        try:
            if model_rows:  # the model's first request, not counted
                model_arm(model_rows[0].case, predictor)
            run_arms(model_rows, {mid: predictor}, propagation=False, warm=True)
            timed = [r.arms[f"model:{mid}"].metrics for r in model_rows]
            prefill = [m.get("prompt_tokens") for m in timed]
            cached = [m.get("cached_tokens") for m in timed]
            decoded = [m.get("decoded_tokens") for m in timed]
            info[mid] = {
                "load_ms": round(predictor.load_ms, 1),
                "profile": str(predictor.profile.id),
                "threads": predictor.engine.n_threads,
                "requests": len(timed),
                "decoded_tokens_p50": _pct([p for p in decoded if isinstance(p, int)], 50),
                "prompt_tokens_p50": _pct([p for p in prefill if isinstance(p, int)], 50),
                "cached_tokens_p50": _pct([p for p in cached if isinstance(p, int)], 50),
            }
        finally:
            predictor.close()
    return info


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    if args.quick:
        args.cases, args.propagation_cases = 5, 10
        args.related_commits = min(args.related_commits, 200)
    repos = _repos(args)
    models = _models(args)
    load_start = _load()
    wide: list[Row] = []
    model_rows: list[Row] = []
    case_counts: dict[str, Any] = {}
    for name, repo in repos:
        cases = sample_cases(
            repo, cases=max(args.propagation_cases, args.cases), seed=args.seed, name=name
        )
        rows = [Row(c) for c in cases]
        wide += rows
        sub = _subset(cases, args.cases)
        ids = {id(c) for c in sub}
        model_rows += [r for r in rows if id(r.case) in ids]
        case_counts[name] = {
            "wide": len(cases),
            "model": len(sub),
            "by_stratum": {s: sum(stratum(c) == s for c in cases) for s in STRATA},
        }
    run_arms(wide, {})
    model_info = _run_models(model_rows, models, args.threads)
    by_arm = {
        "noop": summarise(model_rows, "noop"),
        "propagation": summarise(model_rows, "propagation"),
    }
    for mid in models:
        by_arm[f"model:{mid}"] = summarise(model_rows, f"model:{mid}")
        by_arm[f"both:{mid}"] = summarise(model_rows, f"both:{mid}")
    chosen = _choose({m: by_arm[f"model:{m}"] for m in models})
    # the model latency figures: the chosen model's, else the fastest's (none qualifies)
    timed = chosen or min(
        models,
        key=lambda m: by_arm[f"model:{m}"]["latency_ms"]["p50"] or float("inf"),
        default=None,
    )
    wide_prop = summarise(wide, "propagation")
    top = by_arm[f"both:{chosen}"] if chosen else by_arm["propagation"]
    related = related_figures(repos, args.related_commits) if args.related_commits > 0 else None
    prop_shown = [r.arms["propagation"] for r in wide if r.arms["propagation"].verdict]
    result: dict[str, Any] = {
        "model": chosen,
        "top_level_arm": f"both:{chosen}" if chosen else "propagation",
        "propagation_precision": _ratio(
            sum(o.verdict.correct for o in prop_shown if o.verdict), len(prop_shown)
        ),
        "propagation_precision_exact": _ratio(
            sum(o.verdict.exact for o in prop_shown if o.verdict), len(prop_shown)
        ),
        "location_accuracy_when_shown": top["location_accuracy_when_shown"],
        "exact_match": top["exact_match_by_slice"],
        "chars_kept_per_shown": top["chars_kept_per_shown"],
        "reversal_rate": top["reversal_rate"],
        "false_show_rate": top["false_show_rate"],
        "show_rate": top["show_rate"],
        "latency_ms": {
            "model_p50": by_arm[f"model:{timed}"]["latency_ms"]["p50"] if timed else None,
            "model_p90": by_arm[f"model:{timed}"]["latency_ms"]["p90"] if timed else None,
            "model_timed": timed,
            "propagation_p50": wide_prop["latency_ms"]["p50"],
            "propagation_p90": wide_prop["latency_ms"]["p90"],
            "after_accept_p50": wide_prop["latency_ms"]["after_accept_p50"],
        },
        "related_files": related,
        "by_arm": by_arm,
        "propagation_wide": wide_prop,
        "models": model_info,
        "targets": {
            "propagation_precision": ">= 0.85",
            "location_accuracy_when_shown": ">= 0.60",
            "exact_match.rename_template": ">= 0.60",
            "reversal_rate": "0",
            "model_p50": f"<= {MODEL_P50_TARGET_MS:.0f} ms",
            "propagation_p50": "<= 20 ms",
            "after_accept_p50": "<= 50 ms",
            "related_files.rose_top3": ">= 0.64 (ROSE's 64 %: hit_at_3)",
            "related_files.recall_at_3": ">= 0.64 as issue 15 asks; ROSE's comparable figure "
            "is 26 % (related_files.note)",
        },
        "next_edit_in_model_region": _reach(wide),
        "cases": {
            "model_arms": len(model_rows),
            "propagation_wide": len(wide),
            "by_repo": case_counts,
        },
        "settings": {
            "repos": [name for name, _ in repos],
            "seed": args.seed,
            "cases_per_repo": args.cases,
            "propagation_cases_per_repo": args.propagation_cases,
            "threads": args.threads,
            "max_events": MAX_EVENTS,
            "related_commits": args.related_commits,
            "quick": args.quick,
        },
        "load_average_start": load_start,
        "load_average_end": _load(),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if not args.no_samples:
        result["samples"] = [_sample(r) for r in model_rows]
    return result
