"""``python -m bench shadow``: the shadow workspace (``app.services.shadow``), issue 16's keys.

Figures (medians / p50 over ``--rounds``; each run on fresh temporary folders):

- ``shadow_first_build_s``: the first ``sync`` of a generated tree of ``--files`` files (10,000
  by default: Python modules of 1-8 KiB in nested packages, a ``.gitignore``, a ``.venv`` of
  2,000 files and a ``node_modules`` that are referenced, not copied) into an empty shadow,
  the generated tree flushed to disk first; target <= 3 s. On a shared disk the runs vary
  with other writers (``shadow_first_build_runs_s``). ``clone_method`` says how files were
  copied on this filesystem. ``shadow_first_build_cpu_s``: the process's CPU time (user +
  system, the copy threads included) of a build, median; ``copy_floor_s``: ``cp -r`` of the
  same source folders (no walk, no ignore rules, no stamps) right after each build, the floor
  of this disk at that moment. The builds are kept until the end: deleting 10k files just
  before the next build made it slower (ext4 without a journal skips recently deleted inodes
  one by one when it allocates: ``recently_deleted`` was 75 % of a build's profile).
- ``shadow_refresh_p50_ms``: after three files are saved (atomically, as the editor saves), a
  whole-tree ``sync`` by stamps (the periodic scan, no paths known); target <= 300 ms p50.
  ``shadow_save_refresh_p50_ms``: the same save told by path (``sync_paths``, what a save in
  the editor does).
- ``edit_to_verdict_p50_s``: one AI edit (an undefined name in a function of a real module:
  this repository's ``forecode_core``, copied into the generated tree, so the workspace has
  ``--files`` files as a user's would) from the finished apply to the ``Verdict`` by the
  product's path: the review's ``prepare`` when it starts (the "before" half while the apply
  streams; here it is let finish), then ``submit_check`` on the shadow's thread, timed to its
  done callback (where the review's relay hands the verdict to the UI thread); the shadow's
  default checker (basedpyright and ruff's language servers rooted in the copy, warm: their
  first check is not timed), a save before each edit so no cached "before" holds; target
  <= 2 s. ``edit_to_verdict_scan_each_check_p50_s``: the same with a whole-workspace scan
  before each check (``resync_s = 0``: the path before 2026-12-05-b), interleaved round by
  round with it. ``edit_to_verdict_cold_p50_s``: nothing prepared, both halves in the check.
  ``verdict_new``: what the check found (it must name the undefined name, or the figure means
  nothing).
- The session's first review (the shadow's servers not started; medians of 2 at ``--rounds``
  4 or more, each a fresh start): ``first_review_prepare_s``,
  the review's own ``prepare`` (server start, open, "before"); ``edit_to_verdict_first_review_s``
  the verdict's wait after an apply that streamed ``first_review_stream_s`` (2 s);
  ``edit_to_verdict_first_review_warmed_s`` the same when ``ShadowWorkspace.warm`` ran when the
  file was focused or the inline edit prompt opened (``first_review_warm_s``) and finished first;
  ``*_no_rehearsal_s``: the same without the first warm's rehearsal (a throwaway edit checked).
- ``first_review_chat_apply``: the session's first review through the chat's Apply: the
  answer streams ``answer_after_block_s`` after its first code block's fence line, the user
  clicks Apply 1 s (``read_1s``) or 5 s (``read_5s``) after the answer's end, the apply streams
  ``stream_s``; ``before_s`` nothing warmed until the Apply, ``after_s`` ``warm`` when the
  answer finished (the review owner's ``warm_for_answer``, the path before 2026-12-05-e),
  ``at_block_s`` ``warm`` when the first block showed (``warm_while_streaming``): the verdict's
  wait after the apply (medians of up to 5 interleaved triples, each a fresh start),
  ``load_1min`` the load before each triple; ``after_first_problems_s`` /
  ``at_block_first_problems_s`` until the first server's problems show (the review's
  ``submit_check_each``; the verdict's time when both answered at once),
  ``after_runs_with_a_partial`` how many runs showed one server's problems first;
  ``*_warm_left_at_apply_runs_s``: how long the warm (its rehearsal included) still ran after
  the Apply click (negative: it was over), the review's ``prepare`` queued behind it.
  ``--only chat-apply``: just this key.
- ``*_cli_*``: the command-line tools (the fallback where no server is installed).
- ``--only verdicts``: just these keys (the tree is still generated: the check scans it).

``measure_shadow(...)`` is the function ``bench lsp`` reuses for these keys.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from app.services.shadow import (
    RESYNC_S,
    Checker,
    CheckStatus,
    CliChecker,
    LspChecker,
    ShadowWorkspace,
)

from ._common import REPO, median, percentile

__all__ = [
    "DEFAULT_ROUNDS",
    "add_arguments",
    "generate_tree",
    "measure_first_chat_apply",
    "measure_shadow",
    "measure_verdicts",
    "run",
]

DEFAULT_ROUNDS = 5
REFRESH_SAMPLES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--files", type=int, default=10_000, help="files in the generated tree (default 10000)"
    )
    parser.add_argument(
        "--workdir", default=None, help="where the trees and shadows go (default: a temp folder)"
    )
    parser.add_argument(
        "--only",
        choices=("all", "verdicts", "chat-apply"),
        default="all",
        help="verdicts: only the edit-to-verdict keys (the tree is still generated: the check "
        "scans it); chat-apply: only first_review_chat_apply",
    )


def _module_text(rng: random.Random, index: int) -> str:
    lines = [f'"""Generated module {index}."""', "", "from __future__ import annotations", ""]
    while sum(len(x) for x in lines) < rng.randint(1024, 8192):
        k = len(lines)
        lines += [
            "",
            f"def function_{k}(value: int, scale: float = 1.5) -> float:",
            f'    """Scale value number {k}."""',
            "    total = 0.0",
            "    for step in range(value):",
            "        total += step * scale",
            "    return total",
        ]
    return "\n".join(lines) + "\n"


def generate_tree(root: Path, files: int, seed: int = 16) -> None:
    """A workspace of ``files`` source files, plus ignored trees the shadow references."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / ".gitignore").write_text(".venv/\nbuild/\n*.pyc\n")
    made = 1
    per_folder = 40
    while made < files:
        folder = root / f"pkg{made // (per_folder * 10)}" / f"sub{(made // per_folder) % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(min(per_folder, files - made)):
            (folder / f"mod_{made}.py").write_text(_module_text(rng, made))
            made += 1
    venv = root / ".venv" / "lib" / "python3" / "site-packages"
    venv.mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for k in range(2000):
        (venv / f"dep_{k}.py").write_text("X = 1\n")
    (root / "node_modules" / "pad").mkdir(parents=True)
    (root / "node_modules" / "pad" / "index.js").write_text("module.exports = 1;\n")


def _save(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _copy_floor(tree: Path, target: Path) -> float:
    """``cp -r`` of the generated source folders (what the shadow copies) into ``target``."""
    sources = sorted(str(p) for p in tree.glob("pkg*"))
    target.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["cp", "-r", *sources, str(target)], check=True)
    return time.perf_counter() - started


def _builds(
    tree: Path, work: Path, rounds: int
) -> tuple[list[float], list[float], list[float], str]:
    times: list[float] = []
    cpu: list[float] = []
    floors: list[float] = []
    method = ""
    for k in range(rounds):
        shadow = ShadowWorkspace(tree, base=work / f"build-{k}", scan_every_s=None)
        started, used = time.perf_counter(), _cpu()
        shadow.sync()
        times.append(time.perf_counter() - started)
        cpu.append(_cpu() - used)
        method = str(shadow.clone_method)
        shadow.close()
        if shutil.which("cp"):
            floors.append(_copy_floor(tree, work / f"cp-{k}"))
    for k in range(rounds):  # deleted after all builds (see the module docstring)
        shutil.rmtree(work / f"build-{k}", ignore_errors=True)
        shutil.rmtree(work / f"cp-{k}", ignore_errors=True)
    return times, cpu, floors, method


def _refreshes(tree: Path, work: Path) -> tuple[list[float], list[float]]:
    shadow = ShadowWorkspace(tree, base=work / "build-refresh", scan_every_s=None)
    shadow.sync()
    modules = sorted(tree.glob("pkg*/sub*/mod_*.py"))[:60]
    scans: list[float] = []
    saves: list[float] = []
    for k in range(REFRESH_SAMPLES):
        touched = modules[3 * k : 3 * k + 3]
        for path in touched:
            _save(path, path.read_text() + f"# edit {k}\n")
        started = time.perf_counter()
        actions = shadow.sync()
        scans.append((time.perf_counter() - started) * 1000)
        assert len(actions) == len(touched), actions
        path = touched[0]
        _save(path, path.read_text() + "# saved again\n")
        started = time.perf_counter()
        shadow.sync_paths([path.relative_to(tree).as_posix()], drop_overlay=True)
        saves.append((time.perf_counter() - started) * 1000)
    shadow.close()
    return scans, saves


TARGET = "forecode_core/workspace/walk.py"
OLD_LINE = "    for rel, _entry in walk_files(root, rules, should_stop=should_stop, limit=limit):"
NEW_LINE = "    for rel, _entry in walk_files(root, rulez, should_stop=should_stop, limit=limit):"
# The first review's apply streams this long before its check (a short apply of a few lines).
STREAM_S = 2.0
# From a chat answer's end to the user's Apply click: a quick click, and a short read.
CHAT_READ_S = (1.0, 5.0)
# How long a chat answer streams after its first code block's fence line: the rest of a short
# block and a closing sentence, about 40 tokens at 20 a second (the local 1.5B's p50 answer in
# ``bench chat``, 2026-12-05: 99 tokens in 5.9 s after its first; a cloud model is faster).
CHAT_BLOCK_S = 2.0
# When the shadow is warmed before a chat Apply: never (the review's own prepare), when the
# answer finished (``warm_for_answer``), when its first code block showed
# (``warm_while_streaming``, CHAT_BLOCK_S before the end).
CHAT_WARMS = ("none", "end", "block")


def _timed(future: Future[Any], edit: bool = True) -> float:
    """Seconds from now until ``future``'s done callback ran (on the shadow's thread, where the
    review's relay hands the verdict to the UI thread). ``edit``: the verdict must name the
    edit's undefined name (by both servers or tools), else the time means nothing."""
    started = time.perf_counter()
    done: list[float] = []
    ready = threading.Event()

    def callback(_future: Future[Any]) -> None:
        done.append(time.perf_counter())
        ready.set()

    future.add_done_callback(callback)
    ready.wait()
    verdict = future.result()
    assert verdict.status is CheckStatus.CHECKED, verdict.note
    if edit:
        codes = sorted(str(d.code) for d in verdict.new)
        assert codes == ["F821", "reportUndefinedVariable"], codes
    return done[0] - started


def _new(shadow: ShadowWorkspace, text: str) -> list[str]:
    verdict = shadow.check({TARGET: text.replace(OLD_LINE, NEW_LINE)}, {TARGET: text})
    return [f"{d.source}:{d.code}:{d.line + 1}" for d in verdict.new]


class _Round:
    """One shadow's edits of ``TARGET`` in the workspace ``project``: each after a save (the
    cached "before" no longer holds), told as the editor tells it (``note_saved``)."""

    def __init__(self, project: Path, shadow: ShadowWorkspace) -> None:
        self.project = project
        self.shadow = shadow
        self.original = (project / TARGET).read_text()
        assert OLD_LINE in self.original, "the benchmark's edit no longer applies to walk.py"
        self.saves = 0

    def save(self) -> str:
        self.saves += 1
        text = self.original + f"# save {self.saves}\n"
        _save(self.project / TARGET, text)
        self.shadow.note_saved(TARGET).result()
        return text

    def review(self) -> float:
        """The product's path (``ReviewController.start_review`` then ``ApplyReview``): the
        "before" half prepared when the review starts, while the apply streams (here: until it
        is done), then the finished file's check; timed from the apply's end."""
        text = self.save()
        self.shadow.prepare({TARGET: text}).result()
        edited = text.replace(OLD_LINE, NEW_LINE)
        return _timed(self.shadow.submit_check({TARGET: edited}, {TARGET: text}))

    def cold(self) -> float:
        """Nothing prepared: both halves in the check."""
        text = self.save()
        edited = text.replace(OLD_LINE, NEW_LINE)
        return _timed(self.shadow.submit_check({TARGET: edited}, {TARGET: text}))

    def restore(self) -> None:
        _save(self.project / TARGET, self.original)


def _shadow(project: Path, work: Path, checker: Checker) -> ShadowWorkspace:
    return ShadowWorkspace(
        project,
        base=work / "verdict-shadow",
        checker=checker,
        scan_every_s=None,
        check_timeout_s=120,
    )


def _verdicts(project: Path, work: Path, rounds: int, checker: Checker) -> dict[str, Any]:
    """Warm checker: each round one review by the product's path, the same with a whole scan
    before each check (``resync_s = 0``: the path before 2026-12-05-b), and one cold check,
    interleaved so the machine's load weighs on each alike."""
    shadow = _shadow(project, work, checker)
    shadow.sync()
    edit = _Round(project, shadow)
    found = _new(shadow, edit.save())  # the tools' own first run (disk caches) is not timed
    product: list[float] = []
    scanning: list[float] = []
    cold: list[float] = []
    try:
        for _ in range(rounds):
            product.append(edit.review())
            shadow.resync_s = 0.0
            scanning.append(edit.review())
            shadow.resync_s = RESYNC_S
            cold.append(edit.cold())
    finally:
        shadow.close()
        edit.restore()
    return {"product": product, "scanning": scanning, "cold": cold, "found": found}


def _first_review(
    project: Path, work: Path, warmed: bool, rehearse: bool = True
) -> dict[str, float]:
    """The session's first review, the shadow's servers not started (the copy is on disk
    from before: a new session brings it in step). ``warmed``: ``ShadowWorkspace.warm`` ran
    when the file was focused or the inline edit prompt opened, and finished before the
    review started; else the review's own ``prepare`` starts the servers and the apply
    streams ``STREAM_S``. Timed from the apply's end to the verdict. ``rehearse``: False
    turns the first warm's rehearsal off (to compare)."""
    shadow = _shadow(project, work, LspChecker())
    shadow._rehearsed = not rehearse
    edit = _Round(project, shadow)
    out: dict[str, float] = {}
    try:
        shadow.start().result()
        text = edit.save()
        if warmed:
            out["warm_s"] = _timed(shadow.warm({TARGET: text}), edit=False)
            prepared = shadow.prepare({TARGET: text})
            prepared.result()
        else:
            started = time.perf_counter()
            prepared = shadow.prepare({TARGET: text})
            prepared.add_done_callback(
                lambda _f: out.setdefault("prepare_s", time.perf_counter() - started)
            )
            time.sleep(STREAM_S)
        edited = text.replace(OLD_LINE, NEW_LINE)
        out["verdict_s"] = _timed(shadow.submit_check({TARGET: edited}, {TARGET: text}))
    finally:
        shadow.close()
        edit.restore()
    return out


def _first_review_chat_apply(
    project: Path, work: Path, warm_at: str, read_s: float
) -> dict[str, float]:
    """The session's first review through the chat's Apply (the shadow's servers not
    started): the answer streams ``CHAT_BLOCK_S`` after its first code block showed, the user
    reads it and clicks Apply ``read_s`` after its end, the review starts (its ``prepare``)
    and the apply streams ``STREAM_S``; timed from the apply's end to the verdict, and to the
    first server's problems (the review's ``submit_check_each``). ``warm_at`` (one of
    ``CHAT_WARMS``): when ``ShadowWorkspace.warm`` was submitted (not awaited: it may still
    run when the review's ``prepare`` queues behind it): "block" when the first block showed
    (the review owner's ``warm_while_streaming``), "end" when the answer finished
    (``warm_for_answer`` alone, the path before), "none" never (the path before that)."""
    shadow = _shadow(project, work, LspChecker())
    edit = _Round(project, shadow)
    out: dict[str, float] = {}
    try:
        shadow.start().result()
        text = edit.save()
        warm_done: list[float] = []  # when the warm (its rehearsal included) ended
        for at in ("block", "end"):  # the first code block's fence line, then the answer's end
            if warm_at == at:
                shadow.warm({TARGET: text}).add_done_callback(
                    lambda _f: warm_done.append(time.perf_counter())
                )
            time.sleep(CHAT_BLOCK_S if at == "block" else read_s)  # streaming, then reading
        apply_at = time.perf_counter()  # Apply: the review starts, the apply streams
        shadow.prepare({TARGET: text})
        time.sleep(STREAM_S)
        edited = text.replace(OLD_LINE, NEW_LINE)
        partials: list[float] = []  # problems shown as each server answers
        started = time.perf_counter()
        future = shadow.submit_check_each(
            {TARGET: edited}, {TARGET: text}, lambda _v: partials.append(time.perf_counter())
        )
        out["verdict_s"] = _timed(future)
        out["first_problems_s"] = partials[0] - started if partials else out["verdict_s"]
        out["partial"] = float(bool(partials))
        if warm_done:  # > 0: the review's prepare queued behind the warm (or its rehearsal)
            out["warm_left_at_apply_s"] = warm_done[0] - apply_at
    finally:
        shadow.close()
        edit.restore()
    return out


def measure_first_chat_apply(
    tree: Path, work: Path, rounds: int, reads: tuple[float, ...] = CHAT_READ_S
) -> dict[str, Any]:
    """``first_review_chat_apply``: the first review of a session through the chat's Apply,
    for each of ``CHAT_WARMS`` (see ``_first_review_chat_apply``) and each reading time of
    ``reads``, interleaved, each a fresh start of the servers; ``uptime``'s load beside
    them."""
    project = _project(tree)
    out: dict[str, Any] = {"stream_s": STREAM_S, "answer_after_block_s": CHAT_BLOCK_S}
    for read_s in reads:
        runs: dict[str, list[dict[str, float]]] = {warm: [] for warm in CHAT_WARMS}
        loads: list[float] = []
        for _ in range(max(1, min(rounds, 5))):
            loads.append(round(os.getloadavg()[0], 2))
            for warm in CHAT_WARMS:
                runs[warm].append(_first_review_chat_apply(project, work, warm, read_s))
        loads.append(round(os.getloadavg()[0], 2))
        figures: dict[str, Any] = {}
        for warm, key in zip(CHAT_WARMS, ("before", "after", "at_block"), strict=True):
            verdicts = [run["verdict_s"] for run in runs[warm]]
            firsts = [run["first_problems_s"] for run in runs[warm]]
            figures[f"{key}_s"] = round(median(verdicts), 3)
            figures[f"{key}_runs_s"] = [round(x, 3) for x in verdicts]
            if warm != "none":
                figures[f"{key}_first_problems_s"] = round(median(firsts), 3)
                figures[f"{key}_first_problems_runs_s"] = [round(x, 3) for x in firsts]
                figures[f"{key}_runs_with_a_partial"] = sum(int(r["partial"]) for r in runs[warm])
                figures[f"{key}_warm_left_at_apply_runs_s"] = [
                    round(r["warm_left_at_apply_s"], 3) if "warm_left_at_apply_s" in r else None
                    for r in runs[warm]
                ]
        figures["load_1min"] = loads
        out[f"read_{read_s:g}s"] = figures
    return {"first_review_chat_apply": out}


def _project(tree: Path) -> Path:
    """The workspace the edits are checked in: the generated tree (the check's scan walks
    all of it, as in a user's workspace of that size) with this repository's
    ``forecode_core`` copied in (real code for the servers to check)."""
    if not (tree / "forecode_core").exists():
        shutil.copytree(
            REPO / "forecode_core", tree / "forecode_core", ignore=shutil.ignore_patterns("*.pyc")
        )
    return tree


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: median([run[key] for run in runs if key in run]) for key in runs[0]}


def _p50(values: list[float]) -> float:
    return round(percentile(values, 50), 3)


def measure_verdicts(tree: Path, work: Path, rounds: int) -> dict[str, Any]:
    """The edit-to-verdict keys (see the module docstring). Under ``chrt`` the servers and
    tools are put back to the normal policy (``verdict_sched``), as on a user's machine."""
    from .lsp_ui import realtime_editor_only

    sched = realtime_editor_only()
    project = _project(tree)
    lsp = _verdicts(project, work, rounds, LspChecker())
    firsts: list[dict[str, float]] = []
    for _ in range(2 if rounds >= 4 else 1):  # interleaved, each a fresh start of the servers
        firsts.append(_first_review(project, work, warmed=False))
        firsts.append(_first_review(project, work, warmed=True))
        firsts.append(_first_review(project, work, warmed=True, rehearse=False))
    first = _medians(firsts[0::3])
    warmed = _medians(firsts[1::3])
    unrehearsed = _medians(firsts[2::3])
    cli = _verdicts(project, work, rounds, CliChecker())
    return {
        "edit_to_verdict_p50_s": _p50(lsp["product"]),
        "edit_to_verdict_runs_s": [round(x, 3) for x in lsp["product"]],
        "edit_to_verdict_scan_each_check_p50_s": _p50(lsp["scanning"]),
        "edit_to_verdict_scan_each_check_runs_s": [round(x, 3) for x in lsp["scanning"]],
        "edit_to_verdict_cold_p50_s": _p50(lsp["cold"]),
        "edit_to_verdict_cold_runs_s": [round(x, 3) for x in lsp["cold"]],
        "verdict_new": lsp["found"],
        "verdict_sched": sched,
        "first_review_stream_s": STREAM_S,
        "first_review_prepare_s": round(first.get("prepare_s", -1.0), 3),
        "edit_to_verdict_first_review_s": round(first["verdict_s"], 3),
        "first_review_warm_s": round(warmed["warm_s"], 3),
        "edit_to_verdict_first_review_warmed_s": round(warmed["verdict_s"], 3),
        "first_review_warm_no_rehearsal_s": round(unrehearsed["warm_s"], 3),
        "edit_to_verdict_first_review_warmed_no_rehearsal_s": round(unrehearsed["verdict_s"], 3),
        "edit_to_verdict_cli_p50_s": _p50(cli["product"]),
        "edit_to_verdict_cli_cold_p50_s": _p50(cli["cold"]),
        "verdict_new_cli": cli["found"],
    }


def measure_shadow(
    files: int,
    rounds: int,
    workdir: str | None = None,
    only_verdicts: bool = False,
    only_chat_apply: bool = False,
) -> dict[str, Any]:
    """The shadow's keys of ``bench lsp`` (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="fc-bench-shadow-", dir=workdir) as tmp:
        work = Path(tmp)
        tree = work / "ws"
        generate_tree(tree, files)
        if hasattr(os, "sync"):
            os.sync()  # a user's tree is on disk long before: the build must not pay its writeback
        result: dict[str, Any] = {"files": files}
        if only_chat_apply:
            result.update(measure_first_chat_apply(tree, work, rounds))
            return result
        if not only_verdicts:
            result.update(_tree_figures(tree, work, rounds))
        result.update(measure_verdicts(tree, work, rounds))
        result.update(measure_first_chat_apply(tree, work, rounds))
    return result


def _tree_figures(tree: Path, work: Path, rounds: int) -> dict[str, Any]:
    builds, cpu, floors, method = _builds(tree, work, max(1, min(rounds, 3)))
    scans, saves = _refreshes(tree, work)
    return {
        "clone_method": method,
        "shadow_first_build_s": round(median(builds), 3),
        "shadow_first_build_runs_s": [round(x, 3) for x in builds],
        "shadow_first_build_cpu_s": round(median(cpu), 3),
        "copy_floor_s": round(median(floors), 3) if floors else None,
        "copy_floor_runs_s": [round(x, 3) for x in floors],
        "shadow_refresh_p50_ms": round(percentile(scans, 50), 1),
        "shadow_refresh_p90_ms": round(percentile(scans, 90), 1),
        "shadow_save_refresh_p50_ms": round(percentile(saves, 50), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    return measure_shadow(
        args.files, args.rounds, args.workdir, args.only == "verdicts", args.only == "chat-apply"
    )
