"""What every benchmark shares: the run's metadata, statistics and writing the result JSON.

Benchmarks compare candidates side by side in one run and report ratios: the machines are shared
and noisy, so an absolute time from one run says little on its own. The metadata (commit, dirty
tree, Python, machine, load) says what a result was measured on.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "REPO",
    "git_state",
    "machine_info",
    "median",
    "metadata",
    "percentile",
    "wait_with_events",
    "write_result",
]

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state() -> tuple[str | None, bool]:
    """``(commit, dirty)``: HEAD's hash (None outside a git checkout) and whether the working
    tree differs from it (untracked files count: they can change what runs)."""
    head = _git("rev-parse", "HEAD")
    if head is None:
        return None, False
    status = _git("status", "--porcelain")
    return head.strip(), bool(status and status.strip())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    """The machine a result was measured on, including how busy it was when the run started."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = load_average()
    return {
        "system": platform.system(),
        "release": platform.release(),
        "arch": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count_usable": usable,
        "memory_bytes": _memory_bytes(),
        "load_average": load,
        "hostname": platform.node(),
    }


def metadata(benchmark: str) -> dict[str, Any]:
    """The fields every result JSON starts with."""
    commit, dirty = git_state()
    return {
        "benchmark": benchmark,
        "commit": commit,
        "dirty": dirty,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
    }


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


def percentile(values: Iterable[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100), interpolating linearly between the closest ranks."""
    data: Sequence[float] = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    rank = (len(data) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def write_result(result: dict[str, Any], path: str | os.PathLike[str] | None) -> str:
    """Print the result JSON and, with ``path``, write it there too (creating its folder)."""
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    sys.stdout.flush()
    return text


def wait_with_events(cond: Callable[[], bool], timeout_s: float, poll_ms: int = 10) -> bool:
    """Run the Qt event loop (a UI benchmark's probe keeps ticking, nothing spins) until
    ``cond()`` holds or ``timeout_s`` has passed, checking every ``poll_ms``; ``cond()`` at the
    end. PySide6 is imported here, so the benchmarks without Qt never load it."""
    from PySide6.QtCore import QEventLoop, QTimer

    if cond():
        return True
    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    poll = QTimer()
    poll.setInterval(poll_ms)

    def check() -> None:
        if cond() or time.monotonic() >= deadline:
            loop.quit()

    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    return cond()
