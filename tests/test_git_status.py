"""Git status in the explorer: the bounded runner against a real repository (and a hostile
one), and the explorer's colours read from the real model, with git run on a worker thread
only. Parsing and look-ups on marked text: test_git_status_parse.py."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.services.git_status import read_head_blob, read_status, run_git
from forecode_core.workspace.git_status import Decoration

# ----- a real repository -------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "T")
    (root / ".gitignore").write_text("*.log\n")
    (root / "src").mkdir()
    (root / "src" / "mod.py").write_text("x = 1\n")
    (root / "src" / "keep.py").write_text("k = 1\n")
    (root / "gone.py").write_text("g = 1\n")
    (root / "staged.py").write_text("s = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    (root / "src" / "mod.py").write_text("x = 2\n")
    (root / "gone.py").unlink()
    (root / "new.py").write_text("n = 1\n")
    git(root, "add", "new.py")
    (root / "notes.txt").write_text("u\n")
    (root / "debug.log").write_text("ignored\n")
    (root / "fresh").mkdir()
    (root / "fresh" / "a.txt").write_text("a\n")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_read_status_of_a_real_repository(repo: Path) -> None:
    result = read_status(repo)
    assert result.problem is None and result.status is not None and result.repo is not None
    assert result.status.head_oid == git(repo, "rev-parse", "HEAD").strip()
    look = result.lookup()
    assert look is not None
    assert look.decoration("src/mod.py") == Decoration("modified", "M")
    assert look.decoration("gone.py") == Decoration("deleted", "D")
    assert look.decoration("new.py") == Decoration("added", "A")
    assert look.decoration("notes.txt") == Decoration("untracked", "U")
    assert look.decoration("debug.log") == Decoration("ignored", "")
    assert look.decoration("fresh/a.txt") == Decoration("untracked", "U")
    assert look.decoration("src", is_dir=True) == Decoration("modified", "", propagated=True)
    assert look.decoration("src/keep.py") is None
    # From a subfolder: paths relative to it.
    sub = read_status(repo / "src").lookup()
    assert sub is not None and sub.decoration("mod.py") == Decoration("modified", "M")


def test_no_repository_and_no_git_are_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = read_status(plain)
    assert result.status is None and result.problem is None and result.lookup() is None
    assert read_head_blob(plain / "x.py") is None
    repo = make_repo(tmp_path / "r2")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # no git at all
    assert read_status(repo).status is None and read_status(repo).problem is None
    assert read_head_blob(repo / "src" / "mod.py") is None


def test_head_blob(repo: Path) -> None:
    assert read_head_blob(repo / "src" / "mod.py") == b"x = 1\n"
    assert read_head_blob(repo / "notes.txt") is None  # untracked
    assert read_head_blob(repo / "gone.py") == b"g = 1\n"


def test_a_hostile_fsmonitor_hook_neither_runs_nor_hangs(repo: Path, tmp_path: Path) -> None:
    """A repository whose config names an fsmonitor hook that sleeps (a hostile archive): the
    hook is turned off, status answers at once."""
    marker = tmp_path / "hook-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nsleep 60\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(hook))
    result = read_status(repo, timeout=20)
    assert result.status is not None and result.problem is None
    assert not marker.exists()


def test_a_git_that_never_answers_is_killed_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A git that hangs (a stand-in for a pathological repository or a stuck filter): the
    runner kills it and its children at the deadline and says so."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 60 &\nsleep 60\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    out = run_git(["status"], tmp_path, timeout=0.5)
    assert out.timed_out and out.returncode is None
    assert time.monotonic() - started < 30  # not the 60 s the script sleeps


def test_output_is_capped(repo: Path) -> None:
    for i in range(300):
        (repo / f"untracked-{i:04d}.txt").write_text("u\n")
    out = run_git(["status", "--porcelain=v2", "-z"], repo, max_bytes=1000)
    assert out.truncated and len(out.stdout) == 1000
    result = read_status(repo, max_bytes=1000)
    assert result.status is not None and result.status.truncated
    assert result.problem is not None and "too many" in result.problem


# ----- the explorer ------------------------------------------------------------------------------


def wait_for_colours(qtbot, window, rel: str) -> None:  # type: ignore[no-untyped-def]
    from app.ui.git_decorations import BADGE_ROLE

    def coloured() -> bool:
        index = window.tree.index_for(window.root / rel)
        return index is not None and bool(window.tree.model().data(index, BADGE_ROLE))

    qtbot.waitUntil(coloured, timeout=15000)


def test_explorer_colours_from_the_model(qtbot, repo: Path) -> None:  # type: ignore[no-untyped-def]
    """The explorer's model answers ForegroundRole with VS Code's colours and the badge role
    with the letter; folders above a change are tinted; git ran on a worker thread only."""
    from PySide6.QtCore import Qt

    from app.ui import git_decorations
    from app.ui.git_decorations import BADGE_ROLE, explorer_colours
    from app.ui.main_window import MainWindow
    from app.ui.theme import theme_named

    threads: list[str] = []
    real = git_decorations.read_status

    def spy(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        assert threading.current_thread() is not threading.main_thread()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    git_decorations.read_status = spy  # type: ignore[assignment]
    try:
        window = MainWindow()
        qtbot.addWidget(window)
        window.open_folder(repo)
        tree = window.tree
        qtbot.waitUntil(lambda: tree.index_for(repo / "src") is not None, timeout=10000)
        tree.expand(tree.index_for(repo / "src"))
        qtbot.waitUntil(lambda: tree.index_for(repo / "src" / "mod.py") is not None, timeout=10000)
        wait_for_colours(qtbot, window, "src/mod.py")
        model = tree.model()
        colours = explorer_colours(theme_named(window.settings.theme))

        def fore(rel: str) -> str:
            value = model.data(tree.index_for(repo / rel), Qt.ItemDataRole.ForegroundRole)
            return value.color().name() if value is not None else ""

        def badge(rel: str) -> str:
            return model.data(tree.index_for(repo / rel), BADGE_ROLE) or ""

        assert (fore("src/mod.py"), badge("src/mod.py")) == (colours["modified"], "M")
        assert (fore("new.py"), badge("new.py")) == (colours["added"], "A")
        assert (fore("notes.txt"), badge("notes.txt")) == (colours["untracked"], "U")
        assert (fore("fresh"), badge("fresh")) == (colours["untracked"], "")
        assert fore("src") == colours["modified"]  # tinted by mod.py below it
        assert badge("src") == "•"
        assert fore("src/keep.py") == "" and badge("src/keep.py") == ""
        assert fore("staged.py") == ""
        assert colours["modified"] == "#e2c08d" and colours["untracked"] == "#73c991"
        tooltip = model.data(tree.index_for(repo / "src" / "mod.py"), Qt.ItemDataRole.ToolTipRole)
        assert "Modified" in tooltip
        assert threads and all(name != threading.main_thread().name for name in threads)
        # The light theme: VS Code's light colours.
        window.prefs.toggle_theme()
        assert fore("src/mod.py") == "#895503" and fore("notes.txt") == "#007100"
        window.prefs.toggle_theme()

        # A change on disk is picked up (debounced) without a save in the editor.
        (repo / "src" / "keep.py").write_text("k = 2\n")
        window.git.refresh_soon()
        qtbot.waitUntil(lambda: badge("src/keep.py") == "M", timeout=15000)
        # A save in the editor refreshes too.
        doc = window.open_file(repo / "staged.py")
        assert doc is not None
        doc.editor.set_text("s = 2\n", keep_undo=True)
        assert doc.save() and doc.wait_saves()
        qtbot.waitUntil(lambda: badge("staged.py") == "M", timeout=15000)
        window.close()
    finally:
        git_decorations.read_status = real  # type: ignore[assignment]


def test_explorer_without_a_repository_has_no_colours(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    from app.ui.git_decorations import BADGE_ROLE
    from app.ui.main_window import MainWindow

    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.tree.index_for(folder / "a.txt") is not None, timeout=10000)
    qtbot.waitUntil(lambda: window.git.checked, timeout=10000)
    index = window.tree.index_for(folder / "a.txt")
    assert window.tree.model().data(index, Qt.ItemDataRole.ForegroundRole) is None
    assert not window.tree.model().data(index, BADGE_ROLE)
    assert window.git.problem is None
    window.close()


def test_a_hanging_git_status_in_the_window_is_cut_off_said_once_and_backed_off(
    qtbot, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A repository whose status never finishes (here: a git whose `status` hangs): the
    window's status is killed at the deadline on the git thread, the status bar says so once,
    and automatic refreshes wait (backoff) instead of piling up."""
    import shutil as _shutil

    from app.ui.main_window import MainWindow

    real_git = _shutil.which("git")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = status ] && { sleep 60; exit 0; }; done\n'
        f'exec {real_git} "$@"\n'
    )
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    window = MainWindow()
    qtbot.addWidget(window)
    window.git.timeout_s = 1.0
    window.open_folder(repo)
    qtbot.waitUntil(lambda: window.git.problem is not None, timeout=20000)
    assert "longer than 1 s" in window.git.problem
    assert "git status took longer" in window.statusBar().currentMessage()
    assert window.git.lookup is None
    window.git.refresh_soon()
    assert window.git._timer.remainingTime() > 3000  # backed off: not the 400 ms debounce
    window.close()


def test_the_pathological_gitignore_of_issue_13_does_not_stall_status(tmp_path: Path) -> None:
    """The .gitignore that froze the explorer (issue 13, point 1; 16 stars here): git's own
    matcher answers, and the runner's deadline would cut it off if it did not."""
    root = tmp_path / "hostile"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text("a*" * 16 + "b\n")
    (root / ("a" * 60)).write_text("")
    result = read_status(root, timeout=20)
    assert result.problem is None and result.status is not None
    assert result.status.entries.get("a" * 60) == "untracked"


def test_git_enabled_off_runs_no_git_and_clears_the_colours(qtbot, repo: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from app.ui import git_decorations
    from app.ui.git_decorations import BADGE_ROLE
    from app.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(repo)
    wait_for_colours(qtbot, window, "new.py")
    doc = window.open_file(repo / "src" / "mod.py")
    gutter = window.git.gutter_for(doc)
    qtbot.waitUntil(lambda: gutter.base is not None and gutter.marks != {}, timeout=10000)
    calls: list[object] = []
    real = git_decorations.read_status
    git_decorations.read_status = lambda *a, **k: calls.append(a) or real(*a, **k)  # type: ignore[assignment]
    try:
        window.apply_settings(replace(window.settings, git_enabled=False))
        index = window.tree.index_for(repo / "new.py")
        assert not window.tree.model().data(index, BADGE_ROLE)
        assert gutter.base is None
        qtbot.waitUntil(lambda: gutter.marks == {}, timeout=10000)
        window.git.refresh_now()
        window.git.refresh_soon()
        qtbot.wait(600)
        assert calls == []
        window.apply_settings(replace(window.settings, git_enabled=True))
        wait_for_colours(qtbot, window, "new.py")
        qtbot.waitUntil(lambda: gutter.marks != {}, timeout=10000)
        assert calls
    finally:
        git_decorations.read_status = real  # type: ignore[assignment]
    window.close()


def test_closing_the_window_kills_a_git_still_running(
    qtbot,
    repo: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A status that would run for a minute (deadline not reached) does not keep the editor
    from quitting: closing the window kills git and its children at once."""
    import shutil as _shutil

    from app.ui.main_window import MainWindow

    real_git = _shutil.which("git")
    fake = tmp_path / "bin"
    fake.mkdir()
    pid_file = tmp_path / "status.pid"
    (fake / "git").write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = status ] && '
        f'{{ echo $$ > {pid_file}; sleep 60; exit 0; }}; done\nexec {real_git} "$@"\n'
    )
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    window = MainWindow()
    qtbot.addWidget(window)
    window.git.timeout_s = 120.0
    window.open_folder(repo)
    qtbot.waitUntil(pid_file.exists, timeout=20000)
    pid = int(pid_file.read_text())
    executor = window.git._executor
    window.close()
    done = threading.Event()
    threading.Thread(target=lambda: (executor.shutdown(wait=True), done.set()), daemon=True).start()
    assert done.wait(30), "the git thread is still waiting on git"  # a hang guard, not a timing
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
