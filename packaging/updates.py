"""A release's update: the files of the frozen folder published as a signed update repository
(issue 18: "a code-only update downloads only what changed, verified by signature").

Library: python-tuf (The Update Framework; ``tuf`` 7). Its metadata -- root (the trusted
keys), targets (each published file's length and SHA-256), snapshot and timestamp -- is signed
with the release key; the app's client (``app/services/updates.py``, TUF's ``ngclient``)
trusts only the root embedded in its own bundle (``update/root.json``) and so refuses a file
whose hash is not the signed one, metadata signed by another key, an older version of the
metadata than it has seen (rollback) and expired metadata (freeze). Velopack would have been
the cross-platform choice but its packer (``vpk``) is a .NET tool that cannot run on the build
machine, and on Linux it updates AppImages only; tufup (TUF for PyInstaller apps) patches one
tar of the whole bundle with bsdiff (~650 MB here: gigabytes of memory to diff) and pins an
old tuf: see ARCHITECTURE.md, "Updates".

Layout of the repository (a folder the release pipeline uploads as it is; static hosting)::

    metadata/1.root.json root.json N.targets.json N.snapshot.json timestamp.json
    targets/releases/<sha256>.latest.json      the newest release's manifest
    targets/releases/<sha256>.<version>.json   each release's manifest
    targets/blobs/<sha256 of gz>.<sha256 of the file>.gz   a file's content, gzip

(consistent snapshots: every served name carries its hash, so a host can be updated while
clients read it). Manifests are TUF targets; blobs are listed in the signed manifest with
their length and hash (``forecode_core.updates.manifest``), so a code-only release adds one
small manifest and the blobs of the few files that changed (the executable, ``BUILD.json``).

The key: an Ed25519 private key in PEM (PKCS#8), passed by the release pipeline (a CI secret
written to a file: ``--update-key``) and never committed; the first release makes the root
with its public key. ``python3 packaging/updates.py keygen FILE`` makes one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from securesystemslib.signer import CryptoSigner  # noqa: E402
from tuf.api.metadata import (  # noqa: E402
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer  # noqa: E402

from forecode_core.updates.manifest import (  # noqa: E402
    Blob,
    FileEntry,
    Manifest,
    is_newer,
    manifest_from_json,
    manifest_to_json,
    sha256_file,
)

__all__ = [
    "LATEST",
    "embed_trust",
    "keygen",
    "load_signer",
    "manifest_of",
    "publish",
    "release",
]

LATEST = "releases/latest.json"
UPDATE_DIR = "update"  # in the bundle: root.json (the trusted keys) and channel.json (the URL)
ROOT_EXPIRY = timedelta(days=3 * 365)
# Without an online timestamp service the metadata is re-signed at each release only: a
# client refuses metadata older than this (freeze protection) -- a release a year keeps it.
METADATA_EXPIRY = timedelta(days=365)
ROLES = ("root", "targets", "snapshot", "timestamp")


def keygen(path: Path) -> None:
    """A new Ed25519 private key (PEM, PKCS#8, unencrypted; keep it secret) at ``path``."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_signer(pem: bytes) -> CryptoSigner:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"updates: the release key is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit("updates: the release key must be Ed25519")
    return CryptoSigner(key)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write(
    md: Metadata[Root] | Metadata[Targets] | Metadata[Snapshot] | Metadata[Timestamp], path: Path
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    md.to_file(str(tmp), JSONSerializer(compact=False))
    os.replace(tmp, path)


def _init_root(meta: Path, signer: CryptoSigner) -> None:
    root = Root(expires=_now() + ROOT_EXPIRY, consistent_snapshot=True)
    for role in ROLES:
        root.add_key(signer.public_key, role)
    md = Metadata(root)
    md.sign(signer)
    _write(md, meta / "1.root.json")
    shutil.copy2(meta / "1.root.json", meta / "root.json")


def _check_key(meta: Path, signer: CryptoSigner) -> None:
    root = Metadata[Root].from_file(str(meta / "root.json")).signed
    for role in ROLES:
        if signer.public_key.keyid not in root.roles[role].keyids:
            raise SystemExit(
                f"updates: the release key is not the repository's {role} key "
                f"({meta / 'root.json'}); sign with the key its first release used"
            )


def ensure_repo(repo: Path, signer: CryptoSigner) -> None:
    meta = repo / "metadata"
    if not (meta / "root.json").exists():
        _init_root(meta, signer)
    _check_key(meta, signer)


def embed_trust(bundle: Path, repo: Path, url: str) -> None:
    """The trusted root and the update URL into ``bundle/update/`` (the key the app checks
    signatures with ships inside the app)."""
    folder = bundle / UPDATE_DIR
    folder.mkdir(exist_ok=True)
    shutil.copy2(repo / "metadata" / "root.json", folder / "root.json")
    channel = {"url": url.rstrip("/")}
    (folder / "channel.json").write_text(json.dumps(channel) + "\n", encoding="utf-8")


# --- the manifest and its blobs ---


def _blob(repo: Path, src: Path, sha: str) -> Blob:
    """The file's gzip blob in the repository (made once per content; a later release whose
    file did not change reuses it)."""
    blobs = repo / "targets" / "blobs"
    existing = next(blobs.glob(f"*.{sha}.gz"), None) if blobs.exists() else None
    if existing is None:
        blobs.mkdir(parents=True, exist_ok=True)
        tmp = blobs / f"{sha}.gz.partial"
        with src.open("rb") as f, gzip.GzipFile(tmp, "wb", compresslevel=6, mtime=0) as out:
            shutil.copyfileobj(f, out, 1 << 20)
        existing = blobs / f"{sha256_file(tmp)}.{sha}.gz"
        os.replace(tmp, existing)
    gz_sha = existing.name.split(".", 1)[0]
    return Blob(f"blobs/{sha}.gz", existing.stat().st_size, gz_sha)


def manifest_of(bundle: Path, version: str, repo: Path) -> Manifest:
    """Every file and symbolic link of ``bundle`` (its ``.update`` folder left out), each
    file's blob written into ``repo``."""
    entries: list[FileEntry] = []
    for path in sorted(bundle.rglob("*")):
        rel = path.relative_to(bundle).as_posix()
        if rel == ".update" or rel.startswith(".update/"):
            continue
        if path.is_symlink():
            entries.append(FileEntry(rel, link=os.readlink(path)))
        elif path.is_file():
            sha = sha256_file(path)
            mode = path.stat().st_mode & 0o777
            entries.append(FileEntry(rel, path.stat().st_size, sha, mode, _blob(repo, path, sha)))
    manifest = Manifest(version, tuple(entries))
    manifest_from_json(manifest_to_json(manifest))  # the client's checks hold
    return manifest


# --- the signed metadata ---


def _load_targets(meta: Path) -> Targets:
    if (meta / "targets.json").exists():
        targets = Metadata[Targets].from_file(str(meta / "targets.json")).signed
        targets.version += 1
        return targets
    return Targets(version=1, expires=_now())


def _load_snapshot(meta: Path) -> Snapshot:
    if (meta / "snapshot.json").exists():
        snapshot = Metadata[Snapshot].from_file(str(meta / "snapshot.json")).signed
        snapshot.version += 1
        return snapshot
    return Snapshot(version=1, expires=_now())


def _load_timestamp(meta: Path) -> Timestamp:
    if (meta / "timestamp.json").exists():
        timestamp = Metadata[Timestamp].from_file(str(meta / "timestamp.json")).signed
        timestamp.version += 1
        return timestamp
    return Timestamp(version=1, expires=_now())


def _served(repo: Path, target_path: str, data: bytes, version: str) -> TargetFile:
    info = TargetFile.from_data(target_path, data)
    info.unrecognized_fields["custom"] = {"version": version}  # read by latest_version
    folder, _, name = target_path.rpartition("/")
    out = repo / "targets" / folder / f"{info.hashes['sha256']}.{name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return info


def latest_version(repo: Path) -> str | None:
    """The newest published version, from the signed targets metadata alone (a release
    pipeline needs only ``metadata/`` of the served repository to publish the next one)."""
    meta = repo / "metadata"
    if not (meta / "targets.json").exists():
        return None
    targets = Metadata[Targets].from_file(str(meta / "targets.json")).signed
    info = targets.targets.get(LATEST)
    custom = info.custom if info is not None else None
    return str(custom["version"]) if isinstance(custom, dict) and "version" in custom else None


def publish(repo: Path, manifest: Manifest, signer: CryptoSigner) -> None:
    """Add ``manifest`` as the newest release: targets, snapshot and timestamp re-signed with
    their versions bumped (timestamp last: a client sees the release only once all is there)."""
    meta = repo / "metadata"
    previous = latest_version(repo)
    if previous is not None and not is_newer(manifest.app_version, previous):
        raise SystemExit(
            f"updates: version {manifest.app_version} is not newer than the published "
            f"{previous}; bump [project] version in pyproject.toml"
        )
    data = manifest_to_json(manifest)
    targets = _load_targets(meta)
    version = manifest.app_version
    targets.targets[LATEST] = _served(repo, LATEST, data, version)
    path = f"releases/{version}.json"
    targets.targets[path] = _served(repo, path, data, version)
    targets.expires = _now() + METADATA_EXPIRY
    snapshot = _load_snapshot(meta)
    snapshot.meta["targets.json"] = MetaFile(version=targets.version)
    snapshot.expires = _now() + METADATA_EXPIRY
    timestamp = _load_timestamp(meta)
    timestamp.snapshot_meta = MetaFile(version=snapshot.version)
    timestamp.expires = _now() + METADATA_EXPIRY
    _sign_and_write(Metadata(targets), signer, meta, "targets")
    _sign_and_write(Metadata(snapshot), signer, meta, "snapshot")
    md_ts = Metadata(timestamp)  # last: clients see the release once everything is in place
    md_ts.sign(signer)
    _write(md_ts, meta / "timestamp.json")


def _sign_and_write(md: Metadata[Any], signer: CryptoSigner, meta: Path, name: str) -> None:
    md.sign(signer)
    _write(md, meta / f"{md.signed.version}.{name}.json")
    _write(md, meta / f"{name}.json")


def release(bundle: Path, repo: Path, key_pem: bytes, url: str, version: str) -> Manifest:
    """The whole step for one release: the repository made on the first release, the trusted
    root and the URL embedded in the bundle, its manifest and blobs published and signed.
    Run it before the bundle is packed (the tarball carries ``update/``)."""
    signer = load_signer(key_pem)
    ensure_repo(repo, signer)
    embed_trust(bundle, repo, url)
    manifest = manifest_of(bundle, version, repo)
    publish(repo, manifest, signer)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/updates.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("keygen", help="write a new Ed25519 release key (PEM) to FILE")
    gen.add_argument("file", type=Path)
    rel = sub.add_parser("release", help="publish a frozen folder as a release")
    rel.add_argument("bundle", type=Path)
    rel.add_argument("--repo", type=Path, required=True)
    rel.add_argument("--key", type=Path, required=True, help="the release key (PEM)")
    rel.add_argument("--url", required=True, help="where the repository is served")
    rel.add_argument("--version", required=True)
    args = parser.parse_args(argv)
    if args.command == "keygen":
        keygen(args.file)
        return 0
    m = release(args.bundle, args.repo, args.key.read_bytes(), args.url, args.version)
    print(f"updates: published {m.app_version}: {len(m.files)} files in {args.repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
