"""Issue 18's AppImage ("when the tools are available"): ``packaging/build.py appimage``.

Here: the AppDir (``AppRun`` runs the frozen folder's executable with the user's arguments, the
update channel left out), the refusals before anything is built (no runtime, a file that is not
AppImage's type 2 runtime, no mksquashfs), and the file's layout: the runtime's bytes, then a
SquashFS image of the AppDir that ``unsquashfs`` reads at that offset (made with a stand-in
runtime: AppImage's real one is not in Debian, PyPI nor npm, and this machine reaches nothing
else).

Nightly, with the real runtime (``FORECODE_APPIMAGE_RUNTIME``, as CI downloads it) and the
frozen folder (``build/dist/forecode``, or built): the AppImage of the portable folder starts
under Xvfb with ``APPIMAGE_EXTRACT_AND_RUN=1`` (no FUSE here): window, ggml backends, the
bundled model. Without the runtime it is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.packaging_module import load_packaging

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux package")


build = load_packaging("build.py", "forecode_build_appimage")


def _stand_in_bundle(root: Path) -> Path:
    """A frozen folder's shape whose executable prints its arguments and APPDIR."""
    bundle = root / "forecode"
    (bundle / "_internal").mkdir(parents=True)
    exe = bundle / "forecode"
    exe.write_text('#!/bin/sh\necho "args:$*"\necho "appdir:$APPDIR"\n')
    exe.chmod(0o755)
    (bundle / "_internal" / "libstandin.so").write_bytes(b"\0" * 1000)
    (bundle / "BUILD.json").write_text('{"version": "0.1.0"}')
    (bundle / "update").mkdir()
    (bundle / "update" / "root.json").write_text("{}")
    return bundle


def _stand_in_runtime(path: Path) -> Path:
    """An ELF with AppImage's type 2 mark at offset 8 (where the real runtime has it)."""
    head = bytearray(Path("/bin/true").read_bytes())
    head[8:11] = build.APPIMAGE_MAGIC
    path.write_bytes(bytes(head))
    return path


def test_the_appdir_runs_the_frozen_executable_with_the_users_arguments(tmp_path: Path) -> None:
    bundle = _stand_in_bundle(tmp_path)
    appdir = build.stage_appdir(bundle, tmp_path / "Forecode.AppDir")
    assert sorted(p.name for p in appdir.iterdir()) == ["AppRun", "forecode", "forecode.desktop"]
    assert not (appdir / "forecode" / "update").exists()  # no update channel in an AppImage
    assert (appdir / "forecode" / "_internal" / "libstandin.so").is_file()
    desktop = (appdir / "forecode.desktop").read_text()
    assert "Exec=forecode %F" in desktop and "Type=Application" in desktop
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(appdir / "forecode.desktop")])
        assert check.returncode == 0
    # as the runtime runs it (APPDIR set) and as a user running the unpacked folder would
    for env in ({"APPDIR": str(appdir)}, {}):
        done = subprocess.run(
            [str(appdir / "AppRun"), "a file.py", "--x"],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], **env},
            check=True,
        )
        assert done.stdout.splitlines()[0] == "args:a file.py --x"


def test_appimage_is_refused_before_building_without_its_runtime(tmp_path: Path) -> None:
    assert "type 2 runtime" in (build.appimage_runtime_problem(None) or "")
    assert "no runtime at" in (build.appimage_runtime_problem(tmp_path / "none") or "")
    not_runtime = tmp_path / "true"
    shutil.copyfile("/bin/true", not_runtime)  # an ELF, but not AppImage's runtime
    assert "not an AppImage type 2 runtime" in (build.appimage_runtime_problem(not_runtime) or "")
    assert build.main(["appimage", "--appimage-runtime", str(not_runtime)]) == 2


@pytest.mark.skipif(shutil.which("unsquashfs") is None, reason="squashfs-tools not installed")
def test_the_appimage_is_the_runtime_then_the_appdirs_squashfs_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _stand_in_bundle(tmp_path)
    runtime = _stand_in_runtime(tmp_path / "runtime-x86_64")
    assert build.appimage_runtime_problem(runtime) is None
    monkeypatch.setattr(build, "BUILD", tmp_path / "build")
    out = build.pack_appimage(bundle, runtime, tmp_path / "dist")
    assert out.name == f"forecode-{build.version()}-x86_64.AppImage"
    assert os.access(out, os.X_OK)
    data = out.read_bytes()
    size = runtime.stat().st_size
    assert data[:size] == runtime.read_bytes()
    assert data[size : size + 4] == b"hsqs"  # SquashFS's magic, right after the runtime
    listing = subprocess.run(
        ["unsquashfs", "-o", str(size), "-s", str(out)], capture_output=True, text=True
    )
    assert "zstd" in listing.stdout, listing.stdout + listing.stderr
    unpacked = tmp_path / "unpacked"
    subprocess.run(
        ["unsquashfs", "-o", str(size), "-d", str(unpacked), str(out)],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [str(unpacked / "AppRun"), "--models"], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[0] == "args:--models"
    assert not (unpacked / "forecode" / "update").exists()
    assert not list((tmp_path / "dist").glob("*.partial"))


@pytest.mark.nightly
@pytest.mark.timeout(3600)
def test_the_appimage_starts_under_xvfb_with_extract_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = os.environ.get(build.APPIMAGE_RUNTIME_ENV)
    if not runtime:
        pytest.skip(
            f"no AppImage type 2 runtime here ({build.APPIMAGE_RUNTIME_ENV} unset): it is not in "
            "Debian, PyPI nor npm; the CI workflow's Linux job downloads it and runs this test"
        )
    from bench.package import smoke, virtual_display

    bundle = build.BUILD / "dist" / build.BUNDLE_NAME
    if not (bundle / "BUILD.json").is_file():
        bundle = build.build_bundle(None, portable=True)
    out = build.pack_appimage(bundle, Path(runtime), tmp_path / "dist")
    monkeypatch.setenv("APPIMAGE_EXTRACT_AND_RUN", "1")  # no FUSE: unpack to $TMPDIR and run
    with virtual_display() as display:
        result = smoke(out, tmp_path / "run", display)
    print({k: v for k, v in result.items() if k != "app_stderr_tail"})
    assert result["backends"], result.get("backends_error")
    assert result["model_loads"], result.get("model_error")
    assert result["window_s"] is not None, result["app_stderr_tail"]
    assert result["screen_colours"] > 1, "the screenshot is one colour: nothing was painted"
