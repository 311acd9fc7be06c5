"""The ``completion`` benchmark: are inline completions right, and fast wherever the caret goes?

For each installed model (``--models`` picks some), through the real worker
(``local_models.client.EngineClient``: the worker renders ``forecode_core.completion.prompt`` from
the
editor's own input, ``forecode_core.completion.prompt.input_at``) and the editor's post-processing
(``forecode_core.completion.postprocess``, first line while streaming, the whole suggestion at the
end, as
``app.ui.inline_completion`` does), on Python files this project did not write: the standard
library and the installed ``rich``, ``requests`` and ``pydantic`` (never ``click``: it is kept
for a held-out check). Files are drawn with a seeded generator, so a run is repeatable.

Files: *small* (30 to 99 lines) and *large* (more than 2,000 lines). Cursors are placed as a
user types, cycling through three kinds on non-blank code lines:

- ``line_start``: the user pressed Enter and typed the indentation and two characters;
- ``mid_line``: inside a function (an indented line), after a space or a dot half-way through;
- ``open_bracket``: just after a call's ``(`` with text after it on that line.

The document is the file with the rest of the cursor's line removed (what the user is about to
type); the expected answer is that rest. A *visit* is three requests:

- ``jumped``: the caret arrives at a new place (large files: another place at least
  ``JUMP_MIN_LINES`` lines from the last one in the same file; small files: a switch from
  another file, as a small file has no far place), nothing warmed unless ``--dwell-ms``;
- ``warm``: an edit where the caret was: the next character of the expected text typed;
- ``moved``: the caret moved about ten lines down (the first eligible line 10 to 16 lines
  below, the first line restored), then a request.

The first visit of each file is a file switch and also counts as ``cold`` (``cold_p50_ms``).
With ``--dwell-ms D`` the benchmark warms the new caret place (as the editor does when the caret
rests) and waits D ms before the jumped and moved requests; the default 0 is a user who types at
once, the worst case. ``--pause-ms P`` leaves P ms after each answer (a user reading it): the
worker then grows the context in the background (``local_models.worker.PROMPT_LADDER``); the
default 0 sends requests back to back, so answers come from the smallest prompts.

Figures per model: ``exact_match`` (the suggestion's first line equals the expected rest of the
line, over all requests: a suggestion not shown is a miss), ``chars_accepted`` (per shown
suggestion, the characters it shares with the real text from the cursor on: what accepting it
word by word up to the first wrong character keeps), ``show_rate``, and latency from the
request to the first line shown (``p50_ms``/``p95_ms`` by size: the worst of the three cases;
``by_case`` has each case). Requests whose suggestion is dropped have no latency; they count in
``show_rate``.

``--autoclosed`` runs every visit a second time on the document as the editor holds it with
auto-closing on (``editor.autoClosingBrackets``/``Quotes``, the default): the cursor line's
rest is what typing its prefix left after the caret, derived with the editor's own rules
(``forecode_core.text.autoclose.on_char``, one source of truth: ``autoclosed_rest``), e.g. ``)``
after
``def main(``. There, a suggestion is exact when the line the user ends up with after accepting
it (its first line inserted over the ``overwrite`` closers it replaces, the rest of the closers
after it; a multi-line suggestion pushes the closers past its last line) is the real line. Those
figures sit beside the plain ones with an ``_autoclosed`` suffix (``exact_match_autoclosed``,
``show_rate_autoclosed``, ``by_kind_autoclosed``, ``dropped_autoclosed``); the plain pass runs
first, so its latencies are unchanged by the flag. Each sample keeps the model's raw output
(``raw``), so a run can be post-processed again offline.

``chosen`` is the tier ``local_models.calibrate`` picks on this machine (null with a reason
while that module is missing). Targets (the 2-core machine, the chosen tier): exact match >=
40 %, p50 <= 500 ms in every case and both sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import random
import sysconfig
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._common import load_average, percentile

__all__ = [
    "DEFAULT_ROUNDS",
    "Spot",
    "add_arguments",
    "choose_files",
    "find_spots",
    "plan_visits",
    "run",
    "summarise",
]

DEFAULT_ROUNDS = 1
SMALL_MIN_LINES, SMALL_MAX_LINES = 30, 99
LARGE_MIN_LINES = 2001
JUMP_MIN_LINES = 200
MOVE_LINES = (10, 16)
KINDS = ("line_start", "mid_line", "open_bracket")
CASES = ("warm", "moved", "jumped")
PACKAGES = ("rich", "requests", "pydantic")
HELD_OUT = ("click",)
REQUEST_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", default=None, help="comma-separated model ids (default: every installed model)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most this many visits per file size (quick runs, tests)",
    )
    parser.add_argument(
        "--small-files", type=int, default=8, help="small files, one visit each (default 8)"
    )
    parser.add_argument("--large-files", type=int, default=2, help="large files (default 2)")
    parser.add_argument("--visits", type=int, default=4, help="visits per large file (default 4)")
    parser.add_argument("--seed", type=int, default=11, help="file and cursor choice (11)")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="tokens per completion (default: the editor's setting)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="worker threads (default: the engine's choice)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=None,
        help="the worker's CPU priority offset (default: the editor's, +10; "
        "0 on a machine shared with other model runs)",
    )
    parser.add_argument(
        "--no-fim",
        action="store_true",
        help="prefix-only prompts for every model (compare with FIM)",
    )
    parser.add_argument(
        "--pause-ms",
        type=int,
        default=0,
        help="idle time after each answer before the next request (a user "
        "reading the suggestion; the worker warms larger contexts then); "
        "default 0: back to back",
    )
    parser.add_argument(
        "--autoclosed",
        action="store_true",
        help="also run every visit on the document with auto-closed brackets "
        "and quotes after the caret (the editor's default) and report "
        "exact_match_autoclosed beside exact_match",
    )
    parser.add_argument(
        "--dwell-ms",
        type=int,
        default=0,
        help="warm the new caret place and wait this long before a jumped or "
        "moved request (default 0: the user types at once)",
    )


# --- the corpus --------------------------------------------------------------------------------


def source_roots() -> list[tuple[str, Path]]:
    """(project, folder) of the code the benchmark reads: the standard library and a few
    installed packages (never the held-out ones)."""
    roots = [("stdlib", Path(sysconfig.get_paths()["stdlib"]))]
    purelib = Path(sysconfig.get_paths()["purelib"])
    for name in PACKAGES:
        if (purelib / name).is_dir():
            roots.append((name, purelib / name))
    return roots


def _python_files(project: str, root: Path) -> list[Path]:
    skip = {
        "site-packages",
        "test",
        "tests",
        "idlelib",
        "lib2to3",
        "__pycache__",
        "turtledemo",
        *HELD_OUT,
    }
    out = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).parts
        if any(p in skip for p in rel[:-1]):
            continue
        out.append(path)
    return sorted(out)


def choose_files(
    roots: Sequence[tuple[str, Path]], rng: random.Random, small: int, large: int
) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """``small`` small and ``large`` large files, spread over the projects (round robin)."""
    by_size: dict[str, dict[str, list[Path]]] = {"small": {}, "large": {}}
    for project, root in roots:
        for path in _python_files(project, root):
            try:
                n = path.read_text(encoding="utf-8").count("\n") + 1
            except (OSError, UnicodeDecodeError):
                continue
            size = (
                "small"
                if SMALL_MIN_LINES <= n <= SMALL_MAX_LINES
                else "large"
                if n >= LARGE_MIN_LINES
                else None
            )
            if size is not None:
                by_size[size].setdefault(project, []).append(path)

    def pick(size: str, count: int) -> list[tuple[str, Path]]:
        pools = {p: rng.sample(files, len(files)) for p, files in sorted(by_size[size].items())}
        out: list[tuple[str, Path]] = []
        while len(out) < count and any(pools.values()):
            for project in sorted(pools):
                if pools[project] and len(out) < count:
                    out.append((project, pools[project].pop()))
        return out

    return pick("small", small), pick("large", large)


@dataclasses.dataclass(frozen=True)
class Spot:
    """A cursor in a file: line ``line`` (0-based) cut after ``col`` characters."""

    line: int
    col: int
    kind: str
    expected: str  # the rest of the line (right-stripped)


def _in_strings(lines: Sequence[str]) -> set[int]:
    """Lines inside (or opening) a triple-quoted string: docstrings are no code to type."""
    inside: set[int] = set()
    open_quote: str | None = None
    for i, text in enumerate(lines):
        j = 0
        was_open = open_quote is not None
        while True:
            if open_quote is None:
                hits = [(text.find(q, j), q) for q in ('"""', "'''")]
                hits = [(k, q) for k, q in hits if k >= 0]
                if not hits:
                    break
                k, q = min(hits)
                open_quote, j = q, k + 3
                inside.add(i)
            else:
                k = text.find(open_quote, j)
                if k < 0:
                    break
                open_quote, j = None, k + 3
                inside.add(i)
        if was_open or open_quote is not None:
            inside.add(i)
    return inside


def _spot(lines: Sequence[str], i: int, kind: str, rng: random.Random) -> Spot | None:
    text = lines[i].rstrip()
    body = text.lstrip()
    indent = len(text) - len(body)
    if len(body) < 6 or body.startswith(("#", "@")) or "\t" in text[:indent]:
        return None
    col: int | None = None
    if kind == "line_start":
        col = indent + 2
    elif kind == "mid_line":
        if indent == 0:
            return None
        cuts = [
            k + 1
            for k, ch in enumerate(text)
            if ch in " ." and indent + 3 <= k + 1 <= len(text) - 3
        ]
        if cuts:
            col = rng.choice(cuts)
    elif kind == "open_bracket":
        k = text.find("(", indent)
        if k >= 0 and len(text) - (k + 1) >= 3 and text[k + 1] != ")":
            col = k + 1
    if col is None:
        return None
    rest = text[col:]
    if len(rest.strip()) < 3:
        return None
    return Spot(i, col, kind, rest)


def find_spots(lines: Sequence[str], rng: random.Random) -> list[Spot]:
    """One candidate spot per code line (kinds cycling with the line number), top to bottom."""
    strings = _in_strings(lines)
    out = []
    for i in range(1, len(lines)):
        if i in strings:
            continue
        spot = _spot(lines, i, KINDS[i % len(KINDS)], rng)
        if spot is not None:
            out.append(spot)
    return out


def plan_visits(
    spots: Sequence[Spot], count: int, rng: random.Random, min_gap: int
) -> list[tuple[Spot, Spot | None]]:
    """Up to ``count`` (jump spot, moved spot) pairs, in a random order of places at least
    ``min_gap`` lines apart; the moved spot is the first one 10 to 16 lines below."""
    by_line = {s.line: s for s in spots}
    order = rng.sample(list(spots), len(spots))
    chosen: list[tuple[Spot, Spot | None]] = []
    for s in order:
        if len(chosen) >= count:
            break
        if any(abs(s.line - c.line) < min_gap for c, _ in chosen):
            continue
        if chosen and abs(s.line - chosen[-1][0].line) < min_gap:
            continue
        moved = next(
            (
                by_line[s.line + d]
                for d in range(MOVE_LINES[0], MOVE_LINES[1] + 1)
                if s.line + d in by_line
            ),
            None,
        )
        chosen.append((s, moved))
    return chosen


# --- one request through the worker ------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    model: str
    size: str
    case: str
    cold: bool
    project: str
    file: str
    line: int
    kind: str
    expected: str
    truth: str  # the real text from the cursor on (a few lines)
    shown: str = ""
    first_line_ms: float | None = None
    done_ms: float | None = None
    dropped: str | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    rest: str = ""  # the cursor line's text after the caret in the document (auto-closed)
    overwrite: int = 0  # how much of ``rest`` the suggestion replaces (Suggestion.overwrite)
    raw: str = ""  # the model's output before post-processing

    @property
    def accepted_line_rest(self) -> str:
        """The cursor line from the caret on after accepting the suggestion's first line: it,
        then what stays of the closers (none on this line when the suggestion goes on below)."""
        first, more = self.shown.split("\n", 1)[0], "\n" in self.shown
        return first + ("" if more else self.rest[self.overwrite :])

    @property
    def exact(self) -> bool:
        return bool(self.shown) and self.accepted_line_rest.rstrip() == self.expected.rstrip()

    @property
    def chars_accepted(self) -> int:
        a, b = self.shown, self.truth
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    def to_json(self) -> dict[str, Any]:
        keep = (
            "prompt_tokens",
            "reused_prefix_tokens",
            "reused_shifted_tokens",
            "evaluated_tokens",
            "generated_tokens",
            "prefill_ms",
            "first_token_ms",
            "total_ms",
        )
        m = {
            k: (round(v, 1) if isinstance(v, float) else v)
            for k, v in self.metrics.items()
            if k in keep or k.startswith("context") or k.endswith("_cost_tokens")
        }
        return {
            "size": self.size,
            "case": self.case,
            "cold": self.cold,
            "file": f"{self.project}:{self.file}:{self.line + 1}",
            "kind": self.kind,
            "expected": self.expected[:80],
            "shown": self.shown.split("\n", 1)[0][:80],
            "rest": self.rest,
            "overwrite": self.overwrite,
            "exact": self.exact,
            "chars_accepted": self.chars_accepted if self.shown else 0,
            "first_line_ms": _r(self.first_line_ms),
            "done_ms": _r(self.done_ms),
            "dropped": self.dropped,
            "raw": self.raw,
            "metrics": m,
        }


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class _Runner:
    """One model's worker, and requests made as the editor makes them."""

    def __init__(
        self, model_path: Path, threads: int | None, nice: int | None, no_fim: bool = False
    ) -> None:
        from local_models.client import EngineClient

        extra: tuple[str, ...] = ("--threads", str(threads)) if threads else ()
        if nice is not None:
            extra += ("--nice", str(nice))
        if no_fim:
            extra += ("--no-fim",)
        self.ready = threading.Event()
        self.client = EngineClient(
            model_path,
            on_state=self._on_state,
            extra_args=extra,
            request_timeout_s=REQUEST_TIMEOUT_S,
        )
        self.state = ("stopped", "")

    def _on_state(self, state: str, detail: str) -> None:
        self.state = (state, detail)
        if state in ("ready", "failed"):
            self.ready.set()

    def start(self) -> float:
        began = time.perf_counter()
        self.client.start()
        if not self.ready.wait(READY_TIMEOUT_S) or self.state[0] != "ready":
            raise RuntimeError(f"the worker did not start: {self.state}")
        return (time.perf_counter() - began) * 1000.0

    def warm(self, inp: Any) -> None:
        self.client.warm(inp)

    def request(self, inp: Any, language: str, max_tokens: int, sample: Sample) -> Sample:
        from forecode_core.completion.postprocess import postprocess

        finished = threading.Event()
        raw: list[str] = []
        began = time.perf_counter()

        def on_chunk(_rid: int, text: str) -> None:
            raw.append(text)
            if sample.first_line_ms is None:
                joined = "".join(raw)
                if "\n" in joined.lstrip("\n"):
                    first = postprocess(joined, inp.prefix, inp.suffix, language, multiline=False)
                    if first.text and first.reason_dropped is None:
                        sample.first_line_ms = (time.perf_counter() - began) * 1000.0

        def on_done(_rid: int, done: Any) -> None:
            sample.done_ms = (time.perf_counter() - began) * 1000.0
            sample.metrics = dict(done.metrics or {})
            sample.raw = done.text
            result = postprocess(
                done.text,
                inp.prefix,
                inp.suffix,
                language,
                multiline=True,
                truncated=done.stop_reason == "length",
            )
            if result.reason_dropped or not result.text:
                sample.dropped = result.reason_dropped or "empty"
                sample.first_line_ms = None
            else:
                sample.shown = result.text
                sample.overwrite = result.overwrite
                if sample.first_line_ms is None:
                    sample.first_line_ms = sample.done_ms
            finished.set()

        def on_error(_rid: int, message: str) -> None:
            sample.dropped = f"error: {message}"
            finished.set()

        self.client.complete(
            inp,
            on_chunk=on_chunk,
            on_done=on_done,
            on_error=on_error,
            max_tokens=max_tokens,
            speculative=True,
        )
        if not finished.wait(REQUEST_TIMEOUT_S):
            sample.dropped = "timed out"
        return sample

    def close(self) -> None:
        self.client.close()


# --- the run -----------------------------------------------------------------------------------


@dataclasses.dataclass
class _File:
    project: str
    path: Path
    size: str
    lines: list[str]
    visits: list[tuple[Spot, Spot | None]]
    rel: str  # the path inside its project's folder

    @property
    def name(self) -> str:
        return self.path.name


def autoclosed_rest(line_prefix: str, language: str = "python") -> str:
    """What sits after the caret once ``line_prefix`` was typed from the start of an empty line
    with auto-closing on (the defaults), by ``forecode_core.text.autoclose.on_char``'s own rules:
    the
    closers it inserted and the user did not type over (``def main(`` leaves ``)``)."""
    from forecode_core.text.autoclose import on_char, rules_for

    rules = rules_for(language)
    before, after = "", ""
    auto: list[bool] = []  # per character of ``after``: inserted by auto-closing, still tracked
    for ch in line_prefix:
        typed = on_char(ch, before, after, rules, over_auto_closer=bool(auto) and auto[0])
        if typed is None:
            before += ch
        elif typed.skip:
            before, after, auto = (
                before + after[: typed.skip],
                after[typed.skip :],
                auto[typed.skip :],
            )
        else:
            closers = typed.insert[typed.caret :]
            before += typed.insert[: typed.caret]
            after, auto = closers + after, [True] * len(closers) + auto
    return after


def _document(
    lines: Sequence[str], spot: Spot, typed: int = 0, autoclosed: bool = False
) -> tuple[str, int, str]:
    """(text, cursor offset, real text after the cursor) with the spot's line cut at the
    cursor (plus ``typed`` more characters of it); ``autoclosed``: followed on its line by
    what auto-closing left after the caret (``autoclosed_rest``)."""
    col = spot.col + typed
    head = lines[spot.line][:col]
    before = "\n".join([*lines[: spot.line], head])
    rest = autoclosed_rest(head) if autoclosed else ""
    after_lines = lines[spot.line + 1 :]
    text = before + rest + ("\n" + "\n".join(after_lines) if after_lines else "")
    truth = "\n".join([lines[spot.line].rstrip()[col:], *lines[spot.line + 1 : spot.line + 6]])
    return text, len(before), truth


def _load_files(args: argparse.Namespace) -> list[_File]:
    rng = random.Random(args.seed)
    small_n, large_n, visits = args.small_files, args.large_files, args.visits
    if args.limit is not None:
        small_n = min(small_n, args.limit)
        large_n = min(large_n, max(1, args.limit // max(1, visits)))
        visits = min(visits, args.limit)
    small, large = choose_files(source_roots(), rng, small_n, large_n)
    files: list[_File] = []
    roots = dict(source_roots())
    for size, chosen, per_file, gap in (
        ("small", small, 1, 0),
        ("large", large, visits, JUMP_MIN_LINES),
    ):
        for project, path in chosen:
            rel = path.relative_to(roots[project]).as_posix()
            lines = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
            spots = find_spots(lines, rng)
            plan = plan_visits(spots, per_file, rng, gap)
            if plan:
                files.append(_File(project, path, size, lines, plan, rel))
    return files


def _run_model(
    model_id: str,
    model_path: Path,
    files: Sequence[_File],
    args: argparse.Namespace,
    max_tokens: int,
) -> tuple[list[Sample], list[Sample], float, str | None]:
    from forecode_core.completion.prompt import input_at

    runner = _Runner(model_path, args.threads, args.nice, args.no_fim)
    samples: list[Sample] = []
    autoclosed_samples: list[Sample] = []
    dwell = max(0, args.dwell_ms) / 1000.0
    try:
        start_ms = runner.start()
        # One untimed request: the worker's first one pays one-off costs (weights paged in).
        warm_up = files[0]
        text, offset, _ = _document(warm_up.lines, warm_up.visits[0][0])
        runner.request(
            input_at(text, offset, path="warmup.py", language="python"),
            "python",
            4,
            Sample(model_id, "", "", False, "", "", 0, "", "", ""),
        )
        for autoclosed in (False, True) if getattr(args, "autoclosed", False) else (False,):
            out = autoclosed_samples if autoclosed else samples
            for f in files:
                rel = f"{f.project}/{f.rel}"
                for index, (spot, moved) in enumerate(f.visits):
                    steps: list[tuple[str, Spot, int]] = [("jumped", spot, 0), ("warm", spot, 1)]
                    if moved is not None:
                        steps.append(("moved", moved, 0))
                    for case, where, typed in steps:
                        text, offset, truth = _document(f.lines, where, typed, autoclosed)
                        inp = input_at(text, offset, path=rel, language="python")
                        if case != "warm" and dwell:
                            runner.warm(inp)
                            time.sleep(dwell)
                        sample = Sample(
                            model_id,
                            f.size,
                            case,
                            case == "jumped" and index == 0,
                            f.project,
                            f.name,
                            where.line,
                            where.kind,
                            where.expected[typed:],
                            truth,
                            rest=text[offset:].split("\n", 1)[0],
                        )
                        out.append(runner.request(inp, "python", max_tokens, sample))
                        if args.pause_ms > 0:
                            time.sleep(args.pause_ms / 1000.0)
    finally:
        runner.close()
    return samples, autoclosed_samples, start_ms, runner.client.profile


def _p(values: Sequence[float], pct: float) -> float | None:
    return round(percentile(values, pct), 1) if values else None


def summarise(samples: Sequence[Sample]) -> dict[str, Any]:
    """One model's figures from its samples (module doc)."""
    shown = [s for s in samples if s.shown]

    def lat(group: Sequence[Sample], pct: float) -> float | None:
        return _p([s.first_line_ms for s in group if s.first_line_ms is not None], pct)

    by_case: dict[str, dict[str, Any]] = {}
    for case in CASES:
        by_case[case] = {}
        for size in ("small", "large"):
            group = [s for s in samples if s.case == case and s.size == size]
            by_case[case][size] = {
                "p50_ms": lat(group, 50),
                "p95_ms": lat(group, 95),
                "samples": len(group),
                "shown": sum(1 for s in group if s.shown),
            }

    def worst(size: str, key: str) -> float | None:
        vals = [by_case[c][size][key] for c in CASES if by_case[c][size][key] is not None]
        return max(vals) if vals else None

    def by_size(fn: Callable[[Sequence[Sample]], float | None]) -> dict[str, float | None]:
        return {size: fn([s for s in samples if s.size == size]) for size in ("small", "large")}

    def exact(group: Sequence[Sample]) -> float | None:
        return round(sum(s.exact for s in group) / len(group), 3) if group else None

    def chars(group: Sequence[Sample]) -> float | None:
        got = [s.chars_accepted for s in group if s.shown]
        return round(sum(got) / len(got), 1) if got else None

    def show(group: Sequence[Sample]) -> float | None:
        return round(sum(1 for s in group if s.shown) / len(group), 3) if group else None

    cold = [s.first_line_ms for s in samples if s.cold and s.first_line_ms is not None]
    return {
        "exact_match": {"all": exact(samples), **by_size(exact)},
        "chars_accepted": {"all": chars(samples), **by_size(chars)},
        "show_rate": {"all": show(samples), **by_size(show)},
        "p50_ms": {size: worst(size, "p50_ms") for size in ("small", "large")},
        "p95_ms": {size: worst(size, "p95_ms") for size in ("small", "large")},
        "by_case": by_case,
        "cold_p50_ms": _p(cold, 50),
        "by_kind": {k: exact([s for s in samples if s.kind == k]) for k in KINDS},
        "requests": len(samples),
        "shown": len(shown),
        "dropped": sorted({s.dropped for s in samples if s.dropped}),
    }


def _chosen() -> dict[str, Any]:
    """The tier ``local_models.calibrate`` picks on this machine (lazily: it may not exist)."""
    try:
        calibrate = importlib.import_module("local_models.calibrate")
    except ImportError as exc:
        return {"model": None, "reason": f"local_models.calibrate is not there yet ({exc})"}
    for name in ("chosen_model", "choose_model", "calibrated_choice", "choose"):
        fn = getattr(calibrate, name, None)
        if callable(fn):
            try:
                got = fn()
            except Exception as exc:  # the calibration's own failure: say it, keep the bench
                return {"model": None, "reason": f"calibrate.{name}() failed: {exc!r}"}
            model = getattr(got, "model_id", None)
            detail = got.to_json() if hasattr(got, "to_json") else None
            return {
                "model": str(model) if model is not None else None,
                "via": f"local_models.calibrate.{name}()",
                "reason": getattr(got, "reason", None),
                "detail": detail,
            }
    return {
        "model": None,
        "reason": "local_models.calibrate has none of chosen_model/choose_model/choose",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from forecode_core.store.settings import Settings
    from local_models.model_store import SMALL_MODEL, ensure_model, installed_models

    started = time.perf_counter()
    installed = [m.id for m in installed_models()]
    wanted = [m.strip() for m in args.models.split(",")] if args.models else installed
    missing = [m for m in wanted if m not in installed]
    if missing:
        raise SystemExit(
            f"not installed: {', '.join(missing)} (installed: {', '.join(installed) or 'none'})"
        )
    max_tokens = args.max_tokens or Settings().completion_max_tokens
    files = _load_files(args)
    if not files:
        raise SystemExit("no source files found")
    chosen = _chosen()
    result: dict[str, Any] = {
        "chosen": chosen["model"],
        "chosen_detail": chosen,
        "previous_default": SMALL_MODEL,
        "targets": {
            "exact_match": ">= 0.40 (the chosen tier)",
            "p50_ms": "<= 500 in every case and both sizes (the chosen tier)",
        },
        "models": {},
    }
    all_samples: dict[str, list[dict[str, Any]]] = {}
    for model_id in wanted:
        path = ensure_model(model_id)
        samples, closed, start_ms, profile = _run_model(model_id, path, files, args, max_tokens)
        summary = summarise(samples)
        if closed:
            closed_summary = summarise(closed)
            for key in (
                "exact_match",
                "chars_accepted",
                "show_rate",
                "by_kind",
                "requests",
                "shown",
                "dropped",
            ):
                summary[f"{key}_autoclosed"] = closed_summary[key]
            summary["overwrote_autoclosed"] = sum(1 for s in closed if s.shown and s.overwrite)
            all_samples[f"{model_id}:autoclosed"] = [s.to_json() for s in closed]
        summary["worker_start_ms"] = round(start_ms, 1)
        summary["profile"] = profile
        result["models"][model_id] = summary
        all_samples[model_id] = [s.to_json() for s in samples]
    result.update(
        {
            "files": [
                {
                    "project": f.project,
                    "path": f.rel,
                    "size": f.size,
                    "lines": len(f.lines),
                    "visits": len(f.visits),
                }
                for f in files
            ],
            "max_tokens": max_tokens,
            "seed": args.seed,
            "dwell_ms": args.dwell_ms,
            "pause_ms": args.pause_ms,
            "threads": args.threads,
            "nice": args.nice,
            "fim": not args.no_fim,
            "autoclosed": bool(getattr(args, "autoclosed", False)),
            "samples": all_samples,
            "load_average_end": load_average(),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    return result
