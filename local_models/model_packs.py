"""Model packs: a model the main package leaves out, shipped as a second offline file.

The quality pack (``packaging/build.py quality-pack``) is a tar whose members are
``forecode/models/<file>.gguf`` (today Qwen2.5-Coder-1.5B-Instruct, the service's default and
the best completion tier). A user installs it one of three ways, none of which downloads:

* unpacks it where the app's tarball was unpacked (the model lands in ``forecode/models``, next
  to the executable), or installs the pack's ``.deb`` (``/opt/forecode/models``);
* ``forecode --install-pack FILE`` (from a checkout: ``python -m local_models.model_packs
  FILE``), which copies each model into ``<data>/models`` -- for an install folder the user
  cannot write (the ``.deb``'s ``/opt``).

``model_store.bundled_model`` looks in both places. ``install_pack`` takes only files named in
``forecode_core.models.MODELS`` and checks each one's size and sha256 against the pinned table
while it copies; a mismatch is refused with the file's name and nothing is left behind (the
copy is written beside the target and renamed only when it checks).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from forecode_core.models import MODELS, ModelSpec
from local_models.model_store import ModelIntegrityError

__all__ = ["PackError", "install_pack", "main", "pack_models"]

_CHUNK = 1 << 20


class PackError(RuntimeError):
    """The file is not a model pack (unreadable, or no known model in it)."""


def _spec_for(member: tarfile.TarInfo) -> ModelSpec | None:
    parts = PurePosixPath(member.name).parts
    if not member.isfile() or len(parts) != 3 or parts[:2] != ("forecode", "models"):
        return None
    return next((m for m in MODELS.values() if m.file_name == parts[2]), None)


def pack_models(archive: Path) -> list[ModelSpec]:
    """The known models an archive holds (by name only; ``install_pack`` checks them)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            return [s for s in (_spec_for(m) for m in tar.getmembers()) if s is not None]
    except (OSError, tarfile.TarError) as exc:
        raise PackError(f"{archive} is not a Forecode model pack: {exc}") from exc


def _copy_checked(source: IO[bytes], spec: ModelSpec, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(partial, "wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelIntegrityError(
                f"{spec.file_name} in the pack does not match its pinned size and sha256 "
                f"({size} bytes, sha256 {digest.hexdigest()[:16]}...); not installed"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def install_pack(archive: Path, models: Path | None = None) -> list[Path]:
    """Copy the pack's models into ``models`` (default ``<data>/models``), each checked
    against its pinned size and sha256; returns the installed files. A model already there
    with its pinned size is kept."""
    if models is None:
        from forecode_core.store.settings import data_dir

        models = data_dir() / "models"
    installed: list[Path] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                spec = _spec_for(member)
                if spec is None:
                    continue
                target = models / spec.file_name
                if not (target.is_file() and target.stat().st_size == spec.size):
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    models.mkdir(parents=True, exist_ok=True)
                    with source:
                        _copy_checked(source, spec, target)
                installed.append(target)
    except (OSError, tarfile.TarError) as exc:
        raise PackError(f"{archive} is not a Forecode model pack: {exc}") from exc
    if not installed:
        raise PackError(f"{archive} holds no model Forecode knows (forecode/models/*.gguf)")
    return installed


def main(argv: list[str] | None = None) -> int:
    """``forecode --install-pack FILE``: install a model pack into the data folder."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: forecode --install-pack FORECODE-QUALITY-PACK.tar", file=sys.stderr)
        return 2
    try:
        for path in install_pack(Path(args[0])):
            print(f"forecode: installed {path}")
    except (PackError, ModelIntegrityError) as exc:
        print(f"forecode: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
