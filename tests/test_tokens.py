"""TokenStore: the keyring when one works, else an AEAD-encrypted file with no plaintext token.

The no-plaintext proof: with keyring's null backend (the situation of a headless Linux box),
a token is stored, then every file under the dirs involved is scanned for the token's bytes
in plain, base64 (every alignment, standard and URL-safe) and hex.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from conftest import REPO
from keyring.backends import chainer, fail, null

from cloud_client import tokens as tokens_mod
from cloud_client.tokens import FILE_NAME, PASSPHRASE_ENV, TokenFileError, TokenStore


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A working keyring (what a desktop has), kept in memory for the test."""

    # Below keyring's fail backend, so that defining this class never makes keyring pick it.
    priority = -10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


class LockedKeyring(MemoryKeyring):
    """A keyring that exists but fails (no D-Bus session, a locked collection)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("locked")


class EmptyChainer(chainer.ChainerBackend):
    """keyring's chainer when no backend is viable (no D-Bus, no Secret Service)."""

    backends = ()


@pytest.fixture
def use_keyring() -> Iterator[object]:
    """Set the process-wide keyring for one test and put the old one back."""
    old = keyring.get_keyring()
    holder: list[object] = []

    def setter(backend: keyring.backend.KeyringBackend) -> None:
        keyring.set_keyring(backend)
        holder.append(backend)

    yield setter
    keyring.set_keyring(old)


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


def encodings_of(secret: str) -> list[bytes]:
    """The token's bytes as they could sit in a file: plain, hex, and base64 at every
    alignment (a token inside a larger base64 blob), standard and URL-safe alphabets."""
    raw = secret.encode()
    forms = [raw, raw.hex().encode(), raw.hex().upper().encode(), secret.encode("utf-16-le")]
    for pad in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(b"\0" * pad + raw).rstrip(b"=")
            # Drop the characters that mix in the padding or the following bytes.
            lead = (pad * 4 + 2) // 3
            forms.append(text[lead:-2])
    return [f for f in forms if len(f) >= 16]


def files_holding(secret: str, *roots: Path) -> list[str]:
    forms = encodings_of(secret)
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                hits += [f"{path} holds {form[:12]!r}..." for form in forms if form in data]
    return hits


def test_encodings_of_finds_a_token_inside_base64(tmp_path: Path) -> None:
    """The scanner itself works: each encoding of a token is found where it was written."""
    secret = secrets.token_urlsafe(32)
    for i, blob in enumerate(
        (
            b"xx" + secret.encode(),
            base64.b64encode(b"ab" + secret.encode()),
            base64.b64encode(b"a" + secret.encode() + b"z"),
            secret.encode().hex().encode(),
        )
    ):
        (tmp_path / f"f{i}").write_bytes(blob)
        assert files_holding(secret, tmp_path), i
        (tmp_path / f"f{i}").unlink()


def test_null_keyring_stores_an_encrypted_file_without_the_token(
    use_keyring, isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    use_keyring(null.Keyring())
    store = TokenStore()
    assert store.backend == "encrypted-file"
    secret = secrets.token_urlsafe(32)
    store.set("cloud", secret)

    path = isolated_dirs["data"] / FILE_NAME
    assert store.path == path and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert files_holding(secret, isolated_dirs["data"], isolated_dirs["config"], tmp_path) == []
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

    assert store.get("cloud") == secret
    assert TokenStore().get("cloud") == secret  # a second store (a new editor) reads it
    assert store.get("other") is None
    assert secret not in repr(store)


def test_python_keyring_backend_env_null_in_a_fresh_process(isolated_dirs: dict[str, Path]) -> None:
    """The same through keyring's own configuration (PYTHON_KEYRING_BACKEND), in a process of
    its own, as a headless editor would run."""
    secret = secrets.token_urlsafe(32)
    env = dict(
        os.environ,
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        PYTHONPATH=str(REPO),
        FORECODE_TEST_SECRET=secret,
    )
    code = (
        "import os; from cloud_client.tokens import TokenStore; s = TokenStore(); "
        "s.set('cloud', os.environ['FORECODE_TEST_SECRET']); print(s.backend)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "encrypted-file"
    assert files_holding(secret, isolated_dirs["data"]) == []
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cloud_client.tokens import TokenStore; print(TokenStore().get('cloud'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert read.stdout.strip() == secret


@pytest.mark.parametrize("backend", [fail.Keyring(), EmptyChainer()], ids=["fail", "empty-chainer"])
def test_unusable_keyrings_fall_back_to_the_file(use_keyring, backend: object) -> None:
    use_keyring(backend)
    assert TokenStore().backend == "encrypted-file"


def test_a_working_keyring_is_used_and_no_file_is_written(
    use_keyring, isolated_dirs: dict[str, Path]
) -> None:
    ring = MemoryKeyring()
    use_keyring(ring)
    store = TokenStore()
    assert store.backend.startswith("keyring:")
    store.set("cloud", "tok-123")
    assert ring.items == {("forecode", "cloud"): "tok-123"}
    assert store.get("cloud") == "tok-123"
    store.delete("cloud")
    store.delete("cloud")  # twice is fine
    assert store.get("cloud") is None
    assert not (isolated_dirs["data"] / FILE_NAME).exists()


def test_a_failing_keyring_gives_way_to_the_file(
    use_keyring, isolated_dirs: dict[str, Path]
) -> None:
    use_keyring(LockedKeyring())
    store = TokenStore()
    assert store.backend.startswith("keyring:")
    secret = secrets.token_urlsafe(32)
    store.set("cloud", secret)
    assert store.backend == "encrypted-file"
    assert store.get("cloud") == secret
    assert files_holding(secret, isolated_dirs["data"]) == []


def test_delete_and_several_names(use_keyring, tmp_path: Path) -> None:
    use_keyring(null.Keyring())
    store = TokenStore(fallback_dir=tmp_path / "t")
    store.set("a", "token-a")
    store.set("b", "token-b")
    store.set("a", "token-a2")
    assert (store.get("a"), store.get("b")) == ("token-a2", "token-b")
    store.delete("a")
    assert (store.get("a"), store.get("b")) == (None, "token-b")
    store.delete("b")
    assert not store.path.exists()
    with pytest.raises(ValueError, match="non-empty"):
        store.set("a", "")
    with pytest.raises(ValueError, match="name"):
        store.get("")


def tamper(path: Path, field: str, change) -> None:
    envelope = json.loads(path.read_text())
    envelope[field] = change(envelope[field])
    path.write_text(json.dumps(envelope))


def flip_b64(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "field,change",
    [
        ("ciphertext", flip_b64),
        ("nonce", flip_b64),
        ("salt", flip_b64),
        ("kdf", lambda v: "machine" if v == "scrypt" else "scrypt"),
    ],
    ids=["ciphertext", "nonce", "salt", "kdf"],
)
def test_a_tampered_file_is_a_clear_error(
    use_keyring, tmp_path: Path, field: str, change, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keyring(null.Keyring())
    if field == "kdf":
        monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")  # both kdfs can then be tried
    store = TokenStore(fallback_dir=tmp_path)
    store.set("cloud", "secret-value-1")
    tamper(store.path, field, change)
    with pytest.raises(TokenFileError, match=r"cannot be decrypted|damaged") as err:
        store.get("cloud")
    assert "secret-value-1" not in str(err.value)
    assert str(store.path) in str(err.value)


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b'{"format": "forecode-tokens"}', b"\xff\xfe garbage"]
)
def test_a_damaged_file_is_a_clear_error(use_keyring, tmp_path: Path, content: bytes) -> None:
    use_keyring(null.Keyring())
    store = TokenStore(fallback_dir=tmp_path)
    store.path.write_bytes(content)
    with pytest.raises(TokenFileError, match=r"damaged|not a version"):
        store.get("cloud")
    with pytest.raises(TokenFileError):
        store.set("cloud", "x")  # a damaged file is not silently overwritten


def test_the_file_is_useless_on_another_machine_or_account(
    use_keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keyring(null.Keyring())
    store = TokenStore(fallback_dir=tmp_path / "here")
    store.set("cloud", "secret-value-2")
    other_id = tmp_path / "machine-id"
    other_id.write_text(secrets.token_hex(16) + "\n")
    original = tokens_mod._MACHINE_ID_FILES
    monkeypatch.setattr(tokens_mod, "_MACHINE_ID_FILES", (str(other_id),))
    with pytest.raises(TokenFileError, match="another machine or by another user"):
        store.get("cloud")
    monkeypatch.setattr(tokens_mod, "_MACHINE_ID_FILES", original)
    assert store.get("cloud") == "secret-value-2"
    monkeypatch.setenv("HOME", str(tmp_path / "someone-else"))
    with pytest.raises(TokenFileError, match="another machine"):
        store.get("cloud")


def test_a_passphrase_locks_the_file(
    use_keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keyring(null.Keyring())
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    store = TokenStore(fallback_dir=tmp_path)
    store.set("cloud", "secret-value-3")
    assert json.loads(store.path.read_text())["kdf"] == "scrypt"
    assert store.get("cloud") == "secret-value-3"
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(TokenFileError, match="passphrase is wrong"):
        store.get("cloud")
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(TokenFileError, match=PASSPHRASE_ENV):
        store.get("cloud")
