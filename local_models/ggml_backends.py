"""ggml's compute backends, loaded from the folder that holds them.

A portable llama.cpp build (``GGML_BACKEND_DL=ON``, ``GGML_CPU_ALL_VARIANTS=ON``,
``GGML_NATIVE=OFF``; see ``packaging/build.py --portable``) links no backend into ggml: each one
(``libggml-cpu-haswell.so``, ``-skylakex``, ..., ``libggml-cuda.so``) is a library that ggml loads
at run time, scoring the CPU variants and keeping the best. ggml searches only
``GGML_BACKEND_DIR``, the executable's folder and the current folder -- never
``llama_cpp/lib`` where llama-cpp-python (and the frozen bundle) keep them -- and the Python
bindings expose no loader. So ``load_backends`` calls ``ggml_backend_load_all_from_path`` on
that folder itself when nothing is registered yet. A build with the backends linked in (the
developer install's) registers them on its own and is left alone.

``python -m local_models.ggml_backends`` (the frozen app: ``forecode --ggml-backends``) prints
the registered backends as JSON, with the CPU variants the folder holds and, on Linux, the
backend libraries this process has mapped (ggml scores the variants and loads only the best
one for this CPU) and what the optional GPU pack did (``local_models.gpu_pack``): the
installers' smoke test reads it.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from pathlib import Path

__all__ = [
    "backend_folder",
    "cpu_variants",
    "load_backends",
    "mapped_backend_libraries",
    "registered_backends",
]

_lock = threading.Lock()
_loaded = False


def _libggml() -> ctypes.CDLL:
    """The ggml that libllama itself links, whose backend registry llama.cpp reads. Not
    ``llama_cpp._ggml.libggml``: pip installs ``libggml.so``, ``.so.0`` and ``.so.0.25.3`` as
    three copies, ``_ggml`` opens ``libggml.so`` while libllama links ``libggml.so.0``, so a
    process holds two ggml registries and a backend loaded through ``_ggml`` is never seen by
    llama.cpp (a portable build: "no backends are loaded"; the GPU pack: never used). A symbol
    looked up in libllama's handle resolves in its own dependencies (POSIX ``dlsym``); Windows
    looks in llama.dll alone, and has one ggml.dll."""
    import llama_cpp.llama_cpp as C
    from llama_cpp import _ggml

    llama = ctypes.CDLL(C._lib._name)  # the same handle: libllama is already loaded
    try:
        llama.ggml_backend_load_all_from_path  # noqa: B018 - does it resolve through libllama?
    except AttributeError:
        lib: ctypes.CDLL = _ggml.libggml
        return lib
    return llama


def backend_folder() -> Path:
    """``GGML_BACKEND_DIR`` if set, else the folder llama-cpp-python loads ggml from."""
    env = os.environ.get("GGML_BACKEND_DIR")
    if env:
        return Path(env)
    from llama_cpp import _ggml

    return Path(_ggml.libggml_base_path)


def registered_backends() -> list[str]:
    """The names of the backends ggml has registered (``CPU``, ``CUDA``, ...)."""
    lib = _libggml()
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_count.argtypes = []
    lib.ggml_backend_reg_get.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_reg_name.restype = ctypes.c_char_p
    lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    names = []
    for i in range(int(lib.ggml_backend_reg_count())):
        name = lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i))
        names.append(name.decode("utf-8", "replace") if name else "?")
    return names


def load_backends() -> list[str]:
    """Load the backends from ``backend_folder()`` when none is registered (once per process);
    returns the registered backends' names."""
    global _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            if not registered_backends():
                lib = _libggml()
                lib.ggml_backend_load_all_from_path.restype = None
                lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
                lib.ggml_backend_load_all_from_path(os.fsencode(backend_folder()))
    return registered_backends()


def cpu_variants(folder: Path | None = None) -> list[str]:
    """The CPU backend's variant libraries in ``folder`` (``libggml-cpu-haswell.so`` ...):
    empty for a build with the CPU backend linked in."""
    folder = backend_folder() if folder is None else folder
    return sorted(p.name for p in folder.glob("*ggml-cpu-*") if not p.name.endswith(".a"))


def mapped_backend_libraries() -> list[str]:
    """The ggml backend libraries this process has loaded (Linux: ``/proc/self/maps``;
    elsewhere empty)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    names = {line.rsplit("/", 1)[-1] for line in maps.splitlines() if "ggml-" in line}
    return sorted(n for n in names if n.startswith(("libggml-", "ggml-")) and "base" not in n)


def main() -> int:
    from local_models.gpu_pack import load_gpu_pack

    load_backends()
    gpu = load_gpu_pack().to_json()  # after the CPU: ggml loads them only while none is
    names = registered_backends()
    report = {
        "backends": names,
        "folder": str(backend_folder()),
        "cpu_variants": cpu_variants(),
        "loaded": mapped_backend_libraries(),
        "gpu_pack": gpu,
    }
    print(json.dumps(report))
    return 0 if names else 1


if __name__ == "__main__":
    raise SystemExit(main())
