"""Generate the Python stubs for ``proto/forecode/v1/*.proto`` with grpcio-tools.

``python -m proto.build`` regenerates them when a ``.proto`` file or the generator changed, or
a stub is missing or was edited by hand (a stamp beside the stubs records what they were made
from and a digest of each), and does nothing otherwise; ``--check`` only reports (exit 1 and
the reason when the stubs are stale).
``packaging/bootstrap.py`` runs it on every ``run`` and ``test``; it takes a few milliseconds
when nothing changed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "proto" / "forecode" / "v1"
STAMP = PACKAGE / "_generated.stamp"


def sources() -> list[Path]:
    return sorted(PACKAGE.glob("*.proto"))


def source_key() -> str:
    """What the stubs depend on: every .proto byte and the generator's version."""
    digest = hashlib.sha256()
    digest.update(metadata.version("grpcio-tools").encode())
    for path in sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def expected_stubs() -> list[Path]:
    """The files protoc makes for each .proto: messages, their type stubs, the services."""
    return sorted(
        PACKAGE / f"{p.stem}{suffix}"
        for p in sources()
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp_text() -> str:
    lines = [source_key()] + [f"{_digest(p)}  {p.name}" for p in expected_stubs()]
    return "\n".join(lines) + "\n"


def staleness() -> str | None:
    """Why the stubs are stale (None when they are current)."""
    if not STAMP.exists():
        return "no stubs have been generated"
    lines = STAMP.read_text().split("\n")
    if lines[0].strip() != source_key():
        return "a .proto file or the grpcio-tools version changed since they were generated"
    recorded: dict[str, str] = {}  # stub name -> sha256 when generated
    for line in lines[1:]:
        digest, sep, name = line.partition("  ")
        if sep:
            recorded[name] = digest
    for path in expected_stubs():
        if not path.exists():
            return f"{path.name} is missing"
        if recorded.get(path.name) != _digest(path):
            return f"{path.name} is not what the generator made"
    return None


def is_current() -> bool:
    return staleness() is None


def generate(out_dir: Path = ROOT) -> list[Path]:
    """Run protoc over the .proto files: ``proto/forecode/v1/*_pb2*.py[i]`` under out_dir."""
    from grpc_tools import protoc  # imported here: only the build needs it

    files = [str(p.relative_to(ROOT)) for p in sources()]
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(files)}")
    target = out_dir / PACKAGE.relative_to(ROOT)
    return sorted(
        p for p in target.iterdir() if p.name.endswith((".py", ".pyi")) and "_pb2" in p.name
    )


def ensure() -> bool:
    """Regenerate if stale. Returns True when something was written."""
    if is_current():
        return False
    generate()
    STAMP.write_text(_stamp_text())
    return True


def main(argv: Sequence[str]) -> int:
    if "--check" in argv:
        why = staleness()
        if why is None:
            return 0
        print(
            f"proto: the generated stubs are stale ({why}); run python -m proto.build",
            file=sys.stderr,
        )
        return 1
    if ensure():
        print(f"proto: generated stubs for {', '.join(p.name for p in sources())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
