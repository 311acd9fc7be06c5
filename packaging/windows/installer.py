"""Forecode's Windows installer (issue 18): ``forecode.nsi`` compiled by NSIS's ``makensis``.

A per-user installer with no admin rights: the frozen folder (``packaging/build.py dir`` on
Windows) goes into ``%LOCALAPPDATA%\\Programs\\Forecode``, with a Start-menu shortcut and an
uninstaller registered under HKCU, as VS Code's "user setup" does. Velopack's ``Setup.exe``
(the issue's first choice, with its delta updates) needs ``vpk``, a .NET tool that cannot be
installed on the development machine; NSIS runs on Linux as well as Windows (Debian's
``nsis``), so the same script is built and checked here (tests/test_windows_installer.py) and
in CI on Windows (``.github/workflows/package.yml``, where release builds sign the app's
executables, the installer and, through ``SIGN_COMMAND``, the uninstaller).

``audit_script`` and ``audit_log`` are the per-user promise in code: the script must request
user level, install under ``$LOCALAPPDATA`` and touch only HKCU, and makensis's own account of
what it compiled (its ``-V4`` output) must show every registry write under HKCU; a build that
breaks the promise is refused before an installer is written.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent / "forecode.nsi"
APP_EXE = "forecode.exe"
_REGISTRY_OPS = ("WriteRegStr", "WriteRegExpandStr", "WriteRegDWORD", "WriteRegBin",
                 "WriteRegMultiStr", "DeleteRegKey", "DeleteRegValue")  # fmt: skip
_OTHER_ROOTS = re.compile(r"\b(HKLM|HKCR|HKU|HKCC|SHCTX|HKEY_LOCAL_MACHINE|HKEY_CLASSES_ROOT)\b")


@dataclass(frozen=True)
class Built:
    """The installer written and makensis's output (``-V4``: every command it compiled)."""

    path: Path
    log: str


def installer_name(version: str) -> str:
    """``forecode-VERSION-windows-x64-installer.exe`` (not "setup": Windows' installer
    detection loads compatibility shims for such names; makensis warns about it)."""
    return f"forecode-{version}-windows-x64-installer.exe"


def vi_version(version: str) -> str:
    """The four numbers a Windows version resource needs: ``0.1.0`` -> ``0.1.0.0``
    (``1.2.3rc1`` -> ``1.2.3.0``)."""
    parts = [int(m.group()) for m in (re.match(r"\d+", p) for p in version.split(".")) if m]
    return ".".join(str(n) for n in [*parts, 0, 0, 0, 0][:4])


def uninstall_lines(bundle: Path) -> list[str]:
    """NSIS lines that remove what the installer copies: each top-level entry of the frozen
    folder (folders recursively), nothing else of a folder the user chose."""
    lines = []
    for entry in sorted(bundle.iterdir()):
        if '"' in entry.name or "\n" in entry.name:
            raise ValueError(f"a name NSIS cannot quote: {entry.name!r}")
        name = entry.name.replace("$", "$$")
        if entry.is_dir() and not entry.is_symlink():
            lines.append(f'RMDir /r "$INSTDIR\\{name}"')
        else:
            lines.append(f'Delete "$INSTDIR\\{name}"')
    return lines


def _code_lines(script: str) -> list[str]:
    return [ln.strip() for ln in script.splitlines() if ln.strip() and ln.strip()[0] not in ";#"]


def audit_script(script: str) -> list[str]:
    """What in the script text breaks the per-user promise (empty: none)."""
    code = _code_lines(script)
    problems = []
    if "RequestExecutionLevel user" not in code:
        problems.append("the script does not say `RequestExecutionLevel user`")
    install_dir = [ln for ln in code if ln.startswith("InstallDir ")]
    if len(install_dir) != 1 or not install_dir[0].startswith('InstallDir "$LOCALAPPDATA\\'):
        problems.append(f"the install folder is not under $LOCALAPPDATA: {install_dir}")
    for line in code:
        if _OTHER_ROOTS.search(line):
            problems.append(f"a registry root other than HKCU: {line}")
        if line.startswith(_REGISTRY_OPS) and " HKCU " not in f" {line} ":
            problems.append(f"a registry command not under HKCU: {line}")
        if "SetShellVarContext all" in line or "$PROGRAMFILES" in line or "$WINDIR" in line:
            problems.append(f"writes outside the user's profile: {line}")
        if line.startswith("UserInfo::") or "RequestExecutionLevel admin" in line:
            problems.append(f"asks for admin rights: {line}")
    return problems


def audit_log(log: str) -> list[str]:
    """What in makensis's ``-V4`` output breaks the promise: a registry command compiled for
    another root than HKCU, a shell-folder context other than the current user's, an install
    folder not under ``$LOCALAPPDATA``."""
    problems = []
    ops = [ln for ln in log.splitlines() if ln.startswith(tuple(f"{op}:" for op in _REGISTRY_OPS))]
    if not ops:
        problems.append("makensis compiled no registry command (no uninstaller entry)")
    for line in ops:
        if not line.split(":", 1)[1].strip().startswith("HKCU\\"):
            problems.append(f"compiled for another root: {line}")
    for line in log.splitlines():
        if line.startswith("SetShellVarContext:") and line.split(":", 1)[1].strip() != "current":
            problems.append(f"compiled: {line}")
        if line.startswith("InstallDir:") and '"$LOCALAPPDATA\\' not in line:
            problems.append(f"compiled: {line}")
    return problems


def makensis() -> str:
    found = shutil.which("makensis")
    if found is None:
        raise SystemExit(
            "build: makensis (NSIS) is missing: Windows `choco install nsis`, "
            "Debian/Ubuntu `apt-get install nsis`"
        )
    return found


def _pe() -> ModuleType:
    """``pe.py`` beside this file (loaded by path, as build.py loads this one)."""
    spec = importlib.util.spec_from_file_location("forecode_windows_pe", SCRIPT.parent / "pe.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refuse_console_exe(exe: Path) -> None:
    """A user's installer ships the windowed executable (no console window beside the
    editor); the diagnostic ``build.py dir --console`` build is refused, as is a non-PE file."""
    pe = _pe()
    try:
        kind = pe.subsystem(exe)
    except ValueError as exc:
        raise SystemExit(f"build: {exc}") from None
    if kind != pe.GUI:
        raise SystemExit(
            f"build: {exe.name} is a console program ({pe.NAMES.get(kind, kind)}): the installer "
            "ships the windowed build; build without --console"
        )


def build_installer(
    bundle: Path, out_dir: Path, version: str, *, sign_command: str | None = None
) -> Built:
    """``out_dir/forecode-VERSION-windows-x64-installer.exe`` from the frozen folder
    ``bundle`` (it must hold ``forecode.exe``: a Windows build). ``sign_command`` (release
    builds) signs the uninstaller as makensis writes it; ``%1`` is the file."""
    if not (bundle / APP_EXE).is_file():
        raise SystemExit(f"build: {bundle} holds no {APP_EXE}: freeze it on Windows first")
    refuse_console_exe(bundle / APP_EXE)
    script = SCRIPT.read_text(encoding="utf-8")
    problems = audit_script(script)
    if problems:
        raise SystemExit("build: the installer script is not per-user: " + "; ".join(problems))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / installer_name(version)
    with tempfile.TemporaryDirectory(prefix="forecode-nsis-") as tmp:
        listing = Path(tmp) / "uninstall.nsh"
        listing.write_text("\n".join(uninstall_lines(bundle)) + "\n", encoding="utf-8")
        partial = out.with_name(out.stem + ".partial.exe")
        cmd = [
            makensis(),
            "-V4",
            "-WX",  # a warning is an error
            f"-DVERSION={version}",
            f"-DVI_VERSION={vi_version(version)}",
            f"-DSOURCE_DIR={bundle.resolve()}",
            f"-DOUT_FILE={partial}",
            f"-DUNINSTALL_LIST={listing}",
            *([f"-DSIGN_COMMAND={sign_command}"] if sign_command else []),
            str(SCRIPT),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise SystemExit(f"build: makensis failed ({proc.returncode}):\n{log[-3000:]}")
    problems = audit_log(log)
    if problems:
        partial.unlink()
        raise SystemExit("build: the compiled installer is not per-user: " + "; ".join(problems))
    partial.replace(out)
    return Built(out, log)
