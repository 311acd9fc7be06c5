"""Generate the Python stubs for ``proto/forecode/v1/*.proto`` with grpcio-tools.

``python -m proto.build`` regenerates them when a ``.proto`` file or the generator changed (a
stamp beside the stubs records both) and does nothing otherwise; ``--check`` only reports.
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


def is_current() -> bool:
    return STAMP.exists() and STAMP.read_text().strip() == source_key()


def generate(out_dir: Path = ROOT) -> list[Path]:
    """Run protoc over the .proto files: ``proto/forecode/v1/*_pb2*.py[i]`` under out_dir."""
    from grpc_tools import protoc  # imported here: only the build needs it

    files = [str(p.relative_to(ROOT)) for p in sources()]
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(files)}")
    target = out_dir / PACKAGE.relative_to(ROOT)
    return sorted(p for p in target.iterdir() if p.name.endswith((".py", ".pyi"))
                  and "_pb2" in p.name)


def ensure() -> bool:
    """Regenerate if stale. Returns True when something was written."""
    if is_current():
        return False
    generate()
    STAMP.write_text(source_key() + "\n")
    return True


def main(argv: Sequence[str]) -> int:
    if "--check" in argv:
        if is_current():
            return 0
        print("proto: the generated stubs are missing or stale; run python -m proto.build",
              file=sys.stderr)
        return 1
    if ensure():
        print(f"proto: generated stubs for {', '.join(p.name for p in sources())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
