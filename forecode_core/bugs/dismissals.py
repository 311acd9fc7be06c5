"""Dismissed likely-bug findings of one workspace: a set of ``review.dismissal_key`` values,
stored as ``{"format": "forecode-bug-dismissals", "version": 1, "keys": [...]}`` (newest last,
at most ``MAX_KEYS``: the oldest go first)."""

from __future__ import annotations

from typing import Any

from forecode_core.store.json_store import CorruptDocument, read_document

__all__ = ["FORMAT", "MAX_KEYS", "Dismissals"]

FORMAT = "forecode-bug-dismissals"
VERSION = 1
MAX_KEYS = 5000


class Dismissals:
    def __init__(self, keys: list[str] | None = None) -> None:
        self._keys: dict[str, None] = dict.fromkeys(keys or [])

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        self._keys.pop(key, None)
        self._keys[key] = None
        while len(self._keys) > MAX_KEYS:
            del self._keys[next(iter(self._keys))]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "keys": list(self._keys)}

    @classmethod
    def from_bytes(cls, data: bytes) -> Dismissals:
        """Raises ``CorruptDocument`` saying why."""
        doc = read_document(data, FORMAT, VERSION, "bug dismissals file")
        keys = doc.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise CorruptDocument("keys must be a list of strings")
        return cls(keys[-MAX_KEYS:])
