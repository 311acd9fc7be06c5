"""Forecode's macOS package (issue 18), the parts that can be checked on Linux: the app's
Info.plist and entitlements (``packaging/macos.py``, plain data), the signing and dmg
commands, and ``packaging/build.py``'s ``macos-dmg`` / ``windows-installer`` targets refusing
at once, before any freezing, where they cannot run."""

from __future__ import annotations

import importlib.util
import plistlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"forecode_test_{name}", REPO / "packaging" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


macos = _load("macos")
build = _load("build")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CFBundleIdentifier", "dev.forecode.Forecode"),
        ("CFBundleName", "Forecode"),
        ("CFBundleExecutable", "forecode"),  # the spec's EXE name, in Contents/MacOS
        ("CFBundlePackageType", "APPL"),
        ("CFBundleShortVersionString", "1.2.3"),
        ("CFBundleVersion", "1.2.3"),
        ("LSMinimumSystemVersion", "13.0"),  # the README's "macOS 13+"
        ("LSApplicationCategoryType", "public.app-category.developer-tools"),
        ("NSHighResolutionCapable", True),
        ("NSRequiresAquaSystemAppearance", False),
    ],
)
def test_info_plist(key: str, value: object) -> None:
    assert macos.info_plist("1.2.3")[key] == value


def test_info_plist_is_a_valid_plist_and_opens_text_as_an_alternate_editor() -> None:
    plist = macos.info_plist("0.1.0")
    assert plistlib.loads(plistlib.dumps(plist)) == plist
    (doc,) = plist["CFBundleDocumentTypes"]
    assert doc["CFBundleTypeRole"] == "Editor"
    assert doc["LSHandlerRank"] == "Alternate"  # never takes the default from another editor
    assert {"public.plain-text", "public.source-code"} <= set(doc["LSItemContentTypes"])


def test_the_spec_uses_the_bundle_id_and_the_plist() -> None:
    spec = (REPO / "packaging" / "freeze" / "forecode.spec").read_text()
    assert "BUNDLE(" in spec and "info_plist(" in spec and "BUNDLE_ID" in spec
    assert macos.project_version(REPO) == build.version()


def test_entitlements_and_commands() -> None:
    ent = macos.entitlements()
    assert plistlib.loads(plistlib.dumps(ent)) == ent
    assert not any("disable-library-validation" in k or "allow-jit" in k for k in ent)
    sign = macos.codesign_command(Path("F.app"), "Developer ID Application: X", Path("e.plist"))
    assert sign[sign.index("--options") + 1] == "runtime"  # the hardened runtime
    assert "--timestamp" in sign and sign[-1] == "F.app"
    assert "--entitlements" not in macos.codesign_command(Path("f.dmg"), "X", None)
    dmg = macos.dmg_command(Path("stage"), Path("out.dmg"))
    assert dmg[:2] == ["hdiutil", "create"] and dmg[dmg.index("-format") + 1] == "UDZO"
    assert macos.dmg_name("0.1.0") == "forecode-0.1.0-macos-arm64.dmg"


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_macos_dmg_refuses_off_macos_before_freezing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_freeze(*_args: object) -> Path:
        raise AssertionError("froze before refusing")

    monkeypatch.setattr(build, "build_bundle", no_freeze)
    assert build.main(["macos-dmg"]) == 2
    assert "macos-dmg runs on macOS only" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="macOS only"):
        macos.build_dmg(Path("F.app"), Path("b"), Path("d"), "0.1.0")


@pytest.mark.skipif(sys.platform == "win32", reason="checks the refusal off Windows")
def test_windows_installer_refuses_to_freeze_off_windows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_freeze(*_args: object) -> Path:
        raise AssertionError("froze a non-Windows folder for a Windows installer")

    monkeypatch.setattr(build, "build_bundle", no_freeze)
    assert build.main(["windows-installer"]) == 2
    assert "windows-installer freezes on Windows" in capsys.readouterr().out
