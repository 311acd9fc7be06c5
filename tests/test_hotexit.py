from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from forecode_core.store.atomic import TEMP_SUFFIX
from forecode_core.store.hotexit import FORMAT_VERSION, Backup, BackupStore


def make(key: str = "untitled-1", text: str = "hello\n", **kw: object) -> Backup:
    fields: dict[str, object] = {
        "key": key,
        "path": None,
        "text": text,
        "encoding": "utf-8",
        "eol": "\n",
        "disk_mtime_ns": None,
        "disk_size": None,
        "saved_at": 1000.0,
    }
    fields.update(kw)
    return Backup(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> BackupStore:
    return BackupStore(tmp_path / "store")


def test_empty_store_loads_nothing(store: BackupStore) -> None:
    assert store.load_all() == ([], [])
    store.clear()  # missing folder is fine
    store.remove("untitled-1")


def test_round_trip_non_ascii_and_crlf(store: BackupStore, tmp_path: Path) -> None:
    path = str(tmp_path / "dïr" / "fïlé 名前.py")
    file_backup = make(
        key=BackupStore.key_for_path(path),
        path=path,
        text="héllo wörld\r\n名前 = '🙂'\r\n\ttab\r\n\x00nul\r\n",
        encoding="cp1252",
        eol="\r\n",
        disk_mtime_ns=1_700_000_000_123_456_789,
        disk_size=42,
        saved_at=time.time(),
    )
    untitled = make(key="untitled-3", text="old mac\rlines\r", eol="\r", saved_at=5.0)
    store.write(file_backup)
    store.write(untitled)
    backups, problems = store.load_all()
    assert problems == []
    assert backups == [untitled, file_backup]  # oldest first


def test_write_replaces_previous_backup_for_key(store: BackupStore) -> None:
    store.write(make(text="one"))
    store.write(make(text="two", saved_at=2000.0))
    backups, problems = store.load_all()
    assert problems == []
    assert [b.text for b in backups] == ["two"]
    assert len(list(store.root.glob("*.json"))) == 1


def test_remove(store: BackupStore) -> None:
    store.write(make("untitled-1"))
    store.write(make("untitled-2"))
    store.remove("untitled-1")
    store.remove("untitled-1")  # already gone: fine
    store.remove("never-written")
    backups, _ = store.load_all()
    assert [b.key for b in backups] == ["untitled-2"]


def test_clear_keeps_corrupt_folder(store: BackupStore) -> None:
    store.write(make("untitled-1"))
    store.write(make("untitled-2"))
    (store.root / ("f" * 64 + ".json")).write_text("{", encoding="utf-8")
    store.load_all()  # moves the bad one aside
    store.clear()
    assert store.load_all() == ([], [])
    assert len(list((store.root / "corrupt").iterdir())) == 1


def test_key_for_path_is_absolute_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    key = BackupStore.key_for_path("a.py")
    assert key == BackupStore.key_for_path(tmp_path / "a.py")
    assert key == BackupStore.key_for_path(str(tmp_path / "sub" / ".." / "a.py"))
    assert key != BackupStore.key_for_path(tmp_path / "b.py")
    assert os.path.normcase(str(tmp_path / "a.py")) in key


@pytest.mark.parametrize(
    "key",
    [
        "untitled-1",
        "file:/a/b/../c.py",
        "file:C:\\Users\\x\\con.py",
        "file:/tmp/" + "x" * 5000,
        'file:/tmp/wé?ird*<>|:"name\0\n.py',
        "file:/tmp/\udcff-undecodable.py",
        "..",
        "/",
    ],
)
def test_any_key_gives_a_safe_file_name(store: BackupStore, key: str) -> None:
    target = store.file_for_key(key)
    assert target.parent == store.root
    assert target.name.removesuffix(".json").isalnum()
    assert target.name.isascii()
    assert len(target.name) <= 100
    store.write(make(key=key, path=key))
    backups, problems = store.load_all()
    assert problems == []
    assert [(b.key, b.path) for b in backups] == [(key, key)]


def test_distinct_keys_distinct_files(store: BackupStore) -> None:
    keys = ["untitled-1", "untitled-2", "Untitled-1", "file:/a", "file:/a/"]
    assert len({store.file_for_key(k) for k in keys}) == len(keys)


def test_workspaces_are_isolated(tmp_path: Path) -> None:
    base = tmp_path / "backups"
    ws1, ws2 = tmp_path / "ws1", tmp_path / "ws2"
    ws1.mkdir()
    ws2.mkdir()
    a = BackupStore.for_workspace(ws1, base)
    b = BackupStore.for_workspace(ws2, base)
    assert a.root != b.root
    assert a.root.parent == b.root.parent == base
    assert len(a.root.name) == 16
    a.write(make("untitled-1", text="in ws1"))
    b.write(make("untitled-1", text="in ws2"))
    assert [x.text for x in a.load_all()[0]] == ["in ws1"]
    assert [x.text for x in b.load_all()[0]] == ["in ws2"]
    b.clear()
    assert [x.text for x in a.load_all()[0]] == ["in ws1"]
    # The same workspace spelled differently is the same store.
    assert BackupStore.for_workspace(str(ws1 / ".." / "ws1"), base).root == a.root


def test_for_workspace_defaults_to_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORECODE_DATA_DIR", str(tmp_path / "data"))
    store = BackupStore.for_workspace(tmp_path)
    assert store.root.parent == tmp_path / "data" / "backups"


CORRUPT_CONTENTS = [
    pytest.param(b"", "invalid JSON", id="empty"),
    pytest.param(
        b'{"format": "forecode-backup", "version": 1, "key": "untit', "invalid JSON", id="truncated"
    ),
    pytest.param(b"\xff\xfe garbage", "not UTF-8", id="binary"),
    pytest.param(b"[1, 2]", "not a Forecode backup", id="list"),
    pytest.param(b'{"a": 1}', "not a Forecode backup", id="foreign"),
]


@pytest.mark.parametrize(("content", "why"), CORRUPT_CONTENTS)
def test_corrupt_file_is_reported_and_moved_aside(
    store: BackupStore, content: bytes, why: str
) -> None:
    store.write(make("untitled-1", text="good"))
    bad = store.root / ("ab" * 32 + ".json")
    bad.write_bytes(content)
    backups, problems = store.load_all()
    assert [b.text for b in backups] == ["good"]
    assert len(problems) == 1
    assert bad.name in problems[0]
    assert why in problems[0]
    assert not bad.exists()
    moved = store.root / "corrupt" / bad.name
    assert moved.read_bytes() == content  # nothing is lost
    assert str(moved) in problems[0]
    # Reported once: the next load is clean.
    assert store.load_all() == (backups, [])


def _doc(store: BackupStore, backup: Backup) -> tuple[Path, dict[str, object]]:
    store.write(backup)
    target = store.file_for_key(backup.key)
    return target, json.loads(target.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("version", FORMAT_VERSION + 1, "unknown version"),
        ("version", None, "unknown version"),
        ("text", None, "'text'"),
        ("eol", "\n\r", "'eol'"),
        ("disk_size", "12", "'disk_size'"),
        ("disk_mtime_ns", True, "'disk_mtime_ns'"),
        ("saved_at", "yesterday", "'saved_at'"),
        ("path", 3, "'path'"),
        ("encoding", None, "'encoding'"),
    ],
)
def test_bad_fields_are_reported(store: BackupStore, field: str, value: object, why: str) -> None:
    target, doc = _doc(store, make())
    doc[field] = value
    target.write_text(json.dumps(doc), encoding="utf-8")
    backups, problems = store.load_all()
    assert backups == []
    assert len(problems) == 1
    assert why in problems[0]
    assert (store.root / "corrupt" / target.name).exists()


def test_missing_field_is_reported(store: BackupStore) -> None:
    target, doc = _doc(store, make())
    del doc["disk_size"]
    target.write_text(json.dumps(doc), encoding="utf-8")
    backups, problems = store.load_all()
    assert backups == []
    assert "'disk_size'" in problems[0]


def test_backup_under_wrong_name_is_moved_aside(store: BackupStore) -> None:
    target, _ = _doc(store, make("untitled-1"))
    renamed = store.root / ("0" * 64 + ".json")
    target.rename(renamed)
    backups, problems = store.load_all()
    assert backups == []
    assert "does not match its key" in problems[0]
    assert (store.root / "corrupt" / renamed.name).exists()


def test_same_corrupt_name_twice_keeps_both(store: BackupStore) -> None:
    bad = store.root / ("cd" * 32 + ".json")
    store.root.mkdir(parents=True)
    bad.write_bytes(b"first")
    store.load_all()
    bad.write_bytes(b"second")
    store.load_all()
    contents = sorted(p.read_bytes() for p in (store.root / "corrupt").iterdir())
    assert contents == [b"first", b"second"]


def test_other_files_are_ignored_and_stale_temps_cleaned(store: BackupStore) -> None:
    store.write(make())
    store.root.joinpath("notes.txt").write_text("x", encoding="utf-8")
    fresh = store.root / f".abc.json.1{TEMP_SUFFIX}"
    stale = store.root / f".abc.json.2{TEMP_SUFFIX}"
    fresh.write_text("{partial", encoding="utf-8")
    stale.write_text("{partial", encoding="utf-8")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    backups, problems = store.load_all()
    assert problems == []
    assert len(backups) == 1
    assert fresh.exists()  # may belong to a write in progress
    assert not stale.exists()
    assert store.root.joinpath("notes.txt").exists()


def test_large_text_round_trip(store: BackupStore) -> None:
    line = "déjà vu — 名前 = 'x' * 40  # some code here\r\n"
    text = line * (5_000_000 // len(line) + 1)
    assert len(text) >= 5_000_000
    start = time.perf_counter()
    store.write(make(text=text, eol="\r\n"))
    backups, problems = store.load_all()
    elapsed = time.perf_counter() - start
    assert problems == []
    assert backups[0].text == text
    assert elapsed < 2.0


def test_unlistable_root_does_not_raise(tmp_path: Path) -> None:
    root = tmp_path / "not-a-folder"
    root.write_text("x", encoding="utf-8")
    backups, problems = BackupStore(root).load_all()
    assert backups == []
    assert len(problems) == 1
    assert "could not be read" in problems[0]
