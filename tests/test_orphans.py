"""An editor that dies while its children load a model leaves nothing behind.

The engine worker and the loopback service load a model for seconds (tens of seconds on a
busy CPU) in a native call nothing interrupts. Both used to notice their parent's death only
after the load, so an editor killed at start left gigabytes of orphans for that long (seen:
nine service/worker pairs at 2-4 GB each on a 23 GB machine). Both now watch their stdin from
before the load: when the editor's end hangs up they leave at once, before answering
anything.

The real model (the service default, the slowest to load) and the real entry points; the
child's stdin is closed right after it starts, as the editor's death would close it.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from local_models.model_store import SERVICE_MODEL, ensure_model
from tests.helpers.cloud import REPO, service_env

TOKEN = "orphan-test-token-0123456789abcdef"


def _started_then_orphaned(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.close()  # the editor is gone
    proc.stdin = None  # (communicate would flush it)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            "the orphan never exited: " + err.decode("utf-8", "replace")[-2000:]
        ) from exc
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def test_the_worker_leaves_before_its_model_loads_when_the_editor_is_gone() -> None:
    model = ensure_model(SERVICE_MODEL)
    code, out, err = _started_then_orphaned(
        [sys.executable, "-m", "local_models.worker", "--model", str(model)], service_env(None)
    )
    assert code == 0, err[-2000:]
    # It never got as far as saying it was ready: the load was abandoned, not waited out.
    assert '"Ready"' not in out and "ready" not in out.lower(), out[:500]


def test_the_service_leaves_before_its_model_loads_when_the_editor_is_gone(tmp_path) -> None:
    model = ensure_model(SERVICE_MODEL)
    code, out, err = _started_then_orphaned(
        [
            sys.executable,
            "-m",
            "cloud_server",
            "--port",
            "0",
            "--exit-on-stdin-eof",
            "--model",
            str(model),
            "--index-dir",
            str(tmp_path / "index"),
        ],
        service_env(TOKEN, FORECODE_DATA_DIR=str(tmp_path / "data")),
    )
    assert code == 0, err[-2000:]
    assert "stdin closed" in err
    assert "listening" not in out, out


def test_sigterm_while_the_service_loads_its_model_ends_it_at_once(tmp_path) -> None:
    """A Python signal handler would wait for the load (one native call) to return; until the
    service serves, SIGTERM keeps its default and ends the process."""
    model = ensure_model(SERVICE_MODEL)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud_server",
            "--port",
            "0",
            "--model",
            str(model),
            "--index-dir",
            str(tmp_path / "index"),
        ],
        cwd=REPO,
        env=service_env(TOKEN, FORECODE_DATA_DIR=str(tmp_path / "data")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:  # the store is open: the model load comes next
            if b"index store:" in raw:
                break
        proc.terminate()
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGTERM  # killed by the signal, not an exit of its own
    assert b"listening" not in out, out
