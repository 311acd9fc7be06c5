"""What happens to an update between the user's yes and a working new version: the state kept
in ``<install>/.update/state.json`` and the decision taken at each start.

Phases: ``staged`` (downloaded and verified, waiting for the user: nothing is applied without
a yes), ``approved`` (the user said "Restart to update"), ``trying`` (the new version was put in
place and started; it has not yet shown its window), ``done`` (it showed its window: the old
version's files may go), ``rolled_back`` (the new version failed to start, or the swap failed:
the old version is back and says why). A version that rolled back is never offered again.

``decide_at_start`` is the whole policy, table-tested: the app's start-up hook
(``app.services.update_start``) only carries it out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import PurePosixPath

__all__ = [
    "InstallKind",
    "Phase",
    "StartAction",
    "UpdateState",
    "decide_at_start",
    "install_kind",
    "state_from_json",
    "state_to_json",
]


class Phase(Enum):
    STAGED = "staged"
    APPROVED = "approved"
    TRYING = "trying"
    DONE = "done"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class UpdateState:
    phase: Phase
    version: str  # the version staged / being tried
    from_version: str = ""  # the version it replaces
    attempts: int = 0  # starts of the new version that did not reach the first paint
    message: str = ""  # why a rollback happened
    bad_versions: tuple[str, ...] = field(default=())  # versions that rolled back

    def with_phase(self, phase: Phase, **changes: object) -> UpdateState:
        return replace(self, phase=phase, **changes)  # type: ignore[arg-type]


class StartAction(Enum):
    NOTHING = "nothing"  # start as usual
    APPLY = "apply"  # approved: swap the staged folder in, start the new executable
    ATTEMPT = "attempt"  # the new version's first start: count it, start as usual
    ROLLBACK = "rollback"  # the new version did not start (or is not what runs): restore
    CLEANUP = "cleanup"  # done: remove the old version's files


def decide_at_start(state: UpdateState | None, running_version: str) -> StartAction:
    if state is None:
        return StartAction.NOTHING
    if state.phase is Phase.APPROVED:
        return StartAction.APPLY
    if state.phase is Phase.TRYING:
        if running_version == state.version and state.attempts == 0:
            return StartAction.ATTEMPT
        return StartAction.ROLLBACK  # a second start without a window, or the swap is undone
    if state.phase is Phase.DONE:
        return StartAction.CLEANUP
    return StartAction.NOTHING


def state_to_json(s: UpdateState) -> bytes:
    doc = asdict(s)
    doc["phase"] = s.phase.value
    doc["bad_versions"] = list(s.bad_versions)
    return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")


def state_from_json(data: bytes) -> UpdateState | None:
    """The state, or None when the file is not one (a broken state file means no update)."""
    try:
        obj = json.loads(data)
        bad = obj.get("bad_versions", [])
        return UpdateState(
            phase=Phase(obj["phase"]),
            version=str(obj["version"]),
            from_version=str(obj.get("from_version", "")),
            attempts=int(obj.get("attempts", 0)),
            message=str(obj.get("message", "")),
            bad_versions=tuple(str(v) for v in bad) if isinstance(bad, list) else (),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class InstallKind(Enum):
    BUNDLE = "bundle"  # a frozen folder the user can write (the tarball): self-updates
    DEB = "deb"  # installed by dpkg/apt: apt updates it, the app never does
    READ_ONLY = "read_only"  # a frozen folder the user cannot write: cannot self-update
    DEVELOPMENT = "development"  # python -m app from a checkout: git pull


def install_kind(
    frozen: bool, install_dir: str, dpkg_list: str | None, writable: bool
) -> InstallKind:
    """``dpkg_list``: the text of ``/var/lib/dpkg/info/forecode.list`` (None when missing)."""
    if not frozen:
        return InstallKind.DEVELOPMENT
    if dpkg_list is not None:
        target = str(PurePosixPath(install_dir))
        if any(line.strip() == target for line in dpkg_list.splitlines()):
            return InstallKind.DEB
    return InstallKind.BUNDLE if writable else InstallKind.READ_ONLY
