#!/usr/bin/env python3
"""The two lists of known lint debt, each of which may only shrink.

    python3 packaging/baselines.py             # mypy against packaging/mypy-baseline.txt
    python3 packaging/baselines.py --update    # rewrite both lists from the tree as it is

* **mypy** runs from pyproject alone (``[tool.mypy]``: every package, strict). Its errors are
  compared with ``packaging/mypy-baseline.txt``: one ``path: code: message`` line per error,
  without line numbers, so an edit elsewhere in a file does not churn the list. The check fails
  on an error the list does not hold (fix it) and on a listed error that no longer occurs (run
  ``--update`` so the list shrinks). The strict-clean packages (``STRICT_CLEAN``) may never be
  listed. The test command (``packaging/bootstrap.py test``) runs this check.
* **ruff's complexity rules** (``COMPLEXITY_RULES``): the files over the limits are listed in
  pyproject's ``[tool.ruff.lint.per-file-ignores]``, between the markers below. ``ruff check``
  fails on a file that is not listed; tests/test_tooling.py fails on a listed file that no
  longer breaks the rule (``--update`` drops it).

``--update`` rewrites both lists; it is how a restructuring that moves code between files (and so
its known errors) brings the lists up to date. Review the diff: a list that grows is debt added.
Only the standard library is used; mypy and ruff run from the project's .venv.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "packaging" / "mypy-baseline.txt"
PYPROJECT = ROOT / "pyproject.toml"
UPDATE_HINT = "python3 packaging/baselines.py --update"


def _tool_python() -> str:
    """The interpreter that has mypy and ruff: the project's .venv when there is one, so that
    a plain `python3 packaging/baselines.py` works too."""
    for venv_python in (
        ROOT / ".venv" / "bin" / "python",
        ROOT / ".venv" / "Scripts" / "python.exe",
    ):
        if venv_python.exists():
            return str(venv_python)
    return sys.executable


PYTHON = _tool_python()

# Strict-clean and to stay so: their errors are never baselined. The pure core and the editor's
# services, the modules the test command already held strict before mypy covered the whole
# tree, and the build scripts.
STRICT_CLEAN = (
    "forecode_core/",
    "app/services/",
    "local_models/calibrate.py",
    "local_models/engine/",
    "local_models/llama_runtime.py",
    "local_models/index/embed_model.py",
    "local_models/index/embed_client.py",
    "cloud_server/guard.py",
    "cloud_server/upload_budget.py",
    "proto/build.py",
    "packaging/",
)

BASELINE_HEADER = f"""\
# mypy's known errors outside the strict-clean code (STRICT_CLEAN in packaging/baselines.py): a
# list that may only shrink. One "path: error-code: message" line per error, no line numbers.
# Checked by `python3 packaging/baselines.py` (the test command runs it); rewritten by
# `{UPDATE_HINT}`. Do not add lines by hand: fix the error instead.
"""

COMPLEXITY_RULES = ("C901", "PLR0912", "PLR0913", "PLR0915")
BEGIN_MARKER = "# BEGIN complexity debt"
END_MARKER = "# END complexity debt"
COMPLEXITY_HEADER = f"""\
{BEGIN_MARKER}: each file over the limits above, with the rules it breaks.
# The list may only shrink: tests/test_tooling.py fails on an entry that no longer applies.
# `{UPDATE_HINT}` rewrites it. Hand-written per-file ignores go in
# extend-per-file-ignores, not here.
"""

_LINE_NUMBER = re.compile(r"\b(line|lines) \d+(-\d+)?")


# ----- mypy ------------------------------------------------------------------------------------
class MypyStopped(RuntimeError):
    """mypy could not check the whole tree (a syntax error, a crash, a bad configuration)."""


def run_mypy(python: str = PYTHON) -> list[dict[str, Any]]:
    """mypy's diagnostics over the tree as pyproject configures it, one dict per message."""
    proc = subprocess.run(
        [python, "-m", "mypy", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    diagnostics: list[dict[str, Any]] = []
    stray: list[str] = []
    for line in proc.stdout.splitlines():
        try:
            diagnostics.append(json.loads(line))
        except json.JSONDecodeError:
            stray.append(line)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not diagnostics):
        # Exit 2: errors that stopped mypy early (the rest of the tree went unchecked, so the
        # baseline cannot be compared) or a crash.
        shown = [located(d) for d in diagnostics] + stray + proc.stderr.splitlines()
        raise MypyStopped(
            f"mypy stopped early (exit {proc.returncode}); fix this first:\n  " + "\n  ".join(shown)
        )
    return diagnostics


def normalise(diagnostic: dict[str, Any]) -> str:
    """One baseline line: ``path: code: message``, free of line numbers and layout."""
    path = Path(diagnostic["file"]).as_posix()
    message = " ".join(str(diagnostic["message"]).split())
    message = _LINE_NUMBER.sub(lambda m: f"{m.group(1)} N", message)
    return f"{path}: {diagnostic.get('code') or 'misc'}: {message}"


def located(diagnostic: dict[str, Any]) -> str:
    """The diagnostic as mypy prints it, to find it in the editor."""
    code = diagnostic.get("code")
    return f"{diagnostic['file']}:{diagnostic['line']}: {diagnostic['message']}" + (
        f"  [{code}]" if code else ""
    )


def errors(diagnostics: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in diagnostics if d.get("severity") == "error"]


def read_baseline(path: Path | None = None) -> list[str]:
    path = path or BASELINE
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def render_baseline(entries: Iterable[str]) -> str:
    return BASELINE_HEADER + "".join(f"{entry}\n" for entry in sorted(entries))


def is_strict_clean(entry: str) -> bool:
    return entry.startswith(STRICT_CLEAN)


def compare(current: Sequence[str], baseline: Sequence[str]) -> tuple[Counter[str], Counter[str]]:
    """(new, gone): errors the baseline does not hold, and baseline entries that did not occur.

    Both are multisets: a second identical error in a file is new even when one is listed.
    An error in a strict-clean package is always new, whatever the baseline says.
    """
    allowed = Counter(entry for entry in baseline if not is_strict_clean(entry))
    seen = Counter(current)
    return seen - allowed, allowed - seen


def check_mypy(python: str = PYTHON) -> int:
    found = errors(run_mypy(python))
    new, gone = compare([normalise(d) for d in found], read_baseline())
    if new:
        print(f"mypy: {sum(new.values())} error(s) that the baseline does not hold; fix them:")
        budget = Counter(new)
        for diagnostic in found:
            entry = normalise(diagnostic)
            if budget[entry] > 0:
                budget[entry] -= 1
                print(f"  {located(diagnostic)}")
    if gone:
        n = sum(gone.values())
        what = "entry no longer occurs" if n == 1 else "entries no longer occur"
        print(f"mypy: {n} baseline {what} (fixed); run `{UPDATE_HINT}` so the baseline shrinks:")
        for entry in sorted(gone.elements()):
            print(f"  {entry}")
    if new or gone:
        return 1
    print(f"mypy: clean but for the {len(found)} known error(s) in {BASELINE.name}")
    return 0


def update_mypy(python: str = PYTHON) -> int:
    current = [normalise(d) for d in errors(run_mypy(python))]
    before = Counter(read_baseline())
    strict = sorted(e for e in current if is_strict_clean(e))
    kept = [e for e in current if not is_strict_clean(e)]
    BASELINE.write_text(render_baseline(kept), encoding="utf-8")
    after = Counter(kept)
    added, removed = after - before, before - after
    print(f"mypy baseline: {len(kept)} entries (+{sum(added.values())} -{sum(removed.values())})")
    _show_changes(sorted(added.elements()), sorted(removed.elements()))
    if strict:
        print("mypy: the strict-clean packages may not be baselined; fix these:")
        for entry in strict:
            print(f"  {entry}")
        return 1
    return 0


# ----- ruff's complexity rules -----------------------------------------------------------------
def complexity_violations(python: str = PYTHON) -> set[tuple[str, str]]:
    """(file, rule) for every complexity violation, as if no file were listed (nor noqa'd)."""
    proc = subprocess.run(
        [
            python,
            "-m",
            "ruff",
            "check",
            "--select",
            ",".join(COMPLEXITY_RULES),
            "--config",
            "lint.per-file-ignores = {}",
            "--ignore-noqa",
            "--exit-zero",
            "--no-cache",
            "--output-format",
            "json",
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ruff failed (exit {proc.returncode}):\n{proc.stderr}")
    found = set()
    for item in json.loads(proc.stdout):
        path = Path(item["filename"]).resolve().relative_to(ROOT).as_posix()
        found.add((path, str(item["code"])))
    return found


def listed_complexity(pyproject: Path | None = None) -> set[tuple[str, str]]:
    """(file, rule) for every complexity rule that pyproject's per-file-ignores lists."""
    config = tomllib.loads((pyproject or PYPROJECT).read_text(encoding="utf-8"))
    table = config.get("tool", {}).get("ruff", {}).get("lint", {}).get("per-file-ignores", {})
    return {
        (path, rule) for path, rules in table.items() for rule in rules if rule in COMPLEXITY_RULES
    }


def render_complexity(violations: Iterable[tuple[str, str]]) -> str:
    by_file: dict[str, set[str]] = {}
    for path, rule in violations:
        by_file.setdefault(path, set()).add(rule)
    lines = [
        f'"{path}" = [{", ".join(f"{chr(34)}{r}{chr(34)}" for r in sorted(rules))}]\n'
        for path, rules in sorted(by_file.items())
    ]
    return COMPLEXITY_HEADER + "".join(lines) + END_MARKER + "\n"


def replace_block(text: str, block: str) -> str:
    """pyproject's text with the lines from BEGIN_MARKER to END_MARKER replaced by block."""
    start = text.index(BEGIN_MARKER)
    end = text.index(END_MARKER, start)
    end = text.index("\n", end) + 1
    return text[:start] + block + text[end:]


def update_complexity(python: str = PYTHON) -> int:
    before = listed_complexity()
    after = complexity_violations(python)
    text = PYPROJECT.read_text(encoding="utf-8")
    PYPROJECT.write_text(replace_block(text, render_complexity(after)), encoding="utf-8")
    print(
        f"ruff complexity ignores: {len(after)} (file, rule) entries "
        f"(+{len(after - before)} -{len(before - after)})"
    )
    _show_changes(
        [f"{path}: {rule}" for path, rule in sorted(after - before)],
        [f"{path}: {rule}" for path, rule in sorted(before - after)],
    )
    return 0


def _show_changes(added: list[str], removed: list[str]) -> None:
    """What --update changed: a + line is debt added (review it), a - line debt paid."""
    for entry in added:
        print(f"  + {entry}")
    for entry in removed:
        print(f"  - {entry}")


def main(argv: list[str]) -> int:
    if argv not in ([], ["--update"]):
        print(__doc__)
        return 2
    try:
        if argv == ["--update"]:
            return update_mypy() | update_complexity()
        return check_mypy()
    except MypyStopped as stopped:
        print(stopped)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
