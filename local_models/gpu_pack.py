"""The optional GPU pack: ggml's CUDA backend, loaded at run time when it can run.

The pack (``packaging/build.py gpu-pack``: ``forecode-gpu-cuda-pack-VERSION-linux-x86_64``)
holds ggml's CUDA backend built as a loadable module (``GGML_BACKEND_DL``: ``libggml-cuda.so``)
and the CUDA runtime libraries it needs (cudart, cuBLAS, cuBLASLt). A user unpacks it where the
app was unpacked (``forecode/gpu/``) or into ``<data>/gpu`` (an install folder they cannot
write). The NVIDIA driver (``libcuda``) is never shipped: it comes with the user's GPU.

``load_gpu_pack()`` runs once per process, after the CPU backends are registered
(``llama_runtime.init_llama``): it finds the pack (beside a frozen app's executable first, then
``<data>/gpu``), and loads the module with ggml's own ``ggml_backend_load`` -- ggml's search
never looks in either folder -- only when the NVIDIA driver library can be opened. Without a
driver it loads nothing and says so on stderr, once ("GPU pack installed but no NVIDIA driver
found: using the CPU"; the worker's stderr is the engine client's log); a module that does not
load (a damaged pack, a module built against a newer glibc) is the same: the CPU is used and
the dynamic loader's reason is said (the module is opened once with ``ctypes`` first, since
ggml's own refusal goes to its log, which ``init_llama`` silences). A module that loads but
finds no GPU (a driver older than the pack's CUDA 13 needs: ``ggml_cuda_init`` fails; or no
GPU) registers a CUDA backend with no device: the CPU is used and ``NO_GPU_MESSAGE`` said.
The module is loaded into the ggml that libllama links (``ggml_backends._libggml``), the one
whose registry llama.cpp reads. Checked on an H100 (``packaging/gpu_pack_check.py``;
bench-results/gpu-pack-2026-12-05.json): CUDA registered, all layers offloaded, embeddings
equal to the CPU's. llama.cpp then offloads a model's layers to every registered GPU by itself
(``n_gpu_layers`` defaults to all). ``forecode --ggml-backends`` reports what happened.

The driver's library name can be changed with ``FORECODE_CUDA_DRIVER`` (tests: a machine with
a driver can still check the fallback).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from forecode_core.store.settings import data_dir

__all__ = [
    "NO_DRIVER_MESSAGE",
    "NO_GPU_MESSAGE",
    "GpuPackReport",
    "driver_library",
    "driver_present",
    "find_pack",
    "load_gpu_pack",
    "module_name",
    "pack_folders",
]

NO_DRIVER_MESSAGE = "GPU pack installed but no NVIDIA driver found: using the CPU"
NO_GPU_MESSAGE = (
    "GPU pack installed but its CUDA backend found no usable NVIDIA GPU (a driver older than"
    " CUDA 13 needs, or no GPU): using the CPU"
)
PACK_FOLDER = "gpu"

# Loaded first, in this order, from the pack's folder (RTLD_GLOBAL): the module then finds
# them by their sonames wherever the pack was unpacked.
_RUNTIME_LIBRARIES = ("libcudart.so.*", "libcublasLt.so.*", "libcublas.so.*")

_lock = threading.Lock()
_report: GpuPackReport | None = None


@dataclass(frozen=True)
class GpuPackReport:
    """What ``load_gpu_pack`` found and did. ``pack``: the module's path (None: no pack);
    ``driver``: whether the NVIDIA driver library opened (None: not looked for, no pack);
    ``backend``: the registered backend's name when the module loaded; ``message``: what the
    user is told (None when there is no pack); ``devices``: the GPUs the backend found (None:
    the module did not load)."""

    pack: str | None
    driver: bool | None
    backend: str | None
    message: str | None
    devices: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "pack": self.pack,
            "driver": self.driver,
            "backend": self.backend,
            "message": self.message,
            "devices": self.devices,
        }


def module_name() -> str:
    """The CUDA backend module's file name on this system."""
    return "ggml-cuda.dll" if sys.platform == "win32" else "libggml-cuda.so"


def driver_library() -> str:
    """The NVIDIA driver's library (``FORECODE_CUDA_DRIVER`` overrides)."""
    given = os.environ.get("FORECODE_CUDA_DRIVER")
    if given:
        return given
    return "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"


def driver_present() -> bool:
    """Whether the NVIDIA driver library opens (it stays loaded: the module needs it next)."""
    try:
        ctypes.CDLL(driver_library())
    except OSError:
        return False
    return True


def pack_folders() -> list[Path]:
    """Where a pack may be, in order: beside a frozen app's executable, then ``<data>/gpu``."""
    folders = []
    if getattr(sys, "frozen", False):
        folders.append(Path(sys.executable).resolve().parent / PACK_FOLDER)
    folders.append(data_dir() / PACK_FOLDER)
    return folders


def find_pack() -> Path | None:
    """The first pack's CUDA module, or None."""
    for folder in pack_folders():
        module = folder / module_name()
        if module.is_file():
            return module
    return None


def _preload_runtime(folder: Path) -> None:
    """Make the pack's CUDA runtime libraries findable by the module: on Linux each one is
    loaded globally first (the module then finds them by their sonames); on Windows the folder
    joins the DLL search path."""
    if sys.platform == "win32":
        os.add_dll_directory(os.fspath(folder))
        return
    for pattern in _RUNTIME_LIBRARIES:
        for lib in sorted(folder.glob(pattern))[:1]:
            ctypes.CDLL(os.fspath(lib), mode=ctypes.RTLD_GLOBAL)


def _ggml_load(module: Path) -> tuple[str, int] | None:
    """``ggml_backend_load(module)`` in the ggml libllama links (``ggml_backends._libggml``:
    not ``llama_cpp._ggml``'s copy, whose registry llama.cpp never reads); the registered
    backend's name and its device count, or None when ggml refused the module."""
    from local_models.ggml_backends import _libggml

    lib = _libggml()
    lib.ggml_backend_load.restype = ctypes.c_void_p
    lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_reg_name.restype = ctypes.c_char_p
    lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
    reg = lib.ggml_backend_load(os.fsencode(module))
    if not reg:
        return None
    name = lib.ggml_backend_reg_name(reg)
    devices = int(lib.ggml_backend_reg_dev_count(reg))
    return (name.decode("utf-8", "replace") if name else "?"), devices


def _load(module: Path) -> GpuPackReport:
    if not driver_present():
        return GpuPackReport(str(module), False, None, NO_DRIVER_MESSAGE)
    try:
        _preload_runtime(module.parent)
        ctypes.CDLL(os.fspath(module))  # the loader's reason, if any (ggml's goes to its log)
        loaded = _ggml_load(module)
    except OSError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return GpuPackReport(str(module), True, None, _not_loaded(reason))
    if loaded is None:
        return GpuPackReport(str(module), True, None, _not_loaded("ggml refused the module"))
    backend, devices = loaded
    if devices == 0:
        return GpuPackReport(str(module), True, backend, NO_GPU_MESSAGE, 0)
    message = f"GPU pack loaded: the {backend} backend ({devices} GPU{'s' * (devices > 1)})"
    return GpuPackReport(str(module), True, backend, message, devices)


def _not_loaded(reason: str) -> str:
    return f"GPU pack installed but its CUDA backend did not load ({reason}): using the CPU"


def load_gpu_pack() -> GpuPackReport:
    """Find and load the GPU pack (once per process; later calls return the first report).
    The message, when there is a pack, goes to stderr once."""
    global _report
    with _lock:
        if _report is None:
            module = find_pack()
            _report = _load(module) if module is not None else GpuPackReport(None, None, None, None)
            if _report.message:
                print(f"forecode: {_report.message}", file=sys.stderr, flush=True)
        return _report
