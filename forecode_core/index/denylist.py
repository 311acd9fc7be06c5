"""Secrets never leave the machine: the files the index refuses before anything is read into a
hash, a chunk or an embedding.

``secret_reason(path, data)`` is the one predicate; the Merkle tree and the chunker both call it
first. A file is refused

* by its **path**, case-insensitively (``DENY_NAMES``: globs on the file name; ``DENY_DIRS``:
  folders refused whole; ``DENY_SUFFIXES``: trailing segments; ``DENY_PATTERNS`` is the same
  list in gitignore syntax): ``.env`` files, key and certificate stores, package-manager and
  cloud credentials, anything inside ``.ssh`` or ``.gnupg``;
* by its **content**: a PEM/OpenSSH/PGP private key block (``-----BEGIN ... PRIVATE KEY``)
  or a PuTTY key file anywhere in the bytes, whatever the file is called.

The list is deliberately broad (``.env.example`` is refused too): a false positive costs one file
missing from search; a false negative leaks a credential. A ``.forecodeignore`` adds more.
"""

from __future__ import annotations

import fnmatch
import re

__all__ = [
    "DENY_DIRS",
    "DENY_NAMES",
    "DENY_PATTERNS",
    "DENY_SUFFIXES",
    "is_secret_path",
    "looks_like_private_key",
    "secret_reason",
]

# Globs on a file's name (lower-cased).
DENY_NAMES: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.ppk",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    "credentials.json",
)
# Folders whose whole content is refused, wherever they are.
DENY_DIRS: tuple[str, ...] = (".ssh", ".gnupg")
# Files refused by their last segments, wherever they are.
DENY_SUFFIXES: tuple[str, ...] = (".aws/credentials", ".aws/config", ".docker/config.json")

DENY_PATTERNS: tuple[str, ...] = (
    *DENY_NAMES,
    *(f"{d}/" for d in DENY_DIRS),
    *(f"**/{s}" for s in DENY_SUFFIXES),
)
"""The whole list in gitignore syntax (documentation, and for a ``.forecodeignore``)."""

_NAME = re.compile("|".join(fnmatch.translate(g) for g in DENY_NAMES))
_DIRS = frozenset(DENY_DIRS)

_KEY_BLOCK = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d+:"
)


def is_secret_path(path: str) -> bool:
    """Whether a workspace-relative POSIX path (``config/.env``) names a secret."""
    lowered = path.lower()
    segments = lowered.split("/")
    if _NAME.match(segments[-1]) is not None:
        return True
    if len(segments) > 1 and not _DIRS.isdisjoint(segments[:-1]):
        return True
    return any(lowered == s or lowered.endswith("/" + s) for s in DENY_SUFFIXES)


def looks_like_private_key(data: bytes) -> bool:
    """Whether the bytes hold a private key block."""
    return _KEY_BLOCK.search(data) is not None


def secret_reason(path: str, data: bytes | None = None) -> str | None:
    """``"secret path"``, ``"secret content"`` (when ``data`` is given), or None for a file
    the index may read."""
    if is_secret_path(path):
        return "secret path"
    if data is not None and looks_like_private_key(data):
        return "secret content"
    return None
