"""Issue 18's Linux package, end to end (nightly: the build takes many minutes).

Builds the tarball from a clean export of HEAD (``packaging/build.py tarball`` in
``build/clean-src``; or takes ``FORECODE_PACKAGE_TARBALL``, a tarball already built from it),
unpacks it into a fresh prefix,
and starts it under Xvfb in a network namespace with no network (``unshare -n``), with its home,
data and temp folders in the test's folder. It checks: the window shows (a screenshot with
more than one colour), at least one ggml backend is registered (``forecode --ggml-backends``),
and no file was written outside the install folder and Forecode's data folders (every
write-like system call of the app and its children, from strace). Shares its helpers with
``python -m bench package`` (bench/package.py). A second test adds the quality pack and the
Python tools pack (``FORECODE_QUALITY_PACK`` / ``FORECODE_TOOLS_PACK``, else built) to the
install folder and checks the app finds the 1.5B there and its language servers squiggle.
Two more, with no network: typing in a file of the installed app shows a ghost text (a local
completion; ``first_completion``), and the installed app's loopback service (``forecode
--service``, the quality pack's 1.5B) answers a chat sent over gRPC with its token
(``chat_check``). The tarball is built once per session for all of them. One more: the GPU
pack unpacked into the installed app on a machine with no NVIDIA driver: the app keeps the CPU
and says why (``FORECODE_GPU_PACK``, else ``dist/``'s, else the module's name alone).

The ``.deb`` (issue 18's install test): ``FORECODE_PACKAGE_DEB``, else built portable from a
clean export of HEAD, unpacked with ``dpkg-deb -x`` into a throwaway root (no change to this
machine's /opt, /usr or dpkg database) with the quality pack's ``.deb`` beside it; with no
network: the window (a screenshot), a registered ggml backend, the bundled model loading, no
write outside the install and data folders, a ghost text in a file, and the loopback service's
chat.

Run it: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -m nightly
tests/test_package_linux.py``.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.package import (
    GPU_PACK_ENV,
    backends_report,
    build_tarball,
    build_target,
    chat_check,
    clean_checkout,
    data_env,
    deb_depends,
    first_completion,
    install_deb,
    pack_checks,
    pack_file,
    smoke,
    unpack,
    unpack_pack,
    virtual_display,
    written_outside,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux package")


def _tools_missing() -> list[str]:
    return [t for t in ("Xvfb", "xdotool", "strace", "unshare") if shutil.which(t) is None]


@functools.cache
def _tarball() -> Path:
    """``FORECODE_PACKAGE_TARBALL``, else the tarball built from a clean export of HEAD (once
    for the session's tests)."""
    given = os.environ.get("FORECODE_PACKAGE_TARBALL")
    return Path(given) if given else build_tarball()


def test_the_write_trace_flags_only_paths_outside(tmp_path: Path) -> None:
    install, data = tmp_path / "opt", tmp_path / "home/.config/forecode"
    trace = tmp_path / "trace.log"
    trace.write_text(
        f'1 openat(AT_FDCWD, "{install}/x", O_RDONLY|O_CLOEXEC) = 3\n'
        f'1 openat(AT_FDCWD, "{data}/settings.json.tmp", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4\n'
        f'2 openat(AT_FDCWD, "{tmp_path}/elsewhere.txt", O_RDWR|O_CREAT, 0644) = 5\n'
        f'2 mkdir("{tmp_path}/home/.cache/fontconfig", 0777) = 0\n'
        f'2 mkdir("{tmp_path}/failed", 0777) = -1 EEXIST (File exists)\n'
        f'2 mkdir("{tmp_path}/home/.config", 0777) = 0\n'
        f'3 renameat2(AT_FDCWD, "{data}/a", AT_FDCWD, "{data}/b", RENAME_NOREPLACE) = 0\n'
        '3 openat(AT_FDCWD, "/dev/null", O_WRONLY) = 6\n'
        '3 openat(AT_FDCWD, "rel.txt", O_WRONLY|O_CREAT, 0644) = 7\n'
    )
    # the data folder's parents may be created (home/.config here), nothing else
    assert written_outside(trace, [install, data], tmp_path / "cwd") == [
        f"{tmp_path}/cwd/rel.txt",
        f"{tmp_path}/elsewhere.txt",
        f"{tmp_path}/home/.cache/fontconfig",
    ]


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_the_linux_package_installs_and_starts_offline(tmp_path: Path) -> None:
    missing = _tools_missing()
    assert not missing, f"the package test needs {missing} on this machine"
    exe = unpack(_tarball(), tmp_path / "prefix")
    with virtual_display() as display:
        result = smoke(exe, tmp_path / "run", display)
    print({k: v for k, v in result.items() if k != "app_stderr_tail"})
    assert result["backends"], result.get("backends_error")
    assert result["model_loads"], result.get("model_error")  # one ggml registry, models load
    build = json.loads((exe.parent / "BUILD.json").read_text(encoding="utf-8"))
    if build["llama_cpp"].startswith("portable"):  # the CPU variants are shipped
        assert result["cpu_variants"], result
    if result["cpu_variants"]:  # a portable build: ggml loaded exactly one, from the bundle
        loaded = [n for n in result["backend_libraries_loaded"] if "ggml-cpu" in n]
        assert len(loaded) == 1 and loaded[0] in result["cpu_variants"], result
    assert result["window_s"] is not None, result["app_stderr_tail"]
    assert result["screen_colours"] > 1, "the screenshot is one colour: nothing was painted"
    assert not result["written_outside"], result["written_outside"]
    assert result["ok"]
    assert (exe.parent / "ruff").is_file(), "ruff is in the main package"


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_the_packs_add_the_quality_model_and_pythons_language_servers(tmp_path: Path) -> None:
    """The quality pack and the Python tools pack unpacked into the installed app's folder:
    with no network the app reads the 1.5B model in place and basedpyright and ruff squiggle
    a file with an error (publishDiagnostics from both)."""
    missing = _tools_missing()
    assert not missing, f"the package test needs {missing} on this machine"
    exe = unpack(_tarball(), tmp_path / "prefix")
    without = pack_checks(exe, tmp_path / "bare", ":0")
    assert "qwen2.5-coder-1.5b-instruct" not in without["models"], without
    assert without["lsp"]["servers"]["basedpyright"] is None, without["lsp"]
    for pack in (
        pack_file("FORECODE_QUALITY_PACK", "quality-pack"),
        pack_file("FORECODE_TOOLS_PACK", "tools-pack"),
    ):
        unpack_pack(pack, tmp_path / "prefix")
    check = pack_checks(exe, tmp_path / "run", ":0")
    print(check)
    quality = Path(check["models"]["qwen2.5-coder-1.5b-instruct"])
    assert quality.is_relative_to(exe.parent), quality
    lsp = check["lsp"]
    assert lsp["servers"]["basedpyright"] == str(exe.parent / "basedpyright-langserver"), lsp
    assert lsp["servers"]["ruff"] == str(exe.parent / "ruff"), lsp
    assert lsp["diagnostics"].get("basedpyright", 0) >= 1, lsp
    assert lsp["diagnostics"].get("ruff", 0) >= 1, lsp
    assert lsp["ok"]


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_the_installed_app_shows_a_completion_in_a_file_offline(tmp_path: Path) -> None:
    """The installed app on a small Python file under the test's Xvfb, with no network and its
    own data folders: typing at the file's end shows a ghost text (the app traces its first
    inline suggestion). No timing is asserted; ``ghost_s`` is printed."""
    missing = _tools_missing()
    assert not missing, f"the package test needs {missing} on this machine"
    exe = unpack(_tarball(), tmp_path / "prefix")
    project = tmp_path / "project"
    project.mkdir()
    with virtual_display() as display:
        result = first_completion(
            [str(exe)], data_env(tmp_path / "home", display), display, project
        )
    print(result)
    assert result.get("window_s") is not None, result
    assert result["ghost_s"] is not None, f"no ghost text was shown: {result}"


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_the_installed_apps_loopback_service_answers_a_chat_offline(tmp_path: Path) -> None:
    """The quality pack unpacked into the installed app; ``forecode --service`` started as the
    editor starts it in a frozen app, in a network namespace with only the loopback; one chat
    sent over gRPC on 127.0.0.1 with the run's token gets a non-empty answer from the 1.5B."""
    missing = _tools_missing()
    assert not missing, f"the package test needs {missing} on this machine"
    exe = unpack(_tarball(), tmp_path / "prefix")
    unpack_pack(pack_file("FORECODE_QUALITY_PACK", "quality-pack"), tmp_path / "prefix")
    result = chat_check(exe, tmp_path / "chat")
    print(result)
    assert result.get("interfaces") == ["lo"], result  # no network but the loopback
    assert result.get("listening"), result.get("service_log_tail", result)
    assert any("1.5B" in m for m in result["info"]["models"]), result["info"]
    assert "error" not in result, result
    assert result["finish_reason"] in ("stop", "length"), result
    assert result["answer"].strip(), result


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_the_installed_app_with_a_gpu_pack_and_no_driver_keeps_the_cpu_and_says_so(
    tmp_path: Path,
) -> None:
    """The CUDA pack in the installed app's ``gpu/`` folder (the real pack when one is built,
    else a file with the module's name: without a driver it is never opened) and no NVIDIA
    driver (``FORECODE_CUDA_DRIVER`` names a missing library on a machine that has one):
    ``forecode --ggml-backends`` registers the CPU and reports the fallback message."""
    from local_models.gpu_pack import NO_DRIVER_MESSAGE, module_name

    exe = unpack(_tarball(), tmp_path / "prefix")
    given = os.environ.get(GPU_PACK_ENV)
    built = sorted(
        (Path(__file__).resolve().parent.parent / "dist").glob(
            "forecode-gpu-cuda-pack-*-linux-x86_64.tar.gz"
        )
    )
    if given or built:
        unpack_pack(Path(given) if given else built[-1], tmp_path / "prefix")
    else:
        (exe.parent / "gpu").mkdir(exist_ok=True)
        (exe.parent / "gpu" / module_name()).write_bytes(b"stand-in: no pack was built\n")
    env = data_env(tmp_path / "home", ":0")
    env["FORECODE_CUDA_DRIVER"] = "libcuda-absent-for-this-test.so.1"
    result = backends_report(exe, env)
    print(result)
    assert "CPU" in result["backends"], result
    gpu = result["gpu_pack"]
    assert gpu["pack"] == str(exe.parent / "gpu" / module_name()), gpu
    assert gpu["driver"] is False and gpu["backend"] is None, gpu
    assert gpu["message"] == NO_DRIVER_MESSAGE, gpu
    assert NO_DRIVER_MESSAGE in result["backends_stderr"], result


def _quality_deb() -> Path:
    """``FORECODE_QUALITY_DEB``, else ``dist/``'s, else built (``build.py quality-deb``)."""
    given = os.environ.get("FORECODE_QUALITY_DEB")
    if given:
        return Path(given)
    built = sorted(
        (Path(__file__).resolve().parent.parent / "dist").glob("forecode-model-qwen1.5b_*.deb")
    )
    return built[-1] if built else build_target("quality-deb")


@pytest.mark.nightly
@pytest.mark.timeout(5400)
def test_the_deb_installs_into_a_fresh_root_and_works_offline(tmp_path: Path) -> None:
    """Issue 18's install test on the ``.deb`` (see the module docstring)."""
    missing = _tools_missing()
    assert not missing, f"the package test needs {missing} on this machine"
    given = os.environ.get("FORECODE_PACKAGE_DEB")
    deb = Path(given) if given else build_target("deb", clean_checkout(), portable=True)
    assert "libxcb-cursor0" in deb_depends(deb) and "libegl1" in deb_depends(deb)
    root = tmp_path / "root"
    exe = install_deb(deb, root)
    subprocess.run(["dpkg-deb", "-x", str(_quality_deb()), str(root)], check=True)
    build = json.loads((exe.parent / "BUILD.json").read_text(encoding="utf-8"))
    with virtual_display() as display:
        result = smoke(exe, tmp_path / "run", display)
        print({k: v for k, v in result.items() if k != "app_stderr_tail"})
        project = tmp_path / "project"
        project.mkdir()
        ghost = first_completion([str(exe)], data_env(tmp_path / "home", display), display, project)
        print(ghost)
    assert result["backends"], result.get("backends_error")
    if build["llama_cpp"].startswith("portable"):
        loaded = [n for n in result["backend_libraries_loaded"] if "ggml-cpu" in n]
        assert len(loaded) == 1 and loaded[0] in result["cpu_variants"], result
    assert result["model_loads"], result.get("model_error")
    assert result["window_s"] is not None, result["app_stderr_tail"]
    assert result["screen_colours"] > 1, "the screenshot is one colour: nothing was painted"
    assert not result["written_outside"], result["written_outside"]
    assert ghost["ghost_s"] is not None, f"no ghost text was shown: {ghost}"
    chat = chat_check(exe, tmp_path / "chat")
    print({k: v for k, v in chat.items() if k != "service_log_tail"})
    assert chat.get("interfaces") == ["lo"], chat
    assert chat.get("listening"), chat.get("service_log_tail", chat)
    assert "error" not in chat and chat["answer"].strip(), chat
