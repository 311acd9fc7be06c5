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
  this repository's ``forecode_core``, copied) from the finished apply to the ``Verdict``,
  with the shadow's default checker (basedpyright and ruff's language servers rooted in the
  copy, warm: their first check is not timed), before and after both checked; target <= 2 s.
  ``edit_to_verdict_prepared_p50_s``: the same when the "before" half ran while the apply
  streamed (``prepare``, what the review does). ``verdict_new``: what the check found (it must
  name the undefined name, or the figure means nothing). ``*_cli_*``: the same with the
  command-line tools (the fallback where no server is installed).

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
import time
from pathlib import Path
from typing import Any

from app.services.shadow import Checker, CheckStatus, CliChecker, LspChecker, ShadowWorkspace

from ._common import REPO, median, percentile

__all__ = ["DEFAULT_ROUNDS", "add_arguments", "generate_tree", "measure_shadow", "run"]

DEFAULT_ROUNDS = 5
REFRESH_SAMPLES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--files", type=int, default=10_000, help="files in the generated tree (default 10000)"
    )
    parser.add_argument(
        "--workdir", default=None, help="where the trees and shadows go (default: a temp folder)"
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


def _verdicts(
    work: Path, rounds: int, checker: Checker
) -> tuple[list[float], list[float], list[str]]:
    project = work / "project"
    if not project.exists():
        shutil.copytree(REPO / "forecode_core", project / "forecode_core")
    original = (project / TARGET).read_text()
    assert OLD_LINE in original, "the benchmark's edit no longer applies to walk.py"
    edited = original.replace(OLD_LINE, NEW_LINE)
    name = type(checker).__name__
    shadow = ShadowWorkspace(
        project, base=work / name, checker=checker, scan_every_s=None, check_timeout_s=120
    )
    shadow.sync()
    shadow.check({TARGET: edited})  # the tools' own first run (disk caches) is not timed
    cold: list[float] = []
    prepared: list[float] = []
    found: list[str] = []
    for k in range(rounds):
        # a save between edits: the cached "before" no longer holds
        _save(project / TARGET, original + f"# round {k}\n")
        shadow.sync_paths([TARGET])
        text = original + f"# round {k}\n"
        started = time.perf_counter()
        verdict = shadow.check({TARGET: text.replace(OLD_LINE, NEW_LINE)}, {TARGET: text})
        cold.append(time.perf_counter() - started)
        assert verdict.status is CheckStatus.CHECKED, verdict.note
        found = [f"{d.source}:{d.code}:{d.line + 1}" for d in verdict.new]
        _save(project / TARGET, text + "# prepared\n")
        shadow.sync_paths([TARGET])
        text += "# prepared\n"
        shadow.check({}, {TARGET: text}, before_only=True)
        started = time.perf_counter()
        shadow.check({TARGET: text.replace(OLD_LINE, NEW_LINE)}, {TARGET: text})
        prepared.append(time.perf_counter() - started)
    shadow.close()
    _save(project / TARGET, original)
    return cold, prepared, found


def measure_shadow(files: int, rounds: int, workdir: str | None = None) -> dict[str, Any]:
    """The shadow's keys of ``bench lsp`` (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="fc-bench-shadow-", dir=workdir) as tmp:
        work = Path(tmp)
        tree = work / "ws"
        generate_tree(tree, files)
        if hasattr(os, "sync"):
            os.sync()  # a user's tree is on disk long before: the build must not pay its writeback
        builds, cpu, floors, method = _builds(tree, work, max(1, min(rounds, 3)))
        scans, saves = _refreshes(tree, work)
        cold, prepared, found = _verdicts(work, rounds, LspChecker())
        cli_cold, cli_prepared, cli_found = _verdicts(work, rounds, CliChecker())
    return {
        "files": files,
        "clone_method": method,
        "shadow_first_build_s": round(median(builds), 3),
        "shadow_first_build_runs_s": [round(x, 3) for x in builds],
        "shadow_first_build_cpu_s": round(median(cpu), 3),
        "copy_floor_s": round(median(floors), 3) if floors else None,
        "copy_floor_runs_s": [round(x, 3) for x in floors],
        "shadow_refresh_p50_ms": round(percentile(scans, 50), 1),
        "shadow_refresh_p90_ms": round(percentile(scans, 90), 1),
        "shadow_save_refresh_p50_ms": round(percentile(saves, 50), 2),
        "edit_to_verdict_p50_s": round(percentile(cold, 50), 3),
        "edit_to_verdict_prepared_p50_s": round(percentile(prepared, 50), 3),
        "verdict_new": found,
        "edit_to_verdict_cli_p50_s": round(percentile(cli_cold, 50), 3),
        "edit_to_verdict_cli_prepared_p50_s": round(percentile(cli_prepared, 50), 3),
        "verdict_new_cli": cli_found,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    return measure_shadow(args.files, args.rounds, args.workdir)
