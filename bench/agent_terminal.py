"""``python -m bench agent_terminal``: the terminal's command boundaries and throughput.

``measure()`` runs a scripted suite of commands through a real bash on a real PTY with
Forecode's shell integration (``app.services.terminal``: the session, the launch and the
marks parser the panel uses, no Qt) and checks each ``CommandRecord`` the stream gives
against what the command is known to print: its text, exit code, output and folder. The
suite mixes successes and failures, multi-line output, output without a final newline,
``cd``, long lines, bytes that are not UTF-8 and control characters, colours and carriage
returns, a ``read`` prompt answered when it shows, subshells and commands typed ahead in one
write. ``command_boundaries``: the fraction recovered exactly (the issue's target: 0.99).

Throughput: ``seq 1 200000`` (1.3 MB) through the PTY into the marks parser alone, and into
the screen model (pyte, as the panel feeds it on the PTY's thread): MB/s and CPU s/MB.
``bench/agent.py`` calls ``measure()``; this module also runs alone.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.services.terminal import PtySession, shell_launch
from app.services.terminal.screen import TerminalScreen
from forecode_core.terminal.marks import ShellStream
from forecode_core.terminal.records import CommandRecord

__all__ = ["DEFAULT_ROUNDS", "Case", "add_arguments", "measure", "run", "suite"]

DEFAULT_ROUNDS = 1
WAIT_S = 30.0


@dataclass(frozen=True)
class Case:
    command: str
    output: str
    exit_code: int = 0
    answer: str = ""  # typed once the output ends with ``prompt`` (a read)
    prompt: str = ""
    cwd: str | None = None  # the folder it must be recorded in (None: not checked)
    batch: int = 0  # cases with the same non-zero batch are written in one go


def suite(home: Path) -> list[Case]:
    cases: list[Case] = []
    for i in range(12):
        cases.append(Case(f"echo hello {i}", f"hello {i}\n"))
    for code in (0, 1, 2, 3, 7, 42, 100, 126, 127, 255):
        cases.append(Case(f"(exit {code})", "", code))
    cases += [
        Case("true", ""),
        Case("false", "", 1),
        Case("sh -c 'exit 3'", "", 3),
        Case("echo err >&2", "err\n"),
        Case("echo out; echo err >&2; exit_status=5; (exit $exit_status)", "out\nerr\n", 5),
        Case("python3 -c 'import sys; sys.exit(9)'", "", 9),
        Case("python3 -c '1/0' 2>/dev/null", "", 1),
        Case("printf 'a\\nb\\nc\\n'", "a\nb\nc\n"),
        Case("seq 1 50", "".join(f"{i}\n" for i in range(1, 51))),
        Case("seq 1 3000", "".join(f"{i}\n" for i in range(1, 3001))),
        Case("for i in 1 2 3; do echo line $i; done", "line 1\nline 2\nline 3\n"),
        Case("printf abc", "abc"),
        Case("printf 'x\\ny'", "x\ny"),
        Case("printf ''", ""),
        Case("printf 'ends with spaces  '", "ends with spaces  "),
        Case("echo", "\n"),
        Case("printf '\\n\\n\\n'", "\n\n\n"),
        Case(f"cd {home}/a", "", cwd=str(home)),
        Case("pwd", f"{home}/a\n", cwd=f"{home}/a"),
        Case("cd ../b && pwd", f"{home}/b\n", cwd=f"{home}/a"),
        Case("cd -", f"{home}/a\n", cwd=f"{home}/b"),
        Case("cd 'with;semi'", "", cwd=f"{home}/a"),
        Case("pwd", f"{home}/a/with;semi\n", cwd=f"{home}/a/with;semi"),
        Case(f"cd {home}", "", cwd=f"{home}/a/with;semi"),
        Case("cd /nonexistent-dir", "bash: cd: /nonexistent-dir: No such file or directory\n", 1),
        Case("printf '%0300d\\n' 0", "0" * 300 + "\n"),
        Case("python3 -c \"print('x' * 5000)\"", "x" * 5000 + "\n"),
        Case("python3 -c \"print('ab ' * 1000, end='')\"", "ab " * 1000),
        Case("printf 'caf\\xc3\\xa9 \\xff\\xfe end\\n'", "café \ufffd\ufffd end\n"),
        Case("printf 'a\\tb\\x07c\\x01d\\n'", "a\tbcd\n"),
        Case("printf '\\e[31mred\\e[0m \\e[1;32mgreen\\e[0m\\n'", "red green\n"),
        Case("printf '\\e]0;a title\\a titled\\n'", " titled\n"),
        Case("printf '10%%\\r50%%\\r100%%\\n'", "100%\n"),
        Case("printf 'abcdef\\rXY\\n'", "XYcdef\n"),
        Case("echo 'héllo wörld 😀 中文'", "héllo wörld 😀 中文\n"),
        Case("echo 'a;b' ; echo \"c\\\\d\"", "a;b\nc\\d\n"),
        Case("echo '$HOME is not expanded'", "$HOME is not expanded\n"),
        Case("echo abc | tr a-z A-Z", "ABC\n"),
        Case("seq 1 5 | paste -sd+ | bc 2>/dev/null || echo 15", "15\n"),
        Case("(cd /; pwd)", "/\n"),
        Case("( echo sub; exit 4 )", "sub\n", 4),
        Case("bash -c 'echo inner; exit 6'", "inner\n", 6),
        Case("$(echo echo) substituted", "substituted\n"),
        Case("{ echo group; false; }", "group\n", 1),
        Case("sleep 0.2; echo slept", "slept\n"),
        Case("x=5; echo $((x * 2))", "10\n"),
        Case(
            "read -p 'name? ' n; echo \"hi $n\"",
            "name? bob\nhi bob\n",
            answer="bob",
            prompt="name? ",
        ),
        Case('read -r line; echo "[$line]"', "a b\n[a b]\n", answer="a b", prompt=""),
        Case(
            "read -s -p 'secret: ' s; echo; echo ${#s}",
            "secret: \n6\n",
            answer="hunter",
            prompt="secret: ",
        ),
    ]
    cases += [
        Case("printf 'colour at the end \\e[0m'", "colour at the end "),
        Case("yes | head -n 3", "y\ny\ny\n"),
        Case("python3 -c \"import sys; sys.stdout.write('partial')\"", "partial"),
        Case(
            "python3 -c \"import sys; print('to err', file=sys.stderr); sys.exit(2)\"",
            "to err\n",
            2,
        ),
        Case("true && echo and", "and\n"),
        Case("false || echo or", "or\n"),
        Case("echo {1..5}", "1 2 3 4 5\n"),
        Case("printf '%s\\n' \"$TERM\"", "xterm-256color\n"),
        Case("echo $TERM_PROGRAM", "forecode\n"),
        Case("cat /dev/null", ""),
        Case("head -c 20 /dev/zero | tr '\\0' z; echo", "z" * 20 + "\n"),
        Case("echo 'ends in a backslash \\'", "ends in a backslash \\\n"),
        # marks printed by a program (a file cat'ed, test output) lack the session's nonce:
        # dropped, neither shown nor believed
        Case("printf '\\e]133;D;7\\a\\e]633;E;rm -rf x\\a'; echo after", "after\n"),
        Case("printf 'x\\e]133;A;0123\\e\\\\y\\n'", "xy\n"),
    ]
    for i in range(10):
        cases.append(Case(f"echo quick {i}", f"quick {i}\n", batch=1))
    for i in range(8):
        cases.append(Case(f"(exit {i % 3}); echo fast{i}", f"fast{i}\n", 0, batch=2))
    for i in range(6):
        cases.append(Case(f"test {i} -gt 2", "", 0 if i > 2 else 1, batch=3))
    return cases


class _Shell:
    """bash on a PTY; records arrive on a queue."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        launch = shell_launch("bash", env)
        self.stream = ShellStream(str(cwd), launch.nonce)
        self.records: queue.Queue[CommandRecord] = queue.Queue()
        self.raw: list[str] = []
        self.session = PtySession(launch, cwd, self._data, lambda _s: None)
        self.session.resize(40, 120)
        self.session.start()

    def _data(self, data: bytes) -> None:
        fed = self.stream.feed(data)
        self.raw.extend(p for p in fed.pieces if isinstance(p, str))
        for record in fed.records:
            self.records.put(record)

    def ready(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while not self.stream.tracker.at_prompt:
            if time.monotonic() > deadline:
                raise TimeoutError("bash never showed its prompt")
            time.sleep(0.01)

    def type(self, text: str) -> None:
        self.session.write(text.encode("utf-8"))

    def next_record(self) -> CommandRecord | None:
        try:
            return self.records.get(timeout=WAIT_S)
        except queue.Empty:
            return None

    def wait_prompt_text(self, text: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.stream.tracker.running and "".join(self.raw[-5:]).endswith(text):
                return
            time.sleep(0.01)


def _check(case: Case, record: CommandRecord | None) -> str | None:
    if record is None:
        return "no record"
    if record.command != case.command:
        return f"command {record.command!r}"
    if record.exit_code != case.exit_code:
        return f"exit {record.exit_code}"
    if record.output != case.output:
        return f"output {record.output[:200]!r}"
    if case.cwd is not None and record.cwd != case.cwd:
        return f"cwd {record.cwd!r}"
    return None


def _run_suite(shell: _Shell, cases: list[Case]) -> list[dict[str, Any]]:
    misses: list[dict[str, Any]] = []
    i = 0
    while i < len(cases):
        case = cases[i]
        group = [case]
        if case.batch:
            while i + len(group) < len(cases) and cases[i + len(group)].batch == case.batch:
                group.append(cases[i + len(group)])
            shell.type("".join(c.command + "\r" for c in group))
        else:
            shell.type(case.command + "\r")
            if case.answer:
                shell.wait_prompt_text(case.prompt)
                shell.type(case.answer + "\r")
        for one in group:
            why = _check(one, shell.next_record())
            if why is not None:
                misses.append({"command": one.command, "why": why})
        i += len(group)
    return misses


def _throughput(cwd: Path, env: dict[str, str], screen: bool) -> dict[str, float]:
    launch = shell_launch("bash", env)
    model = TerminalScreen(40, 120, start_cwd=str(cwd), nonce=launch.nonce) if screen else None
    stream = ShellStream(str(cwd), launch.nonce)
    done: queue.Queue[CommandRecord] = queue.Queue()
    size = [0]
    prompt = [False]

    def data(chunk: bytes) -> None:
        size[0] += len(chunk)
        records = model.feed(chunk) if model is not None else stream.feed(chunk).records
        prompt[0] = True
        for record in records:
            done.put(record)

    session = PtySession(launch, cwd, data, lambda _s: None, (40, 120))
    session.start()
    deadline = time.monotonic() + WAIT_S
    while not prompt[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the prompt drawn
    start, cpu, before = time.perf_counter(), time.process_time(), size[0]
    session.write(b"seq 1 200000\r")
    record = done.get(timeout=600)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    session.close()
    session.exited.wait(WAIT_S)
    megabytes = (size[0] - before) / 1e6
    assert record.output.endswith("199999\n200000\n"), record.output[-40:]
    return {
        "mb": round(megabytes, 3),
        "mb_per_s": round(megabytes / wall, 3),
        "cpu_s_per_mb": round(cpu / megabytes, 3),
    }


def ui_flood(lines: int = 200_000) -> dict[str, Any]:
    """The real panel (``TerminalView``, offscreen) while bash prints ``seq 1 LINES``: the UI
    thread's gaps between 2 ms probe ticks (its longest stall), the frames drawn, the wall
    time to the command's end. Run in a fresh interpreter by ``measure``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.terminal.view import TerminalView
    from app.ui.theme import theme_named

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PROMPT_COMMAND"}
        env["HOME"] = tmp
        view = TerminalView(shell_launch("bash", env), Path(tmp), lambda: theme_named("dark"))
        view.resize(1000, 600)
        view.show()
        view.start()
        records: list[CommandRecord] = []
        view.command_finished.connect(records.append)
        deadline = time.monotonic() + WAIT_S
        while view.input_line() is None and time.monotonic() < deadline:
            app.processEvents()
        gaps: list[float] = []
        clock = QElapsedTimer()
        probe = QTimer()
        probe.setInterval(2)

        def tick() -> None:
            gaps.append(clock.nsecsElapsed() / 1e6)
            clock.restart()

        probe.timeout.connect(tick)
        frames = view.frames
        clock.start()
        probe.start()
        start = time.perf_counter()
        view.session.write(f"seq 1 {lines}\r".encode())
        deadline = time.monotonic() + 600
        while not records and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        wall = time.perf_counter() - start
        probe.stop()
        view.kill()
        view.session.exited.wait(WAIT_S)
    gaps.sort()
    return {
        "lines": lines,
        "ok": bool(records) and records[0].output.endswith(f"{lines}\n"),
        "wall_s": round(wall, 2),
        "max_ui_stall_ms": round(gaps[-1], 1) if gaps else None,
        "ui_stall_p99_ms": round(gaps[int(len(gaps) * 0.99)], 1) if gaps else None,
        "ui_stalls_over_16ms": sum(g > 16 for g in gaps),
        "probe_ticks": len(gaps),
        "frames": view.frames - frames,
    }


def _ui_flood_fresh() -> dict[str, Any]:
    code = "import json, bench.agent_terminal as b; print(json.dumps(b.ui_flood()))"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(ui: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(
        prefix="forecode-bench-terminal-", ignore_cleanup_errors=True
    ) as tmp:
        home = Path(tmp)
        for name in ("a", "b", "a/with;semi"):
            (home / name).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PROMPT_COMMAND", "ZDOTDIR")}
        env["HOME"] = str(home)
        cases = suite(home)
        shell = _Shell(home, env)
        try:
            shell.ready()
            start = time.perf_counter()
            misses = _run_suite(shell, cases)
            suite_s = time.perf_counter() - start
        finally:
            shell.session.close()
            shell.session.exited.wait(WAIT_S)  # bash writes its history as it exits
        return {
            "command_boundaries": round(1 - len(misses) / len(cases), 4),
            "commands": len(cases),
            "misses": misses,
            "suite_s": round(suite_s, 2),
            "throughput_marks_only": _throughput(home, env, screen=False),
            "throughput_screen": _throughput(home, env, screen=True),
            "ui_flood": _ui_flood_fresh() if ui else None,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-ui", action="store_true", help="skip the panel's flood (no Qt window)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    return measure(ui=not args.no_ui)
