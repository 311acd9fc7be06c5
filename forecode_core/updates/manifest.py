"""A release's manifest: every file of the bundle folder with its size, SHA-256 and mode (or a
symbolic link's target), and where its content is served (a gzip "blob" named by the file's
SHA-256, so a file that did not change between releases is served once and never downloaded
again).

The manifest itself is a TUF target (signed metadata lists its length and hash), so each
blob's length and hash read from it are trusted; the client downloads blobs through TUF's
``download_target`` with those, and checks the unpacked file against ``size``/``sha256``.

JSON shape::

    {"format": "forecode-update-manifest", "format_version": 1, "app_version": "0.2.0",
     "files": [{"path": "_internal/x.so", "size": 10, "sha256": "…", "mode": 493,
                "blob": {"path": "blobs/<sha256>.gz", "length": 7, "sha256": "…"}},
               {"path": "_internal/libfoo.so", "link": "libfoo.so.1"}]}
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "FORMAT",
    "Blob",
    "FileEntry",
    "Manifest",
    "ManifestError",
    "is_newer",
    "manifest_from_json",
    "manifest_to_json",
    "safe_relative_path",
    "sha256_file",
    "version_key",
]

FORMAT = "forecode-update-manifest"
FORMAT_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message says why."""


def sha256_file(path: Path) -> str:
    """A file's SHA-256 (hex), read 1 MiB at a time: the manifest's ``sha256`` of a file, for
    the release that writes it and the client that checks it."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Blob:
    """Where a file's content is served: a gzip file, its length and SHA-256 (of the gzip)."""

    path: str
    length: int
    sha256: str


@dataclass(frozen=True)
class FileEntry:
    """One file of the bundle (``link`` set: a symbolic link, no content)."""

    path: str
    size: int = 0
    sha256: str = ""
    mode: int = 0o644
    blob: Blob | None = None
    link: str | None = None


@dataclass(frozen=True)
class Manifest:
    app_version: str
    files: tuple[FileEntry, ...]

    def content_bytes(self) -> int:
        return sum(f.size for f in self.files if f.link is None)


def version_key(version: str) -> tuple[int, ...]:
    """``"0.10.2"`` -> ``(0, 10, 2)``; a part that is not a number raises ``ManifestError``."""
    parts = version.strip().split(".")
    if not version.strip() or not all(p.isdigit() for p in parts):
        raise ManifestError(f"version {version!r} is not dotted numbers (like 1.2.3)")
    key = [int(p) for p in parts]
    while len(key) > 1 and key[-1] == 0:
        key.pop()  # 1.2 == 1.2.0
    return tuple(key)


def is_newer(candidate: str, installed: str) -> bool:
    return version_key(candidate) > version_key(installed)


def safe_relative_path(path: str) -> str:
    """``path`` when it is a plain relative POSIX path inside the bundle (no ``..``, not
    absolute, no empty or ``.`` parts, no backslash, not the updater's own ``.update``
    folder); else ``ManifestError``."""
    if not path or "\\" in path or "\x00" in path:
        raise ManifestError(f"bad path in manifest: {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(p in ("", ".", "..") for p in path.split("/")):
        raise ManifestError(f"path leaves the install folder: {path!r}")
    if pure.parts[0] == ".update":
        raise ManifestError(f"path inside the updater's own folder: {path!r}")
    return path


def _safe_link(path: str, target: str) -> str:
    """A link's target must stay inside the bundle (relative, resolving under its root)."""
    if not target or target.startswith("/") or "\\" in target:
        raise ManifestError(f"link {path!r} points outside the install folder: {target!r}")
    depth = len(PurePosixPath(path).parts) - 1
    for part in target.split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            raise ManifestError(f"link {path!r} points outside the install folder: {target!r}")
    return target


def _int(obj: dict[str, Any], key: str, what: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ManifestError(f"{what}: {key} is not a non-negative whole number")
    return value


def _hex(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ManifestError(f"{what}: {key} is not a SHA-256 in hex")
    return value


def _entry(obj: object) -> FileEntry:
    if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
        raise ManifestError("a file entry is not an object with a path")
    path = safe_relative_path(obj["path"])
    if "link" in obj:
        link = obj["link"]
        if not isinstance(link, str):
            raise ManifestError(f"{path}: link is not a string")
        return FileEntry(path, link=_safe_link(path, link))
    blob = obj.get("blob")
    if not isinstance(blob, dict) or not isinstance(blob.get("path"), str):
        raise ManifestError(f"{path}: no blob")
    mode = _int(obj, "mode", path) if "mode" in obj else 0o644
    return FileEntry(
        path,
        size=_int(obj, "size", path),
        sha256=_hex(obj, "sha256", path),
        mode=mode & 0o777,
        blob=Blob(
            safe_relative_path(blob["path"]),
            _int(blob, "length", path),
            _hex(blob, "sha256", path),
        ),
    )


def manifest_from_json(data: bytes | str) -> Manifest:
    """Parse and check a manifest; ``ManifestError`` with the reason when it is not one."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ManifestError("not a Forecode update manifest")
    if obj.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"unknown manifest format version {obj.get('format_version')!r}")
    version = obj.get("app_version")
    if not isinstance(version, str):
        raise ManifestError("manifest has no app_version")
    version_key(version)
    files = obj.get("files")
    if not isinstance(files, list) or not files:
        raise ManifestError("manifest lists no files")
    entries = tuple(_entry(f) for f in files)
    seen: set[str] = set()
    for e in entries:
        if e.path in seen:
            raise ManifestError(f"{e.path} is listed twice")
        seen.add(e.path)
    _check_no_file_under_file(entries)
    return Manifest(version, entries)


def _check_no_file_under_file(entries: tuple[FileEntry, ...]) -> None:
    leaves = {e.path for e in entries}
    for e in entries:
        for parent in PurePosixPath(e.path).parents:
            if str(parent) in leaves:
                raise ManifestError(f"{e.path} lies under the file {parent}")


def manifest_to_json(m: Manifest) -> bytes:
    files: list[dict[str, object]] = []
    for e in sorted(m.files, key=lambda f: f.path):
        if e.link is not None:
            files.append({"path": e.path, "link": e.link})
            continue
        assert e.blob is not None
        blob = {"path": e.blob.path, "length": e.blob.length, "sha256": e.blob.sha256}
        files.append(
            {"path": e.path, "size": e.size, "sha256": e.sha256, "mode": e.mode, "blob": blob}
        )
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app_version": m.app_version,
        "files": files,
    }
    return (json.dumps(doc, indent=0, sort_keys=True) + "\n").encode("utf-8")
