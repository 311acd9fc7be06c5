"""The gRPC stubs are generated, never committed, and never stale.

``python -m proto.build --check`` passes on this checkout (the install generated the stubs);
on a copy of ``proto/`` it fails once a ``.proto`` byte changes, a stub is edited by hand or a
stub is missing, and passes again after ``python -m proto.build`` regenerates them.
The real ``proto/`` is never modified here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO = REPO / "proto" / "forecode" / "v1" / "forecode.proto"


def build(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m proto.build ARGS`` run from ``cwd`` (so it builds the ``proto`` found there)."""
    return subprocess.run(
        [sys.executable, "-m", "proto.build", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_stubs_are_current() -> None:
    proc = build(REPO, "--check")
    assert proc.returncode == 0, proc.stderr


def test_no_generated_stub_is_committed() -> None:
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/proto/forecode/v1/*_pb2*.py*" in ignored
    assert "/proto/forecode/v1/_generated.stamp" in ignored
    if (REPO / ".git").exists():
        tracked = subprocess.run(
            ["git", "ls-files", "proto"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        assert "proto/forecode/v1/forecode.proto" in tracked
        assert not [p for p in tracked if "_pb2" in p or p.endswith(".stamp")], tracked


def _copy(tmp_path: Path) -> Path:
    """proto/ (sources, build script, stubs and stamp as installed) under tmp_path."""
    shutil.copytree(
        REPO / "proto", tmp_path / "proto", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path / "proto" / "forecode" / "v1"


def test_a_changed_proto_byte_makes_the_check_fail_until_rebuilt(tmp_path: Path) -> None:
    package = _copy(tmp_path)
    assert build(tmp_path, "--check").returncode == 0  # the copy starts current
    source = package / "forecode.proto"
    text = source.read_bytes()
    changed = text.replace(b"string server_version = 1;", b"string server_versioN = 1;")
    assert len(changed) == len(text) and changed != text  # one byte
    source.write_bytes(changed)

    proc = build(tmp_path, "--check")
    assert proc.returncode == 1
    assert "stale (a .proto file or the grpcio-tools version changed" in proc.stderr
    assert "run python -m proto.build" in proc.stderr

    proc = build(tmp_path)
    assert proc.returncode == 0 and "generated stubs for forecode.proto" in proc.stdout
    assert build(tmp_path, "--check").returncode == 0
    assert "server_versioN" in (package / "forecode_pb2.pyi").read_text(encoding="utf-8")
    assert "server_versioN" not in (
        REPO / "proto" / "forecode" / "v1" / "forecode_pb2.pyi"
    ).read_text(encoding="utf-8")
    assert build(tmp_path).stdout == ""  # current: nothing to do


def test_a_hand_edited_or_missing_stub_is_stale(tmp_path: Path) -> None:
    package = _copy(tmp_path)
    stub = package / "forecode_pb2_grpc.py"
    stub.write_text(stub.read_text(encoding="utf-8") + "\n# edited by hand\n", encoding="utf-8")
    proc = build(tmp_path, "--check")
    assert proc.returncode == 1
    assert "forecode_pb2_grpc.py is not what the generator made" in proc.stderr
    assert build(tmp_path).returncode == 0
    assert "edited by hand" not in stub.read_text(encoding="utf-8")
    assert build(tmp_path, "--check").returncode == 0

    (package / "forecode_pb2.py").unlink()
    proc = build(tmp_path, "--check")
    assert proc.returncode == 1 and "forecode_pb2.py is missing" in proc.stderr
    assert build(tmp_path).returncode == 0
    assert build(tmp_path, "--check").returncode == 0


def test_without_any_stubs_the_check_says_so(tmp_path: Path) -> None:
    package = _copy(tmp_path)
    for path in package.iterdir():
        if "_pb2" in path.name or path.name.endswith(".stamp"):
            path.unlink()
    proc = build(tmp_path, "--check")
    assert proc.returncode == 1 and "no stubs have been generated" in proc.stderr
    assert build(tmp_path).returncode == 0
    assert build(tmp_path, "--check").returncode == 0
    assert (package / "forecode_pb2.py").exists()
