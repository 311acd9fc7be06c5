"""Related files in the editor (issue 15): ``app.ui.related_files.RelatedFiles`` over a real
git repository made here, its states, HEAD moving, cancel; quick open with the real picker;
the chat panel's ``@`` suggestions; the completion context's order; next-edit excerpts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.window import folder_window
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from app.ui.owners.documents import Documents
from app.ui.owners.next_edit import NextEditController
from app.ui.owners.workspace import RELATED_TAG, Workspace
from app.ui.picker import Picker
from app.ui.related_files import RelatedFiles, RelatedState
from forecode_core.chat.context import SourceKind
from forecode_core.completion.open_buffers import TextBuffer, open_buffer_snippets
from forecode_core.next_edit.input import NextEditInput, RelatedExcerpt
from forecode_core.store.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_ENV}
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def commit(repo: Path, files: dict[str, str], message: str = "change") -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


UTIL = "import re\n\n\ndef parse_header(raw, limit):\n    return raw[:limit]\n"


def make_repo(path: Path) -> Path:
    """api.py changes with util.py in 2 of its 3 commits, with models.py once; other.py
    always alone."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, {"other.py": "o\n"})
    commit(path, {"api.py": "v1\n", "util.py": UTIL})
    commit(path, {"api.py": "v2\n", "util.py": UTIL + "# 2\n"})
    commit(path, {"api.py": "v3\n", "models.py": "m1\n"})
    commit(path, {"other.py": "o2\n"})
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def ready(qtbot: QtBot, related: RelatedFiles, *states: RelatedState) -> None:
    want = states or (RelatedState.READY,)
    qtbot.waitUntil(lambda: related.state in want, timeout=10000)


def names(pairs: list[tuple[str, float]]) -> list[str]:
    return [path for path, _ in pairs]


# ----- the table -------------------------------------------------------------------------------


def test_reads_the_history_off_the_ui_thread_and_answers_by_confidence(
    qtbot: QtBot, repo: Path
) -> None:
    related = RelatedFiles()
    states: list[str] = []
    related.state_changed.connect(lambda state, _m: states.append(state))
    related.set_root(repo)
    assert related.state == RelatedState.LOADING  # set_root returned before git ran
    assert related.related("api.py") == []
    ready(qtbot, related)
    answer = related.related("api.py")
    assert names(answer) == ["util.py", "models.py"]
    assert answer[0][1] > answer[1][1] > 0
    assert related.related("other.py") == []  # never changed with another file
    assert states == [RelatedState.LOADING, RelatedState.READY]
    assert "5 commits read" in related.state_message


def test_git_runs_on_a_thread_of_its_own(
    qtbot: QtBot, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the shared pool (two threads on two cores): a slow history would hold one."""
    import threading

    import app.ui.related_files as module

    threads: list[str] = []
    build = module._build

    def recording_build(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_build", recording_build)
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    assert len(threads) == 1 and threads[0].startswith("forecode-related")
    related.shutdown()


def test_head_moving_adds_the_new_commits(qtbot: QtBot, repo: Path) -> None:
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    assert "other.py" not in names(related.related("api.py"))
    commit(repo, {"api.py": "v4\n", "other.py": "o3\n"})
    with qtbot.waitSignal(related.changed, timeout=10000):
        related.check_head()
    assert "other.py" in names(related.related("api.py"))


def test_a_file_deleted_but_not_committed_is_never_offered(qtbot: QtBot, repo: Path) -> None:
    """A user run's chat chips offered two .pyc files deleted in the working tree (committed
    once, the deletion not yet): the table leaves out what is not a file any more."""
    (repo / "util.py").unlink()
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    assert names(related.related("api.py")) == ["models.py"]
    # the next commit reads the working tree again: a file back on disk is offered again
    (repo / "util.py").write_text(UTIL)
    commit(repo, {"api.py": "v4\n", "util.py": UTIL + "# 3\n"})
    with qtbot.waitSignal(related.changed, timeout=10000):
        related.check_head()
    assert names(related.related("api.py"))[0] == "util.py"


def test_a_check_without_a_new_commit_changes_nothing(qtbot: QtBot, repo: Path) -> None:
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    before = related.related("api.py")
    changes: list[int] = []
    related.changed.connect(lambda: changes.append(1))
    related.check_head()
    qtbot.waitUntil(lambda: not related._busy, timeout=10000)
    assert changes == [] and related.related("api.py") == before


def test_a_rewritten_history_is_read_again(qtbot: QtBot, repo: Path) -> None:
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    git(repo, "reset", "-q", "--hard", "HEAD~4")  # only the first commit is left
    commit(repo, {"models.py": "m9\n", "other.py": "o9\n"})
    with qtbot.waitSignal(related.changed, timeout=10000):
        related.check_head()
    qtbot.waitUntil(lambda: names(related.related("other.py")) != [], timeout=10000)
    assert names(related.related("other.py"))[0] == "models.py"
    assert related.related("api.py") == []  # gone with the commits that made it


def test_a_folder_inside_the_repository_speaks_its_own_paths(qtbot: QtBot, tmp_path: Path) -> None:
    repo = tmp_path / "mono"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"web/app.js": "1", "web/view.js": "1", "server/api.py": "1"})
    commit(repo, {"web/app.js": "2", "server/api.py": "2"})
    related = RelatedFiles()
    related.set_root(repo / "web")
    ready(qtbot, related)
    assert names(related.related("app.js")) == ["view.js"]  # server/api.py is outside


def test_not_a_repository(qtbot: QtBot, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.py").write_text("x\n")
    related = RelatedFiles()
    said: list[str] = []
    related.message.connect(lambda text, _ms: said.append(text))
    related.set_root(folder)
    ready(qtbot, related, RelatedState.NOT_REPO)
    assert said == []  # normal: nothing in the status bar
    assert related.state_message == "not a git repository"
    assert related.related("a.py") == []


def test_git_missing(
    qtbot: QtBot, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related, RelatedState.NO_GIT)
    assert related.state_message == "git is not installed"
    assert related.related("api.py") == []


def test_a_history_too_big_uses_its_newest_commits_and_says_so(qtbot: QtBot, repo: Path) -> None:
    related = RelatedFiles(max_bytes=120)  # the log is cut after a commit or two
    said: list[str] = []
    related.message.connect(lambda text, _ms: said.append(text))
    related.set_root(repo)
    ready(qtbot, related, RelatedState.PARTIAL)
    assert "printed too much" in related.state_message
    assert "related files use the newest" in related.state_message
    assert said == [f"Related files: {related.state_message}"]  # in the status bar


def test_an_empty_repository(qtbot: QtBot, tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    related = RelatedFiles()
    related.set_root(folder)
    ready(qtbot, related, RelatedState.EMPTY)
    commit(folder, {"a.py": "1", "b.py": "1"})  # the first commit: read at the next check
    related.check_head()
    ready(qtbot, related)
    assert names(related.related("a.py")) == ["b.py"]


def test_cancel_stops_the_read(qtbot: QtBot, repo: Path) -> None:
    related = RelatedFiles()
    changes: list[int] = []
    related.set_root(repo)
    related.changed.connect(lambda: changes.append(1))
    related.cancel()
    qtbot.wait(1500)  # the read of this small history takes well under that when not stopped
    assert changes == [] and related.state == RelatedState.LOADING
    assert related.related("api.py") == []
    related.reload()  # it can start again
    ready(qtbot, related)


def test_a_new_folder_drops_the_old_answer(qtbot: QtBot, repo: Path, tmp_path: Path) -> None:
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    other = tmp_path / "other"
    other.mkdir()
    related.set_root(other)
    assert related.related("api.py") == []
    ready(qtbot, related, RelatedState.NOT_REPO)
    related.set_root(None)
    assert related.state == RelatedState.NO_FOLDER


# ----- excerpts for next-edit ------------------------------------------------------------------


def test_excerpts_for_the_caret_from_the_related_files(qtbot: QtBot, repo: Path) -> None:
    open_texts: dict[Path, str] = {}
    related = RelatedFiles(lambda path: open_texts.get(path))
    related.set_root(repo)
    ready(qtbot, related)
    text = "from util import parse_header\n\nhead = parse_header(data, 4)\n"
    caret = text.index("parse_header(data")
    with qtbot.waitSignal(related.sources_changed, timeout=10000):
        related.set_current(repo / "api.py")
    got = related.excerpts_for("api.py", text, caret, 60)  # the definition, then a short head
    assert got == (
        RelatedExcerpt("util.py", "def parse_header(raw, limit):\n    return raw[:limit]\n", 3),
        RelatedExcerpt("models.py", "m1\n", 0),
    )
    assert related.excerpts_for("api.py", text, caret, 0) == ()
    # An open buffer's text wins over the disk's (unsaved edits count).
    open_texts[(repo / "util.py").resolve()] = "def parse_header(raw):\n    return raw\n"
    with qtbot.waitSignal(related.sources_changed, timeout=10000):
        related.set_current(repo / "api.py")
    got = related.excerpts_for("api.py", text, caret, 60)
    assert got[0] == RelatedExcerpt("util.py", "def parse_header(raw):\n    return raw\n", 0)


# ----- the completion context ------------------------------------------------------------------


def test_related_buffers_come_ahead_of_other_open_buffers() -> None:
    buffers = [TextBuffer(p, p) for p in ("cur.py", "a.py", "b.py", "c.py", "rel.py")]
    plain = open_buffer_snippets(buffers, 0)
    assert [s.path for s in plain] == ["a.py", "b.py", "c.py"]
    ranked = open_buffer_snippets(buffers, 0, related=["rel.py", "gone.py", "b.py"])
    assert [s.path for s in ranked] == ["rel.py", "b.py", "a.py"]
    dirty = [TextBuffer("cur.py", "x"), TextBuffer("a.py", "a", dirty=True), *buffers[4:]]
    # a recent edit still comes first (the renderer ranks by kind); related ahead among the rest
    assert [s.path for s in open_buffer_snippets(dirty, 0, related=["rel.py"])] == [
        "a.py",
        "rel.py",
    ]


# ----- quick open, with the real picker --------------------------------------------------------


def test_quick_open_puts_related_files_first_and_boosts_them(qtbot: QtBot, tmp_path: Path) -> None:
    repo = tmp_path / "q"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"alpha/helpers.py": "1", "zz.py": "1"})
    commit(repo, {"main.py": "1", "omega/helpers.py": "1"})
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(800, 600)
    host.show()
    picker = Picker(host)
    workspace = Workspace(lambda: (), picker, host)
    workspace.open(repo)
    with qtbot.waitSignal(workspace.scanned, timeout=5000):
        workspace.rescan()
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    related.set_current(repo / "main.py")
    workspace.set_related(related.current_related)

    workspace.quick_open()
    rows = picker.items()
    assert (rows[0].data, rows[0].tag) == ("omega/helpers.py", RELATED_TAG)
    # then the rest in the list's order, unmarked (main.py itself too)
    rest = [f for f in workspace.files if f != "omega/helpers.py"]
    assert sorted(rest) == ["alpha/helpers.py", "main.py", "zz.py"]
    assert [(r.data, r.tag) for r in rows[1:]] == [(f, "") for f in rest]
    assert picker.model.data(picker.model.index(0), Qt.ItemDataRole.DisplayRole).endswith(
        RELATED_TAG
    )
    qtbot.keyClicks(picker.query_edit, "helpers")
    assert [r.data for r in picker.items()] == ["omega/helpers.py", "alpha/helpers.py"]
    picker.close_picker()

    workspace.set_related(None)  # the same query without related files: the path order
    workspace.quick_open()
    qtbot.keyClicks(picker.query_edit, "helpers")
    assert [r.data for r in picker.items()] == ["alpha/helpers.py", "omega/helpers.py"]
    assert all(r.tag == "" for r in picker.items())
    picker.close_picker()


# ----- the window: chat's @ suggestions, quick open, completions -------------------------------


def test_window_offers_related_files_in_chat_quick_open_and_completions(
    qtbot: QtBot, repo: Path
) -> None:
    win = folder_window(qtbot, repo)
    ready(qtbot, win.related)
    win.open_file(repo / "api.py")
    win.open_file(repo / "other.py")
    win.open_file(repo / "models.py")
    win.open_file(repo / "util.py")
    win.open_file(repo / "api.py")  # the current tab again
    assert win.related.current_related()[0][0] == "util.py"

    # chat: the related files as one-click @ chips
    win.chat.show()
    panel = win.chat_panel
    panel.refresh_context()
    assert [chip.path for chip in panel.related_chips] == ["util.py", "models.py"]
    assert panel.related_chips[0].text() == "+ @util.py"
    qtbot.mouseClick(panel.related_chips[0], Qt.MouseButton.LeftButton)
    assert "@util.py" in panel.input.toPlainText()
    assert [chip.path for chip in panel.mention_chips] == ["util.py"]
    assert [chip.path for chip in panel.related_chips] == ["models.py"]
    assert panel.plan is not None  # the mention goes along with the question
    assert panel.plan.report_for(SourceKind.FILE, "util.py") is not None

    # quick open: related first, marked
    win.workspace.quick_open()
    rows = win.picker.items()
    assert [(r.data, r.tag) for r in rows[:2]] == [
        ("util.py", RELATED_TAG),
        ("models.py", RELATED_TAG),
    ]
    win.picker.close_picker()

    # completions: the related tabs ahead of the other open tabs
    path, _language, snippets = win.completions.completion_context()
    assert path == "api.py"
    assert [s.path for s in snippets][:2] == ["util.py", "models.py"]


# ----- next-edit: the model's input carries the related excerpts -------------------------------


class RecordingModel(QObject):
    """The next-edit owner's model seam: records what it is asked (never answers)."""

    suggested = Signal(int, object, float, str)
    declined = Signal(int, str, str)

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[NextEditInput] = []

    def is_ready(self) -> bool:
        return True

    def request(self, inp: NextEditInput, version: int, buffer: str = "") -> None:
        self.inputs.append(inp)

    def prefetch(self, inp: NextEditInput, version: int, buffer: str = "") -> None:
        self.inputs.append(inp)

    def cancel(self) -> None:
        pass

    def outcome(self, version: int, accepted: bool, buffer: str = "") -> None:
        pass


def test_next_edit_input_carries_excerpts_of_the_related_files(qtbot: QtBot, repo: Path) -> None:
    settings = Settings(completion_enabled=False, cloud_autostart=False)
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(900, 500)
    workspace = Workspace(lambda: (), Picker(host), host)
    workspace.open(repo)
    docs = Documents(lambda: settings, workspace, host)
    QVBoxLayout(host).addWidget(docs.tabs)
    model = RecordingModel()
    ctl = NextEditController(lambda: settings, docs, workspace, model=lambda: model, parent=host)
    related = RelatedFiles(lambda p: d.editor.text() if (d := docs.find(p)) else None, host)
    ctl.set_related(related.excerpts_for)
    related.set_root(repo)
    ready(qtbot, related)
    host.show()
    (repo / "api.py").write_text("from util import parse_header\n\nhead = parse_header(data)\n")
    doc = docs.open_file(repo / "api.py")
    assert doc is not None
    doc.editor.gotoPos(doc.editor.length() - len("(data)\n"))
    with qtbot.waitSignal(related.sources_changed, timeout=10000):
        related.set_current(doc.path)
    ctl.predict_now()
    assert model.inputs, "the model was not asked"
    first = model.inputs[-1].related[0]
    assert first.path == "util.py" and first.start_line == 0  # the head merged with it
    assert "\ndef parse_header(raw, limit):\n    return raw[:limit]\n" in first.text
    ctl.shutdown()


def test_completions_get_excerpts_of_closed_related_files(qtbot: QtBot, repo: Path) -> None:
    (repo / "api.py").write_text("from util import parse_header\n\nhead = parse_header(data)\n")
    win = folder_window(qtbot, repo)
    ready(qtbot, win.related)
    with qtbot.waitSignal(win.related.sources_changed, timeout=10000):
        doc = win.open_file(repo / "api.py")
    assert doc is not None
    doc.editor.gotoPos(doc.editor.length() - len("(data)\n"))
    _path, _language, snippets = win.completions.completion_context()
    assert (snippets[0].path, snippets[0].start_line, snippets[0].kind) == (
        "util.py",
        1,
        "retrieved",
    )
    assert "\ndef parse_header(raw, limit):\n    return raw[:limit]\n" in snippets[0].text
    # once util.py is open its tab is sent (first, as a related file), not an excerpt again
    win.open_file(repo / "util.py")
    with qtbot.waitSignal(win.related.sources_changed, timeout=10000):
        win.open_file(repo / "api.py")
    _path, _language, snippets = win.completions.completion_context()
    assert [(s.path, s.kind) for s in snippets if s.path == "util.py"] == [("util.py", "open_file")]


def test_window_learns_a_commit_made_outside_at_the_next_save(qtbot: QtBot, repo: Path) -> None:
    win = folder_window(qtbot, repo)
    ready(qtbot, win.related)
    assert win.related.related("other.py") == []
    doc = win.open_file(repo / "models.py")
    assert doc is not None
    commit(repo, {"other.py": "o3\n", "util.py": "u\n"})  # a terminal's commit
    doc.editor.gotoPos(doc.editor.length())
    qtbot.keyClicks(doc.editor, "# more")
    with qtbot.waitSignal(win.related.changed, timeout=10000):
        win.save_current()
    assert names(win.related.related("other.py")) == ["util.py"]


def test_nothing_related_for_a_file_outside_the_folder(
    qtbot: QtBot, repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "api.py").write_text("x = 1\n")  # the same bare name as the folder's api.py
    win = folder_window(qtbot, repo)
    ready(qtbot, win.related)
    doc = win.open_file(outside / "api.py")
    assert doc is not None
    win.chat.show()
    win.chat_panel.refresh_context()
    assert win.chat_panel.related_chips == []
    # nor for completions and next-edit
    assert win.related.related_paths("api.py") == []
    assert win.related.excerpts_for("api.py", "parse_header(x)\n", 3, 1000) == ()
    win.open_file(repo / "api.py")
    win.chat_panel.refresh_context()
    assert [chip.path for chip in win.chat_panel.related_chips] == ["util.py", "models.py"]


def test_compiled_files_committed_with_the_code_are_never_offered(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """A user run's chat offered ``@__init__.cpython-311.opt-1.pyc``: the repository had
    committed its ``__pycache__`` and the .pyc files changed with every source file."""
    repo = tmp_path / "pyc"
    repo.mkdir()
    git(repo, "init", "-q")
    for n in range(4):
        commit(
            repo,
            {
                "pkg/api.py": f"v{n}\n",
                "pkg/models.py": f"m{n}\n",
                "pkg/__pycache__/api.cpython-311.pyc": f"\0pyc{n}",
                "pkg/logo.png": f"\x89PNG{n}",
            },
        )
    related = RelatedFiles()
    related.set_root(repo)
    ready(qtbot, related)
    assert names(related.related("pkg/api.py")) == ["pkg/models.py"]


@pytest.mark.parametrize(
    ("path", "binary"),
    [
        ("pkg/__pycache__/api.cpython-311.pyc", True),
        ("pkg/__pycache__/notes.txt", True),  # nothing in __pycache__ is source
        ("lib/_speedups.cpython-311-x86_64-linux-gnu.so", True),
        ("docs/Logo.PNG", True),
        ("models/tiny.gguf", True),
        ("src/app.py", False),
        ("README", False),
        (".gitignore", False),
        ("src/pyc_helpers.py", False),
        ("data/db.sql", False),
    ],
)
def test_binary_by_name(path: str, binary: bool) -> None:
    from forecode_core.text.textfile import binary_by_name

    assert binary_by_name(path) is binary
