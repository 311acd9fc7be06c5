"""``TokenStore``: access tokens in the OS keyring, or in an encrypted file where none exists.

The keyring (Secret Service, macOS Keychain, Windows Credential Locker) is used whenever it
works. A headless Linux box often has none (keyring's ``fail``/``null`` backends, a chainer
with no backends, or a backend that errors because no D-Bus session runs); there the tokens go
to ``tokens.enc`` in the data dir (``$FORECODE_DATA_DIR`` or the platform's user data dir),
never in plaintext.

The file (JSON envelope, written atomically, mode 0600) holds one AES-256-GCM ciphertext of
all tokens. Its header (format, version, kdf, salt) is the AEAD's associated data, so any change
to the header or the ciphertext fails to decrypt, and the store says so instead of returning
garbage. The key is derived fresh for each write (new random salt and nonce):

- ``kdf = "scrypt"``: from the passphrase in ``$FORECODE_KEYRING_PASSPHRASE`` (scrypt,
  n=2**15, r=8, p=1). The file is then useless without the passphrase, wherever it is copied.
- ``kdf = "machine"`` (no passphrase set): HKDF-SHA256 over material bound to this machine and
  user: ``/etc/machine-id`` (a random 128-bit id; ``/var/lib/dbus/machine-id`` as fallback, the
  host name where neither exists), the user id and name, and the home dir.

Threat model, honestly: the file protects a token copied off this machine or into another
account (backups, dotfile sync, a stray ``scp``, grep over a disk image) and keeps it out of
plain sight. It does not protect against code running as the same user on the same machine:
that code can read the machine id and derive the same key, just as it could ask an unlocked
keyring. Other local users are kept out by the 0600 mode, not by the cipher. Where the machine
id is missing, the key material is guessable (host, user, home) and the file is obfuscation
only; set ``FORECODE_KEYRING_PASSPHRASE`` for real protection there.

Token values never appear in logs, reprs or exception messages.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import json
import logging
import os
import platform
import secrets
import threading
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import platformdirs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = [
    "FILE_NAME",
    "PASSPHRASE_ENV",
    "TokenFileError",
    "TokenStore",
    "data_dir",
    "decrypt_tokens",
    "encrypt_tokens",
    "keyring_usable",
]

log = logging.getLogger(__name__)

FILE_NAME = "tokens.enc"
PASSPHRASE_ENV = "FORECODE_KEYRING_PASSPHRASE"
_FORMAT = "forecode-tokens"
_VERSION = 1
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_HKDF_INFO = b"forecode token file v1"
_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")

_process_lock = threading.Lock()  # one writer per process; fcntl covers other processes


class TokenFileError(RuntimeError):
    """The encrypted token file cannot be read: damaged, changed, wrong passphrase or copied
    from another machine or user. The message says what to do; it never holds a token."""


def data_dir() -> Path:
    """``$FORECODE_DATA_DIR`` if set, else the platform's user data dir for Forecode (the same
    rule as ``forecode_core.store.settings.data_dir``, which this package may not import)."""
    env = os.environ.get("FORECODE_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("forecode", appauthor=False))


def keyring_usable(backend: Any) -> bool:
    """False for keyring's placeholder backends (fail, null) and a chainer with nothing in it."""
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(keyring_usable(b) for b in backend.backends)
    return True


class TokenStore:
    """``get``/``set``/``delete`` named tokens for ``service``; ``backend`` says where they go.

    ``fallback_dir`` is the folder of the encrypted file (default: ``data_dir()``). A keyring
    that raises at run time is given up for the rest of this store's life (with a warning in
    the log) and the encrypted file is used instead.
    """

    def __init__(self, service: str = "forecode", *, fallback_dir: Path | None = None) -> None:
        if not service:
            raise ValueError("a token store needs a service name")
        self._service = service
        self._dir = Path(fallback_dir) if fallback_dir is not None else data_dir()
        try:
            backend = keyring.get_keyring()
        except Exception as exc:  # a broken keyring config must not stop the editor
            log.warning(
                "the keyring could not be loaded (%s); using the encrypted file", type(exc).__name__
            )
            backend = None
        self._keyring = backend if backend is not None and keyring_usable(backend) else None

    def __repr__(self) -> str:
        return f"TokenStore(service={self._service!r}, backend={self.backend!r})"

    @property
    def backend(self) -> str:
        if self._keyring is not None:
            return f"keyring:{self._keyring.name}"
        return "encrypted-file"

    @property
    def path(self) -> Path:
        """Where the encrypted file is (or would be)."""
        return self._dir / FILE_NAME

    def get(self, name: str) -> str | None:
        _check_name(name)
        if self._keyring is not None:
            try:
                return self._keyring.get_password(self._service, name)
            except keyring.errors.KeyringError as exc:
                self._give_up_keyring(exc)
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        _check_name(name)
        if not isinstance(value, str) or not value:
            raise ValueError("a token must be a non-empty string")
        if self._keyring is not None:
            try:
                self._keyring.set_password(self._service, name, value)
                return
            except keyring.errors.KeyringError as exc:
                self._give_up_keyring(exc)
        with self._locked():
            tokens = self._read()
            tokens[name] = value
            self._write(tokens)

    def delete(self, name: str) -> None:
        """Forget ``name`` (no error if it was not stored)."""
        _check_name(name)
        if self._keyring is not None:
            try:
                with contextlib.suppress(keyring.errors.PasswordDeleteError):
                    self._keyring.delete_password(self._service, name)
                return
            except keyring.errors.KeyringError as exc:
                self._give_up_keyring(exc)
        with self._locked():
            tokens = self._read()
            if tokens.pop(name, None) is None:
                return
            if tokens:
                self._write(tokens)
            else:
                self.path.unlink(missing_ok=True)

    # -----------------------------------------------------------------------------------------
    # the encrypted file

    def _give_up_keyring(self, exc: Exception) -> None:
        log.warning(
            "the keyring failed (%s); tokens go to the encrypted file %s from now on",
            type(exc).__name__,
            self.path,
        )
        self._keyring = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write across threads and (where fcntl exists) processes."""
        with _process_lock:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                import fcntl
            except ImportError:  # Windows: keyring works there; one process at a time
                yield
                return
            fd = os.open(self._dir / ".tokens.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        return decrypt_tokens(raw, path=self.path)

    def _write(self, tokens: dict[str, str]) -> None:
        blob = encrypt_tokens(tokens)
        _write_private(self.path, blob)


class _Kdf(StrEnum):
    """Where the file's key comes from (its header's ``kdf``)."""

    SCRYPT = "scrypt"  # the passphrase
    MACHINE = "machine"  # this machine and user


def encrypt_tokens(tokens: dict[str, str]) -> bytes:
    """The file's bytes for ``tokens``, keyed by the passphrase if set, else the machine."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    kdf = _Kdf.SCRYPT if passphrase else _Kdf.MACHINE
    salt = secrets.token_bytes(16)
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "kdf": kdf,
        "salt": base64.b64encode(salt).decode("ascii"),
    }
    key = _derive_key(kdf, salt, passphrase)
    nonce = secrets.token_bytes(12)
    plaintext = json.dumps(tokens, sort_keys=True).encode("utf-8")
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(header))
    envelope = dict(
        header,
        nonce=base64.b64encode(nonce).decode("ascii"),
        ciphertext=base64.b64encode(ciphertext).decode("ascii"),
    )
    return (json.dumps(envelope, indent=1) + "\n").encode("ascii")


def decrypt_tokens(raw: bytes, *, path: Path | str = FILE_NAME) -> dict[str, str]:
    """The tokens in a file written by ``encrypt_tokens``; TokenFileError if that fails."""
    damaged = (
        f"The token file {path} is damaged or was changed; delete it and enter the "
        "access token again"
    )
    try:
        envelope = json.loads(raw.decode("ascii"))
        header = {
            "format": envelope["format"],
            "version": envelope["version"],
            "kdf": envelope["kdf"],
            "salt": envelope["salt"],
        }
        salt = base64.b64decode(envelope["salt"], validate=True)
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        ciphertext = base64.b64decode(envelope["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise TokenFileError(damaged) from exc
    if header["format"] != _FORMAT or header["version"] != _VERSION:
        raise TokenFileError(
            f"The token file {path} is not a version {_VERSION} Forecode "
            "token file; delete it and enter the access token again"
        )
    if header["kdf"] not in tuple(_Kdf) or len(nonce) != 12:
        raise TokenFileError(damaged)
    kdf = _Kdf(header["kdf"])
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if kdf == _Kdf.SCRYPT and not passphrase:
        raise TokenFileError(
            f"The token file {path} is locked with a passphrase; set "
            f"{PASSPHRASE_ENV} to it, or delete the file and enter the access "
            "token again"
        )
    key = _derive_key(kdf, salt, passphrase)
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _aad(header))
    except InvalidTag:
        why = (
            "the passphrase is wrong"
            if kdf == _Kdf.SCRYPT
            else "it was written on another machine or by another user"
        )
        raise TokenFileError(
            f"The token file {path} cannot be decrypted: it is damaged, was "
            f"changed, or {why}. Delete it and enter the access token "
            "again"
        ) from None
    try:
        tokens = json.loads(plaintext.decode("utf-8"))
    except ValueError as exc:
        raise TokenFileError(damaged) from exc
    if not isinstance(tokens, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tokens.items()
    ):
        raise TokenFileError(damaged)
    return tokens


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _derive_key(kdf: _Kdf, salt: bytes, passphrase: str | None) -> bytes:
    if kdf == _Kdf.SCRYPT:
        assert passphrase
        return Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(
            passphrase.encode("utf-8")
        )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(
        _machine_material()
    )


def _machine_material() -> bytes:
    """Bytes bound to this machine and user (see the module docstring for what they buy)."""
    machine = ""
    for candidate in _MACHINE_ID_FILES:
        try:
            machine = Path(candidate).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if machine:
            break
    if not machine:
        machine = "host:" + platform.node()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    uid = str(os.getuid()) if hasattr(os, "getuid") else ""
    parts = (machine, uid, user, str(Path.home()))
    return hashlib.sha256("\0".join(parts).encode("utf-8")).digest()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("a token needs a non-empty name")
