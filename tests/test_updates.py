"""Issue 18's updates end to end: two releases of a small fake bundle published by
``packaging/updates.py`` (real python-tuf metadata signed with a throwaway Ed25519 key), served
by a real HTTP server on loopback (``http.server`` in a thread, counting the bytes of each file
it serves), checked and staged by ``app.services.updates`` and applied / rolled back by
``app.services.update_start`` at the "next start"."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.services import update_start, updates
from forecode_core.updates.start import InstallKind, Phase, StartAction

REPO = Path(__file__).resolve().parent.parent
BIG = 3_000_000  # the "Qt libraries": must never be downloaded again by a code-only update


def _publisher() -> ModuleType:
    """``packaging/updates.py`` (``packaging`` is also PyPI's package: load it by its path)."""
    spec = importlib.util.spec_from_file_location(
        "forecode_updates", REPO / "packaging" / "updates.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pub = _publisher()


def _bundle(folder: Path, version: str, code: bytes) -> Path:
    """A fake frozen folder: an executable that prints its version, a big unchanging library
    (with a symbolic link to it), the code archive that a code-only release changes."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "_internal").mkdir(parents=True)
    exe = folder / "forecode"
    exe.write_text(f"#!/bin/sh\necho forecode {version}\n")
    exe.chmod(0o755)
    (folder / "BUILD.json").write_text(json.dumps({"version": version}))
    (folder / "_internal" / "libbig.so.6").write_bytes(bytes(range(256)) * (BIG // 256))
    (folder / "_internal" / "libbig.so").symlink_to("libbig.so.6")
    (folder / "_internal" / "code.pyz").write_bytes(code)
    return folder


class _Counting(http.server.SimpleHTTPRequestHandler):
    served: dict[str, int]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def copyfile(self, source: Any, outputfile: Any) -> None:
        data = source.read()
        self.served[self.path] = self.served.get(self.path, 0) + len(data)
        outputfile.write(data)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, int]]]:
    repo = tmp_path / "repo"
    repo.mkdir()
    served: dict[str, int] = {}
    handler = functools.partial(type("H", (_Counting,), {"served": served}), directory=str(repo))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", repo, served
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    pub.keygen(tmp_path / "release.pem")  # a throwaway key: the real one is a CI secret
    return (tmp_path / "release.pem").read_bytes()


@pytest.fixture
def two_releases(
    tmp_path: Path, server: tuple[str, Path, dict[str, int]], key: bytes
) -> tuple[Path, Path, dict[str, int]]:
    """Release 0.1.0 published and "installed" (a copy of its frozen folder, as unpacked from
    the tarball), then release 0.2.0 (only the code archive and BUILD.json changed)."""
    url, repo, served = server
    b1 = _bundle(tmp_path / "build1", "0.1.0", b"code of 0.1.0\n" * 1000)
    pub.release(b1, repo, key, url, "0.1.0")
    install = tmp_path / "apps" / "forecode"
    shutil.copytree(b1, install, symlinks=True)
    b2 = _bundle(tmp_path / "build2", "0.2.0", b"code of 0.2.0, changed\n" * 1000)
    pub.release(b2, repo, key, url, "0.2.0")
    served.clear()
    return install, repo, served


def _run(exe: Path) -> str:
    return subprocess.check_output([str(exe)], text=True).strip()


def test_a_code_only_update_downloads_only_what_changed_and_applies_at_the_next_start(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    install, _, served = two_releases
    channel = updates.channel_of(install)
    assert channel is not None and channel.version == "0.1.0"
    out = updates.check_and_stage(channel)
    assert out.kind is updates.OutcomeKind.STAGED, out.message
    assert out.version == "0.2.0"
    assert out.downloaded_files == 3  # the executable, BUILD.json and code.pyz changed
    assert out.reused_files == 3  # the library, root.json and channel.json did not
    blobs = {p: n for p, n in served.items() if "/blobs/" in p}
    assert len(blobs) == 3
    assert sum(blobs.values()) == out.downloaded_bytes
    total = sum(served.values())
    assert total < BIG / 10, served  # metadata + manifest + two small blobs, never the library
    # staged, not applied: the installed app is still 0.1.0 until the user says yes
    assert _run(install / "forecode") == "forecode 0.1.0"
    assert update_start.apply_at_start(install, "0.1.0").action is StartAction.NOTHING
    assert _run(install / "forecode") == "forecode 0.1.0"
    # a second check finds it staged and downloads nothing more
    served.clear()
    again = updates.check_and_stage(channel)
    assert again.kind is updates.OutcomeKind.STAGED and again.downloaded_bytes == 0
    assert not any("/blobs/" in p for p in served)
    # the user's yes, then the next start: the new version in place, started instead
    assert updates.approve(install)
    started = update_start.apply_at_start(install, "0.1.0")
    assert started.action is StartAction.APPLY
    assert started.exec_path == install / "forecode"
    assert _run(install / "forecode") == "forecode 0.2.0"
    assert update_start.installed_version(install) == "0.2.0"
    assert os.readlink(install / "_internal" / "libbig.so") == "libbig.so.6"
    assert (install / "_internal" / "libbig.so.6").stat().st_size == BIG - BIG % 256
    # the new version's first start, then its first paint: done, the old files removed
    assert update_start.apply_at_start(install, "0.2.0").action is StartAction.ATTEMPT
    assert update_start.confirm_started(install, "0.2.0")
    assert not (install / ".update" / "previous").exists()
    assert updates.check_and_stage(channel_of_new(install)).kind is updates.OutcomeKind.UP_TO_DATE


def channel_of_new(install: Path) -> updates.Channel:
    channel = updates.channel_of(install)
    assert channel is not None and channel.version == "0.2.0"
    return channel


def test_a_new_version_that_does_not_start_is_rolled_back_and_not_offered_again(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    install, _, _ = two_releases
    channel = updates.channel_of(install)
    assert channel is not None
    assert updates.check_and_stage(channel).kind is updates.OutcomeKind.STAGED
    assert updates.approve(install)
    assert update_start.apply_at_start(install, "0.1.0").action is StartAction.APPLY
    # 0.2.0 starts (counted) but never reaches its first paint; the next start rolls back
    assert update_start.apply_at_start(install, "0.2.0").action is StartAction.ATTEMPT
    back = update_start.apply_at_start(install, "0.2.0")
    assert back.action is StartAction.ROLLBACK
    assert back.exec_path == install / "forecode"  # the old executable is started instead
    assert "did not start" in back.message
    assert _run(install / "forecode") == "forecode 0.1.0"
    state = update_start.read_state(install)
    assert state is not None and state.phase is Phase.ROLLED_BACK
    again = updates.check_and_stage(channel)
    assert again.kind is updates.OutcomeKind.UP_TO_DATE  # 0.2.0 is not offered again


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _untouched(install: Path) -> None:
    assert _run(install / "forecode") == "forecode 0.1.0"
    assert not (install / ".update" / "staging").exists()
    assert update_start.read_state(install) is None


def test_a_tampered_file_is_refused_and_nothing_changes(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    install, repo, _ = two_releases
    manifest = json.loads(next((repo / "targets" / "releases").glob("*.0.2.0.json")).read_bytes())
    code = next(f for f in manifest["files"] if f["path"] == "_internal/code.pyz")
    _tamper(next((repo / "targets" / "blobs").glob(f"*.{code['sha256']}.gz")))
    channel = updates.channel_of(install)
    assert channel is not None
    out = updates.check_and_stage(channel)
    assert out.kind is updates.OutcomeKind.REFUSED
    assert "refused" in out.message and "Nothing was changed" in out.message
    _untouched(install)


def test_a_release_signed_with_another_key_is_refused(
    tmp_path: Path, two_releases: tuple[Path, Path, dict[str, int]]
) -> None:
    install, repo, _ = two_releases
    # an attacker's repository at the same address: its own root, its own key
    shutil.rmtree(repo / "metadata")
    shutil.rmtree(repo / "targets")
    pub.keygen(tmp_path / "other.pem")
    evil = _bundle(tmp_path / "evil", "0.3.0", b"evil")
    channel = updates.channel_of(install)
    assert channel is not None
    pub.release(evil, repo, (tmp_path / "other.pem").read_bytes(), channel.url, "0.3.0")
    out = updates.check_and_stage(channel)
    assert out.kind is updates.OutcomeKind.REFUSED, out
    assert "refused" in out.message
    _untouched(install)


def test_altered_signed_metadata_is_refused(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    install, repo, _ = two_releases
    ts = repo / "metadata" / "timestamp.json"
    doc = json.loads(ts.read_bytes())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"  # the signature no longer matches
    ts.write_text(json.dumps(doc))
    channel = updates.channel_of(install)
    assert channel is not None
    out = updates.check_and_stage(channel)
    assert out.kind is updates.OutcomeKind.REFUSED
    _untouched(install)


def test_off_line_is_quiet_and_changes_nothing(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    install, _, _ = two_releases
    import socket

    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = updates.channel_of(install, f"http://127.0.0.1:{port}")
    assert channel is not None
    out = updates.check_and_stage(channel)
    assert out.kind is updates.OutcomeKind.OFFLINE
    _untouched(install)


def test_a_staged_folder_that_is_missing_at_the_start_keeps_the_old_version(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    install, _, _ = two_releases
    channel = updates.channel_of(install)
    assert channel is not None
    assert updates.check_and_stage(channel).kind is updates.OutcomeKind.STAGED
    assert updates.approve(install)
    shutil.rmtree(install / ".update" / "staging")
    out = update_start.apply_at_start(install, "0.1.0")
    assert out.action is StartAction.ROLLBACK and out.exec_path is None
    assert "nothing changed" in out.message
    assert _run(install / "forecode") == "forecode 0.1.0"


def test_publishing_an_older_version_or_with_another_key_is_refused(
    tmp_path: Path, two_releases: tuple[Path, Path, dict[str, int]], key: bytes
) -> None:
    _, repo, _ = two_releases
    b = _bundle(tmp_path / "b", "0.2.0", b"x")
    with pytest.raises(SystemExit, match="not newer"):
        pub.release(b, repo, key, "http://127.0.0.1:1", "0.2.0")
    pub.keygen(tmp_path / "k2.pem")
    with pytest.raises(SystemExit, match="not the repository's"):
        pub.release(b, repo, (tmp_path / "k2.pem").read_bytes(), "http://x", "0.3.0")


def test_an_install_from_the_deb_is_left_to_apt(tmp_path: Path) -> None:
    dpkg = tmp_path / "forecode.list"
    dpkg.write_text("/.\n/opt\n/opt/forecode\n/opt/forecode/forecode\n")
    kind = updates.kind_of_install(Path("/opt/forecode"), True, dpkg)
    assert kind is InstallKind.DEB
    assert updates.kind_of_install(tmp_path, True, dpkg) is InstallKind.BUNDLE
    assert updates.kind_of_install(tmp_path, False, dpkg) is InstallKind.DEVELOPMENT


# --- the window: the prompt, and nothing applied without the user's yes ---

_QUIET = {
    "completion.enabled": False,
    "cloud.autostart": False,
    "lsp.enabled": False,
    "index.enabled": False,
    "git.enabled": False,
    "bugs.tier2": False,
    "nextEdit.enabled": False,
}


def _window(tmp_path: Path, qtbot: Any) -> Any:
    from app.ui.main_window import MainWindow

    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(_QUIET))
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_window_offers_the_update_and_applies_nothing_without_the_users_yes(
    tmp_path: Path,
    qtbot: Any,
    two_releases: tuple[Path, Path, dict[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.ui.main_window as main_window

    install, _, _ = two_releases
    restarts: list[object] = []
    monkeypatch.setattr(main_window, "restart_app", lambda w: restarts.append(w))
    window = _window(tmp_path, qtbot)
    owner = window.updates
    assert any(c.id == "updates.restart" for c in window.commands)
    owner.install = install  # as if this window were the frozen app in that folder
    owner.check(manual=False)
    button = owner.button
    qtbot.waitUntil(lambda: button.isVisible(), timeout=20000)
    assert button.text().endswith("Restart to update to 0.2.0")
    # offered, downloaded and verified -- and nothing applied: no yes yet
    qtbot.wait(300)
    assert _run(install / "forecode") == "forecode 0.1.0"
    state = update_start.read_state(install)
    assert state is not None and state.phase is Phase.STAGED
    assert update_start.apply_at_start(install, "0.1.0").action is StartAction.NOTHING
    assert restarts == []
    # the user's yes: approved and the app restarts; the new version goes in at that start
    from PySide6.QtCore import Qt

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert restarts == [window]
    state = update_start.read_state(install)
    assert state is not None and state.phase is Phase.APPROVED
    assert _run(install / "forecode") == "forecode 0.1.0"
    assert update_start.apply_at_start(install, "0.1.0").action is StartAction.APPLY
    assert _run(install / "forecode") == "forecode 0.2.0"


def test_the_window_says_when_an_update_is_refused_and_offers_nothing(
    tmp_path: Path, qtbot: Any, two_releases: tuple[Path, Path, dict[str, int]]
) -> None:
    install, repo, _ = two_releases
    for blob in (repo / "targets" / "blobs").glob("*.gz"):
        _tamper(blob)
    window = _window(tmp_path, qtbot)
    window.updates.install = install
    window.updates.check(manual=False)
    bar = window.statusBar()
    qtbot.waitUntil(lambda: "was refused" in bar.currentMessage(), timeout=20000)
    assert not window.updates.button.isVisible()
    _untouched(install)


def test_a_manual_check_from_a_deb_install_says_apt_updates_it(
    tmp_path: Path, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = _window(tmp_path, qtbot)
    owner = window.updates
    monkeypatch.setattr("app.ui.owners.updates.kind_of_install", lambda *a, **k: InstallKind.DEB)
    owner.install = tmp_path
    owner.check(manual=True)
    assert "apt" in window.statusBar().currentMessage()
    assert not owner.button.isVisible()


def test_the_release_command_that_build_py_runs_publishes_an_update(
    tmp_path: Path, server: tuple[str, Path, dict[str, int]]
) -> None:
    """``packaging/updates.py keygen`` and ``release`` as ``build.py tarball --update-key``
    runs them (a separate interpreter), then the client stages the second release."""
    import sys

    url, repo, _ = server
    script = str(REPO / "packaging" / "updates.py")
    key = tmp_path / "k.pem"
    subprocess.run([sys.executable, script, "keygen", str(key)], check=True)
    assert key.stat().st_mode & 0o777 == 0o600
    for version in ("1.0.0", "1.0.1"):
        b = _bundle(tmp_path / f"b{version}", version, version.encode() * 100)
        cmd = [sys.executable, script, "release", str(b), "--repo", str(repo), "--key", str(key)]
        subprocess.run([*cmd, "--url", url, "--version", version], check=True)
        if version == "1.0.0":
            shutil.copytree(b, tmp_path / "install", symlinks=True)
    assert (tmp_path / "install" / "update" / "root.json").exists()
    channel = updates.channel_of(tmp_path / "install")
    assert channel is not None and channel.url == url
    out = updates.check_and_stage(channel)
    assert out.kind is updates.OutcomeKind.STAGED and out.version == "1.0.1"


def test_build_py_takes_the_update_key_only_with_the_tarball_and_a_url() -> None:
    spec = importlib.util.spec_from_file_location("forecode_build", REPO / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.main(["deb", "--update-key", "k.pem", "--update-url", "http://x"]) == 2
    assert build.main(["tarball", "--update-key", "k.pem"]) == 2


def test_the_start_hook_starts_the_new_executable_in_place_of_the_old(
    two_releases: tuple[Path, Path, dict[str, int]],
) -> None:
    """``run_at_start`` as the frozen app's ``app.main`` calls it: an approved update is swapped
    in and the process becomes the new executable (``os.execv``)."""
    import sys

    install, _, _ = two_releases
    channel = updates.channel_of(install)
    assert channel is not None
    assert updates.check_and_stage(channel).kind is updates.OutcomeKind.STAGED
    assert updates.approve(install)
    code = (
        "import sys; from pathlib import Path; from app.services.update_start import run_at_start; "
    )
    code += "run_at_start(Path(sys.argv[1]), ['forecode']); print('not replaced')"
    out = subprocess.check_output([sys.executable, "-c", code, str(install)], cwd=REPO, text=True)
    assert out.strip() == "forecode 0.2.0"  # printed by the new executable, not by Python
    state = update_start.read_state(install)
    assert state is not None and state.phase is Phase.TRYING


def test_the_new_versions_window_confirms_the_update_and_removes_the_old_files(
    tmp_path: Path, qtbot: Any, two_releases: tuple[Path, Path, dict[str, int]]
) -> None:
    from PySide6.QtWidgets import QMainWindow

    from app.ui.owners.updates import Updates
    from forecode_core.store.settings import Settings

    install, _, _ = two_releases
    channel = updates.channel_of(install)
    assert channel is not None
    assert updates.check_and_stage(channel).kind is updates.OutcomeKind.STAGED
    assert updates.approve(install)
    assert update_start.apply_at_start(install, "0.1.0").action is StartAction.APPLY
    assert update_start.apply_at_start(install, "0.2.0").action is StartAction.ATTEMPT
    assert (install / ".update" / "previous").is_dir()
    window = QMainWindow()
    qtbot.addWidget(window)
    messages: list[str] = []
    settings = Settings(updates_check=False)
    owner = Updates(lambda: settings, window.statusBar(), lambda: None, window, install=install)
    assert owner.install == install
    owner.message.connect(lambda text, _ms: messages.append(text))
    owner._started()  # what the first paint runs
    qtbot.waitUntil(lambda: not (install / ".update" / "previous").exists(), timeout=10000)
    state = update_start.read_state(install)
    assert state is not None and state.phase is Phase.DONE
    assert messages == ["Forecode was updated to 0.2.0."]
