"""The optional GPU pack (issue 18): found beside a frozen app or in ``<data>/gpu``, loaded only
with the NVIDIA driver, else the CPU with one clear message.

The real-process test starts the engine worker (the real default model) with a pack's CUDA
module in its data folder and no NVIDIA driver: it answers a completion on the CPU and says
why the pack was not used. This machine has no driver; on one that has, the driver's library
name is pointed at one that does not exist (``FORECODE_CUDA_DRIVER``), so the test checks the
same fallback everywhere. The module is the real one when ``packaging/build.py gpu-pack`` has
built it, else a file of that name (never opened without a driver: the test checks the worker
did not map it).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from forecode_core.completion.prompt import CompletionInput
from local_models import gpu_pack
from local_models.client import EngineClient


def _build_module() -> Any:
    """``packaging/build.py`` (``packaging`` is also PyPI's package: load it by its path)."""
    spec = importlib.util.spec_from_file_location("forecode_build", REPO / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()
REAL_MODULE = REPO / "build" / "llama-cmake-cuda" / "bin" / "libggml-cuda.so"


def _driver_loads() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, FORECODE_DATA_DIR=str(data), **extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if _driver_loads() and "FORECODE_CUDA_DRIVER" not in extra:
        env["FORECODE_CUDA_DRIVER"] = "libcuda-absent-for-this-test.so.1"
    return env


def _install_module(data: Path) -> Path:
    """A pack's module in ``<data>/gpu``: the real one if built, else a stand-in file."""
    folder = data / "gpu"
    folder.mkdir(parents=True)
    module = folder / gpu_pack.module_name()
    if REAL_MODULE.is_file():
        module.write_bytes(REAL_MODULE.read_bytes())
    else:
        module.write_bytes(b"not a library: the CUDA module's compile has not finished\n")
    return module


# --- where the pack is looked for ---


def test_no_pack_means_no_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECODE_DATA_DIR", str(tmp_path))
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert gpu_pack.pack_folders() == [tmp_path / "gpu"]
    assert gpu_pack.find_pack() is None


def test_a_frozen_apps_own_pack_comes_before_the_data_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, data = tmp_path / "opt" / "forecode", tmp_path / "data"
    monkeypatch.setenv("FORECODE_DATA_DIR", str(data))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "forecode"))
    assert gpu_pack.pack_folders() == [app / "gpu", data / "gpu"]
    _install_module(data)
    assert gpu_pack.find_pack() == data / "gpu" / gpu_pack.module_name()
    (app / "gpu").mkdir(parents=True)
    (app / "gpu" / gpu_pack.module_name()).write_bytes(b"x")
    assert gpu_pack.find_pack() == app / "gpu" / gpu_pack.module_name()


def test_the_driver_library_can_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECODE_CUDA_DRIVER", "libcuda-absent-for-this-test.so.1")
    assert gpu_pack.driver_library() == "libcuda-absent-for-this-test.so.1"
    assert not gpu_pack.driver_present()
    monkeypatch.setenv("FORECODE_CUDA_DRIVER", "libc.so.6")
    assert gpu_pack.driver_present()


# --- what a process reports (``forecode --ggml-backends``'s module, a real process) ---


def _backends_report(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "local_models.ggml_backends"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    report["stderr"] = out.stderr
    return report


def test_the_backends_report_says_a_pack_without_a_driver_is_not_used(tmp_path: Path) -> None:
    module = _install_module(tmp_path)
    report = _backends_report(_env(tmp_path))
    assert report["gpu_pack"] == {
        "pack": str(module),
        "driver": False,
        "backend": None,
        "message": gpu_pack.NO_DRIVER_MESSAGE,
        "devices": None,
    }
    assert report["backends"] == ["CPU"], report
    assert not any("cuda" in name for name in report["loaded"]), report["loaded"]
    assert report["stderr"].count(gpu_pack.NO_DRIVER_MESSAGE) == 1, report["stderr"]


def test_a_module_ggml_refuses_falls_back_to_the_cpu_with_the_reason(tmp_path: Path) -> None:
    """A driver is there (any library stands for it) but the module does not load: ggml's
    ``ggml_backend_load`` really runs on the damaged file and returns nothing."""
    folder = tmp_path / "gpu"
    folder.mkdir()
    (folder / gpu_pack.module_name()).write_bytes(b"damaged pack\n")
    report = _backends_report(_env(tmp_path, FORECODE_CUDA_DRIVER="libc.so.6"))
    gpu = report["gpu_pack"]
    assert gpu["driver"] is True and gpu["backend"] is None, gpu
    assert gpu["message"].startswith("GPU pack installed but its CUDA backend did not load"), gpu
    assert gpu["message"].endswith(": using the CPU"), gpu
    # the dynamic loader's own reason, not only "ggml refused": ggml's log is silenced in a worker
    assert "invalid ELF header" in gpu["message"] or "too short" in gpu["message"], gpu
    assert report["backends"] == ["CPU"], report


def test_a_module_that_needs_a_missing_library_says_which(tmp_path: Path) -> None:
    """A real ELF module whose dependency is absent (as a module built on a newer glibc, or a
    pack missing cuBLAS): the reason names it, and the CPU is used."""
    folder = tmp_path / "gpu"
    folder.mkdir()
    (tmp_path / "absent.c").write_text("int absent(void) { return 1; }\n")
    (tmp_path / "mod.c").write_text("int absent(void);\nint ggml_mod(void) { return absent(); }\n")
    cc = ["cc", "-shared", "-fPIC", "-o"]
    subprocess.run([*cc, str(tmp_path / "libabsent-x.so"), str(tmp_path / "absent.c")], check=True)
    subprocess.run(
        [
            *cc,
            str(folder / gpu_pack.module_name()),
            str(tmp_path / "mod.c"),
            f"-L{tmp_path}",
            "-labsent-x",
        ],
        check=True,
    )
    report = _backends_report(_env(tmp_path, FORECODE_CUDA_DRIVER="libc.so.6"))
    gpu = report["gpu_pack"]
    assert gpu["backend"] is None and gpu["devices"] is None, gpu
    assert "libabsent-x.so" in gpu["message"], gpu
    assert report["backends"] == ["CPU"], report


def test_a_backend_with_no_device_is_reported_as_no_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver library opens but CUDA finds no GPU (a driver older than CUDA 13, no GPU):
    ggml registers a CUDA backend with no device. A seam: no such machine here."""
    module = tmp_path / gpu_pack.module_name()
    module.write_bytes(b"x")
    monkeypatch.setenv("FORECODE_CUDA_DRIVER", "libc.so.6")
    monkeypatch.setattr(gpu_pack, "_preload_runtime", lambda folder: None)
    monkeypatch.setattr(gpu_pack.ctypes, "CDLL", lambda path: None)
    monkeypatch.setattr(gpu_pack, "_ggml_load", lambda path: ("CUDA", 0))
    report = gpu_pack._load(module)
    assert (report.backend, report.devices, report.message) == ("CUDA", 0, gpu_pack.NO_GPU_MESSAGE)
    monkeypatch.setattr(gpu_pack, "_ggml_load", lambda path: ("CUDA", 2))
    report = gpu_pack._load(module)
    assert report.message == "GPU pack loaded: the CUDA backend (2 GPUs)" and report.devices == 2
    monkeypatch.setattr(gpu_pack, "_ggml_load", lambda path: None)
    assert gpu_pack._load(module).message == gpu_pack._not_loaded("ggml refused the module")


def _defining_file(lib: ctypes.CDLL, symbol: str) -> str:
    """The file that defines ``symbol`` as ``lib`` resolves it (``dladdr``)."""

    class DlInfo(ctypes.Structure):
        _fields_ = [
            ("dli_fname", ctypes.c_char_p),
            ("dli_fbase", ctypes.c_void_p),
            ("dli_sname", ctypes.c_char_p),
            ("dli_saddr", ctypes.c_void_p),
        ]

    libc = ctypes.CDLL(None)
    libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    info = DlInfo()
    assert libc.dladdr(ctypes.cast(getattr(lib, symbol), ctypes.c_void_p), ctypes.byref(info))
    return os.fsdecode(info.dli_fname or b"")


def test_backends_are_loaded_into_the_ggml_that_libllama_links() -> None:
    """pip installs libggml.so, .so.0 and .so.0.25.3 as three copies; llama_cpp._ggml opens
    libggml.so while libllama links libggml.so.0: two ggml registries in one process. Seen on the
    H100: a backend loaded through _ggml's copy is never used (a portable build: "no backends
    are loaded"). The loader must use libllama's."""
    import llama_cpp.llama_cpp as C
    from llama_cpp import _ggml

    from local_models import ggml_backends

    needed = build.needed_libraries(
        subprocess.check_output(["readelf", "-d", C._lib._name], text=True)
    )
    linked = next(n for n in needed if n.startswith("libggml.so"))
    ours = _defining_file(ggml_backends._libggml(), "ggml_backend_load")
    assert Path(ours).name == linked, (ours, linked)
    theirs = _defining_file(_ggml.libggml, "ggml_backend_load")
    assert Path(theirs).name != linked, "no second copy here: the test no longer proves anything"


def test_no_pack_reports_nothing(tmp_path: Path) -> None:
    report = _backends_report(_env(tmp_path))
    assert report["gpu_pack"]["pack"] is None and report["gpu_pack"]["message"] is None
    assert "GPU pack" not in report["stderr"]


# --- the engine worker with a pack and no driver: a completion on the CPU, and why ---


def _real_model() -> str:
    """The real small model: a broken engine or a missing model fails the test."""
    from local_models.model_store import ensure_small_model

    return str(ensure_small_model())


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_worker_with_a_pack_and_no_driver_completes_on_the_cpu_and_says_so(
    tmp_path: Path,
) -> None:
    module = _install_module(tmp_path / "data")
    done = threading.Event()
    result: dict[str, Any] = {}

    def on_done(rid: int, d: Any) -> None:
        result["done"] = d
        done.set()

    def on_error(rid: int, message: str) -> None:
        result["error"] = message
        done.set()

    # generous: on a 2-core machine shared with other work a model's load can take minutes
    client = EngineClient(
        _real_model(), env=_env(tmp_path / "data"), start_timeout_s=900, request_timeout_s=900
    )
    try:
        client.start()
        prefix = "import math\n\n\ndef circle_area(radius):\n    return"
        client.complete(
            CompletionInput("src/a.py", "python", prefix, ""),
            on_chunk=lambda rid, text: None,
            on_done=on_done,
            on_error=on_error,
            max_tokens=8,
        )
        assert done.wait(1200), f"no answer; worker log: {client.worker_log()}"
        assert "error" not in result, result
        assert result["done"].stop_reason in ("eos", "stop", "length")
        assert result["done"].text.strip(), result["done"]
        pid = client.pid
        assert pid is not None
        maps = Path(f"/proc/{pid}/maps").read_text(errors="replace")
        assert module.name not in maps, "the CUDA module was loaded without a driver"
        log = client.worker_log()
        assert f"forecode: {gpu_pack.NO_DRIVER_MESSAGE}" in log, log
    finally:
        client.close()


# --- the build's pack: which CUDA libraries go along ---

READELF = """
Dynamic section at offset 0x1 contains 9 entries:
  Tag        Type                         Name/Value
 0x0000000000000001 (NEEDED)             Shared library: [libggml-base.so.0]
 0x0000000000000001 (NEEDED)             Shared library: [libcudart.so.13]
 0x0000000000000001 (NEEDED)             Shared library: [libcublas.so.13]
 0x0000000000000001 (NEEDED)             Shared library: [libstdc++.so.6]
 0x000000000000001d (RUNPATH)            Library runpath: [$ORIGIN]
"""


def test_needed_libraries_reads_readelf() -> None:
    assert build.needed_libraries(READELF) == [
        "libggml-base.so.0",
        "libcudart.so.13",
        "libcublas.so.13",
        "libstdc++.so.6",
    ]
    assert build.needed_libraries("") == []


@pytest.mark.nightly
def test_the_pack_carries_the_cuda_runtime_the_module_needs() -> None:
    """Nightly, with the GPU pack's compile (``python3 packaging/build.py gpu-pack``): it fails,
    never skips, when the module is missing."""
    assert REAL_MODULE.is_file(), f"{REAL_MODULE} is not built: python3 packaging/build.py gpu-pack"
    cublas = REPO / "build" / "cuda-cublas" / "nvidia" / "cu13" / "lib"
    names = [
        p.name
        for p in build.cuda_runtime_libraries(REAL_MODULE, [cublas, Path("/usr/local/cuda/lib64")])
    ]
    assert "libcudart.so.13" in names and "libcublas.so.13" in names, names
    assert "libcublasLt.so.13" in names, names
    assert not any(n.startswith(("libcuda.so", "libggml")) for n in names), names


# --- bench package's figures ---


def test_bench_package_measures_a_gpu_pack_or_says_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import package

    stage = tmp_path / "forecode" / "gpu"
    stage.mkdir(parents=True)
    (stage / gpu_pack.module_name()).write_bytes(os.urandom(300_000))
    pack = tmp_path / "pack.tar.gz"
    with tarfile.open(pack, "w:gz") as tar:
        tar.add(tmp_path / "forecode", arcname="forecode")
    monkeypatch.setenv(package.GPU_PACK_ENV, str(pack))
    figures = package.gpu_pack_figures()
    assert figures["gpu_pack_mb"] == round(pack.stat().st_size / 1e6, 1)
    assert figures["gpu_pack_installed_mb"] == 0.3
    monkeypatch.setenv(package.GPU_PACK_ENV, str(tmp_path / "missing.tar.gz"))
    missing = package.gpu_pack_figures()
    assert missing["gpu_pack_mb"] is None
    assert missing["gpu_pack_mb_why"].startswith("no GPU pack built"), missing
    assert "CUDA" in package.cuda_compile_progress(tmp_path)  # an unconfigured build folder
