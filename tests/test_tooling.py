"""The tools over the whole tree: mypy from pyproject with a baseline that may only shrink, ruff's
complexity rules with an ignore list that may only shrink, and the test command that runs them.

The mypy baseline itself is checked by the test command's mypy step (packaging/baselines.py), so
mypy does not run twice; here its logic is tested on plain data. The complexity list is checked
here against a real ruff run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    """A script of packaging/ by path (``packaging`` is also the name of a PyPI package)."""
    spec = importlib.util.spec_from_file_location(
        f"_forecode_{name}", ROOT / "packaging" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


baselines = _load("baselines")
bootstrap = _load("bootstrap")


def _diag(file: str, message: str, code: str | None = "x", severity: str = "error") -> Any:
    return {"file": file, "line": 7, "message": message, "code": code, "severity": severity}


# ----- the mypy baseline's logic ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("diagnostic", "line"),
    [
        (_diag("app/ui/a.py", "Bad thing", "arg-type"), "app/ui/a.py: arg-type: Bad thing"),
        # line numbers inside messages would churn the list on every edit above them
        (
            _diag("bench/b.py", 'Name "x" already defined on line 12', "no-redef"),
            'bench/b.py: no-redef: Name "x" already defined on line N',
        ),
        (
            _diag("bench/b.py", "Overloaded function signatures 1 and 2 overlap", "misc"),
            "bench/b.py: misc: Overloaded function signatures 1 and 2 overlap",
        ),
        # layout (newlines, runs of blanks) is not part of the entry
        (_diag("a.py", "first\n    second  third", "misc"), "a.py: misc: first second third"),
        (_diag("a.py", "Something", None), "a.py: misc: Something"),
    ],
)
def test_a_baseline_line_has_path_code_and_message_but_no_line_number(
    diagnostic: Any, line: str
) -> None:
    assert baselines.normalise(diagnostic) == line


@pytest.mark.parametrize(
    ("current", "baseline", "new", "gone"),
    [
        ([], [], {}, {}),
        (["a.py: x: m"], ["a.py: x: m"], {}, {}),
        (["a.py: x: m"], [], {"a.py: x: m": 1}, {}),
        ([], ["a.py: x: m"], {}, {"a.py: x: m": 1}),
        # a second identical error in the same file is new, not covered by the first entry
        (["a.py: x: m", "a.py: x: m"], ["a.py: x: m"], {"a.py: x: m": 1}, {}),
        (["a.py: x: m"], ["a.py: x: m", "a.py: x: m"], {}, {"a.py: x: m": 1}),
        # the strict-clean packages are never covered, whatever the baseline says
        (
            ["forecode_core/t.py: x: m", "app/services/s.py: x: m"],
            ["forecode_core/t.py: x: m", "app/services/s.py: x: m"],
            {"forecode_core/t.py: x: m": 1, "app/services/s.py: x: m": 1},
            {},
        ),
        # app/servicesX is not app/services
        (["app/servicesx.py: x: m"], ["app/servicesx.py: x: m"], {}, {}),
    ],
)
def test_compare_finds_new_errors_and_entries_that_no_longer_occur(
    current: list[str], baseline: list[str], new: dict[str, int], gone: dict[str, int]
) -> None:
    assert baselines.compare(current, baseline) == (Counter(new), Counter(gone))


def test_the_baseline_file_round_trips_sorted_with_a_commented_header(tmp_path: Path) -> None:
    path = tmp_path / "baseline.txt"
    path.write_text(baselines.render_baseline(["b.py: x: m", "a.py: y: n", "b.py: x: m"]))
    assert baselines.read_baseline(path) == ["a.py: y: n", "b.py: x: m", "b.py: x: m"]
    assert path.read_text().startswith("# ")
    assert baselines.read_baseline(tmp_path / "missing.txt") == []


@pytest.fixture
def fake_mypy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """mypy's diagnostics as the test sets them (a fake at the subprocess seam)."""
    diagnostics: list[Any] = []
    monkeypatch.setattr(baselines, "run_mypy", lambda python=sys.executable: diagnostics)
    monkeypatch.setattr(baselines, "BASELINE", tmp_path / "mypy-baseline.txt")
    return diagnostics


def test_the_check_passes_when_the_errors_are_the_baseline(
    fake_mypy: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_mypy[:] = [_diag("app/ui/a.py", "Bad"), _diag("app/ui/a.py", "hint", None, "note")]
    baselines.BASELINE.write_text(baselines.render_baseline(["app/ui/a.py: x: Bad"]))
    assert baselines.check_mypy() == 0


def test_the_check_fails_on_a_new_error_and_shows_where_it_is(
    fake_mypy: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_mypy[:] = [_diag("app/ui/a.py", "Bad"), _diag("app/ui/b.py", "Worse")]
    baselines.BASELINE.write_text(baselines.render_baseline(["app/ui/a.py: x: Bad"]))
    assert baselines.check_mypy() == 1
    out = capsys.readouterr().out
    assert "app/ui/b.py:7: Worse  [x]" in out
    assert "app/ui/a.py:7" not in out


def test_the_check_fails_on_a_fixed_error_and_asks_for_update(
    fake_mypy: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    baselines.BASELINE.write_text(baselines.render_baseline(["app/ui/a.py: x: Bad"]))
    assert baselines.check_mypy() == 1
    out = capsys.readouterr().out
    assert "app/ui/a.py: x: Bad" in out
    assert "packaging/baselines.py --update" in out


def test_update_rewrites_the_baseline_but_never_takes_a_strict_clean_error(
    fake_mypy: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    baselines.BASELINE.write_text(baselines.render_baseline(["app/ui/gone.py: x: Old"]))
    fake_mypy[:] = [_diag("bench/b.py", "Bad"), _diag("forecode_core/c.py", "Worse")]
    assert baselines.update_mypy() == 1
    assert baselines.read_baseline() == ["bench/b.py: x: Bad"]
    assert "forecode_core/c.py: x: Worse" in capsys.readouterr().out
    fake_mypy[:] = [_diag("bench/b.py", "Bad")]
    assert baselines.update_mypy() == 0
    assert baselines.check_mypy() == 0


def test_a_mypy_that_stopped_early_fails_and_leaves_the_baseline_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 (a syntax error stops mypy before the rest of the tree): no entry is called gone,
    and --update does not empty the baseline."""
    syntax = json.dumps(_diag("bench/b.py", "Unexpected EOF while parsing", "syntax"))
    stopped = subprocess.CompletedProcess([], 2, stdout=syntax + "\n", stderr="")
    monkeypatch.setattr(baselines.subprocess, "run", lambda *a, **k: stopped)
    monkeypatch.setattr(baselines, "BASELINE", tmp_path / "mypy-baseline.txt")
    baselines.BASELINE.write_text(baselines.render_baseline(["app/ui/a.py: x: Bad"]))
    assert baselines.main([]) == 1
    assert baselines.main(["--update"]) == 1
    out = capsys.readouterr().out
    assert "bench/b.py:7: Unexpected EOF while parsing  [syntax]" in out
    assert "--update" not in out
    assert baselines.read_baseline() == ["app/ui/a.py: x: Bad"]


def test_the_checked_in_baseline_is_normalised_and_holds_no_strict_clean_package() -> None:
    entries = baselines.read_baseline()
    assert entries == sorted(entries), f"run `{baselines.UPDATE_HINT}`"
    for entry in entries:
        path, code, message = entry.split(": ", 2)
        assert (ROOT / path).suffix in (".py", ".pyi") and code and message, entry
        assert not baselines.is_strict_clean(entry), f"{entry}: strict-clean, fix it"


# ----- the configuration -----------------------------------------------------------------------
def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_mypy_checks_every_package_from_pyproject_alone_and_strictly() -> None:
    mypy = _pyproject()["tool"]["mypy"]
    packages = {
        p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"
    }
    assert packages <= set(mypy["files"]), "a package that mypy does not check"
    assert "packaging" in mypy["files"]
    assert mypy["strict"] is True
    # `strict` in an override turns strict on for every module (python/mypy#11401): an override
    # that looks like it narrows strictness does not, so none may say it.
    assert all("strict" not in o for o in mypy.get("overrides", []))


@pytest.mark.parametrize(
    ("text", "block", "expected"),
    [
        (
            'a\n# BEGIN complexity debt: x\n# more\n"f" = []\n# END complexity debt\nb\n',
            "# BEGIN complexity debt\nNEW\n# END complexity debt\n",
            "a\n# BEGIN complexity debt\nNEW\n# END complexity debt\nb\n",
        ),
        (
            "# BEGIN complexity debt\n# END complexity debt\n",
            "# BEGIN complexity debt\n# END complexity debt\n",
            "# BEGIN complexity debt\n# END complexity debt\n",
        ),
    ],
)
def test_update_replaces_only_the_marked_block(text: str, block: str, expected: str) -> None:
    assert baselines.replace_block(text, block) == expected


def test_the_complexity_block_lists_each_file_once_with_its_rules_sorted(tmp_path: Path) -> None:
    block = baselines.render_complexity(
        [("b.py", "PLR0915"), ("a.py", "PLR0912"), ("b.py", "C901")]
    )
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.ruff.lint.per-file-ignores]\n" + block)
    assert block.splitlines()[-3:] == [
        '"a.py" = ["PLR0912"]',
        '"b.py" = ["C901", "PLR0915"]',
        baselines.END_MARKER,
    ]
    assert baselines.listed_complexity(pyproject) == {
        ("a.py", "PLR0912"),
        ("b.py", "C901"),
        ("b.py", "PLR0915"),
    }


def test_the_complexity_ignore_list_is_exactly_the_files_over_the_limits() -> None:
    """Every listed (file, rule) still breaks the rule (a fixed file must leave the list), and
    every violation is listed (no noqa comment hides one: ruff runs with --ignore-noqa)."""
    listed = baselines.listed_complexity()
    found = baselines.complexity_violations()
    fixed = sorted(listed - found)
    unlisted = sorted(found - listed)
    assert not fixed, (
        f"these no longer break the rule: run `{baselines.UPDATE_HINT}` so the list shrinks: "
        f"{fixed}"
    )
    assert not unlisted, f"over the complexity limits and not listed; simplify them: {unlisted}"


def test_the_test_command_runs_ruff_format_the_mypy_baseline_and_pytest_in_order() -> None:
    steps = bootstrap.steps_for_test(Path("/venv/python"), ["-k", "x"])
    assert [name for name, _ in steps] == ["ruff", "ruff format", "mypy", "pytest"]
    commands = dict(steps)
    assert commands["ruff"][1:] == ["-m", "ruff", "check", "."]
    assert commands["ruff format"][1:] == ["-m", "ruff", "format", "--check", "."]
    # mypy's paths come from pyproject alone: the step names the checker and nothing else
    assert commands["mypy"][1:] == [str(ROOT / "packaging" / "baselines.py")]
    assert commands["pytest"][1:] == ["-m", "pytest", "-k", "x"]
