"""SIGKILL a process in the middle of saving, again and again: the file on disk must always be
exactly the old content or exactly the new one, with its mode bits kept.

The child (tests/helpers/save_loop.py) saves contents A and B alternately with ``atomic_write``
until killed; the parent kills it after a random delay and inspects the file.
"""

from __future__ import annotations

import fnmatch
import os
import random
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and mode bits are POSIX")

REPO_ROOT = Path(__file__).resolve().parent.parent
SAVE_LOOP = Path(__file__).resolve().parent / "helpers" / "save_loop.py"

CONTENT_A = b"a-line\n" * 37_450  # 262,150 bytes
CONTENT_B = b"bb-line\r\n" * 29_127  # 262,143 bytes: a different length from A
MODE = 0o640
KILLS = 200
READY_TIMEOUT = 10.0


def _wait_for_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(READY_TIMEOUT):
            proc.kill()
            proc.wait()
            pytest.fail(f"save loop did not report ready within {READY_TIMEOUT} s")
    line = proc.stdout.readline()
    if line != b"ready\n":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"save loop said {line!r} instead of ready; stderr:\n{err.decode()}")


def test_sigkill_during_saves_never_leaves_a_partial_file(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    a_file, b_file = sources / "a", sources / "b"
    a_file.write_bytes(CONTENT_A)
    b_file.write_bytes(CONTENT_B)
    assert len(CONTENT_A) != len(CONTENT_B)

    work = tmp_path / "work"
    work.mkdir()
    target = work / "doc.txt"
    target.write_bytes(b"initial content")
    os.chmod(target, MODE)
    temp_pattern = f".{target.name}.*.forecode-tmp"

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    command = [sys.executable, str(SAVE_LOOP), str(target), str(a_file), str(b_file)]

    rng = random.Random(20240611)
    seen = {"A": 0, "B": 0}
    stray_temps = 0
    started = time.monotonic()
    for i in range(KILLS):
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env
        )
        try:
            _wait_for_ready(proc)
            time.sleep(rng.uniform(0.0, 0.050))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL, "save loop exited on its own"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            proc.stderr.close()

        data = target.read_bytes()  # FileNotFoundError here would mean the file went missing
        if data == CONTENT_A:
            seen["A"] += 1
        elif data == CONTENT_B:
            seen["B"] += 1
        else:
            pytest.fail(
                f"kill {i}: file is neither A nor B ({len(data)} bytes, starts {data[:20]!r})"
            )
        mode = stat.S_IMODE(os.stat(target).st_mode)
        assert mode == MODE, f"kill {i}: mode {mode:o}, expected {MODE:o}"

        for name in os.listdir(work):
            if name == target.name:
                continue
            assert fnmatch.fnmatch(name, temp_pattern), f"kill {i}: unexpected file {name!r}"
            stray_temps += 1
            os.unlink(work / name)

    elapsed = time.monotonic() - started
    summary = f"seen {seen}, stray temp files {stray_temps}, {elapsed:.1f} s"
    print(summary)
    # Both contents seen proves the kills landed at different points of the loop.
    assert seen["A"] >= 1, summary
    assert seen["B"] >= 1, summary
    assert seen["A"] + seen["B"] == KILLS
