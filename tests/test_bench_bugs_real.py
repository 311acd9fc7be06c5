"""bench bugs --real-edits: real commits' changed functions, reviewed as the editor would."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.bugs_real import evaluate_real, real_edits
from forecode_core.bugs.runner import Scoring

BEFORE = "def area(w, h):\n    return w * h\n\n\ndef name():\n    return 'a'\n"
AFTER = "def area(w, h):\n    return w * h * 2\n\n\ndef name():\n    return 'a'\n"


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "mirrors" / "me+demo" / "repo"
    root.mkdir(parents=True)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (root / "geo.py").write_text(BEFORE)
    git("add", "geo.py")
    git("commit", "-qm", "first")
    (root / "geo.py").write_text(AFTER)
    (root / "README").write_text("docs only\n")
    git("add", "geo.py", "README")
    git("commit", "-qm", "double the area")
    return root


def test_a_commits_changed_function_is_reviewed_with_its_parent_as_head(tmp_path: Path) -> None:
    _repo(tmp_path)
    edits = real_edits(5, 1, ["me+demo"], str(tmp_path / "mirrors"))
    # the first commit has no parent and the second changes one function by a replacement
    assert [(e.path, e.function.name) for e in edits] == [("geo.py", "area")]
    assert edits[0].before == BEFORE and edits[0].after == AFTER

    asked: list[tuple[str, str]] = []

    def score(prefix: str, continuation: str) -> list[tuple[float, float]]:
        asked.append((prefix, continuation))
        # HEAD's line far likelier than the commit's: a flag (a false one: a real edit)
        return [(-0.1, -0.1)] * 3 if "* 2" not in continuation else [(-5.0, -0.1)] * 3

    figures = evaluate_real(edits, Scoring(score, threshold=2.0, samples=2))
    assert figures["real_edits"] == 1 and figures["real_edit_flag_rate"] == 1.0
    assert figures["real_edit_rows"][0]["flagged_line"] == 2
    assert any("* 2" in c for _p, c in asked) and any("* 2" not in c for _p, c in asked)
