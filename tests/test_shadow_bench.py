"""``python -m bench shadow`` on a small tree: the keys issue 16 names are there, and the edit it
times is one the check really flags (timings are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.services.shadow import CliChecker
from bench.shadow import generate_tree

REPO = Path(__file__).resolve().parent.parent


def test_the_generated_tree_has_the_files_asked_for(tmp_path: Path) -> None:
    generate_tree(tmp_path / "ws", 300)
    sources = list((tmp_path / "ws").glob("pkg*/**/*.py"))
    assert len(sources) == 299 and (tmp_path / "ws" / ".gitignore").is_file()
    assert (tmp_path / "ws" / ".venv" / "pyvenv.cfg").is_file()


@pytest.mark.timeout(900)  # two checkers' rounds and a tree: minutes on a loaded machine
def test_bench_shadow_reports_issue_16s_keys(tmp_path: Path) -> None:
    # basedpyright is a runtime dependency (the run command installs it): missing, this fails
    assert CliChecker().pyright, "basedpyright is not installed: run packaging/bootstrap.py"
    out = tmp_path / "shadow.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "shadow",
            "--files",
            "300",
            "--rounds",
            "1",
            "--workdir",
            str(tmp_path),
            "--json",
            str(out),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=900,
    )
    result = json.loads(out.read_text())
    for key in ("shadow_first_build_s", "shadow_refresh_p50_ms", "edit_to_verdict_p50_s"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["benchmark"] == "shadow" and result["files"] == 300
    for found in (result["verdict_new"], result["verdict_new_cli"]):
        assert sorted(x.split(":")[1] for x in found) == ["F821", "reportUndefinedVariable"]
