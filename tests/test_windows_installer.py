"""Forecode's Windows installer (issue 18: "a per-user installer with no admin rights"):
``packaging/windows/forecode.nsi`` built by the real ``makensis`` (NSIS runs on Linux) from a
small stand-in for the frozen folder; the promise (user level, ``$LOCALAPPDATA``, HKCU only) is
read back from the script text, from makensis's account of what it compiled and from the
manifest inside the written ``.exe``. Skipped only when makensis is missing."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pip._vendor import distlib as pip_distlib

REPO = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    path = REPO / "packaging" / "windows" / "installer.py"
    spec = importlib.util.spec_from_file_location("forecode_windows_installer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


installer = _load()
SCRIPT_TEXT = installer.SCRIPT.read_text(encoding="utf-8")


def test_the_script_is_per_user() -> None:
    assert installer.audit_script(SCRIPT_TEXT) == []


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("RequestExecutionLevel user", "RequestExecutionLevel admin", "RequestExecutionLevel"),
        ('InstallDir "$LOCALAPPDATA\\Programs', 'InstallDir "$PROGRAMFILES64\\Programs', "install"),
        ('WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher"', 'WriteRegStr HKLM "x" "P"', "HKLM"),
        ("DeleteRegKey HKCU", "DeleteRegKey SHCTX", "SHCTX"),
        ("SetShellVarContext current", "SetShellVarContext all", "outside"),
    ],
)
def test_the_audit_catches_a_machine_wide_script(old: str, new: str, complaint: str) -> None:
    assert old in SCRIPT_TEXT
    problems = installer.audit_script(SCRIPT_TEXT.replace(old, new, 1))
    assert problems and any(complaint in p for p in problems), problems


def test_the_log_audit() -> None:
    good = 'InstallDir: "$LOCALAPPDATA\\Programs\\Forecode"\nWriteRegStr: HKCU\\Software\\X\\A=1\n'
    assert installer.audit_log(good) == []
    assert installer.audit_log(good + "WriteRegStr: HKLM\\Software\\X\\A=1\n")
    assert installer.audit_log(good + "SetShellVarContext: all\n")
    assert installer.audit_log('InstallDir: "$PROGRAMFILES\\Forecode"\nWriteRegStr: HKCU\\A=1\n')
    assert installer.audit_log("")  # no uninstaller entry compiled


@pytest.mark.parametrize(
    ("version", "four"), [("0.1.0", "0.1.0.0"), ("1.2.3rc1", "1.2.3.0"), ("2", "2.0.0.0")]
)
def test_vi_version(version: str, four: str) -> None:
    assert installer.vi_version(version) == four


# pip's own Windows launchers: a GUI-subsystem (w64) and a console one (t64), real PE files
_DISTLIB = Path(pip_distlib.__file__).parent
GUI_EXE, CONSOLE_EXE = _DISTLIB / "w64.exe", _DISTLIB / "t64.exe"


def _stand_in(root: Path) -> Path:
    """A frozen folder's shape: the executable, ``_internal`` with nested libraries, a model,
    ``BUILD.json``, a name with NSIS's ``$``."""
    bundle = root / "forecode"
    (bundle / "_internal" / "PySide6" / "plugins").mkdir(parents=True)
    shutil.copyfile(GUI_EXE, bundle / "forecode.exe")  # a real windowed PE (pip's launcher)
    (bundle / "ruff.exe").write_bytes(b"MZ ruff")
    (bundle / "BUILD.json").write_text('{"version": "0.1.0"}')
    (bundle / "_internal" / "python311.dll").write_bytes(b"\0" * 4096)
    (bundle / "_internal" / "PySide6" / "plugins" / "qwindows.dll").write_bytes(b"qt")
    (bundle / "_internal" / "models").mkdir()
    (bundle / "_internal" / "models" / "gemma-3-270m-q4_k_m.gguf").write_bytes(b"GGUF" * 100)
    (bundle / "cost$1.txt").write_text("a dollar sign in a name")
    return bundle


@pytest.mark.skipif(shutil.which("makensis") is None, reason="makensis (apt-get install nsis)")
def test_a_real_installer_from_a_stand_in_folder(tmp_path: Path) -> None:
    bundle = _stand_in(tmp_path)

    built = installer.build_installer(bundle, tmp_path / "dist", "0.1.0")

    assert built.path == tmp_path / "dist" / "forecode-0.1.0-windows-x64-installer.exe"
    data = built.path.read_bytes()
    assert data[:2] == b"MZ"
    assert b'requestedExecutionLevel level="asInvoker"' in data  # no UAC prompt
    assert installer.audit_log(built.log) == []
    log = built.log.splitlines()
    # every file of the stand-in went in (makensis names each as it compresses it)
    packed = {ln.split('"')[1] for ln in log if ln.startswith('File: "')}
    assert packed == {p.name for p in bundle.rglob("*") if p.is_file()}
    assert 'InstallDir: "$LOCALAPPDATA\\Programs\\Forecode"' in log
    key = "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Forecode"
    assert f"WriteRegStr: {key}\\DisplayName=Forecode" in log
    assert f'WriteRegStr: {key}\\UninstallString="$INSTDIR\\Uninstall Forecode.exe"' in log
    assert f"DeleteRegKey: {key}" in log
    assert any(ln.startswith('CreateShortcut: "$SMPROGRAMS\\Forecode.lnk"') for ln in log)
    # the uninstaller removes exactly the top-level entries, then the folder only if empty
    assert 'RMDir: /r "$INSTDIR\\_internal"' in log
    for name in ("forecode.exe", "ruff.exe", "BUILD.json", "cost$$1.txt"):  # $$: a literal $
        assert f'Delete: "$INSTDIR\\{name}"' in log
    assert 'RMDir: "$INSTDIR"' in log
    assert not any(ln.startswith('RMDir: /r "$INSTDIR"') for ln in log)
    assert not list((tmp_path / "dist").glob("*.partial*"))


def test_a_folder_without_the_windows_executable_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "forecode"
    bundle.mkdir()
    (bundle / "forecode").write_bytes(b"\x7fELF")  # a Linux build
    with pytest.raises(SystemExit, match=r"no forecode\.exe"):
        installer.build_installer(bundle, tmp_path / "dist", "0.1.0")
    assert not (tmp_path / "dist").exists()


@pytest.mark.skipif(shutil.which("makensis") is None, reason="makensis (apt-get install nsis)")
def test_the_sign_command_runs_on_the_uninstaller(tmp_path: Path) -> None:
    """Release builds sign the uninstaller as makensis writes it (``!uninstfinalize``): a
    stand-in "signer" that copies the file it is given shows the hook runs on an executable."""
    bundle = _stand_in(tmp_path)
    seen = tmp_path / "signed-uninstaller.exe"
    built = installer.build_installer(
        bundle, tmp_path / "dist", "0.1.0", sign_command=f'cp "%1" "{seen}"'
    )
    assert built.path.is_file()
    assert seen.read_bytes()[:2] == b"MZ"


def test_pe_subsystem_of_real_executables() -> None:
    pe = installer._pe()
    assert pe.subsystem(GUI_EXE) == pe.GUI
    assert pe.subsystem(CONSOLE_EXE) == pe.CONSOLE
    assert pe.main([str(GUI_EXE), "--expect", "windows-gui"]) == 0
    assert pe.main([str(CONSOLE_EXE), "--expect", "windows-gui"]) == 1


def test_a_console_build_is_refused(tmp_path: Path) -> None:
    bundle = _stand_in(tmp_path)
    shutil.copyfile(CONSOLE_EXE, bundle / "forecode.exe")  # build.py dir --console
    with pytest.raises(SystemExit, match="console program"):
        installer.build_installer(bundle, tmp_path / "dist", "0.1.0")
    (bundle / "forecode.exe").write_bytes(b"MZ not really")
    with pytest.raises(SystemExit, match="not a Windows executable"):
        installer.build_installer(bundle, tmp_path / "dist", "0.1.0")
    assert not (tmp_path / "dist").exists()
