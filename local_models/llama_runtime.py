"""Process-wide llama.cpp set-up shared by every llama.cpp user in a process: the completion
``Engine`` (``local_models.engine``) and the index's ``Embedder``
(``local_models.index.embedder``).

- ``init_llama()``: silence llama.cpp's log (its prints would reach the worker's stderr for
  every load) and run ``llama_backend_init`` once per process; safe from any thread.
- ``cpu_has_amx()``: whether the CPU has AMX tiles. llama.cpp's extra (repacked) weight buffers
  crash on them, so loaders set ``use_extra_bufts = not cpu_has_amx()``.

Imports ``llama_cpp``: like the engine, use it only inside a process that runs a model.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import llama_cpp.llama_cpp as C

__all__ = ["cpu_has_amx", "init_llama"]


@C.llama_log_callback  # type: ignore[untyped-decorator]
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    return None


_LOG_CALLBACK = _quiet_log  # llama.cpp keeps the pointer: keep the object alive
_init_lock = threading.Lock()
_initialised = False


def init_llama() -> None:
    """Quiet llama.cpp's log and initialise its backend (once per process)."""
    global _initialised
    with _init_lock:
        C.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
        if not _initialised:
            from local_models.ggml_backends import load_backends

            load_backends()  # a portable build's backends live where ggml never looks
            from local_models.gpu_pack import load_gpu_pack

            load_gpu_pack()  # the optional CUDA pack, only with a driver (else a message)
            C.llama_backend_init()
            _initialised = True


def cpu_has_amx() -> bool:
    """True on x86 CPUs with AMX tiles (Linux only; elsewhere assume not)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        return False
    return False


def lower_priority(offset: int) -> bool:
    """Lower this process's CPU priority by ``offset`` (POSIX ``nice``; on Windows any offset
    > 0 means the below-normal priority class). Worker processes call it so that the editor's
    UI thread gets a core first when both want one: on a 2-core machine a model decoding on
    two threads otherwise stretches a 6 ms repaint past a frame. Returns whether it changed."""
    if offset <= 0:
        return False
    if hasattr(os, "nice"):
        try:
            os.nice(offset)
        except OSError:
            return False
        return True
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        below_normal = 0x00004000
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        return bool(kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), below_normal))
    return False


def free_llama(batch: object, ctx: object, model: object) -> None:
    """Free what exists of a llama.cpp batch, context and model (in that order: the context
    before the model it was made from). Callers drop their references afterwards."""
    if batch is not None:
        C.llama_batch_free(batch)
    if ctx:
        C.llama_free(ctx)
    if model:
        C.llama_model_free(model)
