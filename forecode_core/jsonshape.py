"""Checking JSON-shaped data read back into the core's versioned, serialisable inputs (the
completion input, the next-edit input): a wrong type or a missing or unknown key is a
``ValueError`` that names where, never a half-built value."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["check_keys", "check_type", "get", "type_name"]

_T = TypeVar("_T")


def type_name(value: object) -> str:
    """JSON's name for ``value``'s type where it has one (``null``), else Python's."""
    return "null" if value is None else type(value).__name__


def check_type(what: str, value: object, kind: type) -> None:
    """Raise unless ``value`` is a ``kind`` (a bool is an int to Python, never to us)."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{what} must be {kind.__name__}, got {type_name(value)}")


def check_keys(d: object, where: str, keys: tuple[str, ...]) -> dict[str, object]:
    """``d`` as a JSON object with exactly ``keys``."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type_name(d)}")
    missing = [k for k in keys if k not in d]
    unknown = sorted(str(k) for k in d if k not in keys)
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return d


def get(obj: dict[str, object], where: str, key: str, kind: type[_T]) -> _T:
    """``obj[key]``, checked to be a ``kind``."""
    value = obj[key]
    check_type(f"{where}.{key}", value, kind)
    assert isinstance(value, kind)
    return value
