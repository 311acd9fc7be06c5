"""``python -m bench.compare [NAME ...]``: benchmarks before and after a change, side by side.

Both revisions are checked out into temporary git worktrees (``git worktree add --detach``,
removed at the end, also on an error or an interrupt) and each gets its generated gRPC stubs
(``python -m proto.build``). Every run uses this interpreter (the main checkout's ``.venv``)
with the worktree as its working folder and first on ``PYTHONPATH``, so each side imports its
own tree's code: a probe checks where every top-level package resolves before anything runs,
and each result's ``commit`` (``bench._common.git_state`` of the tree that ran) must be the
side's commit. Before and after alternate, ``--rounds`` times (1: AB, 2: ABBA, 3: ABBAAB), per
benchmark, on the same machine; a shared machine slows both alike, so the ``after/before``
ratios are the figures to read. A run that fails (or outlives ``--timeout``) is reported as
failed with the tail of its stderr and the other runs go on.

Presets (``PRESETS``; each a short run of one ``python -m bench`` module; ``--override
NAME='ARGS'`` replaces one's arguments), in the order they run:

==============  ==============  =================================================================
preset          bench           arguments
==============  ==============  =================================================================
ignore          ignore          ``--no-baseline --rounds 5`` (the pathspec baseline is not ours)
find_in_files   find_in_files   ``--files 10000 --rounds 5``
editor          editor          ``--rounds 5`` (100,000 lines)
service_load    service_load    ``--fuzz 3000 --clients 50 --seconds 8`` (its defaults)
local_engine    local_engine    ``--quick --rounds 2 --samples 4`` (the small model)
apply           apply           ``--quick`` (speculative edits, the small model, stdlib windows)
apply_real      apply           ``--cases real --limit 80 --model-on refused --speed-cases 0
                                --model qwen2.5-coder-0.5b-instruct`` (accuracy, never silent)
index           index           ``--files 20000 --scale-chunks 20000`` (the full stdlib corpus)
cloud           cloud           ``--quick``
chat            chat            ``--models qwen2.5-coder-1.5b-instruct --limit 10``
completion      completion      ``--models qwen2.5-coder-1.5b-instruct --small-files 4
                                --large-files 1 --visits 4``
next_edit       next_edit       ``--model none --propagation-cases 100 --related-commits 300``
                                (propagation and related files; the model arms are minutes)
next_edit_ui    next_edit_ui    ``--quick``
lsp             lsp             (its defaults: basedpyright and ruff on forecode_core)
shadow          shadow          ``--files 2000``
bugs            bugs            ``--no-model --cases 12`` (tier 1)
package         package         (builds and freezes the app: minutes; run it by name)
==============  ==============  =================================================================

Each preset names its key figures (the bench's headline and ``targets`` keys) as dotted paths
into its JSON (``*``: the one model of ``models``) and whether lower or higher is better
(``=``: should not change). ``run_s`` is the whole run's wall time as the harness saw it.

``--json PATH`` writes everything (revisions, probe, every run, figures with each round's
values, failures); the markdown table goes to stdout (``--table PATH`` prints it again from a
saved report). ``--check-args`` only makes the worktrees and checks with each side's ``--help``
that every preset's options exist there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PRESETS", "Preset", "extract", "main", "markdown", "orders", "summarise"]

REPO = Path(__file__).resolve().parent.parent
BEFORE = "f414841"
SERVICE_MODEL = "qwen2.5-coder-1.5b-instruct"  # the service's default model, in both trees
PACKAGES = (
    "app",
    "bench",
    "cloud_client",
    "cloud_server",
    "forecode_core",
    "local_models",
    "proto",
)
SIDES = ("before", "after")
STUBS = ("proto.forecode.v1.forecode_pb2", "proto.forecode.v1.forecode_pb2_grpc")  # generated
TAIL = 3000  # characters of stderr kept from a failed run


@dataclass(frozen=True)
class Preset:
    bench: str
    args: tuple[str, ...]
    figures: tuple[tuple[str, str], ...]  # (dotted path into the result JSON, better)


BETTER = {"-": "lower", "+": "higher", "=": "="}


def _p(bench: str, args: str, figures: str) -> Preset:
    """A preset from its arguments and its figures, each path ending in ``-`` (lower is
    better), ``+`` (higher) or ``=`` (should not change)."""
    return Preset(
        bench, tuple(args.split()), tuple((f[:-1], BETTER[f[-1]]) for f in figures.split())
    )


M = "models.*."  # the one model a chat or completion preset runs
PRESETS: dict[str, Preset] = {
    "ignore": _p(
        "ignore",
        "--no-baseline --rounds 5",
        "compile_20k_s- decide_20k_us- stars16_ms- stars16_match_ms- light_worst_us- "
        "limits_worst_ms- limits_compile_1mib_s- limits_1mib_200b_ms-",
    ),
    "find_in_files": _p(
        "find_in_files",
        "--files 10000 --rounds 5",
        "forecode.first_result_s- forecode.total_s- in_process.total_s- total_ratio_vs_grep- "
        "forecode.matching_lines=",
    ),
    "editor": _p(
        "editor",
        "--rounds 5",
        "open_100k_lines_s- ratio- set_text_ratio- scroll_frame_p95_ms- scroll_ratio_p95-",
    ),
    "service_load": _p(
        "service_load",
        "--fuzz 3000 --clients 50 --seconds 8",
        "crashes- hangs- internal- tracebacks- health_failures- upstream_open_after- "
        "health_p50_ms- health_p99_ms- rss_mb_peak-",
    ),
    "local_engine": _p(
        "local_engine",
        "--quick --rounds 2 --samples 4",
        "decode_ratio+ engine_decode_tok_s+ spec_ratio+ spec_lossless= cold_p50_ms- "
        "warm_p50_ms- warm_over_cold- worker_rss_mb- max_ui_stall_ms-",
    ),
    "apply": _p(
        "apply",
        "--quick",
        "spec_over_greedy+ spec_over_ceiling+ spec_tok_s+ lossless= accuracy.combined+ "
        "silent_wrong.combined- first_hunk_ms-",
    ),
    "apply_real": _p(
        "apply",
        "--cases real --limit 80 --model-on refused --speed-cases 0 "
        "--model qwen2.5-coder-0.5b-instruct",
        "accuracy.deterministic+ accuracy.combined+ silent_wrong.deterministic- "
        "silent_wrong.combined- refused.deterministic- deterministic_ms.<500.p50- "
        "deterministic_ms.>=2000.p50- first_hunk_ms_by_path.model-",
    ),
    "index": _p(
        "index",
        "--files 20000 --scale-chunks 20000",
        "sync_bytes_ratio- sync_round_trips- second_client_embedded- chunks_per_s+ "
        "first_query_s- recall_at_10.combined+ recall_at_10.combined_reranked+ "
        "search_at_scale.combined_ms-",
    ),
    "cloud": _p(
        "cloud",
        "--quick",
        "grpc_overhead- ttft_p50_ms.1- ttft_p50_ms.16- tokens_per_s.1+ tokens_per_s.16+",
    ),
    "chat": _p(
        "chat",
        f"--models {SERVICE_MODEL} --limit 10",
        f"default_pass_rate+ {M}ttft_ms- {M}answer_s-",
    ),
    "completion": _p(
        "completion",
        f"--models {SERVICE_MODEL} --small-files 4 --large-files 1 --visits 4",
        f"{M}exact_match.all+ {M}chars_accepted.all+ {M}show_rate.all+ {M}p50_ms.small- "
        f"{M}p50_ms.large-",
    ),
    "next_edit": _p(
        "next_edit",
        "--model none --propagation-cases 100 --related-commits 300 --no-samples",
        "propagation_precision+ location_accuracy_when_shown+ reversal_rate= "
        "latency_ms.propagation_p50- related_files.recall_at_3+",
    ),
    "next_edit_ui": _p(
        "next_edit_ui",
        "--quick",
        "ui_stalls_over_16ms_busy- max_ui_busy_ms- after_accept_ms.p50-",
    ),
    "lsp": _p(
        "lsp",
        "",
        "first_diagnostics_s- recheck_p50_ms- hover_p50_ms- definition_p50_ms- tier1_ms_per_file-",
    ),
    "shadow": _p(
        "shadow",
        "--files 2000",
        "shadow_first_build_s- shadow_refresh_p50_ms- edit_to_verdict_p50_s-",
    ),
    "bugs": _p("bugs", "--no-model --cases 12", "false_flag_rate- tier1_ms_per_file-"),
    "terminal_predict": _p(
        "terminal_predict",
        "--model none --commits 120",
        "arms.history.typed_0.exact+ arms.history.typed_2.exact+ latency.rank_p50_ms-",
    ),
    "agent_terminal": _p(
        "agent_terminal", "--no-ui", "command_boundaries+ throughput_screen.mb_per_s+"
    ),
    # Branches of ~300 MB databases, the corpus, a terminal suite (minutes): by name only.
    "agent": _p(
        "agent",
        "--no-model",
        "branch_s.sqlite- branch_s.postgres- branch_s.postgres_fallback- command_boundaries+ "
        "injected.unapproved_commands- injected.files_outside- main_db_unchanged=",
    ),
    # Builds and freezes the app (minutes): run it by name only.
    "package": _p(
        "package", "", "download_mb- installed_mb- first_window_cold_s- first_window_warm_s-"
    ),
}

BY_NAME_ONLY = frozenset({"package", "agent"})  # left out of "all" (the default)


# ---------------------------------------------------------------------------------------------
# Pure parts: the order of the runs, the figures, the table


def orders(rounds: int) -> list[tuple[str, str]]:
    """The sides' order in each round: AB, BA, AB, ... (2 rounds: ABBA)."""
    return [SIDES if r % 2 == 0 else SIDES[::-1] for r in range(rounds)]


def extract(result: Any, path: str) -> Any:
    """The value at a dotted ``path`` in a result JSON (``*``: the first value of a dict); None
    when it is not there."""
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or not value:
            return None
        value = next(iter(value.values())) if key == "*" else value.get(key)
    return value


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _central(values: list[Any]) -> Any:
    """The median of numbers; one value when all agree; else the list as it is."""
    if not values:
        return None
    if all(_number(v) for v in values):
        return statistics.median(values)
    return values[0] if all(v == values[0] for v in values) else values


def ratio(before: Any, after: Any) -> float | None:
    if _number(before) and _number(after) and before:
        return round(float(after) / float(before), 4)
    return None


def summarise(preset: Preset, results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per key figure: each side's central value over its good runs, their values and
    ``after/before``. ``results`` holds each side's parsed result JSONs (with ``run_s``)."""
    rows = []
    for path, better in (*preset.figures, ("run_s", "lower")):
        values = {side: [extract(r, path) for r in results.get(side, [])] for side in SIDES}
        central = {side: _central(values[side]) for side in SIDES}
        rows.append(
            {
                "figure": path,
                "better": better,
                **central,
                "ratio": ratio(central["before"], central["after"]),
                "values": values,
            }
        )
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool) or not _number(v):
        return json.dumps(v) if not isinstance(v, str) else v
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return f"{v:.4g}"


def _ratio_text(row: dict[str, Any]) -> str:
    if row["ratio"] is not None:
        return f"{row['ratio']:.2f}"
    if row["before"] is not None and row["before"] == row["after"]:
        return "same"
    return "–"


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table, failures (with their stderr tails) below it."""
    revs = report["revisions"]
    lines = [
        f"Benchmarks: before `{revs['before']['rev']}` ({revs['before']['sha'][:10]}), "
        f"after `{revs['after']['rev']}` ({revs['after']['sha'][:10]}); {report['rounds']} "
        f"round(s), order {report['order']}, one machine ({report.get('machine', '?')}; load "
        f"{report.get('load_start')} at start, {report.get('load_end')} at end).",
        "",
        "| bench | figure | better | before | after | after/before |",
        "|---|---|---|---|---|---|",
    ]
    failures = []
    for name, bench in report["benches"].items():
        for failure in bench["failures"]:
            failures.append((name, failure))
            lines.append(f"| {name} | **failed ({failure['side']})** | | | | |")
        for row in bench["figures"]:
            before = "failed" if not row["values"]["before"] else _fmt(row["before"])
            after = "failed" if not row["values"]["after"] else _fmt(row["after"])
            lines.append(
                f"| {name} | {row['figure']} | {row['better']} | {before} | {after} "
                f"| {_ratio_text(row)} |"
            )
    presets = [
        f"`{n}`: `{' '.join(b['args'])}`" for n, b in report["benches"].items() if "args" in b
    ]
    if presets:
        lines += ["", "Arguments: " + "; ".join(presets) + "."]
    for name, failure in failures:
        lines += [
            "",
            f"**{name}, {failure['side']}, round {failure['round']}**: {failure['reason']}",
            "",
            "```",
            failure["stderr_tail"].rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def missing_options(args: tuple[str, ...], help_text: str) -> list[str]:
    """The ``--options`` in ``args`` that a bench's ``--help`` does not list."""
    known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
    return [a for a in args if a.startswith("--") and a not in known]


# ---------------------------------------------------------------------------------------------
# Worktrees and runs


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _run(cmd: list[str], tree: Path, timeout: float, out: Path, err: Path) -> tuple[int, float]:
    """Run ``cmd`` in ``tree`` in its own process group (killed whole on a timeout or an
    interrupt: the benches start workers and services); its exit status (-9: timed out) and
    wall time."""
    began = time.perf_counter()
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            cmd, cwd=tree, env=_env(tree), stdout=o, stderr=e, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = -9
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return rc, time.perf_counter() - began


def probe(tree: Path) -> dict[str, str | None]:
    """Where each top-level package and the generated stubs resolve when a bench runs in
    ``tree``; SystemExit when one the tree has resolves elsewhere (the main checkout's editable
    install) or a stub is missing."""
    code = (
        "import importlib.util, json, sys\n"
        "print(json.dumps({n: getattr(importlib.util.find_spec(n), 'origin', None) "
        "for n in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *PACKAGES, *STUBS],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, str | None] = json.loads(done.stdout)
    for name, origin in found.items():
        if (name in STUBS or (tree / name / "__init__.py").exists()) and (
            origin is None or not Path(origin).resolve().is_relative_to(tree.resolve())
        ):
            raise SystemExit(f"{tree}: {name} resolves to {origin}, not the worktree's own")
    return found


@dataclass(frozen=True)
class Tree:
    side: str  # "before" or "after"
    path: Path  # the worktree
    sha: str  # its commit


def _one_run(
    name: str, preset: Preset, tree: Tree, rnd: int, work: Path, timeout: float
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """One bench run on one side: its result JSON (None when it failed) and its record."""
    stem = f"{name}.{tree.side}.{rnd}"
    json_path, out, err = (work / f"{stem}.{ext}" for ext in ("json", "out", "err"))
    cmd = [sys.executable, "-m", "bench", preset.bench, "--json", str(json_path), *preset.args]
    rc, wall = _run(cmd, tree.path, timeout, out, err)
    run = {"side": tree.side, "round": rnd, "rc": rc, "run_s": round(wall, 1)}
    run["json"] = json_path.name
    reason = None
    result = None
    if rc != 0:
        reason = f"timed out after {timeout:.0f} s" if rc == -9 else f"exit status {rc}"
    else:
        try:
            result = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            reason = f"no result JSON ({exc})"
        else:
            if result.get("commit") != tree.sha:
                reason = f"ran commit {result.get('commit')}, not {tree.sha}"
                result = None
    if reason is not None:
        tail = err.read_text(encoding="utf-8", errors="replace")[-TAIL:]
        run.update({"reason": reason, "stderr_tail": tail})
        return None, run
    assert result is not None
    result["run_s"] = run["run_s"]
    return result, run


def _bench(
    name: str, preset: Preset, trees: dict[str, Tree], work: Path, ns: argparse.Namespace
) -> dict[str, Any]:
    """One preset, before and after alternately, ``ns.rounds`` times."""
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    runs, failures = [], []
    for rnd, order in enumerate(orders(ns.rounds)):
        for side in order:
            print(f"[compare] {name}: {side}, round {rnd + 1}", file=sys.stderr, flush=True)
            result, run = _one_run(name, preset, trees[side], rnd, work, ns.timeout)
            runs.append(run)
            if result is None:
                failures.append(run)
            else:
                results[side].append(result)
    if ns.raw:
        raw = Path(ns.raw)
        raw.mkdir(parents=True, exist_ok=True)
        for run in runs:
            if (work / run["json"]).exists():
                shutil.copyfile(work / run["json"], raw / run["json"])
    return {
        "bench": preset.bench,
        "args": list(preset.args),
        "runs": runs,
        "failures": failures,
        "figures": summarise(preset, results),
    }


def compare(names: list[str], presets: dict[str, Preset], ns: argparse.Namespace) -> dict[str, Any]:
    """Make the worktrees, check them, run the presets; the worktrees go whatever happens."""
    revs = {"before": ns.before, "after": ns.after}
    shas = {side: _git("rev-parse", "--verify", f"{revs[side]}^{{commit}}") for side in SIDES}
    work = Path(tempfile.mkdtemp(prefix="forecode-compare-"))
    trees: dict[str, Tree] = {}
    report: dict[str, Any] = {
        "revisions": {side: {"rev": revs[side], "sha": shas[side]} for side in SIDES},
        "rounds": ns.rounds,
        "order": " ".join(
            "".join("A" if s == "before" else "B" for s in o) for o in orders(ns.rounds)
        ),
        "machine": _machine(),
        "load_start": _load(),
        "probe": {},
        "benches": {},
    }
    try:
        for side in SIDES:
            _git("worktree", "add", "--detach", str(work / side), shas[side])
            trees[side] = tree = Tree(side, work / side, shas[side])
            build = [sys.executable, "-m", "proto.build"]
            subprocess.run(
                build, cwd=tree.path, env=_env(tree.path), check=True, capture_output=True
            )
            report["probe"][side] = probe(tree.path)
        if ns.check_args:
            report["check_args"] = _check_args(names, presets, trees, work, ns.timeout)
        else:
            for name in names:
                report["benches"][name] = _bench(name, presets[name], trees, work, ns)
    finally:
        for tree in trees.values():
            remove = ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree.path)]
            subprocess.run(remove, capture_output=True, check=False)
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        report["load_end"] = _load()
    return report


def _check_args(
    names: list[str], presets: dict[str, Preset], trees: dict[str, Tree], work: Path, timeout: float
) -> dict[str, dict[str, Any]]:
    """Each preset's options against each side's ``python -m bench NAME --help``."""
    checks: dict[str, dict[str, Any]] = {}
    for name in names:
        preset = presets[name]
        for side in SIDES:
            out, err = (work / f"{name}.{side}.help.{ext}" for ext in ("out", "err"))
            cmd = [sys.executable, "-m", "bench", preset.bench, "--help"]
            rc, _ = _run(cmd, trees[side].path, timeout, out, err)
            text = out.read_text(encoding="utf-8", errors="replace")
            missing = missing_options(preset.args, text) if rc == 0 else None
            checks.setdefault(name, {})[side] = {"rc": rc, "missing": missing}
            print(f"[compare] {name} {side}: --help rc {rc}, missing {missing}", file=sys.stderr)
    return checks


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _machine() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        model = ""
    return f"{model or sys.platform}, {os.cpu_count()} cores"


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Run benchmarks on two revisions (temporary worktrees), alternating, and "
        "print their key figures side by side.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"presets to run (default: all): {', '.join(PRESETS)}",
    )
    parser.add_argument("--before", default=BEFORE, help=f"revision before (default {BEFORE})")
    parser.add_argument("--after", default="HEAD", help="revision after (default HEAD)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per side, alternating (1: AB, 2: ABBA)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds one run may take (default 1200)"
    )
    parser.add_argument("--json", metavar="PATH", help="write the whole report here")
    parser.add_argument("--raw", metavar="DIR", help="keep every run's result JSON here")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="replace a preset's bench arguments, e.g. editor='--rounds 5'",
    )
    parser.add_argument(
        "--check-args",
        action="store_true",
        help="only check each preset's options against both sides' --help",
    )
    parser.add_argument("--table", metavar="PATH", help="print the table of a saved --json report")
    ns = parser.parse_args(argv)
    if ns.table:
        sys.stdout.write(markdown(json.loads(Path(ns.table).read_text(encoding="utf-8"))))
        return 0
    names = ns.names or [n for n in PRESETS if n not in BY_NAME_ONLY]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or ns.rounds < 1:
        parser.error(f"unknown presets {unknown}" if unknown else "--rounds must be >= 1")
    presets = dict(PRESETS)
    for item in ns.override:
        key, _, args = item.partition("=")
        if key not in presets:
            parser.error(f"--override: unknown preset {key!r}")
        presets[key] = Preset(presets[key].bench, tuple(shlex.split(args)), presets[key].figures)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        report = compare(names, presets, ns)
    except KeyboardInterrupt as exc:
        print(f"[compare] interrupted ({exc}); worktrees removed", file=sys.stderr)
        return 130
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if ns.check_args:
        bad = {
            n: c
            for n, c in report["check_args"].items()
            if any(s["rc"] != 0 or s["missing"] for s in c.values())
        }
        print(json.dumps({"probe": report["probe"], "bad": bad}, indent=2))
        return 1 if bad else 0
    sys.stdout.write(markdown(report))
    return 1 if any(b["failures"] for b in report["benches"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
