"""What a GGUF model is, read from its header without loading the weights.

``read_model_info(path)`` parses the GGUF header itself (magic, version, tensor and key/value
counts, the typed key/values, the tensor infos) and checks that the file is long enough to hold
every tensor the header describes. A missing, foreign, truncated or corrupt file raises
``ModelError`` with a one-line message before llama.cpp ever sees it (llama.cpp would crash or
print pages of log on some of these).

Only the keys Forecode needs are decoded; big tokenizer arrays are skipped (fixed-size element
arrays in one seek, string arrays by walking their length prefixes).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ModelError", "ModelInfo", "read_model_info"]

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4
# Sanity bounds: a real header never comes near these; a corrupt one often does.
_MAX_TENSORS = 1 << 20
_MAX_KVS = 1 << 20
_MAX_KEY_LEN = 1 << 16

# GGUF value types -> (struct code, size) for the fixed-size ones.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = 8, 9, 10, 11, 12
_SCALARS: dict[int, tuple[str, int]] = {
    _UINT8: ("<B", 1),
    _INT8: ("<b", 1),
    _UINT16: ("<H", 2),
    _INT16: ("<h", 2),
    _UINT32: ("<I", 4),
    _INT32: ("<i", 4),
    _FLOAT32: ("<f", 4),
    _BOOL: ("<?", 1),
    _UINT64: ("<Q", 8),
    _INT64: ("<q", 8),
    _FLOAT64: ("<d", 8),
}

# ggml tensor types -> (elements per block, bytes per block), from ggml's type traits.
_GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class ModelError(Exception):
    """A model file that cannot be used, with a one-line message a user can act on."""


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    architecture: str
    context_length: int | None
    n_vocab: int | None
    bos_id: int | None
    eos_id: int | None
    fim_prefix_id: int | None
    fim_suffix_id: int | None
    fim_middle_id: int | None
    chat_template: str | None
    sliding_window: int | None
    file_size: int

    @property
    def has_fim(self) -> bool:
        return None not in (self.fim_prefix_id, self.fim_suffix_id, self.fim_middle_id)


class _Truncated(Exception):
    """The header wants bytes past the end of the file."""


class _Corrupt(Exception):
    """The header holds a value no valid GGUF file has."""


class _Reader:
    """Little-endian cursor over the mapped file; every read is bounds-checked."""

    __slots__ = ("buf", "pos", "size")

    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf = buf
        self.pos = 0
        self.size = size

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated(
                f"the header ends early (reading {what} at byte {self.pos}, file size {self.size})"
            )

    def u32(self, what: str) -> int:
        self.need(4, what)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (v,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def string(self, what: str) -> str:
        n = self.u64(what)
        self.need(n, what)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        n = self.u64(what)
        self.need(n, what)
        self.pos += n

    def scalar(self, vtype: int, what: str) -> int | float | bool:
        code, size = _SCALARS[vtype]
        self.need(size, what)
        (v,) = struct.unpack_from(code, self.buf, self.pos)
        self.pos += size
        return v  # type: ignore[no-any-return]


def _check_vtype(vtype: int, key: str) -> None:
    if vtype not in _SCALARS and vtype not in (_STRING, _ARRAY):
        raise _Corrupt(f"unknown value type {vtype} for key {key!r}")


def _read_value(r: _Reader, vtype: int, key: str, keep: bool) -> object:
    """One value of ``vtype``; arrays are skipped unless ``keep`` (then only their length)."""
    _check_vtype(vtype, key)
    if vtype == _STRING:
        if keep:
            return r.string(key)
        r.skip_string(key)
        return None
    if vtype != _ARRAY:
        return r.scalar(vtype, key)
    etype = r.u32(key)
    count = r.u64(key)
    _check_vtype(etype, key)
    if etype in _SCALARS:
        size = _SCALARS[etype][1]
        r.need(count * size, key)
        r.pos += count * size
    elif etype == _STRING:
        # Each string is a u64 length then its bytes: walk the prefixes without decoding.
        r.need(count * 8, key)
        buf, pos, size, unpack = r.buf, r.pos, r.size, _U64.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                r.pos = pos
                r.need(8, key)
            pos += 8 + unpack(buf, pos)[0]
        if pos > size:
            r.pos = size
            r.need(1, key)
        r.pos = pos
    else:  # arrays of arrays: rare, walk them one by one
        for _ in range(count):
            _read_value(r, etype, key, keep=False)
    return {"array_len": count} if keep else None


def _int_or_none(v: object) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return v


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Parse ``path``'s GGUF header; raise ``ModelError`` for anything unusable."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelError(f"Model file not found: {p}") from None
    except OSError as exc:
        raise ModelError(f"Cannot read model file {p}: {exc.strerror or exc}") from None
    if p.is_dir():
        raise ModelError(f"{p} is a directory, not a GGUF model file")
    size = st.st_size
    if size == 0:
        raise ModelError(f"{p} is empty, not a GGUF model (it does not start with 'GGUF')")
    try:
        with open(p, "rb") as f:
            head = f.read(4)
            if head != _MAGIC:
                if _MAGIC.startswith(head):
                    raise ModelError(
                        f"{p} is truncated or corrupt: the file is only {size} bytes long"
                    )
                raise ModelError(f"{p} is not a GGUF model (it does not start with 'GGUF')")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(p, buf, size)
    except ModelError:
        raise
    except (_Truncated, _Corrupt) as exc:
        raise ModelError(f"{p} is truncated or corrupt: {exc}") from None
    except OSError as exc:
        raise ModelError(f"Cannot read model file {p}: {exc.strerror or exc}") from None


_WANTED_SUFFIXES = ("context_length", "vocab_size", "attention.sliding_window")
_WANTED_KEYS = {
    "general.architecture",
    "general.name",
    "general.alignment",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.fim_pre_token_id",
    "tokenizer.ggml.fim_suf_token_id",
    "tokenizer.ggml.fim_mid_token_id",
    "tokenizer.ggml.prefix_token_id",
    "tokenizer.ggml.suffix_token_id",
    "tokenizer.ggml.middle_token_id",
    "tokenizer.chat_template",
    "tokenizer.ggml.tokens",
}


def _parse(p: Path, buf: mmap.mmap, size: int) -> ModelInfo:
    r = _Reader(buf, size)
    r.pos = 4
    version = r.u32("the version")
    if version not in _SUPPORTED_VERSIONS:
        if version in (1,):
            raise ModelError(f"{p} uses GGUF version 1, which is no longer supported")
        if _U32.unpack(_U32.pack(version)[::-1])[0] in _SUPPORTED_VERSIONS:
            raise ModelError(f"{p} is a big-endian GGUF model, which is not supported")
        raise _Corrupt(f"unknown GGUF version {version}")
    n_tensors = r.u64("the tensor count")
    n_kv = r.u64("the key/value count")
    if n_tensors > _MAX_TENSORS or n_kv > _MAX_KVS:
        raise _Corrupt(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")

    kv: dict[str, object] = {}
    for i in range(n_kv):
        key_len = r.u64(f"key #{i}")
        if key_len > _MAX_KEY_LEN:
            raise _Corrupt(f"key #{i} claims a length of {key_len} bytes")
        r.pos -= 8
        key = r.string(f"key #{i}")
        vtype = r.u32(key)
        keep = key in _WANTED_KEYS or key.endswith(_WANTED_SUFFIXES)
        value = _read_value(r, vtype, key, keep)
        if keep:
            kv[key] = value

    tensor_end = 0
    unknown_end = 0
    for i in range(n_tensors):
        name = r.string(f"tensor info #{i}")
        n_dims = r.u32(name)
        if n_dims == 0 or n_dims > _MAX_DIMS:
            raise _Corrupt(f"tensor {name!r} has {n_dims} dimensions")
        r.need(8 * n_dims, name)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, r.pos)
        r.pos += 8 * n_dims
        ggml_type = r.u32(name)
        offset = r.u64(name)
        n_elems = 1
        for d in dims:
            n_elems *= d
        block = _GGML_BLOCKS.get(ggml_type)
        if block is None:
            unknown_end = max(unknown_end, offset + 1)
            continue
        per_block, block_bytes = block
        if n_elems % per_block:
            raise _Corrupt(f"tensor {name!r} does not fill whole blocks of its type")
        tensor_end = max(tensor_end, offset + n_elems // per_block * block_bytes)

    alignment = _int_or_none(kv.get("general.alignment")) or _DEFAULT_ALIGNMENT
    if alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"general.alignment is {alignment}, not a power of two")
    data_start = -(-r.pos // alignment) * alignment
    needed = data_start + max(tensor_end, unknown_end)
    if n_tensors and needed > size:
        raise ModelError(
            f"{p} is truncated or corrupt: its tensors need {needed} bytes but the file has "
            f"only {size} (an incomplete download or copy?)"
        )

    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise _Corrupt("general.architecture is missing")
    model_name = kv.get("general.name")

    def arch_int(suffix: str) -> int | None:
        return _int_or_none(kv.get(f"{arch}.{suffix}"))

    def tok_id(*keys: str) -> int | None:
        for k in keys:
            v = _int_or_none(kv.get(k))
            if v is not None:
                return v
        return None

    n_vocab = arch_int("vocab_size")
    tokens = kv.get("tokenizer.ggml.tokens")
    if n_vocab is None and isinstance(tokens, dict):
        n_vocab = int(tokens["array_len"])
    template = kv.get("tokenizer.chat_template")
    return ModelInfo(
        path=p,
        name=model_name if isinstance(model_name, str) and model_name else p.stem,
        architecture=arch,
        context_length=arch_int("context_length"),
        n_vocab=n_vocab,
        bos_id=tok_id("tokenizer.ggml.bos_token_id"),
        eos_id=tok_id("tokenizer.ggml.eos_token_id"),
        fim_prefix_id=tok_id("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
        fim_suffix_id=tok_id("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
        fim_middle_id=tok_id("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
        chat_template=template if isinstance(template, str) else None,
        sliding_window=arch_int("attention.sliding_window"),
        file_size=size,
    )
