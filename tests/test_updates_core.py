"""forecode_core.updates: the manifest's checks, the staging plan and the start-up policy, on
plain data (table tests)."""

from __future__ import annotations

import json

import pytest

from forecode_core.updates.manifest import (
    Blob,
    FileEntry,
    Manifest,
    ManifestError,
    is_newer,
    manifest_from_json,
    manifest_to_json,
    version_key,
)
from forecode_core.updates.plan import Action, stage_plan
from forecode_core.updates.start import (
    InstallKind,
    Phase,
    StartAction,
    UpdateState,
    decide_at_start,
    install_kind,
    state_from_json,
    state_to_json,
)

H = "a" * 64
G = "b" * 64


def _file(path: str, size: int = 3, sha: str = H) -> dict[str, object]:
    blob = {"path": f"blobs/{sha}.gz", "length": 9, "sha256": G}
    return {"path": path, "size": size, "sha256": sha, "mode": 0o755, "blob": blob}


def _doc(*files: dict[str, object], version: str = "1.2.0") -> bytes:
    doc = {
        "format": "forecode-update-manifest",
        "format_version": 1,
        "app_version": version,
        "files": list(files),
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        ("0.2.0", "0.1.0", True),
        ("0.10.0", "0.9.9", True),  # numbers, not strings
        ("1.2", "1.2.0", False),  # equal
        ("1.2.0", "1.2", False),
        ("0.1.0", "0.2.0", False),
        ("1.0.1", "1.0", True),
    ],
)
def test_versions_compare_as_numbers(a: str, b: str, newer: bool) -> None:
    assert is_newer(a, b) is newer


@pytest.mark.parametrize("bad", ["", "1.x", "v1.2", "1..2", "1.2-rc1"])
def test_a_version_that_is_not_dotted_numbers_is_an_error(bad: str) -> None:
    with pytest.raises(ManifestError):
        version_key(bad)


def test_a_manifest_round_trips() -> None:
    m = Manifest(
        "0.3.0",
        (
            FileEntry("forecode", 5, H, 0o755, Blob(f"blobs/{H}.gz", 4, G)),
            FileEntry("_internal/libx.so", link="libx.so.1"),
        ),
    )
    back = manifest_from_json(manifest_to_json(m))
    assert back.app_version == "0.3.0"
    assert sorted(back.files, key=lambda f: f.path) == sorted(m.files, key=lambda f: f.path)
    assert back.content_bytes() == 5


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{", "not JSON"),
        (b'{"format": "x"}', "not a Forecode update manifest"),
        (_doc(), "lists no files"),
        (_doc(_file("../evil")), "leaves the install folder"),
        (_doc(_file("/etc/passwd")), "leaves the install folder"),
        (_doc(_file("a/./b")), "leaves the install folder"),
        (_doc(_file("a\\b")), "bad path"),
        (_doc(_file(".update/state.json")), "updater's own folder"),
        (_doc(_file("a"), _file("a")), "listed twice"),
        (_doc(_file("a"), _file("a/b")), "lies under the file"),
        (_doc(_file("a", sha="xyz")), "SHA-256"),
        (_doc(_file("a", size=-1)), "non-negative"),
        (_doc({"path": "l", "link": "/usr/lib/x"}), "points outside"),
        (_doc({"path": "d/l", "link": "../../x"}), "points outside"),
        (_doc(_file("a"), version="next"), "dotted numbers"),
        (_doc({"path": "a", "size": 1, "sha256": H}), "no blob"),
    ],
)
def test_a_bad_manifest_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ManifestError, match=reason):
        manifest_from_json(data)


def test_a_link_inside_the_bundle_is_allowed() -> None:
    m = manifest_from_json(_doc({"path": "d/e/l", "link": "../x"}, _file("d/x")))
    assert {f.path for f in m.files} == {"d/e/l", "d/x"}


def test_the_plan_reuses_files_of_the_same_size_and_downloads_the_rest() -> None:
    m = manifest_from_json(
        _doc(_file("same", 3), _file("grown", 4), _file("new", 3), {"path": "l", "link": "same"})
    )
    plan = stage_plan(m, {"same": 3, "grown": 3, "gone": 7})
    actions = {s.entry.path: s.action for s in plan.steps}
    assert actions == {
        "same": Action.REUSE,
        "grown": Action.DOWNLOAD,
        "new": Action.DOWNLOAD,
        "l": Action.LINK,
    }
    assert plan.download_bytes() == 18  # two blobs of 9
    assert plan.count(Action.REUSE) == 1


S = UpdateState


@pytest.mark.parametrize(
    ("state", "running", "action"),
    [
        (None, "1.0", StartAction.NOTHING),
        (S(Phase.STAGED, "1.1"), "1.0", StartAction.NOTHING),  # no yes: nothing applied
        (S(Phase.APPROVED, "1.1"), "1.0", StartAction.APPLY),
        (S(Phase.TRYING, "1.1", "1.0", attempts=0), "1.1", StartAction.ATTEMPT),
        (S(Phase.TRYING, "1.1", "1.0", attempts=1), "1.1", StartAction.ROLLBACK),  # crashed
        (S(Phase.TRYING, "1.1", "1.0", attempts=0), "1.0", StartAction.ROLLBACK),  # undone
        (S(Phase.DONE, "1.1", "1.0"), "1.1", StartAction.CLEANUP),
        (S(Phase.ROLLED_BACK, "1.1", "1.0"), "1.0", StartAction.NOTHING),
    ],
)
def test_what_a_start_does_with_an_update(
    state: UpdateState | None, running: str, action: StartAction
) -> None:
    assert decide_at_start(state, running) is action


def test_the_state_round_trips_and_a_broken_file_means_none() -> None:
    s = S(Phase.ROLLED_BACK, "1.1", "1.0", 1, "why", ("1.1",))
    assert state_from_json(state_to_json(s)) == s
    assert state_from_json(b"{") is None
    assert state_from_json(b'{"phase": "weird", "version": "1"}') is None


@pytest.mark.parametrize(
    ("frozen", "folder", "dpkg", "writable", "kind"),
    [
        (False, "/src/forecode", None, True, InstallKind.DEVELOPMENT),
        (True, "/opt/forecode", "/opt\n/opt/forecode\n", False, InstallKind.DEB),
        (True, "/home/u/forecode", "/opt\n/opt/forecode\n", True, InstallKind.BUNDLE),
        (True, "/home/u/forecode", None, True, InstallKind.BUNDLE),
        (True, "/srv/forecode", None, False, InstallKind.READ_ONLY),
    ],
)
def test_which_installs_update_themselves(
    frozen: bool, folder: str, dpkg: str | None, writable: bool, kind: InstallKind
) -> None:
    assert install_kind(frozen, folder, dpkg, writable) is kind
