"""Forecode's macOS package (issue 18): ``Forecode.app`` in a dmg, signed and notarized in
release builds.

- ``packaging/freeze/forecode.spec`` wraps the frozen folder in ``Forecode.app`` on macOS
  (PyInstaller's ``BUNDLE``) with ``info_plist(version)``: the bundle id
  ``dev.forecode.Forecode``, macOS 13 as the minimum, the developer-tools category, Retina,
  light and dark appearance, and "Open With" for text and source files (an alternate handler:
  Forecode never takes the default from another editor). The icon is
  ``packaging/icons/forecode.icns`` when it exists (none yet: PyInstaller's default).
- ``packaging/build.py macos-dmg`` (macOS only; elsewhere it refuses at once, before any
  freezing) puts ``ruff`` and ``BUILD.json`` into the app, signs it when given an identity
  (``codesign --options runtime``: the hardened runtime notarization requires, with
  ``entitlements()``), and makes ``dist/forecode-VERSION-macos-arm64.dmg`` with ``hdiutil``:
  the app and a link to /Applications, compressed (UDZO). Notarization and stapling are the
  CI workflow's steps (``xcrun notarytool submit --wait``, ``xcrun stapler staple``), run only
  when the signing secrets exist.

Nothing here has run on a Mac yet: the development machine is Linux. ``info_plist``,
``entitlements`` and the commands are plain data, tested here (tests/test_macos_package.py).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BUNDLE_ID = "dev.forecode.Forecode"
APP_NAME = "Forecode"
EXECUTABLE = "forecode"
MINIMUM_MACOS = "13.0"
ICON = Path(__file__).resolve().parent / "icons" / "forecode.icns"

# What Forecode opens from Finder's "Open With": text and source code (UTIs every Mac knows).
_DOCUMENT_UTIS = ["public.plain-text", "public.source-code", "public.script", "public.json"]


def info_plist(version: str) -> dict[str, object]:
    """The app's Info.plist (PyInstaller's ``BUNDLE(info_plist=...)`` merges it over its own)."""
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleExecutable": EXECUTABLE,
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "CFBundleInfoDictionaryVersion": "6.0",
        "LSMinimumSystemVersion": MINIMUM_MACOS,
        "LSApplicationCategoryType": "public.app-category.developer-tools",
        "NSHighResolutionCapable": True,
        "NSRequiresAquaSystemAppearance": False,  # follows the system's dark mode
        "NSHumanReadableCopyright": "Forecode",
        "CFBundleDocumentTypes": [
            {
                "CFBundleTypeName": "Text and source code",
                "CFBundleTypeRole": "Editor",
                "LSHandlerRank": "Alternate",
                "LSItemContentTypes": list(_DOCUMENT_UTIS),
            }
        ],
    }


def entitlements() -> dict[str, object]:
    """The hardened runtime's exceptions Forecode needs: executable memory that is not signed
    (ctypes' callbacks: llama-cpp-python hands llama.cpp a Python log callback). No JIT, no
    unsigned libraries (every library is signed with the app), no network server rights
    beyond the loopback the sandbox-less app already has."""
    return {"com.apple.security.cs.allow-unsigned-executable-memory": True}


def icon() -> str | None:
    return str(ICON) if ICON.is_file() else None


def project_version(root: Path) -> str:
    import tomllib

    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def dmg_name(version: str, arch: str = "arm64") -> str:
    return f"forecode-{version}-macos-{arch}.dmg"


def dmg_command(stage: Path, out: Path) -> list[str]:
    """``hdiutil create``: the staged folder (the app and an /Applications link) as a
    compressed, read-only image."""
    return [
        "hdiutil", "create", "-volname", APP_NAME, "-srcfolder", str(stage),
        "-ov", "-format", "UDZO", "-fs", "HFS+", str(out),
    ]  # fmt: skip


def codesign_command(path: Path, identity: str, entitlements_file: Path | None) -> list[str]:
    """Sign with the hardened runtime and a secure timestamp (what notarization checks).
    ``--deep`` signs the nested libraries and executables first; the app's own executable
    carries the entitlements."""
    cmd = ["codesign", "--force", "--timestamp", "--options", "runtime", "--sign", identity]
    if entitlements_file is not None:
        cmd += ["--deep", "--entitlements", str(entitlements_file)]
    return [*cmd, str(path)]


def refuse_unless_macos() -> str | None:
    """Why ``macos-dmg`` cannot run here (None on macOS)."""
    if sys.platform == "darwin" and shutil.which("hdiutil"):
        return None
    return (
        "macos-dmg runs on macOS only (it needs PyInstaller's .app build and hdiutil); "
        "build it on a Mac or in CI's macOS job (.github/workflows/package.yml)"
    )


def _run(cmd: list[str]) -> None:
    print("build: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def complete_app(app: Path, bundle: Path) -> None:
    """What ``build.py`` adds after PyInstaller: ``ruff`` beside the executable (where the
    editor finds ``ruff server``) and ``BUILD.json`` in Resources."""
    if (bundle / "ruff").is_file():
        shutil.copy2(bundle / "ruff", app / "Contents" / "MacOS" / "ruff")
    if (bundle / "BUILD.json").is_file():
        shutil.copy2(bundle / "BUILD.json", app / "Contents" / "Resources" / "BUILD.json")


def build_dmg(app: Path, bundle: Path, out_dir: Path, version: str) -> Path:
    """``out_dir/forecode-VERSION-macos-arm64.dmg`` from PyInstaller's ``Forecode.app``;
    signed when ``FORECODE_MACOS_IDENTITY`` names a Developer ID in the keychain (CI's
    secret-gated step imports it), else unsigned (fine locally; Gatekeeper will warn)."""
    why = refuse_unless_macos()
    if why:
        raise SystemExit(f"build: {why}")
    if not (app / "Contents" / "MacOS" / EXECUTABLE).exists():
        raise SystemExit(f"build: PyInstaller made no {app} (the spec's BUNDLE)")
    complete_app(app, bundle)
    identity = os.environ.get("FORECODE_MACOS_IDENTITY", "")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / dmg_name(version, "arm64" if os.uname().machine == "arm64" else "x86_64")
    with tempfile.TemporaryDirectory(prefix="forecode-dmg-") as tmp:
        if identity:
            ent = Path(tmp) / "entitlements.plist"
            ent.write_bytes(plistlib.dumps(entitlements()))
            _run(codesign_command(app, identity, ent))
            _run(["codesign", "--verify", "--strict", "--verbose=2", str(app)])
        stage = Path(tmp) / "stage"
        stage.mkdir()
        _run(["ditto", str(app), str(stage / app.name)])  # keeps links and signatures
        (stage / "Applications").symlink_to("/Applications")
        _run(dmg_command(stage, out))
    if identity:
        _run(codesign_command(out, identity, None))
    return out
