"""One llama.cpp decode step and what it means: ``DecodeResult`` (ok / cancelled / context
full; any other code raises ``DecodeError``), the batch it decodes, and ``abortable``, the
context in which ggml's abort callback asks ``should_stop`` inside a decode."""

from __future__ import annotations

import array
import ctypes
import enum
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import llama_cpp.llama_cpp as C

__all__ = ["DecodeError", "DecodeResult", "Decoder", "result_of"]


class DecodeResult(enum.Enum):
    OK = 0
    CONTEXT_FULL = 1  # llama.cpp found no KV slot for the batch: the context is full
    CANCELLED = 2  # the abort callback stopped the decode (``should_stop`` said so)


class DecodeError(RuntimeError):
    """llama_decode failed other than by a full context or a cancel."""


def result_of(rc: int, doing: str = "") -> DecodeResult:
    """The meaning of ``llama_decode``'s return code; other codes raise ``DecodeError`` (with
    what was being done, ``doing``, in its message)."""
    if rc == 0:
        return DecodeResult.OK
    if rc == 1:
        return DecodeResult.CONTEXT_FULL
    if rc == 2:
        return DecodeResult.CANCELLED
    where = f" {doing}" if doing else ""
    raise DecodeError(f"llama_decode failed with code {rc}{where}")


StopCheck = Callable[[], bool]


class Decoder:
    """A llama.cpp context's batch (every row in ``seqs``) and abort callback.

    Rows are written through ``tok``/``pos``/``out`` (ctypes arrays: the hot loops store into
    them directly) or ``load``; ``step(n)`` decodes the first ``n`` rows."""

    def __init__(self, ctx: Any, n_batch: int, seqs: Sequence[int]) -> None:
        self._ctx = ctx
        self.n_batch = n_batch
        self.batch: Any = C.llama_batch_init(n_batch, 0, len(seqs))
        b = self.batch
        for i in range(n_batch):
            b.n_seq_id[i] = len(seqs)
            for j, s in enumerate(seqs):
                b.seq_id[i][j] = s
        self.tok: Any = b.token
        self.pos: Any = b.pos
        self.out: Any = b.logits
        self._tok_addr = _address(b.token)
        self._pos_addr = _address(b.pos)
        self._out_addr = _address(b.logits)
        self._check: list[StopCheck | None] = [None]
        self._abort_cb = C.ggml_abort_callback(_make_abort(self._check))
        self._no_abort = C.ggml_abort_callback()

    def load(self, tokens: Sequence[int], start: int, end: int, *, logits_last: bool) -> int:
        """Rows ``0..`` := ``tokens[start:end]`` at positions ``start..end-1``, logits only for
        the last row (if ``logits_last``). Returns the row count."""
        count = end - start
        toks = array.array("i", tokens[start:end])
        ctypes.memmove(self._tok_addr, toks.buffer_info()[0], 4 * count)
        poss = array.array("i", range(start, end))
        ctypes.memmove(self._pos_addr, poss.buffer_info()[0], 4 * count)
        ctypes.memset(self._out_addr, 0, count)
        if logits_last:
            self.out[count - 1] = 1
        return count

    def put(self, row: int, token: int, pos: int) -> None:
        """Row ``row`` := ``token`` at ``pos``, with logits."""
        self.tok[row] = token
        self.pos[row] = pos
        self.out[row] = 1

    def step(self, n_tokens: int, doing: str = "") -> DecodeResult:
        """Decode the first ``n_tokens`` rows (see ``result_of``)."""
        self.batch.n_tokens = n_tokens
        return result_of(C.llama_decode(self._ctx, self.batch), doing)

    @contextmanager
    def abortable(self, should_stop: StopCheck | None) -> Iterator[None]:
        """Inside: a decode stops within a graph node of ``should_stop`` turning true (its
        ``step`` returns ``CANCELLED``). Nests: the inner check holds until its block ends."""
        if should_stop is None:
            yield
            return
        outer = self._check[0]
        self._check[0] = should_stop
        C.llama_set_abort_callback(self._ctx, self._abort_cb, None)
        try:
            yield
        finally:
            self._check[0] = outer
            if outer is None:
                C.llama_set_abort_callback(self._ctx, self._no_abort, None)


def _address(pointer: Any) -> int:
    value = ctypes.cast(pointer, ctypes.c_void_p).value
    if value is None:
        raise MemoryError("llama_batch_init returned a batch without buffers")
    return value


def _make_abort(slot: list[StopCheck | None]) -> Callable[[object], bool]:
    def abort(_data: object) -> bool:
        check = slot[0]
        if check is None:
            return False
        try:
            return bool(check())
        except Exception:  # a broken predicate must not leave a decode running forever
            return True

    return abort
