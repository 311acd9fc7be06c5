"""The workspace key and everything derived from it: what lets the index live on a service that
never sees plaintext code or file paths.

A workspace has one secret, the **workspace key**: 32 random bytes (``generate_workspace_key``).
The caller stores it (the OS keyring via ``cloud_client.tokens.TokenStore``; ``export_key`` /
``import_key`` give a text form for it); this module only ever receives the bytes. Teammates who
share the key share the service's embedding cache; without it, nothing the service holds can be
linked to code.

``WorkspaceKeys(key)`` derives one independent sub-key per purpose with HKDF-SHA256
(``info = b"forecode.index.v1/" + purpose``), so a leak of one use never weakens another:

=========  ======================================================================================
purpose    use
=========  ======================================================================================
chunk      ``chunk_hash``: HMAC-SHA256 over a chunk's content hash (sha256 of its normalised
           text). The service keys its embedding cache by it; it cannot confirm a guess of the
           code without the key.
tree       ``file_hash``: a Merkle leaf, HMAC-SHA256 over the sha256 of the file's bytes.
path       ``obfuscate_segment``: AES-SIV (RFC 5297, 512-bit key) over one path segment,
           with the obfuscated path of its parent folder as associated data (see below).
token      ``token_hash``: HMAC-SHA256 over one lexical token (see ``lexical_tokens``),
           truncated to ``TOKEN_HASH_BYTES``, the terms of the service's BM25 index.
payload    ``seal`` / ``open``: AES-256-GCM with a random nonce, for anything else that must
           be stored on the service and read back only by key holders.
vector     ``vector_transform``: the seed of a secret orthogonal matrix that rotates every
           embedding the client sends (chunks and queries alike), so the service's vectors
           cannot confirm a guess of the code (``forecode_core.index.vector_transform``).
id         ``key_id``: a public name for the key (HKDF output, not the key) so the service can
           keep the indexes of different keys apart. Derived with the vector space's name
           (``VECTOR_SPACE``): a client that rotates its vectors another way (or not at all)
           gets another workspace on the service, so the two kinds of vector never mix.
=========  ======================================================================================

Path obfuscation
----------------
Chosen scheme: **reversible, deterministic, per segment, bound to the parent**. A segment is
UTF-8 encoded, padded to a multiple of ``SEGMENT_PAD`` bytes (ISO/IEC 7816-4: ``0x80`` then
zeros) and encrypted with AES-SIV; the associated data is the *obfuscated* path of the parent
folder (``""`` at the root). The result is base64url without padding (never contains ``/``),
so obfuscated paths are still ``/``-joined and the tree structure syncs:

* deterministic: the same key, parent and name always give the same string, so client and
  service agree on node names, and a teammate's tree matches;
* bound to the parent: ``__init__.py`` gets a different name in every folder, so the service
  cannot count how often a name occurs across the tree (frequency analysis). The price: renaming
  a folder renames every obfuscated path below it (the embeddings are still reused, they are
  keyed by content);
* reversible by key holders (``reveal_segment`` / ``reveal_path``), authenticated (a tampered
  or foreign name fails), and the padding hides the exact length of a name.

The client can also map names back through its own Merkle tree (``MerkleTree.resolve``); the
service only answers for files the client has shown it holds, so either works.

Everything here is plain Python over bytes (no Qt, gRPC or llama.cpp).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from forecode_core.index.vector_transform import VECTOR_SPACE, VectorTransform

__all__ = [
    "HASH_BYTES",
    "KEY_BYTES",
    "MAX_SEGMENT_BYTES",
    "SEGMENT_PAD",
    "TOKEN_HASH_BYTES",
    "WorkspaceKeys",
    "export_key",
    "generate_workspace_key",
    "import_key",
    "lexical_tokens",
    "split_identifier",
    "split_path",
    "validate_segment",
]

KEY_BYTES = 32
HASH_BYTES = 32  # every content hash, keyed hash and Merkle node hash
TOKEN_HASH_BYTES = 8  # 64 bits: no collision to speak of in any real vocabulary
SEGMENT_PAD = 8
MAX_SEGMENT_BYTES = 255  # NAME_MAX on Linux and macOS

_INFO = b"forecode.index.v1/"
_EXPORT_PREFIX = "fcwk1:"
_PAYLOAD_VERSION = 1
_NONCE_BYTES = 12


def generate_workspace_key() -> bytes:
    """A new workspace key: ``KEY_BYTES`` bytes from the OS's CSPRNG."""
    return os.urandom(KEY_BYTES)


def export_key(key: bytes) -> str:
    """The key as text for a keyring entry: ``fcwk1:`` + base64url. The text *is* the key."""
    _check_key(key)
    return _EXPORT_PREFIX + base64.urlsafe_b64encode(key).decode("ascii")


def import_key(text: str) -> bytes:
    """The key back from ``export_key``'s text; ``ValueError`` if it is not one."""
    if not text.startswith(_EXPORT_PREFIX):
        raise ValueError("not a Forecode workspace key")
    try:
        key = base64.urlsafe_b64decode(text[len(_EXPORT_PREFIX) :].encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("not a Forecode workspace key") from None
    _check_key(key)
    return key


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"a workspace key is {KEY_BYTES} bytes")


def _derive(key: bytes, purpose: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=_INFO + purpose.encode()
    ).derive(key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text) or len(text) % 4 == 1:
        raise ValueError("not an obfuscated segment")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def validate_segment(segment: str) -> bytes:
    """One path segment's UTF-8 bytes; ``ValueError`` for an empty name, ``.``, ``..``, a name
    holding ``/``, ``\\`` or NUL, or one longer than ``MAX_SEGMENT_BYTES``."""
    if not isinstance(segment, str) or segment in ("", ".", ".."):
        raise ValueError(f"invalid path segment {segment!r}")
    if "/" in segment or "\\" in segment or "\0" in segment:
        raise ValueError("a path segment cannot hold '/', '\\' or NUL")
    data = segment.encode("utf-8", "surrogateescape")
    if len(data) > MAX_SEGMENT_BYTES:
        raise ValueError(f"a path segment is at most {MAX_SEGMENT_BYTES} bytes")
    return data


def _pad(data: bytes) -> bytes:
    padded = data + b"\x80"
    return padded + b"\0" * (-len(padded) % SEGMENT_PAD)


def _unpad(data: bytes) -> bytes:
    end = data.rstrip(b"\0")
    if not end.endswith(b"\x80") or len(data) % SEGMENT_PAD:
        raise ValueError("bad segment padding")
    return end[:-1]


class WorkspaceKeys:
    """The sub-keys of one workspace key (see the module docstring). Holds no copy of the
    workspace key itself; ``repr`` shows only ``key_id``."""

    __slots__ = ("_chunk", "_gcm", "_siv", "_token", "_transforms", "_tree", "_vector", "key_id")

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._chunk = _derive(key, "chunk")
        self._tree = _derive(key, "tree")
        self._token = _derive(key, "token")
        self._siv = AESSIV(_derive(key, "path", 64))
        self._gcm = AESGCM(_derive(key, "payload"))
        self._vector = _derive(key, "vector/" + VECTOR_SPACE)
        self._transforms: dict[int, VectorTransform] = {}
        self.key_id: str = _derive(key, "id/" + VECTOR_SPACE, 16).hex()

    def __repr__(self) -> str:
        return f"WorkspaceKeys(key_id={self.key_id!r})"

    # -- hashes ---------------------------------------------------------------------------------

    def chunk_hash(self, content_hash: bytes) -> bytes:
        """The keyed hash of a chunk, from its 32-byte content hash (``Chunk.content_hash``)."""
        _check_hash(content_hash)
        return hmac.digest(self._chunk, content_hash, "sha256")

    def file_hash(self, digest: bytes) -> bytes:
        """A Merkle leaf: the keyed hash of a file, from the sha256 of its bytes."""
        _check_hash(digest)
        return hmac.digest(self._tree, b"file\0" + digest, "sha256")

    def token_hash(self, token: str) -> bytes:
        """A lexical token (from ``lexical_tokens``) as ``TOKEN_HASH_BYTES`` keyed bytes."""
        if not token:
            raise ValueError("empty token")
        return hmac.digest(self._token, token.encode("utf-8", "surrogatepass"), "sha256")[
            :TOKEN_HASH_BYTES
        ]

    def token_hashes(self, text: str) -> list[bytes]:
        """``token_hash`` of every token of ``lexical_tokens(text)``, repeats kept (BM25 counts
        them)."""
        return [self.token_hash(t) for t in lexical_tokens(text)]

    def vector_transform(self, dimension: int) -> VectorTransform:
        """The workspace's secret rotation of ``dimension``-dimensional embeddings (made once,
        a few milliseconds for 384 dimensions). Apply it to every chunk *and* query vector
        before it leaves the machine."""
        transform = self._transforms.get(dimension)
        if transform is None:
            transform = VectorTransform(self._vector, dimension)
            self._transforms[dimension] = transform
        return transform

    # -- paths ----------------------------------------------------------------------------------

    def obfuscate_segment(self, segment: str, parent: str = "") -> str:
        """One name, encrypted for the folder whose *obfuscated* path is ``parent``."""
        data = validate_segment(segment)
        return _b64(self._siv.encrypt(_pad(data), [parent.encode("ascii")]))

    def reveal_segment(self, obfuscated: str, parent: str = "") -> str:
        """The name back from ``obfuscate_segment``; ``ValueError`` if it was not made with this
        key and parent, or was altered."""
        blob = _unb64(obfuscated)
        if len(blob) < 16 + SEGMENT_PAD:
            raise ValueError("not an obfuscated segment")
        try:
            data = self._siv.decrypt(blob, [parent.encode("ascii")])
        except InvalidTag:
            raise ValueError("segment was not obfuscated with this key and parent") from None
        return _unpad(data).decode("utf-8", "surrogateescape")

    def obfuscate_path(self, path: str) -> str:
        """A relative POSIX path (``src/a.py``), obfuscated segment by segment."""
        parent = ""
        for segment in split_path(path):
            name = self.obfuscate_segment(segment, parent)
            parent = f"{parent}/{name}" if parent else name
        return parent

    def reveal_path(self, obfuscated: str) -> str:
        """The path back from ``obfuscate_path``."""
        parent = ""
        names: list[str] = []
        for name in obfuscated.split("/"):
            names.append(self.reveal_segment(name, parent))
            parent = f"{parent}/{name}" if parent else name
        return "/".join(names)

    # -- payloads -------------------------------------------------------------------------------

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """AES-256-GCM: version byte, 12-byte random nonce, ciphertext and tag. ``aad`` is bound
        to the blob (pass what it belongs to, e.g. the keyed chunk hash)."""
        nonce = os.urandom(_NONCE_BYTES)
        return bytes([_PAYLOAD_VERSION]) + nonce + self._gcm.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        """The plaintext of ``seal``; ``ValueError`` for a wrong key, aad, or altered blob."""
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[0] != _PAYLOAD_VERSION:
            raise ValueError("not a sealed payload")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._gcm.decrypt(nonce, blob[1 + _NONCE_BYTES :], aad)
        except InvalidTag:
            raise ValueError("payload was not sealed with this key and aad") from None


def _check_hash(value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise ValueError(f"a hash is {HASH_BYTES} bytes")


def split_path(path: str) -> list[str]:
    """The segments of a relative POSIX path; ``ValueError`` for an absolute path, ``..``,
    ``.``, empty segments (``a//b``) or an invalid name (``validate_segment``)."""
    if not isinstance(path, str) or not path or path.startswith("/"):
        raise ValueError(f"not a relative path: {path!r}")
    if "\\" in path or "\0" in path:
        raise ValueError("a path segment cannot hold '\\' or NUL")
    segments = path.split("/")
    for segment in segments:
        # a name of at most 63 characters is at most 252 UTF-8 bytes: no need to encode it
        if segment in ("", ".", "..") or len(segment) > MAX_SEGMENT_BYTES // 4:
            validate_segment(segment)
    return segments


# -- lexical tokens -----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d]\w*|\d+", re.UNICODE)
_MIN_TOKEN = 2
_MAX_TOKEN = 64


def _kind(ch: str) -> int:
    return 2 if ch.isdigit() else 1 if ch.isupper() else 0


def split_identifier(identifier: str) -> list[str]:
    """The lower-cased words of one identifier: ``getHTTPResponse_code2`` -> ``get``, ``http``,
    ``response``, ``code``, ``2`` (Unicode-aware: ``straßeName`` -> ``straße``, ``name``)."""
    words: list[str] = []
    for part in identifier.split("_"):
        start = 0
        for i in range(1, len(part)):
            prev, cur = _kind(part[i - 1]), _kind(part[i])
            nxt = _kind(part[i + 1]) if i + 1 < len(part) else -1
            if (
                (prev == 2) != (cur == 2)  # letters | digits
                or (prev == 0 and cur == 1)  # camel | Case
                or (prev == 1 and cur == 1 and nxt == 0)  # HTTP | Response
            ):
                words.append(part[start:i].lower())
                start = i
        if part:
            words.append(part[start:].lower())
    return words


def lexical_tokens(text: str) -> list[str]:
    """The BM25 terms of a text, in order, repeats kept: each identifier's words
    (``split_identifier``) and, for a compound identifier, the whole identifier lower-cased
    too, so ``parse_args`` matches both ``parse_args`` and ``args``. Terms shorter than 2 or
    longer than 64 characters are dropped. Used for chunks and queries alike."""
    return list(_tokens(_WORD.finditer(text)))


def _tokens(matches: Iterable[re.Match[str]]) -> Iterable[str]:
    for match in matches:
        word = match.group(0)
        parts = split_identifier(word)
        whole = word.lower().strip("_")
        if len(parts) > 1 and _MIN_TOKEN <= len(whole) <= _MAX_TOKEN:
            yield whole
        for part in parts:
            if _MIN_TOKEN <= len(part) <= _MAX_TOKEN:
                yield part
