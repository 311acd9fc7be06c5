"""The vocabulary by token text, for token healing's constrained first tokens
(``forecode_core.completion.healing``; ``Engine.complete``'s ``force_prefix``). Pure: the
vocabulary comes in as (token, bytes) pairs."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable

__all__ = ["VocabIndex"]


class VocabIndex:
    """Tokens sorted by their bytes: ``compatible(rest)`` lists the tokens a constrained step
    may choose while ``rest`` is still to be spelt: those whose text starts with all of it
    (the step ends the constraint) and those whose text is a shorter, non-empty start of it
    (the next step spells the remainder)."""

    def __init__(self, pieces: Iterable[tuple[int, bytes]]) -> None:
        items = sorted((piece, token) for token, piece in pieces if piece)
        self._keys = [piece for piece, _ in items]
        self._ids = [token for _, token in items]
        self._exact: dict[bytes, list[int]] = {}
        for piece, token in items:
            self._exact.setdefault(piece, []).append(token)

    def __len__(self) -> int:
        return len(self._keys)

    def compatible(
        self, rest: bytes, allow: Callable[[bytes, bytes], bool] | None = None
    ) -> list[int]:
        """``allow(rest, piece)``: whether a token that spells all of ``rest`` and more may be
        chosen (token healing's ``may_extend``)."""
        if not rest:
            return []
        keys, ids = self._keys, self._ids
        out: list[int] = []
        i = bisect_left(keys, rest)
        while i < len(keys) and keys[i].startswith(rest):
            if allow is None or allow(rest, keys[i]):
                out.append(ids[i])
            i += 1
        for k in range(1, len(rest)):
            out.extend(self._exact.get(rest[:k], ()))
        return out
