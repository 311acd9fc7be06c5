"""LocalService's start limit is a stall limit: a service that keeps logging while it loads (a
slow model load on a busy machine) is waited for; a silent one is stopped with a clear error.

The child here is a small shell script standing in for the interpreter (``python`` is the
seam), so the test needs no model."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cloud_client.local_service import LocalService, LocalServiceError


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_load_that_keeps_logging_is_waited_for_past_the_limit(tmp_path: Path) -> None:
    # 1.5 s of loading, a log line every 0.2 s, against a 0.6 s stall limit
    python = _script(
        tmp_path,
        'i=0\nwhile [ $i -lt 8 ]; do echo "loading the model into slot 1 of 1" >&2;'
        " sleep 0.2; i=$((i+1)); done\n"
        "echo 'forecode-cloud listening on 127.0.0.1:5999'\nexec cat >/dev/null\n",
    )
    service = LocalService(python=python)
    try:
        target, token = service.start(0.6)
    finally:
        service.stop(1.0)
    assert target == "127.0.0.1:5999"
    assert token


def test_a_silent_service_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    python = _script(tmp_path, "echo 'starting' >&2\nsleep 30\n")
    service = LocalService(python=python)
    with pytest.raises(LocalServiceError, match=r"nothing from it within 0\.6 s") as caught:
        service.start(0.6)
    assert "starting" in str(caught.value)  # its last words quoted
    assert service.returncode is not None  # stopped, not left running
