"""The workspace Merkle tree, its ignore rules and secret deny-list, and reconciliation
(forecode_core/index/merkle.py, ignore.py, denylist.py)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecode_core.index.crypto import HASH_BYTES, WorkspaceKeys
from forecode_core.index.denylist import is_secret_path, looks_like_private_key, secret_reason
from forecode_core.index.merkle import (
    MerkleTree,
    Snapshot,
    WireEntry,
    diff_children,
    folder_hash,
    full_list_bytes,
    reconcile,
    refresh_path,
    scan_folder,
)
from forecode_core.workspace.gitignore import INDEX_IGNORE_FILES, IgnoreRules

KEYS = WorkspaceKeys(bytes(range(32)))
OTHER_KEYS = WorkspaceKeys(bytes(range(1, 33)))

PEM = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----\n"

FILES = {
    "README.md": b"# demo\n",
    "src/app.py": b"print('app')\n",
    "src/util/strings.py": b"def s(): pass\n",
    "src/util/numbers.py": b"def n(): pass\n",
    "docs/guide.md": b"guide\n",
    "tests/test_app.py": b"def test(): pass\n",
}


def build(files: dict[str, bytes], keys: WorkspaceKeys = KEYS) -> MerkleTree:
    tree, skipped = MerkleTree.from_files(keys, files.items())
    assert skipped == {}
    return tree


def changed_paths(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def apply(snapshot: Snapshot, tree: MerkleTree) -> Snapshot:
    """The service's state after it took the client's changes (a fresh snapshot: the real
    store applies uploads and deletes; this stands in for it)."""
    return Snapshot.from_tree(tree)


# -- the deny-list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True),
        ("app/.env", True),
        (".env.local", True),
        (".env.example", True),
        ("config/prod.env", True),
        ("certs/server.pem", True),
        ("server.key", True),
        ("id_rsa", True),
        ("home/.ssh/id_rsa.pub", True),
        ("id_ed25519", True),
        ("keys/id_ecdsa_sk", True),
        ("store.p12", True),
        ("store.PFX", True),
        (".npmrc", True),
        ("pkg/.pypirc", True),
        ("credentials.json", True),
        ("gcp/Credentials.JSON", True),
        (".netrc", True),
        (".aws/credentials", True),
        ("home/.aws/credentials", True),
        (".ssh/config", True),
        (".git-credentials", True),
        # not secrets
        ("env.py", False),
        ("environment.ts", False),
        ("src/keyboard.py", False),
        ("keys.py", False),
        ("aws/credentials.py", False),
        ("aws/credentials", False),
        ("docs/ssh.md", False),
        ("monkey.c", False),
        ("pem.rs", False),
    ],
)
def test_secret_paths(path: str, secret: bool) -> None:
    assert is_secret_path(path) is secret


@pytest.mark.parametrize(
    ("data", "secret"),
    [
        (PEM, True),
        (b"-----BEGIN PRIVATE KEY-----\nMIIE\n", True),
        (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n", True),
        (b"-----BEGIN EC PRIVATE KEY-----\n", True),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", True),
        (b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n", True),
        (b"KEY = '''\n-----BEGIN DSA PRIVATE KEY-----\n'''\n", True),  # inside code
        (b"PuTTY-User-Key-File-3: ssh-ed25519\n", True),
        (b"-----BEGIN PUBLIC KEY-----\nMIIB\n", False),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n", False),
        (b"def private_key(): return load('key.pem')\n", False),
        (b"", False),
    ],
)
def test_secret_content(data: bytes, secret: bool) -> None:
    assert looks_like_private_key(data) is secret
    assert (secret_reason("notes.txt", data) == "secret content") is secret


# -- building, hashing, the wire form -------------------------------------------------------------


def test_folder_hashes_add_up_and_name_nothing() -> None:
    tree = build(FILES)
    assert tree.file_count == len(FILES)
    assert tree.depth == 3
    snapshot = Snapshot.from_tree(tree)
    # every folder hash is the hash of its children: the service can check what it is sent
    for path, children in snapshot.folders.items():
        node = tree.wire_node_obfuscated(path)
        assert node is not None and node.hash == folder_hash(children)
        assert list(children) == sorted(children, key=lambda e: e.name)
        assert all(len(e.hash) == HASH_BYTES for e in children)
    assert snapshot.root == tree.root_hash == folder_hash(tree.wire_node("").children)
    wire_text = repr(snapshot)
    for path in FILES:
        for segment in path.split("/"):
            if len(segment) >= 4:
                assert segment not in wire_text
    # and the client maps every obfuscated path back
    for path in FILES:
        assert tree.resolve(tree.obfuscated(path)) == path
        assert tree.obfuscated(path) == KEYS.obfuscate_path(path)
    assert tree.resolve(KEYS.obfuscate_path("not/there.py")) is None


def test_leaf_is_keyed_content_hash() -> None:
    tree = build(FILES)
    import hashlib

    digest = hashlib.sha256(FILES["src/app.py"]).digest()
    assert tree.node_hash("src/app.py") == KEYS.file_hash(digest) != digest
    assert tree.digest("src/app.py") == digest
    assert build(FILES, OTHER_KEYS).root_hash != tree.root_hash


def test_insertion_order_does_not_matter() -> None:
    items = list(FILES.items())
    roots = set()
    for seed in range(5):
        random.Random(seed).shuffle(items)
        roots.add(build(dict(items)).root_hash)
    assert len(roots) == 1


def test_secrets_never_enter() -> None:
    files = dict(FILES)
    files.update(
        {
            ".env": b"TOKEN=abc\n",
            "deploy/server.pem": b"cert\n",
            "src/keys.py": b"K = '''" + PEM + b"'''\n",
            ".ssh/id_ed25519": b"x\n",
        }
    )
    tree, skipped = MerkleTree.from_files(KEYS, files.items())
    assert skipped == {
        ".env": "secret path",
        "deploy/server.pem": "secret path",
        "src/keys.py": "secret content",
        ".ssh/id_ed25519": "secret path",
    }
    assert dict(tree.files()).keys() == FILES.keys()
    assert tree.root_hash == build(FILES).root_hash  # not even a trace in the hashes
    # a file that turns into a secret leaves the tree
    assert tree.set_file("src/app.py", PEM) == "secret content"
    assert tree.digest("src/app.py") is None
    with pytest.raises(ValueError):
        tree.set_digest(".env", bytes(32))
    # renamed to a secret's name: it leaves too
    tree.rename("README.md", ".env")
    assert tree.digest(".env") is None and tree.digest("README.md") is None


@pytest.mark.parametrize("path", ["/abs.py", "../up.py", "a/../b.py", "a//b.py", "", "a/"])
def test_invalid_paths_rejected(path: str) -> None:
    tree = build(FILES)
    with pytest.raises(ValueError):
        tree.set_file(path, b"x")


# -- incremental updates --------------------------------------------------------------------------

OPERATIONS = [
    (
        "change",
        lambda t: t.set_file("src/util/strings.py", b"changed\n"),
        {**FILES, "src/util/strings.py": b"changed\n"},
    ),
    (
        "add deep",
        lambda t: t.set_file("src/new/deep/mod.py", b"new\n"),
        {**FILES, "src/new/deep/mod.py": b"new\n"},
    ),
    (
        "delete",
        lambda t: t.remove("src/util/numbers.py"),
        {k: v for k, v in FILES.items() if k != "src/util/numbers.py"},
    ),
    (
        "delete last in folder",
        lambda t: t.remove("docs/guide.md"),
        {k: v for k, v in FILES.items() if k != "docs/guide.md"},
    ),
    (
        "delete folder",
        lambda t: t.remove("src/util"),
        {k: v for k, v in FILES.items() if not k.startswith("src/util/")},
    ),
    (
        "rename file",
        lambda t: t.rename("src/app.py", "src/main.py"),
        {("src/main.py" if k == "src/app.py" else k): v for k, v in FILES.items()},
    ),
    (
        "rename folder",
        lambda t: t.rename("src/util", "lib/helpers"),
        {k.replace("src/util/", "lib/helpers/"): v for k, v in FILES.items()},
    ),
    (
        "file becomes folder",
        lambda t: t.set_file("README.md/inner.txt", b"i\n"),
        {**{k: v for k, v in FILES.items() if k != "README.md"}, "README.md/inner.txt": b"i\n"},
    ),
    (
        "folder becomes file",
        lambda t: t.set_file("docs", b"d\n"),
        {**{k: v for k, v in FILES.items() if not k.startswith("docs/")}, "docs": b"d\n"},
    ),
]


@pytest.mark.parametrize(
    ("name", "operation", "expected"), OPERATIONS, ids=[o[0] for o in OPERATIONS]
)
def test_incremental_update_equals_fresh_build(
    name: str, operation: object, expected: dict[str, bytes]
) -> None:
    tree = build(FILES)
    tree.root_hash  # noqa: B018 - hashes computed before the change
    operation(tree)  # type: ignore[operator]
    fresh = build(expected)
    assert tree.root_hash == fresh.root_hash
    assert tree.node_hashes() == fresh.node_hashes()
    assert tree.file_count == len(expected)
    assert dict(tree.files()) == dict(fresh.files())


@pytest.mark.parametrize(
    ("name", "operation", "expected"), OPERATIONS, ids=[o[0] for o in OPERATIONS]
)
def test_reconcile_brings_the_remote_in_line(
    name: str, operation: object, expected: dict[str, bytes]
) -> None:
    tree = build(FILES)
    remote = Snapshot.from_tree(tree)
    operation(tree)  # type: ignore[operator]
    result = reconcile(tree, remote)
    added_or_changed = {p for p, d in tree.files() if d != build(FILES).digest(p)}
    assert set(result.upload) == added_or_changed
    gone = {p for p in FILES if p not in expected}
    deleted = {KEYS.reveal_path(p) for p in result.delete}
    # a delete names a file or the topmost folder that went away
    for path in gone:
        assert any(path == d or path.startswith(d + "/") for d in deleted), path
    assert result.round_trips <= max(tree.depth, 3) + 1
    # once the service applied them, nothing is left to do
    done = reconcile(tree, apply(remote, tree))
    assert (done.round_trips, done.upload, done.delete) == (1, (), ())


def test_no_change_is_one_round_trip() -> None:
    tree = build(FILES)
    result = reconcile(tree, Snapshot.from_tree(build(FILES)))
    assert (result.round_trips, result.nodes_visited, result.upload) == (1, 0, ())
    assert result.bytes_total == HASH_BYTES + 1


def test_reconcile_into_an_empty_remote_uploads_everything() -> None:
    tree = build(FILES)
    result = reconcile(tree, Snapshot(None))
    assert sorted(result.upload) == sorted(FILES)
    assert result.round_trips == 2


@pytest.mark.parametrize(
    ("local", "remote", "descend", "upload", "delete"),
    [
        ([("a", 1, False)], [("a", 1, False)], [], [], []),
        ([("a", 1, False)], [("a", 2, False)], [], ["a"], []),
        ([("d", 1, True)], [("d", 2, True)], ["d"], [], []),
        ([("d", 1, True)], [], [], ["d"], []),
        ([], [("x", 1, False)], [], [], ["x"]),
        ([("n", 1, True)], [("n", 1, False)], [], ["n"], ["n"]),  # file became a folder
        ([("a", 1, False), ("d", 3, True)], [("d", 4, True), ("z", 5, True)], ["d"], ["a"], ["z"]),
    ],
)
def test_diff_children(
    local: list[tuple[str, int, bool]],
    remote: list[tuple[str, int, bool]],
    descend: list[str],
    upload: list[str],
    delete: list[str],
) -> None:
    def entries(rows: list[tuple[str, int, bool]]) -> list[WireEntry]:
        return [WireEntry(n, bytes([h]) * 32, d) for n, h, d in rows]

    diff = diff_children(entries(local), entries(remote))
    assert [e.name for e in diff.descend] == descend
    assert [e.name for e in diff.upload] == upload
    assert [e.name for e in diff.delete] == delete


# -- the 100k-file tree ---------------------------------------------------------------------------

FANOUT = 10
LEVELS = 5  # 10^5 files, each at depth 5


def synthetic_files() -> Iterator[tuple[str, bytes]]:
    for i in range(FANOUT**LEVELS):
        a, b, c, d, e = f"{i:05d}"
        yield f"pkg_{a}/module_{b}/sub_{c}/part_{d}/file_{e}.py", f"# file {i}\n".encode()


@pytest.fixture(scope="module")
def big_tree() -> MerkleTree:
    tree, skipped = MerkleTree.from_files(KEYS, synthetic_files())
    assert not skipped
    return tree


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("pkg_3/module_1/sub_4/part_1/file_5.py", b"# edited\n"),  # an edit
        ("pkg_9/module_9/sub_9/part_9/file_9.py", b"# edited too\n"),
        ("pkg_0/module_0/sub_0/part_0/file_new.py", b"# added\n"),  # an addition
        ("pkg_7/module_2/sub_0/part_5/file_3.py", None),  # a deletion
    ],
)
def test_one_change_in_100k_files(big_tree: MerkleTree, path: str, data: bytes | None) -> None:
    tree = big_tree
    assert tree.file_count == FANOUT**LEVELS and tree.depth == LEVELS
    remote = Snapshot.from_tree(tree)
    before = tree.node_hashes()
    computed = tree.hash_computations
    old = tree.digest(path)
    try:
        if data is None:
            tree.remove(path)
        else:
            tree.set_file(path, data)
        after = tree.node_hashes()
        # only the path to the root changed, and only its folders were recomputed
        segments = path.split("/")
        on_path = {"/".join(segments[:i]) for i in range(len(segments) + 1)}
        assert changed_paths(before, after) == on_path
        assert len(on_path) == tree.depth + 1
        assert tree.hash_computations - computed == LEVELS

        result = reconcile(tree, remote)
        assert result.nodes_visited == LEVELS  # the root and the folders on the path
        assert result.entries_compared <= 2 * LEVELS * (FANOUT + 1)
        assert result.round_trips <= tree.depth + 1
        if data is None:
            assert result.upload == () and [KEYS.reveal_path(p) for p in result.delete] == [path]
        else:
            assert result.upload == (path,) and result.delete == ()
        full = full_list_bytes(tree)
        assert result.bytes_total <= full // 1000  # <= 0.1 % of sending every path and hash
    finally:
        if old is None:
            tree.remove(path)
        else:
            tree.set_digest(path, old)
    assert tree.node_hashes() == before


# -- ignore rules ---------------------------------------------------------------------------------

IGNORE_FILES = {
    ".gitignore": b"*.log\nbuild/\n/only_root.txt\n!keep.log\n",
    ".forecodeignore": b"data/\n*.csv\n",
    "sub/.gitignore": b"!*.csv\nlocal.txt\n",
    "sub/.forecodeignore": b"secret_notes.md\n!local.txt\n",
    ".git/info/exclude": b"scratch/\n",
}


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("main.py", False),
        ("debug.log", True),
        ("deep/er/debug.log", True),
        ("keep.log", False),  # re-included
        ("build/out.o", True),  # inside an ignored folder
        ("src/build/out.o", True),
        ("only_root.txt", True),
        ("sub/only_root.txt", False),  # anchored to the root
        ("data/x.json", True),  # .forecodeignore
        ("table.csv", True),
        ("sub/table.csv", False),  # a deeper .gitignore re-includes
        ("sub/secret_notes.md", True),
        ("sub/local.txt", False),  # .forecodeignore wins over .gitignore in its folder
        ("other/local.txt", False),
        ("scratch/a.py", True),  # .git/info/exclude
        (".git/config", True),  # always
        ("sub/.git/HEAD", True),
    ],
)
def test_ignore_rules(path: str, ignored: bool) -> None:
    rules = IgnoreRules.for_files(IGNORE_FILES)
    assert rules.is_ignored(path) is ignored


def test_extra_patterns_win() -> None:
    rules = IgnoreRules.for_files(IGNORE_FILES, extra_patterns=["main.py", "!debug.log"])
    assert rules.is_ignored("main.py") and not rules.is_ignored("debug.log")


def test_from_files_honours_ignore_rules() -> None:
    files = {**FILES, **IGNORE_FILES, "debug.log": b"x", "build/o.o": b"x"}
    rules = IgnoreRules.for_files(files)
    tree, skipped = MerkleTree.from_files(KEYS, files.items(), rules=rules)
    assert {p for p, r in skipped.items() if r == "ignored"} == {
        "debug.log",
        "build/o.o",
        ".git/info/exclude",
    }
    assert tree.digest("debug.log") is None and tree.digest("README.md") is not None


# -- scanning a folder ----------------------------------------------------------------------------


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write(tmp_path, FILES)
    write(
        tmp_path,
        {
            ".gitignore": b"*.log\nnode_modules/\n",
            ".forecodeignore": b"generated/\n",
            "debug.log": b"log\n",
            "node_modules/pkg/index.js": b"x\n",
            "generated/big.py": b"x = 1\n",
            ".env": b"TOKEN=1\n",
            "conf/id_rsa": b"key\n",
            "src/embedded_key.txt": PEM,
            ".git/HEAD": b"ref: refs/heads/main\n",
            "large.bin": b"\0" * 2048,
            "odd\\name.py": b"x = 1\n",  # a name the wire refuses
        },
    )
    (tmp_path / "link_out").symlink_to("/etc/hostname")
    return tmp_path


def test_scan_folder(workspace: Path) -> None:
    result = scan_folder(workspace, KEYS, max_file_bytes=1024)
    files = dict(result.tree.files())
    assert set(files) == {*FILES, ".gitignore", ".forecodeignore"}
    assert result.skipped == {
        ".env": "secret path",
        "conf/id_rsa": "secret path",
        "src/embedded_key.txt": "secret content",
        "large.bin": "too large",
        "link_out": "symlink",
        "odd\\name.py": "invalid name",
    }
    expected = {
        **FILES,
        ".gitignore": (workspace / ".gitignore").read_bytes(),
        ".forecodeignore": (workspace / ".forecodeignore").read_bytes(),
    }
    assert result.tree.root_hash == build(expected).root_hash


def test_rescan_reads_only_changed_files(workspace: Path) -> None:
    first = scan_folder(workspace, KEYS)
    assert first.read == first.tree.file_count + 1  # + the secret one, read and refused
    again = scan_folder(workspace, KEYS, previous=first.tree)
    assert again.read == 1  # the refused file is read again (it has no digest to reuse)
    assert again.tree.root_hash == first.tree.root_hash
    target = workspace / "src/app.py"
    target.write_bytes(b"print('changed')\n")
    os.utime(target, ns=(1, 1))
    third = scan_folder(workspace, KEYS, previous=again.tree)
    assert third.read == 2
    assert third.tree.digest("src/app.py") != first.tree.digest("src/app.py")


def test_scan_can_stop(workspace: Path) -> None:
    result = scan_folder(workspace, KEYS, should_stop=lambda: True)
    assert result.tree.file_count == 0


def _edit(root: Path) -> str:
    write(root, {"src/app.py": b"edited\n"})
    return "src/app.py"


def _delete(root: Path) -> str:
    (root / "docs/guide.md").unlink()
    return "docs/guide.md"


def _create(root: Path) -> str:
    write(root, {"src/new.py": b"n\n"})
    return "src/new.py"


def _create_secret(root: Path) -> str:
    write(root, {"src/.env.prod": b"A=1\n"})
    return "src/.env.prod"


def _create_key(root: Path) -> str:
    write(root, {"src/notes.txt": PEM})
    return "src/notes.txt"


def _create_ignored(root: Path) -> str:
    write(root, {"src/x.log": b"l\n"})
    return "src/x.log"


def _delete_folder(root: Path) -> str:
    for name in ("strings.py", "numbers.py"):
        (root / "src/util" / name).unlink()
    (root / "src/util").rmdir()
    return "src/util"


def _new_folder(root: Path) -> str:
    write(root, {"lib/a/b.py": b"b\n", "lib/c.py": b"c\n"})
    return "lib"


def _gitignore_grows(root: Path) -> str:
    write(root, {".gitignore": b"*.log\nnode_modules/\ndocs/\n"})
    return ".gitignore"


def _gitignore_in_subfolder(root: Path) -> str:
    write(root, {"src/.gitignore": b"util/\n"})
    return "src/.gitignore"


def _file_to_symlink(root: Path) -> str:
    (root / "README.md").unlink()
    (root / "README.md").symlink_to("/etc/hostname")
    return "README.md"


CHANGES = [
    _edit,
    _delete,
    _create,
    _create_secret,
    _create_key,
    _create_ignored,
    _delete_folder,
    _new_folder,
    _gitignore_grows,
    _gitignore_in_subfolder,
    _file_to_symlink,
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_refresh_path_matches_a_fresh_scan(workspace: Path, change: object) -> None:
    rules = IgnoreRules.for_folder(workspace, ignore_files=INDEX_IGNORE_FILES)
    tree = scan_folder(workspace, KEYS, rules=rules).tree
    before = tree.root_hash
    touched = change(workspace)  # type: ignore[operator]
    refresh_path(tree, workspace, touched, rules)
    fresh = scan_folder(workspace, KEYS)
    assert dict(tree.files()) == dict(fresh.tree.files())
    assert tree.root_hash == fresh.tree.root_hash
    if change not in (_create_secret, _create_key, _create_ignored):
        assert tree.root_hash != before
