"""``python -m bench bugs --json PATH``: the bug finder on bugs injected into real code.

Functions of code this project did not write (httpx, jinja, requests at HEAD of the mirrors
under /work/.mirror, read with ``git show``), picked with ``--seed``; each gets one injected
bug, a deterministic mutation (``mutants``) that still parses: swapped arguments (a call's
first two positional arguments), off-by-one (``<`` <-> ``<=``, ``>`` <-> ``>=``), inverted
condition (``==`` <-> ``!=``, ``is`` <-> ``is not``, ``in`` <-> ``not in``, or ``not`` added or
removed on an ``if``/``while`` test), wrong variable (a local name read where another local is
in scope). The original file is the clean case.

- Tier 1 is ``ruff server`` with the bug rules (``forecode_core.bugs.rules``) through the
  editor's own ``LspHub``, the file changed to each version in turn (as ``bench lsp`` times
  it); ``tier1_ms_per_file``: change to diagnostics, p50 (target <= 100 ms).
- Tier 2 is ``forecode_core.bugs.runner.review_function`` through the local engine's chat
  (``app.services.bug_review.EngineAsk`` on an ``EngineClient`` with ``--model``) as the editor
  runs it: with HEAD's copy, which the editor has (it reviews functions changed since the last
  commit). The buggy version is reviewed against HEAD = the clean file (the change that
  injected the bug), the clean version against HEAD = the buggy file (the change that fixed
  it): an unchanged function is never reviewed, so the fix is the clean case that can be
  flagged. The one-line change is first scored (``forecode_core.bugs.surprise``: the
  model's log-probabilities of HEAD's line and the buffer's, through an in-process
  ``local_models.engine.Engine`` on ``--model``, ``--score-threads`` threads); ``--fill``
  adds, where no score agreed, the fill question (``forecode_core.bugs.contrast``) through the
  engine's chat; ``--no-score``: the fill question alone (as before the score).
  ``--sweep``: the score only, every sample scored, the figures at several thresholds
  (``score.sweep``) to choose one.
  ``--no-head``: the open question on each version alone (3 samples, the agreement rule: an
  untracked file's review). ``--no-model`` runs tier 1 only.
- ``top3_hit_rate``: the injected line among the first 3 flagged lines of the mutated function
  (tier 1's lines in the function by line, then tier 2's finding); ``false_flag_rate``: clean
  functions with any flag (target <= 10 %); both per tier and per mutation kind too.

Timings are wall clock on a shared machine: ``load_average`` in the metadata.
"""

from __future__ import annotations

import argparse
import ast
import math
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecode_core.bugs.functions import Function, functions_in, head_version
from forecode_core.bugs.rules import TIER1_RULES
from forecode_core.bugs.runner import (
    Ask,
    Review,
    Score,
    Scoring,
    Target,
    context_for,
    review,
)
from forecode_core.bugs.surprise import DEFAULT_SAMPLES, DEFAULT_THRESHOLD, agreed
from forecode_core.lsp.diagnostics import Diagnostic

from ._common import percentile

__all__ = [
    "DEFAULT_ROUNDS",
    "KINDS",
    "Case",
    "Mutant",
    "add_arguments",
    "evaluate",
    "is_bug_rule",
    "make_cases",
    "mutants",
    "run",
]

DEFAULT_ROUNDS = 1
MIRRORS = Path("/work/.mirror")
REPOS = ("encode+httpx", "pallets+jinja", "psf+requests")
KINDS = ("swapped-arguments", "off-by-one", "inverted-condition", "wrong-variable")
MIN_LINES, MAX_LINES = 5, 40
WAIT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=int, default=24, help="mutated functions (default 24)")
    parser.add_argument("--seed", type=int, default=16, help="picks functions and mutations")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="tier 2's model")
    parser.add_argument("--no-model", action="store_true", help="tier 1 only")
    parser.add_argument(
        "--no-head",
        action="store_true",
        help="tier 2 without HEAD's copy: the open question (an untracked file's review)",
    )
    parser.add_argument("--repos", default=",".join(REPOS), help="mirrors under /work/.mirror")
    parser.add_argument("--no-score", action="store_true", help="tier 2 without the score")
    parser.add_argument("--no-tier1", action="store_true", help="tier 2 only (no ruff server)")
    parser.add_argument(
        "--fill", action="store_true", help="the fill question too where no score agreed"
    )
    parser.add_argument("--no-fill", action="store_true", help=argparse.SUPPRESS)  # the default
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="nats")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="context orders")
    parser.add_argument("--score-threads", type=int, default=None, help="the scorer's threads")
    parser.add_argument(
        "--real-edits",
        type=int,
        default=0,
        help="also score N functions changed by real commits (bench/bugs_real.py): "
        "real_edit_flag_rate, the false flags on a developer's ordinary edits",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="score only, all samples, figures by threshold"
    )


# -- picking functions and mutating them ----------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    kind: str
    line: int  # 1-based, in the file
    text: str  # the whole file with the bug
    before: str  # the line as it was
    after: str  # the line with the bug


@dataclass(frozen=True)
class Case:
    repo: str
    path: str
    function: Function
    clean: str  # the file at HEAD
    mutant: Mutant


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def _sources(repo: str) -> list[tuple[str, str]]:
    """(path, text) of the repository's library modules at HEAD (no tests, docs, scripts)."""
    root = MIRRORS / repo / "repo"
    paths = [
        p
        for p in _git(root, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
        if p.endswith(".py")
        and not any(part in p for part in ("test", "docs/", "scripts/", "examples/"))
        and ("src/" in p or p.count("/") >= 1)
    ]
    return [(p, _git(root, "show", f"HEAD:{p}")) for p in sorted(paths)]


def _function_node(tree: ast.Module, function: Function) -> ast.FunctionDef | ast.AsyncFunctionDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first == function.start_line:
                return node
    raise LookupError(function.name)


def _replace(lines: list[str], line: int, start: int, end: int, new: str) -> tuple[str, str, str]:
    """The file with columns start..end (UTF-8 bytes, as ast gives) of ``line`` replaced."""
    raw = lines[line - 1].encode("utf-8")
    changed = (raw[:start] + new.encode("utf-8") + raw[end:]).decode("utf-8")
    out = [*lines[: line - 1], changed, *lines[line:]]
    return "".join(out), lines[line - 1], changed


def _segment(lines: list[str], node: ast.expr) -> str:
    raw = lines[node.lineno - 1].encode("utf-8")
    return raw[node.col_offset : node.end_col_offset].decode("utf-8")


_OFF_BY_ONE: dict[type[ast.cmpop], str] = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}
_INVERT: dict[type[ast.cmpop], str] = {
    ast.Eq: "!=",
    ast.NotEq: "==",
    ast.Is: "is not",
    ast.IsNot: "is",
    ast.In: "not in",
}
_INVERT[ast.NotIn] = "in"


def _one_line(node: ast.AST) -> bool:
    return getattr(node, "lineno", 0) == getattr(node, "end_lineno", -1)


def _swaps(fn: ast.AST, lines: list[str]) -> list[tuple[int, int, int, str]]:
    out = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call) or len(node.args) < 2 or not _one_line(node):
            continue
        a, b = node.args[0], node.args[1]
        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred):
            continue
        ta, tb = _segment(lines, a), _segment(lines, b)
        if ta == tb:
            continue
        raw = lines[node.lineno - 1].encode("utf-8")
        between = raw[a.end_col_offset or 0 : b.col_offset].decode("utf-8")
        out.append((node.lineno, a.col_offset, b.end_col_offset or 0, tb + between + ta))
    return out


def _compare_ops(
    fn: ast.AST, lines: list[str], table: dict[type[ast.cmpop], str]
) -> list[tuple[int, int, int, str]]:
    """Sites that rewrite a one-operator comparison's operator by ``table``."""
    out = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1 or not _one_line(node):
            continue
        new = table.get(type(node.ops[0]))
        if new is None:
            continue
        left, right = node.left, node.comparators[0]
        start, end = left.end_col_offset or 0, right.col_offset
        raw = lines[node.lineno - 1].encode("utf-8")
        gap = raw[start:end].decode("utf-8")
        out.append((node.lineno, start, end, f" {new} " if gap.strip() else gap))
    return out


def _negations(fn: ast.AST, lines: list[str]) -> list[tuple[int, int, int, str]]:
    out = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.If | ast.While) or not _one_line(node.test):
            continue
        test = node.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            new = _segment(lines, test.operand)
            if isinstance(test.operand, ast.BoolOp | ast.Compare | ast.IfExp):
                new = f"({new})"
        elif isinstance(test, ast.Compare):
            continue  # the operator sites above
        else:
            text = _segment(lines, test)
            new = f"not ({text})" if isinstance(test, ast.BoolOp | ast.NamedExpr) else f"not {text}"
        out.append((test.lineno, test.col_offset, test.end_col_offset or 0, new))
    return out


def _locals(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = {a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    names.discard("self")
    names.discard("cls")
    return sorted(names)


def _wrong_variables(
    fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str], rng: random.Random
) -> list[tuple[int, int, int, str]]:
    names = _locals(fn)
    out = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names:
            others = [n for n in names if n != node.id]
            if others and node.lineno > fn.body[0].lineno - 1:
                out.append(
                    (node.lineno, node.col_offset, node.end_col_offset or 0, rng.choice(others))
                )
    return out


def mutants(source: str, function: Function, kind: str, seed: int) -> list[Mutant]:
    """Every mutation of ``kind`` in ``function`` that parses and changes the text, in a
    seeded order (the caller takes the first)."""
    tree = ast.parse(source)
    fn = _function_node(tree, function)
    lines = source.splitlines(keepends=True)
    rng = random.Random(f"{seed}:{function.name}:{kind}")
    if kind == "swapped-arguments":
        sites = _swaps(fn, lines)
    elif kind == "off-by-one":
        sites = _compare_ops(fn, lines, _OFF_BY_ONE)
    elif kind == "inverted-condition":
        sites = _compare_ops(fn, lines, _INVERT) + _negations(fn, lines)
    elif kind == "wrong-variable":
        sites = _wrong_variables(fn, lines, rng)
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    rng.shuffle(sites)
    out = []
    for line, start, end, new in sites:
        if not function.start_line <= line <= function.end_line:
            continue
        text, before, after = _replace(lines, line, start, end, new)
        if text == source:
            continue
        try:
            ast.parse(text)
        except SyntaxError:
            continue
        out.append(Mutant(kind, line, text, before.rstrip("\n"), after.rstrip("\n")))
    return out


def make_cases(count: int, seed: int, repos: Sequence[str] = REPOS) -> list[Case]:
    """``count`` cases, the mutation kinds in turn, each on a different function."""
    pool: list[tuple[str, str, str, Function]] = []
    for repo in repos:
        for path, text in _sources(repo):
            try:
                ast.parse(text)
            except SyntaxError:
                continue
            for function in functions_in(path, text):
                if MIN_LINES <= function.end_line - function.start_line + 1 <= MAX_LINES:
                    pool.append((repo, path, text, function))
    rng = random.Random(seed)
    rng.shuffle(pool)
    cases: list[Case] = []
    used: set[tuple[str, str, str]] = set()
    for index in range(len(pool)):
        if len(cases) >= count:
            break
        kind = KINDS[len(cases) % len(KINDS)]
        repo, path, text, function = pool[index]
        key = (repo, path, function.name)
        found = mutants(text, function, kind, seed)
        if key in used or not found:
            continue
        used.add(key)
        cases.append(Case(repo, path, function, text, found[0]))
    return cases


# -- tier 1: ruff server through the editor's hub --------------------------------------------


class _Tier1:
    """One document in a temporary folder, changed to each text in turn; ruff's diagnostics
    for that version and the time they took."""

    def __init__(self, root: Path) -> None:
        from app.services.lsp import LspHub

        self._cond = threading.Condition()
        self._events: list[tuple[float, int | None, list[Diagnostic]]] = []
        self._hub = LspHub(self._add, lambda _s: None, (("python", (("ruff",),)),))
        self._root = root
        self._path = root / "case.py"
        self._path.write_text("", encoding="utf-8")
        self._uri = self._path.as_uri()
        self._opened = False

    def _add(self, _uri: str, version: int | None, server: str, found: list[Diagnostic]) -> None:
        with self._cond:
            self._events.append((time.perf_counter(), version, found))
            self._cond.notify_all()

    def check(self, text: str) -> tuple[list[Diagnostic], float]:
        start = time.perf_counter()
        if not self._opened:
            version = self._hub.open(self._uri, "python", text, self._root)
            self._opened = True
        else:
            version = self._hub.change(self._uri, text)
        deadline = start + WAIT_S
        with self._cond:
            while True:
                for at, v, found in self._events:
                    if at >= start and v is not None and v >= version:
                        return found, (at - start) * 1000
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"ruff said nothing of version {version} in {WAIT_S} s")
                self._cond.wait(left)

    def close(self) -> None:
        self._hub.shutdown()


def is_bug_rule(code: str) -> bool:
    """Tier 1's rules: pyflakes' (F), syntax errors (E9) and ``TIER1_RULES``; a project's
    style rules that ruff also reports are not bug flags."""
    return code.startswith(("F", "E9")) or code in TIER1_RULES


def _tier1_lines(found: Sequence[Diagnostic], function: Function) -> list[int]:
    lines = sorted({d.start.line + 1 for d in found if is_bug_rule(d.code)})
    return [n for n in lines if function.start_line <= n <= function.end_line]


# -- evaluation ------------------------------------------------------------------------------


@dataclass
class _Tally:
    cases: int = 0
    hits: int = 0
    hits1: int = 0
    hits2: int = 0

    def rate(self, n: int) -> float | None:
        return round(n / self.cases, 3) if self.cases else None


@dataclass
class _Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    tier1_ms: list[float] = field(default_factory=list)
    tier2_s: list[float] = field(default_factory=list)
    answers: int = 0
    parse_errors: int = 0
    model_errors: list[str] = field(default_factory=list)
    with_model: bool = True
    error_examples: list[str] = field(default_factory=list)  # the first 5 parser reasons


@dataclass(frozen=True)
class Tier2:
    """Tier 2's model: ``ask`` (questions), ``scoring`` (the surprise score)."""

    ask: Ask | None
    scoring: Scoring | None = None


def _review(
    tier2: Tier2 | None, text: str, head: str | None, case: Case, result: _Result
) -> Review | None:
    """Tier 2 on one version as the editor runs it: ``head`` is HEAD's copy of the file (the
    other version), None for the open question alone (an untracked file)."""
    if tier2 is None:
        return None
    functions = functions_in(case.path, text)
    function = next(f for f in functions if f.start_line == case.function.start_line)
    before = None if head is None else head_version(case.path, head, function)
    start = time.perf_counter()
    try:
        context = context_for(text, function, functions)
        found = review(Target(text, function, context, case.path, before), tier2.ask, tier2.scoring)
    except Exception as exc:  # the model failed (a timeout on a loaded machine): counted
        result.model_errors.append(f"{case.path}:{function.name}: {exc}")
        return None
    result.tier2_s.append(time.perf_counter() - start)
    result.answers += len(found.votes)
    result.parse_errors += len(found.errors)
    result.error_examples.extend(found.errors[: max(0, 5 - len(result.error_examples))])
    return found


def _votes(review: Review | None) -> list[str]:
    """Each sample's vote as ``line:kind`` (``-`` none or unparsed), for the rows."""
    if review is None:
        return []
    return [f"{v.line}:{v.kind}" if v is not None else "-" for v in review.votes]


def _flags(tier1: list[int], review: Review | None) -> list[int]:
    flags = list(tier1)
    if review is not None and review.finding is not None and review.finding.line not in flags:
        flags.append(review.finding.line)
    return flags


def evaluate(
    cases: Sequence[Case],
    ask: Ask | None,
    tier1: Callable[[str], tuple[list[Diagnostic], float]],
    *,
    with_head: bool = True,
    scoring: Scoring | None = None,
) -> dict[str, Any]:
    """Both versions of each case through tier 1 and (with ``ask``) tier 2; the figures.
    ``with_head``: tier 2 gets HEAD's copy as the editor does, the other version: the buggy
    one reviewed as the change that injected the bug, the clean one as the change that fixed
    it (the product reviews only changed functions, so an unchanged clean function is never
    asked); without it, the open question on each version alone. ``scoring``: the surprise
    score first (its margins in the rows, its own figures in ``per_tier``)."""
    result = _Result(with_model=ask is not None or scoring is not None)
    tier2 = Tier2(ask, scoring) if result.with_model else None
    margins: dict[str, list[tuple[bool, tuple[float, ...]]]] = {"buggy": [], "clean": []}
    by_kind: dict[str, _Tally] = {k: _Tally() for k in KINDS}
    clean = _Tally()
    for case in cases:
        row: dict[str, Any] = {
            "repo": case.repo,
            "path": case.path,
            "function": case.function.name,
            "kind": case.mutant.kind,
            "line": case.mutant.line,
        }
        versions = (
            ("buggy", case.mutant.text, case.clean),
            ("clean", case.clean, case.mutant.text),
        )
        for version, text, other in versions:
            found, ms = tier1(text)
            result.tier1_ms.append(ms)
            t1 = _tier1_lines(found, case.function)
            review = _review(tier2, text, other if with_head else None, case, result)
            t2 = [review.finding.line] if review is not None and review.finding else []
            flags = _flags(t1, review)
            row[version] = {
                "tier1": t1,
                "tier2": t2,
                "tier2_votes": _votes(review),
                "rules": sorted({str(d.code) for d in found if d.start.line + 1 in t1}),
                "margins": [[line, [round(m, 2) for m in ms]] for line, ms in review.margins]
                if review is not None
                else [],
            }
            if review is not None and scoring is not None:
                margins[version].extend(
                    (version == "clean" or line == case.mutant.line, ms)
                    for line, ms in review.margins
                )
            if version == "buggy":
                tally = by_kind[case.mutant.kind]
                tally.cases += 1
                tally.hits += case.mutant.line in flags[:3]
                tally.hits1 += case.mutant.line in t1[:3]
                tally.hits2 += case.mutant.line in t2
            else:
                clean.cases += 1
                clean.hits += bool(flags)
                clean.hits1 += bool(t1)
                clean.hits2 += bool(t2)
        result.rows.append(row)
    figures = _figures(result, by_kind, clean)
    if scoring is not None:
        figures["score"] = _score_figures(margins, scoring, len(cases))
    return figures


SWEEP = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _score_figures(
    margins: dict[str, list[tuple[bool, tuple[float, ...]]]], scoring: Scoring, cases: int
) -> dict[str, Any]:
    """The score alone: hits (the injected line's margins agreed) and false flags (a clean
    version's change agreed) at the run's threshold and, from the margins, at the sweep's
    thresholds not below it (a sample below the run's threshold stopped its change)."""

    def at(threshold: float) -> dict[str, float]:
        def agreeing(version: str) -> int:
            return sum(
                on and len(ms) == scoring.samples and agreed(ms, threshold)
                for on, ms in margins[version]
            )

        return {
            "top3_hit_rate": round(agreeing("buggy") / cases, 3) if cases else 0.0,
            "false_flag_rate": round(agreeing("clean") / cases, 3) if cases else 0.0,
        }

    return {
        "threshold": None if math.isinf(scoring.threshold) else scoring.threshold,
        "samples": scoring.samples,
        "fill": scoring.fill,
        **at(scoring.threshold),
        "sweep": {str(t): at(t) for t in SWEEP if t >= scoring.threshold},
    }


def _figures(result: _Result, by_kind: dict[str, _Tally], clean: _Tally) -> dict[str, Any]:
    total = _Tally(
        sum(t.cases for t in by_kind.values()),
        sum(t.hits for t in by_kind.values()),
        sum(t.hits1 for t in by_kind.values()),
        sum(t.hits2 for t in by_kind.values()),
    )
    return {
        "cases": total.cases,
        "top3_hit_rate": total.rate(total.hits),
        "false_flag_rate": clean.rate(clean.hits),
        "tier1_ms_per_file": round(percentile(result.tier1_ms, 50), 1) if result.tier1_ms else None,
        "tier1_p90_ms": round(percentile(result.tier1_ms, 90), 1) if result.tier1_ms else None,
        "tier2_s_per_function_p50": round(percentile(result.tier2_s, 50), 2)
        if result.tier2_s
        else None,
        "per_tier": {
            "tier1": {
                "top3_hit_rate": total.rate(total.hits1),
                "false_flag_rate": clean.rate(clean.hits1),
            },
            "tier2": {
                "top3_hit_rate": total.rate(total.hits2),
                "false_flag_rate": clean.rate(clean.hits2),
            }
            if result.with_model
            else None,
        },
        "per_mutation": {
            k: {
                "cases": t.cases,
                "top3_hit_rate": t.rate(t.hits),
                "tier1": t.rate(t.hits1),
                "tier2": t.rate(t.hits2) if result.with_model else None,
            }
            for k, t in by_kind.items()
        },
        "tier2_answers": result.answers,
        "tier2_parse_error_rate": round(result.parse_errors / result.answers, 3)
        if result.answers
        else None,
        "tier2_parse_errors_first": result.error_examples,
        "tier2_model_errors": result.model_errors,
        "rows": result.rows,
    }


def _engine_score(model: str, threads: int | None) -> tuple[Score, Callable[[], None]]:
    """The score through an in-process engine on ``model`` (the editor's worker has the same
    ``Engine.score``)."""
    from app.services.bug_review import engine_score
    from local_models.engine import Engine
    from local_models.model_store import ensure_model

    engine = Engine(ensure_model(model), n_ctx=4096, n_threads=threads, measure_batches=False)
    return engine_score(engine), engine.close


def _engine_ask(model: str) -> tuple[Ask, Callable[[], None]]:
    from app.services.bug_review import EngineAsk
    from local_models.client import EngineClient
    from local_models.model_store import ensure_model

    client = EngineClient(ensure_model(model), start_timeout_s=300.0, request_timeout_s=300.0)
    client.start()
    return EngineAsk(client, timeout_s=300.0), client.close


def _no_tier1(_text: str) -> tuple[list[Diagnostic], float]:
    return [], 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    repos = tuple(r for r in args.repos.split(",") if r)
    cases = make_cases(args.cases, args.seed, repos)
    ask: Ask | None = None
    scoring: Scoring | None = None
    closers: list[Callable[[], None]] = []
    fill = args.fill and not args.sweep
    if not args.no_model and (fill or args.no_score or args.no_head):
        ask, close = _engine_ask(args.model)
        closers.append(close)
    if not args.no_model and not args.no_score:
        score, close = _engine_score(args.model, args.score_threads)
        closers.append(close)
        threshold = -float("inf") if args.sweep else args.threshold
        scoring = Scoring(score, threshold, args.samples, fill)
    with tempfile.TemporaryDirectory(prefix="fc-bench-bugs-") as tmp:
        tier1 = None if args.no_tier1 else _Tier1(Path(tmp))
        try:
            figures = evaluate(
                cases,
                ask,
                _no_tier1 if tier1 is None else tier1.check,
                with_head=not args.no_head,
                scoring=scoring,
            )
            if scoring is not None and args.real_edits and not args.sweep:
                from .bugs_real import evaluate_real, real_edits

                edits = real_edits(args.real_edits, args.seed, repos, str(MIRRORS))
                figures.update(evaluate_real(edits, scoring))
        finally:
            if tier1 is not None:
                tier1.close()
            for close in closers:
                close()
    return {
        "model": None if args.no_model else args.model,
        "seed": args.seed,
        "repos": list(repos),
        "with_head": not args.no_head,
        "score_threads": args.score_threads,
        "tier1": not args.no_tier1,
        **figures,
    }
