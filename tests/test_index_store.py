"""The service's index store (cloud_server/index_store.py), called directly: trees whose folder
hashes the store computes itself, atomic and idempotent commits, the shared chunk cache, and
vector / lexical / combined search restricted to one tree.

Both kinds run the same tests: ``embedded`` (SQLite + numpy) and ``milvus`` (Milvus Lite
in-process through pymilvus, the client API of a Milvus cluster). Trees and chunks are real
(``MerkleTree``, ``chunk_file``, ``WorkspaceKeys``); the embeddings here are a deterministic
bag-of-words hash (the store only does arithmetic on them; the real model is exercised end to
end in tests/test_index_sync.py).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cloud_server.index_store import (
    STORE_KINDS,
    ChunkRecord,
    ChunkRef,
    CommitRejected,
    FileRecord,
    IndexStore,
    StaleBase,
    WrongRoot,
    open_store,
)
from forecode_core.index.chunking import chunk_file
from forecode_core.index.crypto import WorkspaceKeys
from forecode_core.index.merkle import MerkleTree, Snapshot, WireEntry, folder_hash
from forecode_core.index.search import Candidate, SearchMode, identifier_overlap, rerank, rrf

KEYS = WorkspaceKeys(bytes(range(32)))
OTHER = WorkspaceKeys(bytes(range(1, 33)))
TREE_A = b"A" * 16
TREE_B = b"B" * 16
DIM = 384

FILES = {
    "README.md": b"# Demo\nA small project that parses dates and merges lists.\n",
    "src/dates.py": b'def parse_http_date(value):\n    """Parse an RFC 7231 date."""\n'
    b"    return email.utils.parsedate_to_datetime(value)\n",
    "src/lists.py": b"def merge_sorted(left, right):\n    out = []\n    while left and right:\n"
    b"        out.append((left if left[0] < right[0] else right).pop(0))\n"
    b"    return out + left + right\n",
    "src/util/strings.py": b"def snake_case(name):\n    return re.sub('([A-Z])', r'_\\1', name)"
    b".lower()\n",
    "tests/test_dates.py": b"def test_parse():\n    assert parse_http_date('x') is None\n",
}


def embed(text: str) -> np.ndarray:
    """A bag of words hashed into 384 buckets, normalised: similar words, similar vectors."""
    vector = np.zeros(DIM, np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % DIM] += 1
    if not vector.any():
        vector[0] = 1.0
    return vector / np.linalg.norm(vector)


def chunk_records(
    keys: WorkspaceKeys, files: dict[str, bytes]
) -> tuple[dict[str, tuple[ChunkRef, ...]], dict[bytes, ChunkRecord]]:
    """Each file's chunk references and the cache entries of all chunks."""
    refs: dict[str, tuple[ChunkRef, ...]] = {}
    cache: dict[bytes, ChunkRecord] = {}
    for path, data in files.items():
        out = []
        for chunk in chunk_file(path, data).chunks:
            keyed = keys.chunk_hash(chunk.content_hash)
            out.append(ChunkRef(keyed, chunk.start_line, chunk.end_line))
            counts = Counter(keys.token_hashes(chunk.text))
            cache[keyed] = ChunkRecord(
                keyed, embed(chunk.text), tuple(counts), tuple(counts.values())
            )
        refs[path] = tuple(out)
    return refs, cache


def file_records(
    tree: MerkleTree, files: dict[str, bytes], paths: list[str], keys: WorkspaceKeys = KEYS
) -> tuple[list[FileRecord], list[ChunkRecord]]:
    refs, cache = chunk_records(keys, {p: files[p] for p in paths})
    records = [FileRecord(tree.obfuscated(p), tree.node_hash(p) or b"", refs[p]) for p in paths]
    return records, list(cache.values())


def build(files: dict[str, bytes], keys: WorkspaceKeys = KEYS) -> MerkleTree:
    tree, skipped = MerkleTree.from_files(keys, files.items())
    assert skipped == {}
    return tree


def push(
    store: IndexStore,
    files: dict[str, bytes],
    *,
    tree_id: bytes = TREE_A,
    keys: WorkspaceKeys = KEYS,
    base: bytes | None = None,
) -> MerkleTree:
    """Commit a whole tree (every file) on top of ``base``."""
    tree = build(files, keys)
    records, chunks = file_records(tree, files, sorted(files), keys)
    store.put_chunks(keys.key_id, chunks)
    result = store.commit(keys.key_id, tree_id, base, tree.root_hash, records, [])
    assert result.root == tree.root_hash and not result.already_applied
    return tree


def snapshot(store: IndexStore, keys: WorkspaceKeys, tree_id: bytes) -> dict[str, tuple]:
    """Every folder the store holds, walked from the root through ``folders``."""
    out: dict[str, tuple] = {}
    level = [""]
    while level:
        views = store.folders(keys.key_id, tree_id, [(p, "") for p in level], 1 << 30)
        level = []
        for view in views:
            assert view.found and view.complete
            out[view.path] = view.children
            level.extend(
                f"{view.path}/{e.name}" if view.path else e.name for e in view.children if e.is_dir
            )
    return out


@pytest.fixture(params=sorted(STORE_KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(tmp_path: Path, kind: str) -> Iterator[IndexStore]:
    with open_store(tmp_path / "index", kind) as opened:
        yield opened


# -- trees ----------------------------------------------------------------------------------------


def test_the_store_rebuilds_the_clients_tree_hash_by_hash(store: IndexStore) -> None:
    tree = push(store, FILES)
    assert store.root(KEYS.key_id, TREE_A) == tree.root_hash
    # Every folder the store computed is the client's folder, name for name, hash for hash.
    assert snapshot(store, KEYS, TREE_A) == Snapshot.from_tree(tree).folders
    stats = store.stats(KEYS.key_id, TREE_A)
    assert (stats.files, stats.folders, stats.commits) == (5, 3, 1)
    assert stats.store == store.kind and stats.dimension == DIM


def test_edits_renames_and_deletes_apply_and_empty_folders_go(store: IndexStore) -> None:
    tree = push(store, FILES)
    after = dict(FILES)
    after["src/dates.py"] = FILES["src/dates.py"] + b"# edited\n"
    after["lib/strings.py"] = after.pop("src/util/strings.py")  # a rename: the folder empties
    del after["tests/test_dates.py"]
    new = build(after)
    records, chunks = file_records(new, after, ["src/dates.py", "lib/strings.py"])
    store.put_chunks(KEYS.key_id, chunks)
    deleted = [tree.obfuscated("src/util"), tree.obfuscated("tests/test_dates.py")]
    result = store.commit(KEYS.key_id, TREE_A, tree.root_hash, new.root_hash, records, deleted)
    assert result.root == new.root_hash
    assert (result.files_written, result.paths_deleted) == (2, 2)
    assert snapshot(store, KEYS, TREE_A) == Snapshot.from_tree(new).folders
    # Deleting everything leaves the empty tree's root.
    empty = store.commit(
        KEYS.key_id,
        TREE_A,
        new.root_hash,
        folder_hash([]),
        [],
        [new.obfuscated(p) for p in ("README.md", "src", "lib")],
    )
    assert empty.root == MerkleTree(KEYS).root_hash
    assert store.stats(KEYS.key_id, TREE_A).files == 0


def test_a_commit_that_does_not_add_up_changes_nothing(store: IndexStore) -> None:
    tree = push(store, FILES)
    before = snapshot(store, KEYS, TREE_A)
    after = dict(FILES, **{"src/new.py": b"x = 1\n"})
    new = build(after)
    records, chunks = file_records(new, after, ["src/new.py"])
    store.put_chunks(KEYS.key_id, chunks)
    wrong = hashlib.sha256(b"not the root").digest()
    with pytest.raises(CommitRejected, match="does not add up"):
        store.commit(KEYS.key_id, TREE_A, tree.root_hash, wrong, records, [])
    # A lie about one file's hash is caught the same way: the store recomputes every folder.
    forged = [FileRecord(records[0].path, hashlib.sha256(b"forged").digest(), records[0].chunks)]
    with pytest.raises(CommitRejected):
        store.commit(KEYS.key_id, TREE_A, tree.root_hash, new.root_hash, forged, [])
    assert store.root(KEYS.key_id, TREE_A) == tree.root_hash
    assert snapshot(store, KEYS, TREE_A) == before
    assert store.stats(KEYS.key_id, TREE_A).commits == 1


def test_commits_are_idempotent_and_refuse_a_stale_base(store: IndexStore) -> None:
    tree = push(store, FILES)
    after = dict(FILES, **{"src/new.py": b"y = 2\n"})
    new = build(after)
    records, chunks = file_records(new, after, ["src/new.py"])
    store.put_chunks(KEYS.key_id, chunks)
    first = store.commit(KEYS.key_id, TREE_A, tree.root_hash, new.root_hash, records, [])
    again = store.commit(KEYS.key_id, TREE_A, tree.root_hash, new.root_hash, records, [])
    assert not first.already_applied and again.already_applied and again.root == new.root_hash
    assert store.stats(KEYS.key_id, TREE_A).commits == 2
    # A commit made against the old root, with another result: the tree moved on since.
    other = dict(FILES, **{"src/other.py": b"z = 3\n"})
    other_tree = build(other)
    records, chunks = file_records(other_tree, other, ["src/other.py"])
    store.put_chunks(KEYS.key_id, chunks)
    with pytest.raises(StaleBase):
        store.commit(KEYS.key_id, TREE_A, tree.root_hash, other_tree.root_hash, records, [])
    assert store.root(KEYS.key_id, TREE_A) == new.root_hash


def test_missing_chunks_and_file_folder_clashes_are_refused(store: IndexStore) -> None:
    tree = push(store, FILES)
    after = dict(FILES, **{"src/fresh.py": b"def fresh():\n    return 'never cached'\n"})
    new = build(after)
    records, _chunks = file_records(new, after, ["src/fresh.py"])  # chunks not put
    with pytest.raises(CommitRejected, match="not in the cache"):
        store.commit(KEYS.key_id, TREE_A, tree.root_hash, new.root_hash, records, [])
    # "README.md" becomes a folder: refused unless the file is deleted in the same commit.
    clash = {k: v for k, v in FILES.items() if k != "README.md"}
    clash["README.md/inner.txt"] = b"inside\n"
    clash_tree = build(clash)
    records, chunks = file_records(clash_tree, clash, ["README.md/inner.txt"])
    store.put_chunks(KEYS.key_id, chunks)
    with pytest.raises(CommitRejected, match="stands where the tree has a file"):
        store.commit(KEYS.key_id, TREE_A, tree.root_hash, clash_tree.root_hash, records, [])
    assert store.root(KEYS.key_id, TREE_A) == tree.root_hash
    result = store.commit(
        KEYS.key_id,
        TREE_A,
        tree.root_hash,
        clash_tree.root_hash,
        records,
        [tree.obfuscated("README.md")],
    )
    assert result.root == clash_tree.root_hash


def test_big_folders_are_answered_in_pages(store: IndexStore) -> None:
    files = {f"many/file_{i:03d}.txt": f"line {i}\n".encode() for i in range(120)}
    tree = push(store, files)
    folder = tree.obfuscated("many")
    children: list[WireEntry] = []
    after = ""
    pages = 0
    while True:
        (view,) = store.folders(KEYS.key_id, TREE_A, [(folder, after)], 2000)
        pages += 1
        children.extend(view.children)
        if view.complete:
            break
        after = view.children[-1].name
    assert pages > 3
    assert tuple(children) == tree.wire_node("many").children
    # A folder the store does not hold, and a tree it does not know, are "not found".
    (missing,) = store.folders(
        KEYS.key_id, TREE_A, [(tree.obfuscated("many/file_000.txt"), "")], 1 << 20
    )
    assert not missing.found
    (unknown,) = store.folders(KEYS.key_id, TREE_B, [("", "")], 1 << 20)
    assert not unknown.found and store.root(KEYS.key_id, TREE_B) is None


# -- the chunk cache ------------------------------------------------------------------------------


def test_the_chunk_cache_is_shared_by_the_workspace_and_only_by_it(store: IndexStore) -> None:
    push(store, FILES)
    _refs, cache = chunk_records(KEYS, FILES)
    hashes = list(cache)
    assert store.missing(KEYS.key_id, hashes) == []
    assert store.put_chunks(KEYS.key_id, list(cache.values())) == 0  # already there
    # A second tree of the same workspace (a teammate) finds every chunk cached.
    push(store, FILES, tree_id=TREE_B)
    assert store.stats(KEYS.key_id).cached_chunks == len(cache)
    # Another key: another workspace, nothing shared (its hashes differ anyway).
    _refs, other = chunk_records(OTHER, FILES)
    assert store.missing(OTHER.key_id, list(other)) == list(range(len(other)))
    assert store.missing(OTHER.key_id, hashes) == list(range(len(hashes)))


def test_wrong_dimensions_and_unknown_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid kinds: embedded, milvus"):
        open_store(tmp_path / "x", "faiss")
    with open_store(tmp_path / "y") as store:
        bad = ChunkRecord(b"\1" * 32, np.ones(12, np.float32), (), ())
        with pytest.raises(ValueError, match="384 dimensions"):
            store.put_chunks(KEYS.key_id, [bad])
    with pytest.raises(ValueError, match="dimension 384, not 768"):
        open_store(tmp_path / "y", dimension=768)


# -- search ---------------------------------------------------------------------------------------


def test_search_vector_lexical_and_combined(store: IndexStore) -> None:
    tree = push(store, FILES)
    dates = tree.obfuscated("src/dates.py")
    terms = list(dict.fromkeys(KEYS.token_hashes("parse_http_date rfc")))
    vector = embed("parse an RFC 7231 date value")
    root = tree.root_hash
    for mode in ("vector", "lexical", "combined"):
        hits, searched = store.search(KEYS.key_id, TREE_A, root, vector, terms, 3, mode)
        assert searched == store.stats(KEYS.key_id, TREE_A).tree_chunks
        # The definition ranks first; the test that calls it may follow.
        assert hits[0].path == dates, (mode, hits)
        assert hits[0].start_line == 1
    combined, _n = store.search(KEYS.key_id, TREE_A, root, vector, terms, 3)
    assert combined[0].vector_rank == 1 and combined[0].lexical_rank == 1
    assert combined[0].lexical_score > 0 and combined[0].vector_score > 0.5
    # Merging lists: found by its words.
    hits, _n = store.search(
        KEYS.key_id, TREE_A, root, embed("merge sorted lists"), KEYS.token_hashes("merge sorted"), 1
    )
    assert [h.path for h in hits] == [tree.obfuscated("src/lists.py")]


def test_search_answers_only_for_the_current_root_and_only_from_that_tree(
    store: IndexStore,
) -> None:
    tree_a = push(store, FILES)
    without_dates = {k: v for k, v in FILES.items() if k != "src/dates.py"}
    tree_b = push(store, without_dates, tree_id=TREE_B)
    terms = KEYS.token_hashes("parse_http_date")
    for wrong in (tree_b.root_hash, b"\0" * 32):
        with pytest.raises(WrongRoot):
            store.search(KEYS.key_id, TREE_A, wrong, embed("parse http date"), terms, 5)
    with pytest.raises(WrongRoot):  # a tree the store does not hold
        store.search(KEYS.key_id, b"C" * 16, tree_a.root_hash, None, terms, 5)
    # Tree B shares the chunk cache but holds no dates.py: none of its chunks come back.
    hits, _n = store.search(
        KEYS.key_id, TREE_B, tree_b.root_hash, embed("parse http date"), terms, 10
    )
    dates_a = tree_a.obfuscated("src/dates.py")
    assert hits and all(h.path != dates_a for h in hits)
    assert {h.path for h in hits} <= {tree_b.obfuscated(p) for p in without_dates}
    assert any(h.path == tree_b.obfuscated("tests/test_dates.py") for h in hits)


def test_the_same_chunk_in_two_files_is_two_hits(store: IndexStore) -> None:
    body = b"def shared_helper(x):\n    return x * 2\n"
    tree = push(store, {"a/one.py": body, "b/two.py": body, "c.txt": b"unrelated\n"})
    hits, searched = store.search(
        KEYS.key_id,
        TREE_A,
        tree.root_hash,
        embed("shared helper"),
        KEYS.token_hashes("shared_helper"),
        5,
    )
    assert searched == 2
    assert sorted(h.path for h in hits[:2]) == sorted(
        [tree.obfuscated("a/one.py"), tree.obfuscated("b/two.py")]
    )


def test_the_index_survives_a_restart(tmp_path: Path, kind: str) -> None:
    with open_store(tmp_path / "index", kind) as store:
        tree = push(store, FILES)
    with open_store(tmp_path / "index", kind) as store:
        assert store.root(KEYS.key_id, TREE_A) == tree.root_hash
        hits, _n = store.search(
            KEYS.key_id,
            TREE_A,
            tree.root_hash,
            embed("merge sorted"),
            KEYS.token_hashes("merge_sorted"),
            1,
            "vector",
        )
        assert hits[0].path == tree.obfuscated("src/lists.py")
        # Commits go on from there, and the in-memory matrix follows them.
        after = dict(FILES, **{"src/zeta.py": b"def zeta_function(s):\n    return s\n"})
        new = build(after)
        records, chunks = file_records(new, after, ["src/zeta.py"])
        store.put_chunks(KEYS.key_id, chunks)
        store.commit(KEYS.key_id, TREE_A, tree.root_hash, new.root_hash, records, [])
        hits, _n = store.search(
            KEYS.key_id, TREE_A, new.root_hash, embed("zeta function s"), [], 1, "vector"
        )
        assert hits[0].path == new.obfuscated("src/zeta.py")


# -- the pure ranking helpers ---------------------------------------------------------------------


def test_rrf_rewards_agreement_and_rerank_rewards_exact_identifiers() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]])
    assert [k for k, _s in fused] == ["a", "c", "b", "d"]
    # A lighter second list: its first place no longer beats the first list's second.
    assert [k for k, _s in rrf([["a", "b"], ["c"]], weights=(1.0, 0.5))] == ["a", "b", "c"]
    assert identifier_overlap("parse_args", "def parse_args(argv): ...") == 1.0
    assert identifier_overlap("parse_args", "def args_parse(argv): ...") == 0.0
    assert identifier_overlap("how to parse", "def parse(): ...") == 0.0  # no compound
    ranked = rerank(
        "parse_args",
        [
            Candidate("wrong", 0.09, "def args_parse(): ..."),
            Candidate("right", 0.06, "def parse_args(): ..."),
            Candidate("unread", 0.10, None),
        ],
    )
    assert [c.key for c in ranked] == ["right", "unread", "wrong"]


@pytest.mark.parametrize(
    ("mode", "name", "vector", "terms"),
    [
        (SearchMode.COMBINED, "combined", True, True),
        (SearchMode.VECTOR, "vector", True, False),
        (SearchMode.LEXICAL, "lexical", False, True),
    ],
)
def test_a_search_mode_is_its_name_and_says_which_lists_it_ranks_by(
    mode: SearchMode, name: str, vector: bool, terms: bool
) -> None:
    assert mode == name and SearchMode(name) is mode
    assert (mode.uses_vector, mode.uses_terms) == (vector, terms)
