"""``forecode-cloud``'s index flags: ``--index-dir``, ``--index-store``, ``--milvus-uri``.

The service runs as a user runs it (``python -m cloud_server`` as a child process, the token in
its environment) with the ``openai`` backend pointed at nothing (no model to load: these tests
are about the index store). A real IndexSync client then talks to it over loopback.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cloud import ServiceProcess, run_service, service_env

from cloud_client.index_sync import IndexSyncClient, new_tree_id
from cloud_server.index_store import DB_NAME, MILVUS_LITE_NAME, STORE_KINDS
from cloud_server.main import INDEX_STORE_KINDS
from forecode_core.index.crypto import WorkspaceKeys, generate_workspace_key
from forecode_core.index.merkle import MerkleTree
from proto.forecode.v1 import forecode_pb2 as pb

TOKEN = "index-flags-test-token-0123456789"
OPENAI = [
    "--backend",
    "openai",
    "--openai-url",
    "http://127.0.0.1:9",
    "--openai-model",
    "unused",
    "--grace",
    "0",
]


def _commit_one_empty_file(target: str) -> bytes:
    """A real sync round over IndexSync: reconcile, then commit a tree of one empty file (no
    chunk, so no embedding is needed); returns the committed root."""
    keys = WorkspaceKeys(generate_workspace_key())
    tree = MerkleTree(keys)
    tree.set_file("empty.txt", b"")
    ref = pb.TreeRef(workspace_id=keys.key_id, tree_id=new_tree_id())
    with IndexSyncClient(target, TOKEN, timeout=30) as client:
        first = client.get_nodes(
            pb.GetNodesRequest(
                tree=ref, root_hash=tree.root_hash, folders=[pb.FolderQuery(path="")]
            )
        )
        assert not first.in_sync  # a tree the service has never seen
        reply = client.upload(
            iter(
                [
                    pb.UploadRequest(
                        tree=ref,
                        new_root=tree.root_hash,
                        commit=True,
                        files=[
                            pb.FileEntry(
                                path=tree.obfuscated("empty.txt"),
                                file_hash=tree.node_hash("empty.txt"),
                            )
                        ],
                    )
                ]
            )
        )
        again = client.get_nodes(
            pb.GetNodesRequest(
                tree=ref, root_hash=tree.root_hash, folders=[pb.FolderQuery(path="")]
            )
        )
    assert again.in_sync
    return bytes(reply.root_hash)


def test_the_flag_lists_the_store_kinds_of_the_store_module():
    assert set(INDEX_STORE_KINDS) == set(STORE_KINDS)


def test_index_dir_holds_the_store_the_service_syncs_into(tmp_path: Path):
    index_dir = tmp_path / "my-index"
    service = ServiceProcess(
        ["--port", "0", "--index-dir", str(index_dir), *OPENAI], token=TOKEN
    ).start()
    try:
        assert (index_dir / DB_NAME).is_file()  # opened before the service listens
        root = _commit_one_empty_file(service.target)
        assert len(root) == 32
    finally:
        assert service.stop() == 0
    files = {p.name for p in index_dir.iterdir()}
    assert DB_NAME in files
    # the commit went into that file (WAL checkpointed on close, or still in the -wal file)
    db = sqlite3.connect(index_dir / DB_NAME)
    try:
        assert db.execute("SELECT root FROM trees").fetchall() == [(root,)]
    finally:
        db.close()
    assert "index store: embedded in" in service.log()


def test_a_bad_store_kind_exits_with_the_valid_ones(tmp_path: Path):
    done = run_service(
        ["--index-store", "qdrant", "--index-dir", str(tmp_path), *OPENAI], token=TOKEN
    )
    assert done.returncode == 2
    assert "--index-store: invalid choice: 'qdrant'" in done.stderr
    assert "'embedded', 'milvus'" in done.stderr
    assert not any(tmp_path.iterdir())  # nothing was created


def test_milvus_uri_without_the_milvus_store_is_refused(tmp_path: Path):
    done = run_service(
        ["--milvus-uri", str(tmp_path / "m.db"), "--index-dir", str(tmp_path), *OPENAI], token=TOKEN
    )
    assert done.returncode == 2
    assert "--milvus-uri needs --index-store milvus" in done.stderr


def test_milvus_without_pymilvus_says_how_to_install_it(tmp_path: Path):
    # The entry point in an interpreter where pymilvus cannot be found (as without the extra).
    hide = (
        "import importlib.util as u, sys; f = u.find_spec; "
        "u.find_spec = lambda n, p=None: None if n == 'pymilvus' else f(n, p); "
        "from cloud_server.main import main; sys.exit(main())"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            hide,
            "--index-store",
            "milvus",
            "--index-dir",
            str(tmp_path / "idx"),
            *OPENAI,
        ],
        env=service_env(TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "needs pymilvus" in done.stderr and "forecode[milvus]" in done.stderr
    assert not (tmp_path / "idx").exists()


@pytest.mark.slow
def test_milvus_lite_store_from_the_command_line(tmp_path: Path):
    index_dir, uri = tmp_path / "idx", tmp_path / "milvus" / MILVUS_LITE_NAME
    uri.parent.mkdir()
    service = ServiceProcess(
        [
            "--port",
            "0",
            "--index-dir",
            str(index_dir),
            "--index-store",
            "milvus",
            "--milvus-uri",
            str(uri),
            *OPENAI,
        ],
        token=TOKEN,
    )
    service.start(timeout=60)
    try:
        assert len(_commit_one_empty_file(service.target)) == 32
    finally:
        assert service.stop() == 0
    assert (index_dir / DB_NAME).is_file()
    assert uri.exists()  # Milvus Lite's data went where --milvus-uri said
    assert "index store: milvus in" in service.log()


def test_without_index_dir_the_store_lives_in_the_data_folder(tmp_path: Path):
    data = tmp_path / "data"
    env = service_env(TOKEN, FORECODE_DATA_DIR=str(data))
    env.pop("FORECODE_INDEX_DIR", None)
    service = ServiceProcess(["--port", "0", *OPENAI], token=TOKEN, env=env).start()
    try:
        _commit_one_empty_file(service.target)
    finally:
        assert service.stop() == 0
    assert (data / "index" / DB_NAME).is_file()


def test_the_editors_local_service_passes_its_index_dir(tmp_path: Path):
    from cloud_client.local_service import LocalService

    index_dir = tmp_path / "editor-index"
    with LocalService(index_dir=index_dir, extra_args=tuple(OPENAI)) as service:
        target, token = service.start(timeout=60)
        assert (index_dir / DB_NAME).is_file()
        with IndexSyncClient(target, token, timeout=30) as client:
            reply = client.stats(
                pb.StatsRequest(tree=pb.TreeRef(workspace_id="0" * 32, tree_id=new_tree_id()))
            )
        assert reply.store == "embedded"
