"""Checking for, downloading and staging an update (issue 18) -- never on the UI thread, never
applied here: the window's ``Updates`` owner runs ``check_and_stage`` on its worker thread and
asks the user; ``app.services.update_start`` applies a staged update at the next start.

python-tuf's ``ngclient`` (``tuf`` 7) fetches the release repository's signed metadata
(``packaging/updates.py`` publishes it), trusting only the root embedded in the bundle
(``update/root.json``), and downloads each file through ``download_target``, which checks the
length and SHA-256 that the signed metadata (and the manifest it signs) give. A code-only
release downloads only the files that changed: the others are taken from the installed folder
after their SHA-256 matched the new manifest's (``forecode_core.updates.plan``). The new
version is assembled in ``<install>/.update/staging/<version>``; a bad signature, expired
metadata or a file that does not match is refused with a clear message, the staging folder
removed and the installed app unchanged. Off-line (no route, refused, timed out, HTTP error)
the check says nothing unless the user asked for it.

tuf and cryptography are imported inside ``check_and_stage`` (the first window must not wait
for them: tests/test_startup_imports.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecode_core.updates.manifest import (
    FileEntry,
    Manifest,
    ManifestError,
    is_newer,
    sha256_file,
)
from forecode_core.updates.manifest import manifest_from_json as parse_manifest
from forecode_core.updates.plan import Action, stage_plan
from forecode_core.updates.start import InstallKind, Phase, UpdateState, install_kind

from .update_start import installed_version, read_state, update_dir, write_state

if TYPE_CHECKING:
    from tuf.ngclient.updater import Updater

__all__ = [
    "Channel",
    "Outcome",
    "OutcomeKind",
    "approve",
    "channel_of",
    "check_and_stage",
    "kind_of_install",
]

LATEST = "releases/latest.json"
DPKG_LIST = Path("/var/lib/dpkg/info/forecode.list")


class OutcomeKind(Enum):
    UP_TO_DATE = "up_to_date"
    OFFLINE = "offline"  # the server could not be reached (said only when asked)
    STAGED = "staged"  # a newer version is downloaded, verified and waits for the user's yes
    REFUSED = "refused"  # a bad signature, expired metadata or a file that does not match
    UNAVAILABLE = "unavailable"  # this install does not update itself (apt, read-only, dev)


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    version: str = ""
    message: str = ""
    downloaded_bytes: int = 0
    downloaded_files: int = 0
    reused_files: int = 0


@dataclass(frozen=True)
class Channel:
    install: Path
    url: str  # the repository's base URL: metadata/ and targets/ below it
    root: bytes  # the trusted root metadata shipped in the bundle
    version: str  # the installed version


def kind_of_install(install: Path, frozen: bool, dpkg_list: Path = DPKG_LIST) -> InstallKind:
    try:
        listed: str | None = dpkg_list.read_text(encoding="utf-8", errors="replace")
    except OSError:
        listed = None
    return install_kind(frozen, str(install), listed, os.access(install, os.W_OK))


def channel_of(install: Path, url_setting: str = "") -> Channel | None:
    """The bundle's update channel: its embedded root, its URL (``updates.url`` overrides it
    when set) and its version; None when the build has no update key embedded."""
    folder = install / "update"
    try:
        root = (folder / "root.json").read_bytes()
        url = url_setting or str(json.loads((folder / "channel.json").read_bytes())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    version = installed_version(install)
    return Channel(install, url.rstrip("/"), root, version) if url and version else None


def approve(install: Path) -> bool:
    """The user said "Restart to update": the staged version is applied at the next start."""
    state = read_state(install)
    if state is None or state.phase is not Phase.STAGED:
        return False
    write_state(install, state.with_phase(Phase.APPROVED))
    return True


class _Refused(Exception):
    """A file or the manifest failed verification: the message says which and why."""


def _installed_sizes(install: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in install.rglob("*"):
        rel = path.relative_to(install).as_posix()
        if rel.startswith(".update") or path.is_symlink() or not path.is_file():
            continue
        sizes[rel] = path.stat().st_size
    return sizes


def _unpack(blob: Path, entry: FileEntry, dest: Path) -> None:
    """The gzip blob unpacked to ``dest``, its size and SHA-256 checked against the entry."""
    h = hashlib.sha256()
    size = 0
    tmp = dest.with_name(dest.name + ".partial")
    try:
        with gzip.open(blob, "rb") as src, tmp.open("wb") as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > entry.size:
                    raise _Refused(f"{entry.path} is larger than the signed manifest says")
                h.update(chunk)
                out.write(chunk)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, _Refused):
            raise
        raise _Refused(f"{entry.path} could not be unpacked: {exc}") from exc
    if size != entry.size or h.hexdigest() != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise _Refused(f"{entry.path} does not match the signed manifest")
    os.replace(tmp, dest)
    dest.chmod(entry.mode)


def _reuse(src: Path, entry: FileEntry, dest: Path) -> bool:
    """The installed file, linked (or copied) into staging when its hash is the new one."""
    try:
        if sha256_file(src) != entry.sha256:
            return False
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
        if dest.stat().st_mode & 0o777 != entry.mode:
            dest.chmod(entry.mode)
    except OSError:
        return False
    return True


@dataclass
class _Counts:
    downloaded_bytes: int = 0
    downloaded_files: int = 0
    reused_files: int = 0


def _download(updater: Updater, entry: FileEntry, downloads: Path, dest: Path, n: _Counts) -> None:
    from tuf.api.metadata import TargetFile

    assert entry.blob is not None
    info = TargetFile(entry.blob.length, {"sha256": entry.blob.sha256}, entry.blob.path)
    blob = Path(updater.download_target(info, str(downloads / entry.blob.sha256)))
    n.downloaded_bytes += entry.blob.length
    n.downloaded_files += 1
    _unpack(blob, entry, dest)
    blob.unlink(missing_ok=True)


def _stage(
    updater: Updater,
    install: Path,
    manifest: Manifest,
    staging: Path,
    cancelled: Callable[[], bool],
) -> _Counts:
    downloads = update_dir(install) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    counts = _Counts()
    for step in stage_plan(manifest, _installed_sizes(install)).steps:
        if cancelled():
            raise _Refused("cancelled")
        entry = step.entry
        dest = staging / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if step.action is Action.LINK:
            assert entry.link is not None
            os.symlink(entry.link, dest)
        elif step.action is Action.REUSE and _reuse(install / entry.path, entry, dest):
            counts.reused_files += 1
        else:
            _download(updater, entry, downloads, dest, counts)
    shutil.rmtree(downloads, ignore_errors=True)
    return counts


def _updater(channel: Channel, fetcher: Any = None) -> Updater:
    from tuf.ngclient.config import UpdaterConfig
    from tuf.ngclient.updater import Updater

    meta = update_dir(channel.install) / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    return Updater(
        metadata_dir=str(meta),
        metadata_base_url=f"{channel.url}/metadata/",
        target_dir=str(update_dir(channel.install) / "downloads"),
        target_base_url=f"{channel.url}/targets/",
        fetcher=fetcher,
        config=UpdaterConfig(app_user_agent=f"Forecode/{channel.version}"),
        bootstrap=channel.root,
    )


def _latest_manifest(updater: Updater) -> Manifest | None:
    updater.refresh()
    info = updater.get_targetinfo(LATEST)
    if info is None:
        return None
    path = updater.download_target(info)
    data = Path(path).read_bytes()
    Path(path).unlink(missing_ok=True)
    try:
        return parse_manifest(data)
    except ManifestError as exc:
        raise _Refused(f"the release manifest is not valid: {exc}") from exc


def _already_staged(state: UpdateState | None, version: str, staging: Path) -> bool:
    return (
        state is not None
        and state.version == version
        and state.phase in (Phase.STAGED, Phase.APPROVED)
        and staging.is_dir()
    )


def _offline_errors() -> tuple[type[BaseException], ...]:
    import urllib3
    from tuf.api.exceptions import DownloadHTTPError, SlowRetrievalError

    return (urllib3.exceptions.HTTPError, SlowRetrievalError, DownloadHTTPError, ConnectionError)


_ONE_AT_A_TIME = threading.Lock()  # a manual check while the automatic one runs waits for it


def check_and_stage(
    channel: Channel, *, fetcher: Any = None, cancelled: Callable[[], bool] = lambda: False
) -> Outcome:
    """Look for a newer release and, when there is one, stage it (verified) for the next
    start. Runs on a worker thread (one check at a time); never raises for the network or a
    bad release."""
    with _ONE_AT_A_TIME:
        return _check_and_stage(channel, fetcher, cancelled)


def _check_and_stage(channel: Channel, fetcher: Any, cancelled: Callable[[], bool]) -> Outcome:
    from tuf.api.exceptions import DownloadError, RepositoryError

    offline = _offline_errors()
    try:
        updater = _updater(channel, fetcher)
        manifest = _latest_manifest(updater)
    except offline as exc:
        return Outcome(OutcomeKind.OFFLINE, message=f"The update server is not reachable: {exc}")
    except (RepositoryError, DownloadError, _Refused) as exc:
        return _refused("", exc)
    except (OSError, ValueError) as exc:
        return _refused("", exc)
    state = read_state(channel.install)
    if manifest is None or not is_newer(manifest.app_version, channel.version):
        return Outcome(OutcomeKind.UP_TO_DATE, channel.version)
    version = manifest.app_version
    if state is not None and version in state.bad_versions:
        return Outcome(OutcomeKind.UP_TO_DATE, channel.version, f"{version} failed before")
    staging = update_dir(channel.install) / "staging" / version
    if _already_staged(state, version, staging):
        return Outcome(OutcomeKind.STAGED, version)
    shutil.rmtree(staging.parent, ignore_errors=True)
    try:
        counts = _stage(updater, channel.install, manifest, staging, cancelled)
    except offline as exc:
        shutil.rmtree(staging.parent, ignore_errors=True)
        return Outcome(OutcomeKind.OFFLINE, message=f"The update server is not reachable: {exc}")
    except (RepositoryError, DownloadError, _Refused, OSError) as exc:
        shutil.rmtree(staging.parent, ignore_errors=True)
        shutil.rmtree(update_dir(channel.install) / "downloads", ignore_errors=True)
        return _refused(version, exc)
    bad = state.bad_versions if state is not None else ()
    write_state(
        channel.install,
        UpdateState(Phase.STAGED, version, from_version=channel.version, bad_versions=bad),
    )
    return Outcome(
        OutcomeKind.STAGED,
        version,
        downloaded_bytes=counts.downloaded_bytes,
        downloaded_files=counts.downloaded_files,
        reused_files=counts.reused_files,
    )


def _refused(version: str, exc: BaseException) -> Outcome:
    what = f"The update to {version}" if version else "The update"
    detail = str(exc) or type(exc).__name__
    message = f"{what} was refused: it failed verification ({detail}). Nothing was changed."
    return Outcome(OutcomeKind.REFUSED, version, message)
