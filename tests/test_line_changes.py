"""The changed-lines gutter: the pure diff → marks mapping on marked text, and the marks on a real
editor widget against a real git repository's HEAD."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from forecode_core.text.line_changes import (
    ADDED,
    DELETED_ABOVE,
    DELETED_BELOW,
    MAX_ALIGNED_LINES,
    MODIFIED,
    ChangeKind,
    gutter_marks,
    line_changes,
)


def parse_marked(marked: str) -> tuple[str, str, dict[int, int]]:
    """Marked text → (base, current, expected marks). Each line starts with a tag:
    ``"  "`` in both, ``"+ "`` added, ``"~ "`` modified (replacing the ``"- "`` lines right
    before it), ``"- "`` only in the base (a deletion unless ``"~ "`` lines follow)."""
    base: list[str] = []
    current: list[str] = []
    marks: dict[int, int] = {}
    pending_delete = False
    rows = marked.strip("\n").split("\n")
    for i, row in enumerate(rows):
        tag, text = row[:2], row[2:]
        if tag == "- ":
            base.append(text)
            following = rows[i + 1][:2] if i + 1 < len(rows) else ""
            if following not in ("- ", "~ "):
                pending_delete = True
            continue
        if tag in ("  ", "~ "):
            if tag == "  ":
                base.append(text)
            current.append(text)
        elif tag == "+ ":
            current.append(text)
        else:
            raise ValueError(f"bad tag {tag!r}")
        line = len(current) - 1
        if pending_delete:
            marks[line] = marks.get(line, 0) | DELETED_ABOVE
            if line > 0:
                marks[line - 1] = marks.get(line - 1, 0) | DELETED_BELOW
            pending_delete = False
        if tag == "+ ":
            marks[line] = marks.get(line, 0) | ADDED
        elif tag == "~ ":
            marks[line] = marks.get(line, 0) | MODIFIED
    if pending_delete and current:
        last = len(current) - 1
        marks[last] = marks.get(last, 0) | DELETED_BELOW
    return "\n".join(base), "\n".join(current), marks


CASES = {
    "unchanged": """
  def f():
      return 1
""",
    "added in the middle": """
  a
+ new one
+ new two
  b
""",
    "modified": """
  a
- b
~ B
  c
""",
    "modified range replacing fewer lines": """
  a
- b
~ B1
~ B2
~ B3
  c
""",
    "deleted between lines": """
  a
- gone
- gone too
  c
""",
    "deleted at the start": """
- first
  second
  third
""",
    "deleted at the end": """
  first
  second
- third
""",
    "all three": """
  import os
+ import sys
  def f(x):
-     y = x
~     y = x * 2
      return y
- def g():
-     pass
  END
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_marks_on_marked_text(name: str) -> None:
    base, current, expected = parse_marked(CASES[name])
    line_count = current.count("\n") + 1
    assert gutter_marks(line_changes(base, current), line_count) == expected


def test_line_endings_do_not_count_as_changes() -> None:
    base = "a\nb\nc\n"
    assert line_changes(base, base.replace("\n", "\r\n")) == []
    changes = line_changes(base, "a\r\nB\r\nc\r\n")
    assert [(c.kind, c.start, c.end) for c in changes] == [(ChangeKind.MODIFIED, 1, 2)]


def test_a_huge_changed_middle_is_one_coarse_change() -> None:
    n = MAX_ALIGNED_LINES + 10
    base = "\n".join(f"old {i}" for i in range(n))
    current = "head\n" + "\n".join(f"new {i}" for i in range(n + 3)) + "\ntail"
    changes = line_changes(base, current)
    kinds = [(c.kind, c.start, c.end) for c in changes]
    assert kinds == [("modified", 0, n), ("added", n, n + 5)]


def test_an_edit_in_a_long_file_costs_only_its_region() -> None:
    lines = [f"line {i}" for i in range(200_000)]
    edited = list(lines)
    edited[100_000] = "changed"
    changes = line_changes("\n".join(lines), "\n".join(edited))
    assert [(c.kind, c.start, c.end) for c in changes] == [("modified", 100_000, 100_001)]


def check_script(a: list[str], b: list[str], changes: list) -> None:  # type: ignore[type-arg]
    """The changes are a valid edit script: the lines between them are equal on both sides."""
    pa = pb = 0
    for change in changes:
        assert a[pa : change.old_start] == b[pb : change.start]
        assert change.old_start >= pa and change.start >= pb
        pa, pb = change.old_end, change.end
    assert a[pa:] == b[pb:]


def test_random_edits_of_a_real_file_are_found_exactly() -> None:
    """Random line edits of a real source file (difflib.py, blank lines and repeated lines
    included): the diff is a valid script and marks about as many lines as were edited."""
    import difflib
    import random

    from forecode_core.text.line_changes import split_lines

    source = split_lines(Path(difflib.__file__).read_text())
    rng = random.Random(13)
    for _trial in range(30):
        current = list(source)
        edits = rng.randrange(1, 25)
        for _ in range(edits):
            i = rng.randrange(len(current))
            op = rng.random()
            if op < 0.4:
                current[i] += "  # edited"
            elif op < 0.7:
                current.insert(i, f"inserted {rng.random()}")
            else:
                del current[i]
        changes = line_changes(source, current)
        check_script(source, current, changes)
        marked = sum(max(c.end - c.start, c.old_end - c.old_start) for c in changes)
        assert marked <= 2 * edits


@pytest.mark.timeout(60)
def test_repeated_lines_do_not_make_the_diff_cubic() -> None:
    """Blank lines and braces only (no line occurs once): difflib's SequenceMatcher takes 19 s
    on 1,000 such lines and minutes on 2,000; here a work bound makes it one change (the
    timeout is a hang guard, not a measurement)."""
    for n in (2000, 20_000):
        base = ["}" if i % 2 else "" for i in range(n)]
        current = ["}" if i % 3 else "" for i in range(n)]
        changes = line_changes(base, current)
        check_script(base, current, changes)
    small_base = ["", "}", "", "}", "x"]
    small_current = ["", "}", "}", "", "}", "x"]
    changes = line_changes(small_base, small_current)
    check_script(small_base, small_current, changes)
    assert [(c.kind, c.end - c.start) for c in changes] == [("added", 1)]


# ----- the gutter on a real editor ---------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "T")
    (root / "a.py").write_text("one\ntwo\nthree\nfour\nfive\n")
    git(root, "add", "a.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def editor_marks(editor: object) -> dict[int, str]:
    from app.ui.git_decorations import GUTTER_MARKERS

    out: dict[int, str] = {}
    for line in range(editor.lineCount()):  # type: ignore[attr-defined]
        bits = editor.markerGet(line)  # type: ignore[attr-defined]
        names = [name for name, number in GUTTER_MARKERS.items() if bits & (1 << number)]
        if names:
            out[line] = "+".join(sorted(names))
    return out


def test_gutter_marks_on_a_real_editor_against_head(
    qtbot,
    repo: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Added = green bar, modified = blue bar, deleted = a triangle across the boundary, on a
    real CodeEditor in the window, from `git cat-file` on a worker thread; edits update it
    after the debounce; a save keeps it (HEAD did not move); a commit clears it. Neither git
    nor the diff runs on the UI thread."""
    import threading

    from app.ui import git_decorations
    from app.ui.main_window import MainWindow

    threads: list[str] = []

    def spying(fn):  # type: ignore[no-untyped-def]
        def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
            threads.append(threading.current_thread().name)
            return fn(*args, **kwargs)

        return spy

    monkeypatch.setattr(git_decorations, "read_head_blob", spying(git_decorations.read_head_blob))
    monkeypatch.setattr(git_decorations, "line_changes", spying(git_decorations.line_changes))

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(repo)
    doc = window.open_file(repo / "a.py")
    assert doc is not None
    editor = doc.editor
    gutter = window.git.gutter_for(doc)
    assert gutter is not None
    qtbot.waitUntil(lambda: gutter.base is not None, timeout=10000)
    assert editor_marks(editor) == {}
    # one → ONE (modified), insert after three (added), delete five (deleted at the end)
    editor.set_text("ONE\ntwo\nthree\nnew\nfour\n", keep_undo=True)
    qtbot.waitUntil(lambda: editor_marks(editor) != {}, timeout=10000)
    assert editor_marks(editor) == {
        0: "modified",
        3: "added",
        4: "deleted_below",
        5: "deleted_above",
    }
    # The colours are VS Code's (dark theme): green added, blue modified, red deleted.
    from app.ui.git_decorations import gutter_colours

    colours = gutter_colours(editor.theme)
    assert colours["added"].lower() == "#487e02"
    assert colours["modified"].lower() == "#1b81a8"
    assert colours["deleted"].lower() == "#f14c4c"
    # Undo back to HEAD's text: the marks go.
    editor.set_text("one\ntwo\nthree\nfour\nfive\n", keep_undo=True)
    qtbot.waitUntil(lambda: editor_marks(editor) == {}, timeout=10000)
    # A commit of an edit: after the status refresh sees the new HEAD, the base follows.
    editor.set_text("one\ntwo\nthree\nfour\nfive\nsix\n", keep_undo=True)
    qtbot.waitUntil(lambda: editor_marks(editor) == {5: "added"}, timeout=10000)
    assert doc.save() and doc.wait_saves()
    # Let the save's own refresh finish; then a commit outside the editor changes .git/index
    # and HEAD, which the controller watches.
    qtbot.waitUntil(
        lambda: not window.git._timer.isActive() and not window.git.refreshing, timeout=10000
    )
    head_before = window.git.head_oid
    git(repo, "commit", "-q", "-am", "six")
    qtbot.waitUntil(lambda: editor_marks(editor) == {}, timeout=10000)
    assert window.git.head_oid != head_before
    assert any(t.startswith("forecode-git") for t in threads)
    assert any(t.startswith("forecode-diff") for t in threads)
    assert threading.main_thread().name not in threads
    window.close()


def test_no_repository_no_gutter_and_no_error(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.ui.main_window import MainWindow

    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "x.txt").write_text("x\n")
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(folder)
    doc = window.open_file(folder / "x.txt")
    assert doc is not None
    gutter = window.git.gutter_for(doc)
    assert gutter is not None
    qtbot.waitUntil(lambda: gutter.base_checked, timeout=10000)
    assert gutter.base is None
    doc.editor.set_text("y\n", keep_undo=True)
    qtbot.wait(600)
    assert editor_marks(doc.editor) == {}
    window.close()


def test_chunked_split_matches_one_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """split_lines cuts a long text into pieces (short GIL holds); the lines are the same as
    one regex split, whatever the piece size and wherever CR, LF and CRLF fall."""
    import random
    import re

    from forecode_core.text import line_changes as module

    rng = random.Random(5)
    for _trial in range(200):
        parts: list[str] = []
        for _ in range(rng.randrange(0, 400)):
            parts.append("x" * rng.randrange(0, 20))
            parts.append(rng.choice(["\n", "\r\n", "\r", ""]))
        text = "".join(parts)
        monkeypatch.setattr(module, "_SPLIT_CHUNK", rng.choice([1, 2, 7, 64, 1000]))
        assert module.split_lines(text) == re.split(r"\r\n|\r|\n", text)
