"""The terminal panel with real parts: the user's shell (bash, and zsh where installed) on a
real PTY with Forecode's shell integration, the real widget offscreen, the real window."""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.services.terminal import shell_launch
from app.ui.terminal.view import TerminalView
from app.ui.theme import theme_named
from forecode_core.terminal.records import CommandRecord
from tests.helpers.window import folder_window

SHELLS = [s for s in ("bash", "zsh") if shutil.which(s)]  # .ci/run installs zsh
WAIT = 30_000  # generous: a loaded 2-core machine
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier

RC = {
    "bash": (".bashrc", "export FROM_USER_RC=loaded-from-rc\nalias hello='echo hello-alias'\n"),
    "zsh": (".zshrc", "export FROM_USER_RC=loaded-from-rc\nalias hello='echo hello-alias'\n"),
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for name, text in RC.values():
        (home / name).write_text(text)
    (home / ".zshenv").write_text("export FROM_USER_ZSHENV=1\n")
    return home


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ZDOTDIR", "PROMPT_COMMAND")}
    env["HOME"] = str(home)
    return env


@pytest.fixture
def terminal(qtbot: QtBot, home: Path, tmp_path: Path, request: pytest.FixtureRequest):
    made: list[TerminalView] = []

    def make(shell: str = "bash", size: tuple[int, int] = (800, 400)) -> TerminalView:
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        view = TerminalView(shell_launch(shell, _env(home)), work, lambda: theme_named("dark"))
        qtbot.addWidget(view)
        view.resize(*size)
        view.show()
        view.start()
        made.append(view)
        qtbot.waitUntil(lambda: view.input_line() is not None, timeout=WAIT)  # at the prompt
        return view

    yield make
    for view in made:
        view.kill()
        view.session.join(10)


def run(qtbot: QtBot, view: TerminalView, line: str) -> CommandRecord:
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    view.session.write(line.encode() + b"\r")
    qtbot.waitUntil(lambda: len(records) > 0, timeout=WAIT)
    view.command_finished.disconnect(records.append)
    return records[0]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_editor_reads_each_commands_text_exit_code_and_output(
    qtbot: QtBot, terminal, shell: str, tmp_path: Path
) -> None:
    view = terminal(shell)
    work = str(tmp_path / "work")
    assert run(qtbot, view, "echo hi") == CommandRecord("echo hi", work, "hi\n", 0)
    assert run(qtbot, view, "false") == CommandRecord("false", work, "", 1)
    failed = run(qtbot, view, "python3 -c '1/0'")
    assert failed.command == "python3 -c '1/0'" and failed.exit_code == 1 and failed.failed
    assert failed.output.startswith("Traceback (most recent call last):\n")
    assert failed.output.endswith("ZeroDivisionError: division by zero\n")
    assert run(qtbot, view, "cd / ; printf 'a;b'") == CommandRecord(
        "cd / ; printf 'a;b'", work, "a;b", 0
    )
    assert run(qtbot, view, "true").cwd == "/"  # the folder the shell reported
    # SIGPIPE is the default again in the shell (Python ignores it, exec would keep that)
    assert run(qtbot, view, "yes | head -n 2") == CommandRecord("yes | head -n 2", "/", "y\ny\n", 0)


@pytest.mark.parametrize("shell", SHELLS)
def test_marks_a_program_prints_are_not_believed(qtbot: QtBot, terminal, shell: str) -> None:
    view = terminal(shell)
    forged = "\\e]133;D;0\\a\\e]133;A\\a\\e]133;B\\a\\e]633;E;rm -rf x\\a\\e]133;C\\a"
    record = run(qtbot, view, f"printf '{forged}'; echo tail; false")
    assert record.command.startswith("printf ") and record.output == "tail\n"
    assert record.exit_code == 1
    # the nonce is the shell's own: not in a child's environment
    assert run(qtbot, view, "env | grep -c FORECODE_NONCE").output == "0\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_the_users_rc_is_still_loaded(qtbot: QtBot, terminal, shell: str) -> None:
    view = terminal(shell)
    assert run(qtbot, view, "echo $FROM_USER_RC").output == "loaded-from-rc\n"
    assert run(qtbot, view, "hello").output == "hello-alias\n"
    if shell == "zsh":
        assert run(qtbot, view, "echo $FROM_USER_ZSHENV").output == "1\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_login_shell_reads_the_login_files(
    qtbot: QtBot, home: Path, tmp_path: Path, shell: str
) -> None:
    (home / ".bash_profile").write_text("export FROM_LOGIN=bash-profile\n")
    (home / ".zprofile").write_text("export FROM_LOGIN=zprofile\n")
    view = TerminalView(
        shell_launch(shell, _env(home), login=True), tmp_path, lambda: theme_named("dark")
    )
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.start()
    try:
        qtbot.waitUntil(lambda: view.input_line() is not None, timeout=WAIT)
        expected = "bash-profile" if shell == "bash" else "zprofile"
        assert run(qtbot, view, "echo $FROM_LOGIN").output == f"{expected}\n"
        assert run(qtbot, view, "false").exit_code == 1  # the marks still come
    finally:
        view.kill()
        view.session.join(10)


def test_a_resize_reaches_the_shell(qtbot: QtBot, terminal) -> None:
    view = terminal("bash", (800, 400))
    rows, columns = view.grid()
    assert run(qtbot, view, "stty size").output == f"{rows} {columns}\n"
    view.resize(500, 250)
    rows2, columns2 = view.grid()
    assert (rows2, columns2) != (rows, columns)
    qtbot.waitUntil(lambda: (view.model.rows, view.model.columns) == (rows2, columns2))
    assert run(qtbot, view, "stty size").output == f"{rows2} {columns2}\n"
    # the program in the foreground is told (SIGWINCH) while it runs
    probe = "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done"
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    view.session.write(f'bash -c "{probe}"\r'.encode())
    qtbot.waitUntil(lambda: "ready" in view.model.text().splitlines()[-1], timeout=WAIT)
    view.resize(700, 300)
    qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
    assert records[0].output == "ready\n{} {}\n".format(*view.grid())


def test_a_flood_never_stops_the_event_loop_and_ctrl_c_reaches_it(qtbot: QtBot, terminal) -> None:
    view = terminal("bash")
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    frames_before = view.frames
    # 1 GB of output: far more than the panel can show while this test runs
    view.session.write(b"yes flood-line | head -c 1000000000\r")
    qtbot.waitUntil(lambda: "flood-line" in view.model.text()[-200:], timeout=WAIT)
    ticks: list[int] = []
    timer_id = view.startTimer(1)
    original = view.timerEvent
    view.timerEvent = lambda event: ticks.append(1)  # type: ignore[method-assign]
    try:
        # the UI thread keeps turning and keeps drawing while the shell floods it
        qtbot.waitUntil(lambda: len(ticks) >= 50 and view.frames >= frames_before + 5, timeout=WAIT)
        assert records == []  # still flooding
    finally:
        view.killTimer(timer_id)
        view.timerEvent = original  # type: ignore[method-assign]
    qtbot.keyClick(view, Qt.Key.Key_C, CTRL)
    qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
    assert records[0].exit_code == 130  # interrupted
    assert "flood-line\nflood-line\n" in records[0].output  # cut anywhere by the ^C


def test_a_big_paste_into_a_program_that_does_not_read_never_blocks_the_window(
    qtbot: QtBot, terminal
) -> None:
    view = terminal("bash")
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    view.session.write(b"sleep 1000\r")
    qtbot.waitUntil(lambda: view.input_line() is None, timeout=WAIT)  # it runs
    QGuiApplication.clipboard().setText("x" * 1_000_000)  # far more than a PTY's input holds
    view.paste()
    ticks: list[int] = []
    timer = QTimer(view)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(1)
    qtbot.waitUntil(lambda: len(ticks) >= 30, timeout=WAIT)  # the event loop turns
    timer.stop()
    assert view.session.unwritten > 0  # while the shell's input is full
    view.kill()
    qtbot.waitUntil(lambda: view.session.exited.is_set() and view.session.unwritten == 0)


def _cursor_row(view: TerminalView) -> int:
    snap = view.model.snapshot()
    assert snap.cursor is not None
    return snap.cursor[0] - snap.first


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_closing_kills_the_shell_and_its_foreground_job(qtbot: QtBot, terminal) -> None:
    view = terminal("bash")
    shell_pid = view.session.pid
    assert shell_pid is not None
    view.session.write(b"sh -c 'echo child=$$; exec sleep 1000'\r")
    qtbot.waitUntil(lambda: re.search(r"child=(\d+)", view.model.text()) is not None, timeout=WAIT)
    found = re.search(r"child=(\d+)", view.model.text())
    assert found is not None
    child = int(found.group(1))
    assert _alive(child)
    exits: list[object] = []
    view.exited.connect(exits.append)
    view.kill()
    qtbot.waitUntil(
        lambda: bool(exits) and not _alive(shell_pid) and not _alive(child), timeout=WAIT
    )
    assert view.session._proc.closed  # the PTY's descriptor closed by the reader, not by GC


def _ink_after_cursor(view: TerminalView) -> int:
    """Pixels unlike the background in the 8 cells after the cursor."""
    snap = view._snapshot
    assert snap.cursor is not None
    line, column = snap.cursor
    cw, ch = view._cell
    image = view.grab().toImage()
    background = view.palette_.background.rgb()
    return sum(
        image.pixel(x, y) != background
        for x in range((column + 1) * cw, (column + 9) * cw)
        for y in range((line - snap.first) * ch, (line - snap.first + 1) * ch)
    )


def test_a_suggestion_is_accepted_into_the_line_and_enter_is_the_users(
    qtbot: QtBot, terminal
) -> None:
    view = terminal("bash")
    lines: list[str] = []
    view.input_line_changed.connect(lines.append)
    view.setFocus()
    qtbot.keyClicks(view, "ech")
    qtbot.waitUntil(lambda: view.input_line() == "ech", timeout=WAIT)
    assert lines[-1] == "ech"
    blank = _ink_after_cursor(view)
    view.set_suggestion("o sugg")
    assert view.suggestion() == "o sugg"
    assert _ink_after_cursor(view) > blank  # drawn as ghost text after the cursor
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: view.input_line() == "echo sugg", timeout=WAIT)
    assert view.suggestion() == ""
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    qtbot.wait(50)
    assert records == []  # accepted into the line, not run
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
    assert records[0] == CommandRecord("echo sugg", records[0].cwd, "sugg\n", 0)


def _top_line(view: TerminalView) -> str:
    return "".join(c.data for c in view._snapshot.rows[0]).rstrip()


def test_a_view_scrolled_up_stays_on_its_lines_while_output_comes(qtbot: QtBot, terminal) -> None:
    view = terminal("bash")
    run(qtbot, view, "seq 1 200")
    qtbot.waitUntil(lambda: view.scrollbar.maximum() > 100, timeout=WAIT)
    view.scrollbar.setValue(view.scrollbar.maximum() - 60)
    top = _top_line(view)
    assert top.isdigit() and int(top) < 200
    run(qtbot, view, "seq 1000 1100")
    qtbot.waitUntil(lambda: view._drawn_version == view.model.version, timeout=WAIT)
    assert _top_line(view) == top
    qtbot.keyClicks(view, "x")  # typing goes back to the live screen
    qtbot.waitUntil(lambda: view.scrollbar.value() == view.scrollbar.maximum(), timeout=WAIT)
    assert view._snapshot.first == view._snapshot.scrolled


def test_copy_and_paste_with_ctrl_shift(qtbot: QtBot, terminal) -> None:
    view = terminal("bash")
    run(qtbot, view, "echo copy-me")
    qtbot.waitUntil(lambda: "copy-me\n" in view.model.text() + "\n", timeout=WAIT)
    snap = view.model.snapshot()
    row = next(
        i for i, r in enumerate(snap.rows) if "".join(c.data for c in r).rstrip() == "copy-me"
    )
    view.select((snap.first + row, 0), (snap.first + row, 7))
    qtbot.keyClick(view, Qt.Key.Key_C, CTRL | SHIFT)
    assert QGuiApplication.clipboard().text() == "copy-me"
    cw, ch = view._cell
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=QPoint(3 * cw + 2, row * ch + 2))
    assert view.selected_text() == "copy-me"  # a double click selects the word
    QGuiApplication.clipboard().setText("echo pasted")
    qtbot.keyClick(view, Qt.Key.Key_V, CTRL | SHIFT)
    qtbot.waitUntil(lambda: view.input_line() == "echo pasted", timeout=WAIT)


@pytest.fixture
def window_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", shutil.which("bash") or "/bin/bash")
    yield home


def test_ctrl_backtick_opens_a_terminal_in_the_workspace_and_commands_reach_the_window(
    qtbot: QtBot, tmp_path: Path, window_home: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    win = folder_window(qtbot, folder)
    owner = win.terminal
    records: list[CommandRecord] = []
    owner.command_finished.connect(records.append)
    (folder / "a.py").write_text("x = 1\n")
    doc = win.open_file(folder / "a.py")
    assert doc is not None
    doc.editor.focus()
    qtbot.waitUntil(doc.editor.hasFocus, timeout=WAIT)
    win.actions_by_id["terminal.toggle"].trigger()
    view = owner.view
    assert view is not None and owner.dock is not None and owner.dock.isVisible()
    dock = owner.dock
    qtbot.waitUntil(lambda: dock.height() >= win.height() // 4, timeout=WAIT)  # not a sliver
    qtbot.waitUntil(lambda: view.input_line() is not None, timeout=WAIT)
    view.setFocus()
    win.activateWindow()
    qtbot.keyClicks(view, "exit 3")  # a window shortcut never takes a key typed here
    qtbot.waitUntil(lambda: view.input_line() == "exit 3", timeout=WAIT)
    qtbot.keyClick(view, Qt.Key.Key_U, CTRL)  # readline's kill-line, not an editor command
    qtbot.waitUntil(lambda: view.input_line() == "", timeout=WAIT)
    view.session.write(b"pwd; false\r")
    qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
    assert records[0] == CommandRecord("pwd; false", str(folder), f"{folder}\n", 1)
    qtbot.waitUntil(lambda: _cursor_row(view) > 0, timeout=WAIT)
    qtbot.keyClick(view, Qt.Key.Key_L, CTRL)  # the chat's key in the editor; here readline's
    qtbot.waitUntil(lambda: _cursor_row(view) == 0, timeout=WAIT)  # clear-screen
    assert not win.chat_panel.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_QuoteLeft, CTRL)  # the toggle stays the window's
    assert not owner.dock.isVisible()
    assert doc.editor.hasFocus()  # back where the user was before the terminal
    win.actions_by_id["terminal.toggle"].trigger()
    assert owner.dock.isVisible() and owner.view is view
    before = view.palette_.background.name()
    win.prefs.toggle_theme()  # the terminal's colours follow the editor's theme
    light = theme_named(win.settings.theme).background
    assert light != before
    qtbot.waitUntil(lambda: view.palette_.background.name() == light, timeout=WAIT)
    second = owner.new_terminal()
    assert owner.view is second and len(owner.views) == 2
    win.actions_by_id["terminal.kill"].trigger()
    assert owner.views == [view]
    qtbot.waitUntil(second.session.exited.is_set, timeout=WAIT)
    win.close()  # the window's close kills the shells
    qtbot.waitUntil(view.session.exited.is_set, timeout=WAIT)


def test_a_shell_that_cannot_start_says_why(qtbot: QtBot, tmp_path: Path) -> None:
    win = folder_window(qtbot, tmp_path)
    owner = win.terminal
    owner._launch = lambda: shell_launch(str(tmp_path / "no-such-shell"))
    messages: list[str] = []
    owner.message.connect(lambda text, _ms: messages.append(text))
    owner.new_terminal()
    qtbot.waitUntil(lambda: bool(messages), timeout=WAIT)
    assert "no-such-shell" in messages[0]
    assert owner.views == []


@pytest.mark.parametrize(
    ("shell", "environ", "argv0", "argv_tail", "integrated"),
    [
        ("/bin/bash", {}, "/bin/bash", ["-i"], True),
        (None, {"SHELL": "/usr/bin/zsh", "HOME": "/h"}, "/usr/bin/zsh", ["-i"], True),
        ("pwsh", {}, "pwsh", [], True),
        ("/usr/bin/fish", {}, "/usr/bin/fish", ["-i"], False),
    ],
)
def test_the_launch_of_each_shell(
    shell: str | None, environ: dict[str, str], argv0: str, argv_tail: list[str], integrated: bool
) -> None:
    launch = shell_launch(shell, environ)
    assert launch.argv[0] == argv0 and launch.integrated is integrated
    if argv_tail:
        assert launch.argv[-len(argv_tail) :] == argv_tail
    assert launch.env["TERM"] == "xterm-256color"
    if argv0.endswith("zsh"):
        assert launch.env["FORECODE_USER_ZDOTDIR"] == "/h"
        assert Path(launch.env["ZDOTDIR"], ".zshrc").is_file()
    if argv0 == "pwsh":
        script = launch.argv[-1].removeprefix(". '").removesuffix("'")
        assert Path(script).is_file() and launch.argv[1:3] == ["-NoLogo", "-NoExit"]


def test_ctrl_c_reaches_a_job_when_the_editor_ignores_sigint(
    qtbot: QtBot, terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor started in the background by a script (``forecode &``) ignores SIGINT, and an
    ignored signal stays ignored across exec: its shells' Ctrl+C did nothing. The shell starts
    with every job-control signal at its default, whatever the editor's own."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        view = terminal("bash")
    finally:
        signal.signal(signal.SIGINT, previous)
    records: list[CommandRecord] = []
    view.command_finished.connect(records.append)
    view.session.write(b"sleep 1000\r")
    qtbot.waitUntil(lambda: "sleep 1000" in view.model.text(), timeout=WAIT)
    qtbot.wait(300)  # the job runs in the foreground now
    qtbot.keyClick(view, Qt.Key.Key_C, CTRL)
    qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
    assert records[0].command == "sleep 1000"
    assert records[0].exit_code == 130  # killed by SIGINT (128 + 2)
