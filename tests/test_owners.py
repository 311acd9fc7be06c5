"""The window's owners (app.ui.owners): each built on its own, without a window, from its
constructor arguments; their commands (ids, keys, what a command does with nothing to act
on); commands bound in one place; resolving a path hint."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.ui.find_bar import FindBar
from app.ui.main_window import MainWindow
from app.ui.owners import Command, bind_commands
from app.ui.owners.chat import Chat
from app.ui.owners.cloud import CloudController
from app.ui.owners.documents import Documents
from app.ui.owners.editing import Editing
from app.ui.owners.engine import EngineController
from app.ui.owners.index import IndexController
from app.ui.owners.preferences import Preferences
from app.ui.owners.review import ReviewController
from app.ui.owners.workspace import Workspace
from app.ui.picker import Picker
from forecode_core.store.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SETTINGS = Settings(completion_enabled=False, cloud_autostart=False)


class Owners:
    """Every owner, built as the window builds them, on a bare widget."""

    def __init__(
        self, qtbot: QtBot, settings: Settings = SETTINGS, settings_file: Path | None = None
    ) -> None:
        self.settings = settings
        settings_file = settings_file or Path("/nonexistent/forecode/settings.json")
        self.host = QWidget()
        qtbot.addWidget(self.host)
        self.picker = Picker(self.host)
        self.messages: list[str] = []
        get = self.current_settings
        self.workspace = Workspace(lambda: settings.files_exclude, self.picker, self.host)
        self.docs = Documents(get, self.workspace, self.host)
        self.prefs = Preferences(settings_file, self.docs)
        self.editing = Editing(self.docs, FindBar(self.host), self.picker)
        self.chat = Chat(self.workspace, self.docs)
        self.engine = EngineController(get, self.docs)
        self.cloud = CloudController(get, self.engine.engine_client, self.host)
        self.index = IndexController(get, self.workspace, self.cloud.index_access, self.host)
        self.review = ReviewController(
            get,
            self.workspace,
            self.docs,
            backend=None,  # type: ignore[arg-type]
            chat_messages=self.chat.panel.messages,
        )
        self.all = (
            self.workspace,
            self.docs,
            self.prefs,
            self.chat,
            self.editing,
            self.engine,
            self.cloud,
            self.index,
            self.review,
        )
        for owner in self.all:
            owner.message.connect(lambda text, _ms: self.messages.append(text))

    def current_settings(self) -> Settings:
        return self.settings

    def run(self, command_id: str) -> None:
        by_id = {c.id: c for owner in self.all for c in owner.commands()}
        by_id[command_id].handler()


EXPECTED_IDS = {
    "workspace": ["file.openFolder", "file.openRecent", "view.quickOpen"],
    "docs": [
        "file.new",
        "file.open",
        "file.save",
        "file.saveAs",
        "file.saveAll",
        "file.close",
        "file.revert",
        "view.nextTab",
        "view.prevTab",
    ],
    "prefs": [
        "view.toggleTheme",
        "view.zoomIn",
        "view.zoomOut",
        "view.zoomReset",
        "prefs.settings",
    ],
    "chat": ["chat.toggle", "chat.new"],
    "engine": ["completion.recalibrate"],
    "cloud": ["cloud.setToken", "cloud.restart"],
    "index": ["index.syncNow", "index.cancel", "index.copyKey", "index.importKey"],
    "review": [
        "edit.inlineEdit",
        "chat.applyLast",
        "apply.acceptAll",
        "apply.rejectAll",
        "apply.next",
        "apply.previous",
    ],
}


@pytest.mark.parametrize("owner", sorted(EXPECTED_IDS))
def test_each_owner_lists_its_commands(qtbot: QtBot, owner: str) -> None:
    owners = Owners(qtbot)
    commands = getattr(owners, owner).commands()
    assert [c.id for c in commands] == EXPECTED_IDS[owner]
    assert all(isinstance(c, Command) and c.title and callable(c.handler) for c in commands)


def test_the_owners_commands_share_no_id_and_no_key(qtbot: QtBot) -> None:
    owners = Owners(qtbot)
    commands = [c for owner in owners.all for c in owner.commands()]
    actions = bind_commands(owners.host, commands)  # raises on a shared id or key
    assert set(actions) == {c.id for c in commands}
    assert actions["file.save"].shortcut().toString() == "Ctrl+S"
    assert [k.toString() for k in actions["file.close"].shortcuts()] == ["Ctrl+W", "Ctrl+F4"]
    assert actions["file.openFolder"].shortcut().toString() == "Ctrl+K, Ctrl+O"


def test_restart_chat_service_starts_the_connection_again(qtbot: QtBot) -> None:
    """After a failed start the fallback is not for the whole session: the palette's
    Cloud: Restart Chat Service makes a new connection per the settings (here: none)."""
    owners = Owners(qtbot)
    with qtbot.waitSignal(owners.cloud.reconnecting, timeout=2000):
        owners.run("cloud.restart")
    assert owners.cloud.connection is not None


def test_bind_commands_refuses_a_key_bound_twice(qtbot: QtBot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    a = Command("a.one", "One", "Ctrl+J", lambda: None)
    b = Command("b.two", "Two", "F9 or Ctrl+J", lambda: None)
    with pytest.raises(ValueError, match=re.escape("Ctrl+J is bound to both a.one and b.two")):
        bind_commands(host, [a, b])
    with pytest.raises(ValueError, match=re.escape("two commands with the id a.one")):
        bind_commands(host, [a, replace(a, shortcut="")])


def test_a_bound_command_runs_its_handler(qtbot: QtBot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    ran: list[str] = []
    actions = bind_commands(host, [Command("x.run", "Run", "F9", lambda: ran.append("x"))])
    actions["x.run"].trigger()
    assert ran == ["x"]


@pytest.mark.parametrize(
    ("command_id", "message"),
    [
        ("view.quickOpen", "Open a folder first (File: Open Folder...)."),
        ("completion.recalibrate", "Completions are off (completion.enabled)"),
        ("cloud.setToken", "Set cloud.url first"),
        ("index.syncNow", "Open a folder first: the codebase index covers the open folder."),
        ("index.copyKey", "Open a folder first: the codebase index covers the open folder."),
        ("apply.next", "No apply is being reviewed in this editor."),
        ("chat.applyLast", "The chat has no code block to apply."),
    ],
)
def test_a_command_with_nothing_to_act_on_says_why(
    qtbot: QtBot, command_id: str, message: str
) -> None:
    owners = Owners(qtbot)
    owners.run(command_id)
    assert len(owners.messages) == 1 and owners.messages[0].startswith(message)


def test_document_commands_act_on_the_tabs(qtbot: QtBot) -> None:
    owners = Owners(qtbot)
    owners.run("file.new")
    owners.run("file.new")
    assert [d.title for d in owners.docs.documents()] == ["Untitled-1", "Untitled-2"]
    owners.run("view.nextTab")
    assert owners.docs.current_document() is owners.docs.document_at(0)
    owners.run("file.close")  # clean: no question
    assert [d.title for d in owners.docs.documents()] == ["Untitled-2"]


def test_the_engine_controller_reports_a_given_engine_without_a_window(qtbot: QtBot) -> None:
    from tests.test_inline_completion import ScriptedEngine  # the seam's scripted engine

    owners = Owners(qtbot)
    states: list[str] = []
    owners.engine.status.connect(lambda text, _tip: states.append(text))
    engine = ScriptedEngine([])
    owners.engine.use_engine(engine)
    engine.state.emit("ready", "")
    assert states == ["● model"]
    owners.engine.stop()
    assert states[-1] == "○ No model" and owners.engine.engine is None


def test_the_window_binds_every_owners_commands(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    for owner in window.owners:
        for command in owner.commands():
            assert command.id in window.actions_by_id
            action = window.actions_by_id[command.id]
            assert action.text() == command.title
            assert [k.toString() for k in action.shortcuts()] == command.bindings()
    assert len({c.id for c in window.commands}) == len(window.commands)


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("pkg/mod.py", "pkg/mod.py"),
        ("./pkg/mod.py", "pkg/mod.py"),
        ("mod.py", "pkg/mod.py"),  # a bare name: the one workspace file of that name
        ("util.py", None),  # two files of that name: none
        ("pkg/new.py", None),  # not a file of the workspace
        ("", None),
        ("  ", None),
    ],
)
def test_resolve_hint(qtbot: QtBot, tmp_path: Path, hint: str, expected: str | None) -> None:
    for rel in ("pkg/mod.py", "a/util.py", "b/util.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    owners = Owners(qtbot)
    owners.workspace.open(tmp_path)
    owners.workspace.rescan()
    qtbot.waitUntil(lambda: owners.workspace.files_complete, timeout=5000)
    got = owners.workspace.resolve_hint(hint)
    assert (got.resolve() if got else None) == (
        (tmp_path / expected).resolve() if expected else None
    )


def test_resolve_hint_finds_an_open_file_outside_the_workspace(
    qtbot: QtBot, tmp_path: Path
) -> None:
    root, outside = tmp_path / "root", tmp_path / "elsewhere.py"
    root.mkdir()
    outside.write_text("y = 2\n")
    owners = Owners(qtbot)
    owners.workspace.open(root)
    assert owners.workspace.resolve_hint(str(outside)) is None
    assert owners.workspace.resolve_hint(str(outside), {outside.resolve()}) == outside.resolve()


def test_the_completion_context_reads_the_open_tabs_by_the_policy(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """The editor's side of forecode_core.completion.open_buffers: the other tabs' lines
    around their carets, a modified one first, workspace-relative paths."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("".join(f"a{n} = {n}\n" for n in range(60)))
    (tmp_path / "b.py").write_text("b = 1\n")
    (tmp_path / "c.py").write_text("c = 1\n")
    owners = Owners(qtbot)
    owners.workspace.open(tmp_path)
    a = owners.docs.open_file(tmp_path / "pkg" / "a.py")
    b = owners.docs.open_file(tmp_path / "b.py")
    c = owners.docs.open_file(tmp_path / "c.py")
    assert a is not None and b is not None and c is not None
    a.editor.go_to_line(30, 1)
    b.editor.insertText(0, "# edited\n")
    owners.docs.tabs.setCurrentWidget(c)
    path, language, snippets = owners.engine.completion_context()
    assert (path, language) == ("c.py", "python")
    assert [(s.path, s.kind, s.start_line) for s in snippets] == [
        ("b.py", "recent_edit", 1),
        ("pkg/a.py", "open_file", 10),
    ]
    assert snippets[1].text.split("\n") == [f"a{n} = {n}" for n in range(9, 50)]


OWNER_MODULES = [
    *sorted((REPO / "app" / "ui" / "owners").glob("*.py")),
    REPO / "app" / "ui" / "chat_host.py",
]


@pytest.mark.parametrize("path", OWNER_MODULES, ids=lambda p: p.name)
def test_owners_never_import_the_window(path: Path) -> None:
    """No import circle: the owners and the chat host get what they need as arguments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = [
        (node.module or "") + "".join(f" {a.name}" for a in node.names)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in imported if "main_window" in m or "MainWindow" in m]


@pytest.mark.parametrize(
    "path", [*OWNER_MODULES, REPO / "app" / "ui" / "main_window.py"], ids=lambda p: p.name
)
def test_owners_never_reach_into_private_fields(path: Path) -> None:
    """An owner (and the window) touches private names only on itself (``self._x``), never
    on another object (``other._x``, ``self._documents._x``) nor with ``getattr(obj, "_x")``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reaches = [
        f"{ast.unparse(node)} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    reaches += [
        f"{ast.unparse(node)} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "setattr", "hasattr")
        and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
        and str(node.args[1].value).startswith("_")
    ]
    assert reaches == []


def test_preference_commands_announce_new_settings(qtbot: QtBot, tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_text('{"editor.fontSize": 14, "workbench.theme": "dark"}\n')
    owners = Owners(qtbot, settings_file=file)
    seen: list[Settings] = []
    owners.prefs.changed.connect(seen.append)
    owners.run("view.toggleTheme")
    owners.run("view.zoomIn")
    owners.run("view.zoomIn")
    owners.run("view.zoomReset")  # back to the file's size
    assert [(s.theme, s.font_size) for s in seen] == [
        ("light", 14),
        ("light", 15),
        ("light", 16),
        ("light", 14),
    ]
    reloaded: list[tuple[int, int]] = []
    owners.prefs.reloaded.connect(lambda old, new: reloaded.append((old.tab_size, new.tab_size)))
    file.write_text('{"editor.tabSize": 2}\n')
    owners.prefs.file_saved(file)
    assert reloaded == [(4, 2)] and owners.prefs.settings.tab_size == 2
    assert owners.messages[-1] == "Settings applied."
