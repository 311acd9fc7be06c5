"""Test helpers for the cloud service: the real ``forecode-cloud`` as a child process, a
self-signed TLS certificate, and free loopback ports.

``ServiceProcess`` runs ``python -m cloud_server`` exactly as a user would (the token in the
environment or a token file, never argv), keeps *everything* the service writes (stdout and
stderr, for the "one listening line" and "no secret in the log" checks), and stops it by
signal. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
LISTENING = re.compile(r"^forecode-cloud listening on (?P<host>\S+):(?P<port>\d+)$")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(token: str | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FORECODE_CLOUD_TOKEN", None)
    env.pop("FORECODE_OPENAI_API_KEY", None)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    if token is not None:
        env["FORECODE_CLOUD_TOKEN"] = token
    env.update(extra)
    return env


def run_service(
    args: Sequence[str], *, token: str | None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run the entry point to its end (for command lines it refuses)."""
    return subprocess.run(
        [sys.executable, "-m", "cloud_server", *args],
        cwd=REPO,
        env=service_env(token),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class ServiceProcess:
    """``python -m cloud_server ARGS`` with stdin, stdout and stderr on pipes."""

    def __init__(
        self, args: Sequence[str], *, token: str | None, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self._env = service_env(token) if env is None else env
        self._lock = threading.Lock()
        self._out: list[str] = []
        self._err: list[str] = []
        self._listening = threading.Event()
        self.host = ""
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_server", *self.args],
            cwd=REPO,
            env=self._env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._readers = [
            threading.Thread(
                target=self._drain, args=(self.proc.stdout, self._out, True), daemon=True
            ),
            threading.Thread(
                target=self._drain, args=(self.proc.stderr, self._err, False), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"the service did not start (exit {self.proc.returncode}):"
                    f"\n{self.log()[-3000:]}"
                )
        return self

    def _drain(self, stream: object, into: list[str], stdout: bool) -> None:
        assert stream is not None
        with stream:  # type: ignore[attr-defined]
            for raw in stream:  # type: ignore[attr-defined]
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    into.append(line)
                if stdout and not self._listening.is_set():
                    match = LISTENING.match(line)
                    if match:
                        self.host, self.port = match["host"], int(match["port"])
                        self._listening.set()

    def stdout_lines(self) -> list[str]:
        with self._lock:
            return list(self._out)

    def log(self) -> str:
        """Everything the service wrote to stderr so far."""
        with self._lock:
            return "\n".join(self._err)

    def mark(self) -> int:
        """Where the log ends now (for ``wait_for_log(since=...)``)."""
        return len(self.log())

    def wait_for_log(self, pattern: str, timeout: float = 30.0, since: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in the log after ``since``, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log()[since:])
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in the service log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the exit; then every pipe is closed and all the output read."""
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._closed()
        return code

    def _closed(self) -> None:
        assert self.proc is not None
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        for reader in self._readers:
            reader.join(10)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait (SIGKILL if it does not end in ``timeout``)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.wait()

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.signal(signal.SIGKILL)
            self.wait()


def self_signed(
    tmp: Path, *, ips: Sequence[str] = ("127.0.0.1",), names: Sequence[str] = ("forecode.test",)
) -> tuple[Path, Path, bytes]:
    """A self-signed CA-style certificate for ``ips`` and ``names``: (cert, key, cert PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forecode-test")])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, pem
