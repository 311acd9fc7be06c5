"""Generated tokens -> text: stop strings, and streaming of the increments that are safe to
show (no part of a possible stop string, no half of a UTF-8 character). Pure: the vocabulary
comes in as two functions."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence

__all__ = ["TextOutput"]


class TextOutput:
    """``push`` one generated token at a time; ``tokens`` and ``text`` are what was kept."""

    def __init__(
        self,
        is_eog: Callable[[int], bool],
        piece: Callable[[int], bytes],
        stop: Sequence[str],
        on_text: Callable[[str], None] | None,
        *,
        hidden: str = "",
    ) -> None:
        self._is_eog = is_eog
        self._piece = piece
        self._stops = [s for s in stop if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self._on_text = on_text
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tokens: list[int] = []
        self.text = ""
        # ``hidden``: text the output begins with that is not the answer's (token healing's
        # forced start): never sent, cut from ``text`` at the end (``answer``).
        self._hidden = len(hidden)
        self._sent = len(hidden)

    def push(self, token: int) -> str | None:
        """Take one generated token; return a stop reason ("eos", "stop") or None to go on."""
        if self._is_eog(token):
            return "eos"
        self.tokens.append(token)
        piece = self._decoder.decode(self._piece(token))
        if not piece:
            return None
        old = len(self.text)
        self.text += piece
        if not self._stops:
            self._send(len(self.text))
            return None
        lo = max(0, old - self._longest + 1)
        cut = -1
        for s in self._stops:
            i = self.text.find(s, lo)
            if i >= 0 and (cut < 0 or i < cut):
                cut = i
        if cut >= 0:
            self.text = self.text[:cut]
            self._send(cut)
            return "stop"
        self._send(len(self.text) - self._held_back())
        return None

    @property
    def answer(self) -> str:
        """``text`` without the hidden start."""
        return self.text[self._hidden :]

    def finish(self) -> None:
        """Flush the text held back for a possible stop string (an incomplete UTF-8 tail is
        dropped)."""
        self._send(len(self.text))

    def _held_back(self) -> int:
        held = 0
        for s in self._stops:
            for k in range(min(len(s) - 1, len(self.text)), held, -1):
                if self.text.endswith(s[:k]):
                    held = k
                    break
        return held

    def _send(self, end: int) -> None:
        if end > self._sent:
            chunk = self.text[self._sent : end]
            self._sent = end
            if self._on_text is not None:
                self._on_text(chunk)
