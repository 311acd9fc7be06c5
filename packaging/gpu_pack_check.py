"""The GPU pack's check on a machine with an NVIDIA GPU (issue 18): build, pack, load, compare.

The GPU pack's loader (``local_models.gpu_pack``) can only really run where there is a GPU and
its driver; this script does, in one command on such a machine, what a user's machine does with
the pack, with the product's own code:

1. builds ggml's CUDA backend module with ``packaging/build.py``'s own CMake line
   (``cuda_cmake_args``: ``GGML_BACKEND_DL``, ``GGML_CUDA_NO_VMM``, ...) for the architectures
   asked (``--arch``; the shipped line is ``build.CUDA_ARCHITECTURES``), timed;
2. assembles the pack's ``gpu/`` folder with ``build.fill_gpu_folder`` (the module and the CUDA
   libraries its ``NEEDED`` entries name) and packs it as ``gpu-pack`` does (gzip level 6);
3. runs ``python -m local_models.ggml_backends`` with the pack in ``<data>/gpu``: the CUDA
   backend must be registered;
4. embeds the same texts with the index's ``Embedder`` (all layers offloaded: llama.cpp's
   default) on the GPU and, in a second process whose driver library is pointed at a missing
   one (``FORECODE_CUDA_DRIVER``), on the CPU: the fallback's message and the two embeddings'
   cosines, timed.

``prepare`` (on the developer's machine, no GPU needed) fills ``.gpu/`` (git-ignored) with what
that machine lacks: the llama.cpp sources the module is built from (``build/llama-src``, the
llama-cpp-python version the app pins; only the parts its CMake configure reads), the portable
``llama_cpp`` package (``build/freeze-venv-portable``: the CPU variants the app ships), the
embedding model and the pure-Python wheels ``llama_cpp`` and ``forecode_core`` import.
``device --out DIR`` runs the steps there and writes ``DIR/gpu-pack-check.json``; ``probe`` is
the embedding process it starts.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CARRY = ROOT / ".gpu"
WORK = Path("/tmp/forecode-gpu-check")
MODEL_NAME = "all-minilm-l6-v2-f16.gguf"
SRC_TAR, LLAMA_TAR, WHEELS = "llama-src.tar.xz", "llama_cpp.tar.xz", "whl"
MISSING_DRIVER = "libcuda-missing-for-the-fallback-check.so.1"
PART_BYTES = 15 * 1024 * 1024  # files brought back from the device: 16 MiB at most each

# What the CUDA build's CMake configure reads of the llama.cpp tree (the top-level project, as
# build.py configures it); the other backends' folders and the big vendored header are left out.
SRC_PARTS = ["CMakeLists.txt", "cmake", "include", "src", "ggml", "vendor", "app", "LICENSE"]
SRC_PARTS += ["licenses", "common/CMakeLists.txt"]
OTHER_BACKENDS = "blas cann et hexagon hip metal musa opencl openvino rpc sycl virtgpu vulkan"
OTHER_BACKENDS += " webgpu zdnn zendnn"


def load_build() -> ModuleType:
    """``packaging/build.py`` by its path (``build`` and ``packaging`` are also PyPI names)."""
    spec = importlib.util.spec_from_file_location("forecode_build", ROOT / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(msg: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- prepare (no GPU) ---


def prepare() -> None:
    build = load_build()
    CARRY.mkdir(exist_ok=True)
    src = build.LLAMA_SRC / f"llama-cpp-python-{build.LLAMA_REQUIREMENT.split('==')[1]}"
    excludes = [f"--exclude=./ggml/src/ggml-{b}" for b in OTHER_BACKENDS.split()]
    excludes.append("--exclude=./vendor/miniaudio/miniaudio.h")
    parts = [f"./{p}" for p in SRC_PARTS]
    _xz_tar(src / "vendor" / "llama.cpp", [*excludes, *parts], CARRY / SRC_TAR)
    site = build.BUILD / "freeze-venv-portable" / "lib" / "python3.11" / "site-packages"
    dist = next(site.glob("llama_cpp_python-*.dist-info")).name
    _xz_tar(site, ["--exclude=__pycache__", "llama_cpp", dist], CARRY / LLAMA_TAR)
    model = next((Path.home() / ".cache" / "forecode" / "models").glob("all-minilm-l6-v2-f16-*"))
    with open(CARRY / f"{MODEL_NAME}.xz", "wb") as out:
        subprocess.run(["xz", "-T0", "-6", "-c", str(model)], stdout=out, check=True)
    wheels = [f"{n}=={_installed_version(n)}" for n in ("diskcache", "platformdirs")]
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, "-d", str(CARRY / WHEELS), *wheels], check=True)
    total = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    log(f"{CARRY}: {total / 2**20:.1f} MiB")


def _xz_tar(folder: Path, args: list[str], out: Path) -> None:
    tar = subprocess.Popen(["tar", "-C", str(folder), "-cf", "-", *args], stdout=subprocess.PIPE)
    with open(out, "wb") as f:
        subprocess.run(["xz", "-T0", "-9", "-c"], stdin=tar.stdout, stdout=f, check=True)
    if tar.wait() != 0:
        raise SystemExit(f"tar of {folder} failed")


def _installed_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# --- pure helpers (table-tested in tests/test_gpu_pack.py) ---


def cosines(a: Any, b: Any) -> dict[str, float]:
    """Row-wise cosine similarity of two ``(n, dim)`` arrays: min and mean; and the largest
    absolute difference."""
    import numpy as np

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return {
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
        "max_abs_diff": float(np.abs(x - y).max()),
    }


def fatbin_estimate(
    module_bytes: int, fatbin_bytes: int, sass_bytes: int, ptx_bytes: int, real_archs: int
) -> int:
    """The module's size with one PTX and ``real_archs`` machine-code images instead of the one
    PTX and one machine-code image measured: the host part unchanged, each added image the size
    of the measured one (as stored in the fat binary: the same compression ratio assumed)."""
    if sass_bytes + ptx_bytes <= 0:
        return module_bytes
    per_byte = fatbin_bytes / (sass_bytes + ptx_bytes)
    shipped = ptx_bytes + real_archs * sass_bytes
    return module_bytes - fatbin_bytes + round(shipped * per_byte)


def section_size(readelf_sections: str, name: str) -> int:
    """A section's size in ``readelf -SW``'s output (0 when absent)."""
    for line in readelf_sections.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == name:
            return int(fields[5], 16)
    return 0


def ninja_progress(log_text: str) -> str:
    """The last ``[done/total]`` of a ninja log ('?' when none)."""
    steps = re.findall(r"^\[(\d+/\d+)\]", log_text, re.M)
    return steps[-1] if steps else "?"


def find_cublas(cuda: Path, paths: list[str]) -> tuple[Path, Path] | None:
    """cuBLAS's headers and libraries: the CUDA toolkit's own, else a ``nvidia-cublas`` wheel's
    (``nvidia/cu13``) on ``paths``."""
    toolkit = [(cuda / "include", cuda / "lib64")]
    toolkit.append(
        (cuda / "targets" / "x86_64-linux" / "include", cuda / "targets" / "x86_64-linux" / "lib")
    )
    for include, lib in toolkit + [
        (Path(p) / "nvidia" / "cu13" / "include", Path(p) / "nvidia" / "cu13" / "lib")
        for p in paths
    ]:
        if (include / "cublas_v2.h").is_file() and (lib / "libcublasLt.so.13").exists():
            return include, lib
    return None


# --- device: the steps ---


class Check:
    """The figures and the log of one ``device`` run (written as JSON at each step)."""

    def __init__(self, out: Path, arch: str, jobs: int, deadline: float) -> None:
        self.out, self.arch, self.jobs, self.deadline = out, arch, jobs, deadline
        self.build = load_build()
        self.result: dict[str, Any] = {"arch": arch, "jobs": jobs, "steps": {}, "commands": []}

    def save(self) -> None:
        (self.out / "gpu-pack-check.json").write_text(json.dumps(self.result, indent=1))

    def sh(self, cmd: list[str], *, log_name: str | None = None, **kw: Any) -> str:
        self.result["commands"].append(" ".join(cmd))
        if log_name is None:
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)
            return str(done.stdout)
        with open(self.out / log_name, "a") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True, **kw)
        return ""

    def step(self, name: str, fn: Any) -> bool:
        t0 = time.monotonic()
        try:
            self.result["steps"][name] = {"ok": True, **(fn() or {})}
        except Exception as exc:
            self.result["steps"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self.result["steps"][name]["seconds"] = round(time.monotonic() - t0, 1)
        log(f"{name}: {json.dumps(self.result['steps'][name])[:1500]}")
        self.save()
        return bool(self.result["steps"][name]["ok"])

    # 0. the machine
    def machine(self) -> dict[str, Any]:
        smi = self.sh(["nvidia-smi"])
        (self.out / "nvidia-smi.txt").write_text(smi)
        query = "name,driver_version,memory.total,compute_cap"
        gpu = self.sh(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"]).strip()
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in self.sh(["lscpu"]).splitlines()
                if ln.startswith("Model name")
            ),
            "?",
        )
        nvcc = self.sh(["nvcc", "--version"]).strip().splitlines()[-1]
        return {
            "gpu": gpu,
            "cpu": cpu,
            "cores": os.cpu_count(),
            "nvcc": nvcc,
            "python": sys.version.split()[0],
        }

    # 1. unpack what was carried
    def unpack(self) -> dict[str, Any]:
        WORK.mkdir(parents=True, exist_ok=True)
        for name, dest in [(SRC_TAR, WORK / "src"), (LLAMA_TAR, WORK / "site")]:
            if not dest.exists():
                dest.mkdir()
                self.sh(["tar", "-C", str(dest), "-xJf", str(CARRY / name)])
        wheels = [str(p) for p in (CARRY / WHEELS).glob("*.whl")]
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        self.sh([*pip, "--no-compile", "--target", str(WORK / "site"), "--upgrade", *wheels])
        model = WORK / MODEL_NAME
        if not model.exists():
            with open(model, "wb") as f:
                subprocess.run(["xz", "-dc", str(CARRY / f"{MODEL_NAME}.xz")], stdout=f, check=True)
        return {"model_mb": round(model.stat().st_size / 1e6, 1)}

    # 2. the CUDA module, built as build.py builds it
    def compile(self) -> dict[str, Any]:
        cuda = self.build._cuda_home()
        found = find_cublas(cuda, sys.path)
        if found is None:
            raise RuntimeError("no cuBLAS headers and libraries (toolkit or nvidia-cublas)")
        cublas = WORK / "cublas"  # build.py's layout: ROOT/include, ROOT/lib
        cublas.mkdir(exist_ok=True)
        for link, target in zip(("include", "lib"), found, strict=True):
            if not (cublas / link).exists():
                (cublas / link).symlink_to(target)
        self.result["cublas"] = [str(p) for p in found]
        bdir = WORK / "cmake-cuda"
        args = self.build.cuda_cmake_args(
            WORK / "src", cuda, cublas, build_dir=bdir, architectures=self.arch
        )
        if not (bdir / "build.ninja").exists():
            self.sh(args, log_name="build.log")
        left = max(30.0, self.deadline - time.monotonic() - 150)  # keep time for the checks
        t0 = time.monotonic()
        ninja = ["ninja", "-C", str(bdir), "-j", str(self.jobs), "ggml-cuda"]
        try:
            self.sh(ninja, log_name="build.log", timeout=left)
        finally:
            text = (self.out / "build.log").read_text(errors="replace")
            self.result["build_progress"] = ninja_progress(text)
            self.result["build_seconds"] = round(time.monotonic() - t0, 1)
        module = bdir / "bin" / "libggml-cuda.so"
        self.result["module"] = str(module)
        return {"module_mb": round(module.stat().st_size / 1e6, 2)}

    def module_figures(self) -> dict[str, Any]:
        module = Path(self.result["module"])
        size = module.stat().st_size
        fatbin = section_size(self.sh(["readelf", "-SW", str(module)]), ".nv_fatbin")
        images = WORK / "images"
        shutil.rmtree(images, ignore_errors=True)
        images.mkdir()
        self.sh(["cuobjdump", "-xelf", "all", "-xptx", "all", str(module)], cwd=images)
        sass = sum(p.stat().st_size for p in images.iterdir() if p.suffix == ".cubin")
        ptx = sum(p.stat().st_size for p in images.iterdir() if p.suffix == ".ptx")
        est = fatbin_estimate(size, fatbin, sass, ptx, real_archs=2)
        return {
            "fatbin_mb": round(fatbin / 1e6, 2),
            "sass_uncompressed_mb": round(sass / 1e6, 2),
            "ptx_uncompressed_mb": round(ptx / 1e6, 2),
            "module_mb_estimate_shipped_archs": round(est / 1e6, 1),
        }

    # 3. the pack's folder and tarball, as gpu-pack makes them
    def pack(self) -> dict[str, Any]:
        module = Path(self.result["module"])
        data = WORK / "data"
        shutil.rmtree(data, ignore_errors=True)
        gpu = data / "gpu"
        cuda = self.build._cuda_home()
        lib = Path(self.result["cublas"][1])
        self.build.fill_gpu_folder(gpu, module, [lib, cuda / "lib64"], [cuda / "EULA.txt"])
        files = {p.name: round(p.stat().st_size / 1e6, 1) for p in gpu.iterdir() if p.is_file()}
        installed = sum(p.stat().st_size for p in gpu.rglob("*") if p.is_file())
        threading.Thread(target=self._tar, args=(data,), daemon=True).start()
        return {"files_mb": files, "installed_mb": round(installed / 1e6, 1)}

    def _tar(self, data: Path) -> None:
        t0 = time.monotonic()
        out = WORK / "pack.tar.gz"
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:  # as build._pack_stage_tar
            tar.add(data / "gpu", arcname="forecode/gpu")
        self.result["pack_tar"] = {
            "gpu_pack_mb": round(out.stat().st_size / 1e6, 1),
            "seconds": round(time.monotonic() - t0, 1),
        }

    # 4. the product's loader: the CUDA backend registered
    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, FORECODE_DATA_DIR=str(WORK / "data"), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(WORK / "site"), str(ROOT)])
        env.update(extra)
        return env

    def backends(self) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "local_models.ggml_backends"]
        self.result["commands"].append(" ".join(cmd))
        out = subprocess.run(
            cmd, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=120, check=False
        )
        report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        report["stderr"] = out.stderr[-2000:]
        if "CUDA" not in report["backends"]:
            raise RuntimeError(f"CUDA not registered: {json.dumps(report)}")
        return {"report": report}

    # 5. embeddings on the GPU and, with no driver, on the CPU
    def probe(self, name: str, threads: int = 1, repeats: int = 3, **extra: str) -> dict[str, Any]:
        cmd = [
            sys.executable,
            str(Path(__file__)),
            "probe",
            "--model",
            str(WORK / MODEL_NAME),
            "--save",
            str(WORK / f"emb-{name}.npy"),
            "--threads",
            str(threads),
            "--repeats",
            str(repeats),
        ]
        self.result["commands"].append(
            " ".join(cmd) + "".join(f" [{k}={v}]" for k, v in extra.items())
        )
        out = subprocess.run(
            cmd,
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=max(20.0, min(240.0, self.deadline - time.monotonic() - 20)),
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"probe rc {out.returncode}: {out.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        report["stderr"] = out.stderr[-1500:]
        return report

    def compare(self) -> dict[str, Any]:
        import numpy as np

        gpu, cpu = np.load(WORK / "emb-gpu.npy"), np.load(WORK / "emb-cpu.npy")
        figures = cosines(gpu, cpu)
        if figures["cosine_min"] < 0.999:
            raise RuntimeError(f"GPU and CPU embeddings differ: {figures}")
        return figures

    def bring_back_module(self) -> dict[str, Any]:
        module = Path(self.result["module"])
        packed = WORK / (module.name + ".xz")
        with open(packed, "wb") as f:
            subprocess.run(["xz", "-T0", "-6", "-c", str(module)], stdout=f, check=True)
        data = packed.read_bytes()
        if len(data) > 3 * PART_BYTES:  # 8 files come back at most: the figures' come first
            return {"xz_mb": round(len(data) / 1e6, 1), "parts": [], "why": "too large"}
        names = []
        for i in range(0, len(data), PART_BYTES):
            name = f"{packed.name}.part{i // PART_BYTES}"
            (self.out / name).write_bytes(data[i : i + PART_BYTES])
            names.append(name)
        return {"xz_mb": round(len(data) / 1e6, 1), "parts": names}


def device(out: Path, arch: str, jobs: int, budget_s: float) -> int:
    out.mkdir(parents=True, exist_ok=True)
    check = Check(out, arch, jobs, time.monotonic() + budget_s)
    check.step("machine", check.machine)
    if not (check.step("unpack", check.unpack) and check.step("compile", check.compile)):
        return 1
    check.step("module_figures", check.module_figures)
    check.step("pack", check.pack)
    check.step("backends", check.backends)
    gpu_ok = check.step("embed_gpu", lambda: check.probe("gpu", repeats=5))
    # a second process: with PTX only for this GPU (the shipped line on an H100), the first
    # one JIT-compiles the kernels it uses and the driver caches them (~/.nv/ComputeCache)
    check.step("embed_gpu_second_process", lambda: check.probe("gpu2", repeats=1))
    cpu_ok = check.step(
        "embed_cpu_fallback",
        lambda: check.probe("cpu", repeats=1, FORECODE_CUDA_DRIVER=MISSING_DRIVER),
    )
    if gpu_ok and cpu_ok:
        check.step("compare", check.compare)
    if check.deadline - time.monotonic() > 60:  # the CPU with every core, for scale
        check.step(
            "embed_cpu_all_cores",
            lambda: check.probe("cpu-all", threads=jobs, FORECODE_CUDA_DRIVER=MISSING_DRIVER),
        )
    check.step("bring_back_module", check.bring_back_module)
    for _ in range(90):  # the tarball, written meanwhile
        if "pack_tar" in check.result:
            break
        time.sleep(1)
    check.save()
    return 0 if all(s["ok"] for s in check.result["steps"].values()) else 1


# --- probe: the embedding process (PYTHONPATH: the carried llama_cpp and the repository) ---


def texts(n: int) -> list[str]:
    """``n`` code chunks of 30 lines from this repository's own Python files (the index's size
    of chunk), the same on every machine that has the same checkout."""
    chunks: list[str] = []
    for path in sorted((ROOT / "local_models").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        chunks += ["\n".join(lines[i : i + 30]) for i in range(0, len(lines), 30)]
        if len(chunks) >= n:
            break
    return chunks[:n]


def probe(model: str, save: str, n_texts: int, repeats: int, threads: int) -> int:
    import llama_cpp.llama_cpp as C
    import numpy as np

    from local_models import llama_runtime

    lines: list[str] = []

    @C.llama_log_callback  # type: ignore[untyped-decorator]
    def keep(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", "replace"))

    llama_runtime._LOG_CALLBACK = keep  # llama.cpp's load log (offloaded layers) for the report
    from local_models.ggml_backends import registered_backends
    from local_models.gpu_pack import load_gpu_pack
    from local_models.index.embedder import Embedder

    t0 = time.perf_counter()
    emb = Embedder(model, n_threads=threads)  # all layers to a registered GPU: the default
    load_s = time.perf_counter() - t0
    corpus = texts(n_texts)
    t0 = time.perf_counter()
    vectors = emb.embed(corpus)
    first_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        again = emb.embed(corpus)
        runs.append(time.perf_counter() - t0)
    np.save(save, vectors)
    tokens = sum(len(emb.tokenize(t)) for t in corpus)
    wanted = ("offload", "CUDA", "cuda", "layers", "device", "Device")
    report = {
        "gpu_pack": load_gpu_pack().to_json(),
        "backends": registered_backends(),
        "devices": _devices(),
        "threads": threads,
        "texts": len(corpus),
        "tokens": tokens,
        "load_s": round(load_s, 3),
        "first_embed_s": round(first_s, 3),
        "embed_s_runs": [round(r, 4) for r in runs],
        "embed_s_median": round(statistics.median(runs), 4),
        "tokens_per_s": round(tokens / statistics.median(runs)),
        "repeat_identical": bool(np.array_equal(vectors, again)),
        "log": [ln.rstrip() for ln in lines if any(w in ln for w in wanted)][:40],
    }
    emb.close()
    print(json.dumps(report))
    return 0


def _devices() -> list[dict[str, Any]]:
    """ggml's devices with their memory (free/total MB)."""
    from local_models.ggml_backends import _libggml

    lib = _libggml()
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for fn in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, fn).restype = ctypes.c_char_p
        getattr(lib, fn).argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p] + [ctypes.POINTER(ctypes.c_size_t)] * 2
    found = []
    for i in range(int(lib.ggml_backend_dev_count())):
        dev = lib.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.append(
            {
                "name": lib.ggml_backend_dev_name(dev).decode(),
                "description": lib.ggml_backend_dev_description(dev).decode(),
                "free_mb": free.value // 2**20,
                "total_mb": total.value // 2**20,
            }
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    dev = sub.add_parser("device")
    dev.add_argument("--out", type=Path, required=True)
    dev.add_argument("--arch", default="90")
    dev.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    dev.add_argument("--budget-s", type=float, default=480)
    pr = sub.add_parser("probe")
    pr.add_argument("--model", required=True)
    pr.add_argument("--save", required=True)
    pr.add_argument("--texts", type=int, default=64)
    pr.add_argument("--repeats", type=int, default=3)
    pr.add_argument("--threads", type=int, default=1)  # the index's default (DEFAULT_THREADS)
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        prepare()
        return 0
    if args.cmd == "device":
        return device(args.out, args.arch, args.jobs, args.budget_s)
    return probe(args.model, args.save, args.texts, args.repeats, args.threads)


if __name__ == "__main__":
    raise SystemExit(main())
