"""Versioned JSON documents in per-workspace folders: what the hot-exit backups
(``forecode_core.store.hotexit``) and the chat conversations (``forecode_core.chat.conversations``)
share.

- ``workspace_folder(workspace)``: a workspace's resolved, case-normalised path and the name
  of its folder (the first 16 hex digits of its SHA-256), so any path gives a safe name.
- ``write_document(path, doc)``: the document as UTF-8 JSON, written with ``atomic_write`` (a
  crash leaves the previous complete version); the folder is created. File ``0600``, folder
  ``0700``, whatever they were (``forecode_core.store.private``).
- ``read_document(data, format_name, version, what)``: the bytes back as a ``dict``, or
  ``CorruptDocument`` with a readable reason (not UTF-8, invalid JSON, another format, an
  unknown version). The caller checks the fields and moves a corrupt file aside.

Strings are encoded with ``surrogatepass``: paths from ``os.fsdecode`` may hold lone
surrogates, and they round-trip.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from forecode_core.store.atomic import atomic_write
from forecode_core.store.private import PRIVATE_FILE, private_folder

__all__ = ["CorruptDocument", "read_document", "sha256_hex", "workspace_folder", "write_document"]


class CorruptDocument(Exception):
    """A stored document that cannot be used; the message says why."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def workspace_folder(workspace: str | os.PathLike[str]) -> tuple[str, str]:
    """``(resolved path, folder name)`` for ``workspace``: the name is the first 16 hex digits
    of the SHA-256 of its resolved, case-normalised path."""
    resolved = os.path.normcase(str(Path(workspace).resolve()))
    return resolved, sha256_hex(resolved)[:16]


def write_document(path: Path, doc: dict[str, Any], *, indent: int | None = None) -> None:
    """Write ``doc`` as JSON to ``path`` atomically, creating its folder; both owner-only (a
    store's data is private, ``forecode_core.store.private``). Raises OSError."""
    data = json.dumps(doc, ensure_ascii=False, indent=indent).encode("utf-8", "surrogatepass")
    private_folder(path.parent)
    atomic_write(path, data, mode=PRIVATE_FILE)


def read_document(data: bytes, format_name: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object in ``data`` whose "format" is ``format_name`` and "version" is
    ``version``; else ``CorruptDocument`` ("not a Forecode {what}" for another format)."""
    try:
        doc = json.loads(data.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError as e:
        raise CorruptDocument(f"not UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise CorruptDocument(
            f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        raise CorruptDocument("invalid JSON (nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("format") != format_name:
        raise CorruptDocument(f"not a Forecode {what}")
    if doc.get("version") != version:
        raise CorruptDocument(f"unknown version {doc.get('version')!r} (expected {version})")
    return doc
