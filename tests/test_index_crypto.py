"""The workspace key and what is derived from it (forecode_core/index/crypto.py)."""

from __future__ import annotations

import base64

import pytest

from forecode_core.index.crypto import (
    HASH_BYTES,
    KEY_BYTES,
    TOKEN_HASH_BYTES,
    WorkspaceKeys,
    export_key,
    generate_workspace_key,
    import_key,
    lexical_tokens,
    split_identifier,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
DIGEST = bytes(range(100, 132))

PATHS = [
    "README.md",
    "src/app.py",
    "src/forecode_marker_alpha/deep/er/still/module_marker_beta.py",
    "a b/c d.txt",  # spaces
    ".hidden/..dots.../x",
    "unicodé/日本語/ファイル.rs",
    "x" * 255,  # the longest name
    "a/a/a/a",  # the same name at every level
]


@pytest.fixture(scope="module")
def keys() -> WorkspaceKeys:
    return WorkspaceKeys(KEY_A)


@pytest.fixture(scope="module")
def other() -> WorkspaceKeys:
    return WorkspaceKeys(KEY_B)


def outputs(k: WorkspaceKeys) -> dict[str, bytes | str]:
    return {
        "chunk": k.chunk_hash(DIGEST),
        "file": k.file_hash(DIGEST),
        "token": k.token_hash("parse"),
        "segment": k.obfuscate_segment("main.py"),
        "path": k.obfuscate_path("src/pkg/main.py"),
        "id": k.key_id,
    }


def test_same_key_same_output_other_key_unrelated(
    keys: WorkspaceKeys, other: WorkspaceKeys
) -> None:
    mine, again, theirs = outputs(keys), outputs(WorkspaceKeys(KEY_A)), outputs(other)
    assert mine == again
    for name in mine:
        assert mine[name] != theirs[name], name
    # unrelated, not merely different: no shared prefix worth speaking of
    assert keys.chunk_hash(DIGEST)[:4] != other.chunk_hash(DIGEST)[:4]


def test_purposes_are_separated(keys: WorkspaceKeys) -> None:
    # the same input through two purposes gives unrelated outputs (one sub-key per purpose)
    assert keys.chunk_hash(DIGEST) != keys.file_hash(DIGEST)
    assert len(keys.chunk_hash(DIGEST)) == len(keys.file_hash(DIGEST)) == HASH_BYTES
    assert keys.chunk_hash(DIGEST) != DIGEST
    assert keys.chunk_hash(bytes(32)) != keys.chunk_hash(b"\0" * 31 + b"\1")


@pytest.mark.parametrize("path", PATHS)
def test_round_trip_and_no_plaintext(keys: WorkspaceKeys, path: str) -> None:
    obf = keys.obfuscate_path(path)
    assert keys.reveal_path(obf) == path
    assert obf.count("/") == path.count("/")  # the tree structure survives
    assert obf.isascii()
    ciphertexts = [base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in obf.split("/")]
    for segment in path.split("/"):
        if len(segment) < 4:  # a short name can occur in random text by chance
            continue
        assert segment not in obf
        assert all(segment.encode() not in blob for blob in ciphertexts)


def test_marker_strings_never_appear(keys: WorkspaceKeys) -> None:
    markers = [f"forecode_marker_{i:04d}" for i in range(200)]
    obf = [keys.obfuscate_path(f"{m}/{m}.py") for m in markers]
    blob = "\n".join(obf)
    for marker in markers:
        assert marker not in blob
        assert marker[-4:] + ".py" not in blob
    assert len(set(obf)) == len(obf)


def test_per_segment_deterministic_and_bound_to_parent(keys: WorkspaceKeys) -> None:
    a = keys.obfuscate_path("pkg/sub/__init__.py").split("/")
    b = keys.obfuscate_path("pkg/other/__init__.py").split("/")
    assert a[0] == b[0]  # same folder, same name: same node on the service
    assert a[1] != b[1]
    assert a[2] != b[2]  # the same file name in another folder: no frequency analysis
    assert keys.obfuscate_segment("__init__.py", a[0] + "/" + a[1]) == a[2]


def test_lengths_are_padded(keys: WorkspaceKeys) -> None:
    lengths = {len(keys.obfuscate_segment("x" * n)) for n in range(1, 8)}
    assert len(lengths) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1],
        lambda s: s[1:],
        lambda s: "",
        lambda s: s + "!",
        lambda s: "AAAA",
    ],
)
def test_tampered_segment_rejected(keys: WorkspaceKeys, tamper: object) -> None:
    obf = keys.obfuscate_segment("main.py")
    with pytest.raises(ValueError):
        keys.reveal_segment(tamper(obf))  # type: ignore[operator]


def test_foreign_key_or_parent_rejected(keys: WorkspaceKeys, other: WorkspaceKeys) -> None:
    obf = keys.obfuscate_segment("main.py", "parentX")
    assert keys.reveal_segment(obf, "parentX") == "main.py"
    with pytest.raises(ValueError):
        other.reveal_segment(obf, "parentX")
    with pytest.raises(ValueError):
        keys.reveal_segment(obf, "parentY")
    with pytest.raises(ValueError):
        other.reveal_path(keys.obfuscate_path("a/b.py"))


@pytest.mark.parametrize("key", [b"", b"\0" * 31, b"\0" * 33, b"\0" * 64, "0" * 32, None])
def test_wrong_key_length_rejected(key: object) -> None:
    with pytest.raises(ValueError):
        WorkspaceKeys(key)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        export_key(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [b"", b"\0" * 31, b"\0" * 33, b"\0" * 64, "0" * 32])
def test_wrong_hash_length_rejected(keys: WorkspaceKeys, value: object) -> None:
    with pytest.raises(ValueError):
        keys.chunk_hash(value)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        keys.file_hash(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("segment", ["", ".", "..", "a/b", "a\\b", "a\0b", "x" * 256, "é" * 128])
def test_invalid_segments_rejected(keys: WorkspaceKeys, segment: str) -> None:
    with pytest.raises(ValueError):
        keys.obfuscate_segment(segment)


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "a/../b", "../a", "a//b", "a/", "./a", "a/./b"]
)
def test_invalid_paths_rejected(keys: WorkspaceKeys, path: str) -> None:
    with pytest.raises(ValueError):
        keys.obfuscate_path(path)


def test_key_generation_and_export() -> None:
    key = generate_workspace_key()
    assert len(key) == KEY_BYTES
    assert generate_workspace_key() != key
    text = export_key(key)
    assert import_key(text) == key
    for bad in [
        "",
        "fcwk1:",
        "fcwk1:!!!!",
        "fcwk1:" + base64.urlsafe_b64encode(b"x" * 31).decode(),
        text[len("fcwk1:") :],
        "fcwk2:" + text[len("fcwk1:") :],
    ]:
        with pytest.raises(ValueError):
            import_key(bad)


def test_repr_holds_no_key() -> None:
    keys = WorkspaceKeys(KEY_A)
    text = repr(keys)
    assert KEY_A.hex() not in text and export_key(KEY_A) not in text
    assert keys.key_id in text
    assert len(keys.key_id) == 32 and keys.key_id not in KEY_A.hex()


def test_seal_and_open(keys: WorkspaceKeys, other: WorkspaceKeys) -> None:
    blob = keys.seal(b"def secret(): pass", b"chunk-1")
    assert b"secret" not in blob
    assert keys.open(blob, b"chunk-1") == b"def secret(): pass"
    assert keys.seal(b"x") != keys.seal(b"x")  # random nonce
    for bad_open in (
        lambda: keys.open(blob, b"chunk-2"),
        lambda: other.open(blob, b"chunk-1"),
        lambda: keys.open(blob[:-1] + bytes([blob[-1] ^ 1]), b"chunk-1"),
        lambda: keys.open(b"\x01short", b""),
        lambda: keys.open(b"\x02" + blob[1:], b"chunk-1"),
    ):
        with pytest.raises(ValueError):
            bad_open()


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("parse_args", ["parse", "args"]),
        ("getHTTPResponseCode", ["get", "http", "response", "code"]),
        ("XMLHttpRequest", ["xml", "http", "request"]),
        ("__init__", ["init"]),
        ("utf8Decode", ["utf", "8", "decode"]),
        ("IOError", ["io", "error"]),
        ("SCREAMING_CASE", ["screaming", "case"]),
        ("straßeName", ["straße", "name"]),
        ("x", ["x"]),
    ],
)
def test_split_identifier(identifier: str, words: list[str]) -> None:
    assert split_identifier(identifier) == words


def test_lexical_tokens() -> None:
    tokens = lexical_tokens("def parse_args(argv):\n    return HTTPServer(x, 404)  # i")
    assert tokens == [
        "def",
        "parse_args",
        "parse",
        "args",
        "argv",
        "return",
        "httpserver",
        "http",
        "server",
        "404",
    ]


def test_token_hashes(keys: WorkspaceKeys, other: WorkspaceKeys) -> None:
    hashes = keys.token_hashes("parseArgs parse_args")
    assert all(len(h) == TOKEN_HASH_BYTES for h in hashes)
    # "parseargs"/"parse_args" are different wholes, their parts the same terms
    assert hashes[1] == hashes[4] and hashes[2] == hashes[5]
    assert keys.token_hash("parse") != other.token_hash("parse")
    assert len({keys.token_hash(t) for t in ["parse", "args", "http", "server"]}) == 4
    with pytest.raises(ValueError):
        keys.token_hash("")
