"""Multi-file edits with a REMOTE service (issue 16: "Works with the embedded service on
loopback and with a remote one"): the real gRPC service listening on all interfaces, as a
team's server does, which it allows only over TLS (a self-signed certificate for this
machine's own non-loopback address) with a token; the editor's client reaches it at that
address (not 127.0.0.1) over TLS. A scripted model at the backend seam (``_ScriptedBackend``),
the real apply pipeline resolving the files, the real window reviewing and applying the set.

The window gets the client as its chat backend, as the loopback window test does: how the
editor connects from ``cloud.url`` is ``CloudConnection``'s (its remote mode trusts the
system's roots; a private CA is given to gRPC with ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``, read
once per process, so not set from inside a test)."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from cloud_client.client import CloudClient
from cloud_client.router import Router
from cloud_server.config import ServerConfig, is_loopback
from cloud_server.service import start_server
from forecode_core.edits.events import EditsDone, FileChangeKind
from forecode_core.streams import StreamError
from tests.helpers.cloud import self_signed
from tests.test_edits_rpc import ANSWER, MAIN, UTIL, _params, _ScriptedBackend

TOKEN = secrets.token_urlsafe(24)


def _outside_address() -> str | None:
    """This machine's address on its default route (no packet is sent), else None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # TEST-NET-1: only the route is looked up
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if is_loopback(address) or address == "0.0.0.0" else address


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[str, bytes, _ScriptedBackend]]:
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve on")
    cert, key, pem = self_signed(tmp_path, ips=(address,))
    backend = _ScriptedBackend(ANSWER)
    running = start_server(
        ServerConfig(host="0.0.0.0", tokens=(TOKEN,), tls_cert=str(cert), tls_key=str(key)),
        backend=backend,
    )
    try:
        yield f"{address}:{running.port}", pem, backend
    finally:
        running.stop(0)


def _reachable(client: CloudClient) -> bool:
    """The first TLS handshake done (the editor's connection waits for health the same way;
    on a loaded machine a first fail-fast call can find the channel still connecting)."""
    return any(client.healthy(timeout=5.0) for _ in range(12))


def test_a_remote_service_over_tls_proposes_the_set_and_refuses_plaintext_and_strangers(
    remote: tuple[str, bytes, _ScriptedBackend],
) -> None:
    target, pem, backend = remote
    with CloudClient(target, TOKEN, root_certificates=pem) as client:
        assert client.tls  # chosen for an address off loopback
        assert _reachable(client)
        router = Router(client, None)
        try:
            done = list(router.edits(_params(("app/main.py", MAIN), ("app/util.py", UTIL))))[-1]
        finally:
            router.close()
    assert isinstance(done, EditsDone)
    assert {f.path: f.kind for f in done.files} == {
        "app/main.py": FileChangeKind.MODIFIED,
        "app/greeting.py": FileChangeKind.NEW,
        "app/util.py": FileChangeKind.DELETED,
    }
    assert len(backend.asked) == 1
    with CloudClient(target, "not-the-token", root_certificates=pem) as stranger:
        assert _reachable(stranger)  # health needs no token; the edits call does
        with pytest.raises(StreamError) as info:
            list(stranger.edits(_params(("app/main.py", MAIN))))
        assert info.value.code == "unauthenticated"
    with pytest.raises(ValueError, match="TLS"):  # never plaintext off this machine
        CloudClient(target, TOKEN, tls=False)
    assert len(backend.asked) == 1  # neither reached the model


def test_the_window_reviews_and_applies_a_set_from_the_remote_service(
    qtbot: QtBot, tmp_path: Path, remote: tuple[str, bytes, _ScriptedBackend]
) -> None:
    target, pem, backend = remote
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text(MAIN)
    (root / "app" / "util.py").write_text(UTIL)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    client = CloudClient(target, TOKEN, root_certificates=pem)
    assert _reachable(client)
    win: Any = None
    try:
        win = MainWindow(settings, chat_backend=client)
        qtbot.addWidget(win)
        win.show()
        win.open_folder(root)
        qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
        win.edit_set.host._trash = lambda path: path.rename(tmp_path / f"trashed-{path.name}")
        main_doc = win.open_file(root / "app" / "main.py")
        assert main_doc is not None
        win.actions_by_id["edits.start"].trigger()
        assert win.chat_panel.send("Add a shout helper, use it in main, delete @app/util.py")
        qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=30_000)
        review = win.edit_set.review
        assert [r.split("  ")[0] for r in review.rows()] == ["M", "A", "D"]
        assert main_doc.editor.text() == MAIN  # nothing before the accept
        win.actions_by_id["edits.acceptAll"].trigger()
        assert "from app.greeting import shout" in main_doc.editor.text()
        assert not (root / "app" / "util.py").exists()
        (asked,) = backend.asked
        assert "def unused" in asked.messages[-1].content  # the @ file went to the service
    finally:
        if win is not None:
            win.close()
        client.close()
