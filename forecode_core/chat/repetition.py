"""Guards on a chat reply as it streams: a loop stops it, an echo of the system prompt never shows.

Small models fall into loops (the same line, or the same few lines, again and again, or a
phrase repeated inside one line) and base models recite their instructions. ``ReplyGuard``
sits between the engine's streamed text and the user: the service's llama backend and the
local worker's chat feed every piece through ``push`` and show what it returns, stop decoding
as soon as ``tripped`` is set (through the engine's ``should_stop``), then show ``finish()``.

* **Loops** (``LoopDetector``): the reply stops once its end is
  - the same block of 1 to ``MAX_BLOCK`` complete lines repeated: at least ``MIN_REPEATS``
    times and ``MIN_LOOP_LINES`` lines in all (``MIN_BLANK_LINES`` for blank lines), lines
    compared without trailing spaces; or
  - periodic text: every character equal to the one ``p`` before it (``p`` from 1 to
    ``MAX_PERIOD``) for ``MIN_PERIODIC_CHARS`` characters (a phrase looping inside a line).
  What was shown stays; the note ``LOOP_NOTE`` is added so the user knows why it ended.
* **Echoes**: no run of ``ECHO_WINDOW`` characters of the system prompt ever reaches the
  user. The guard holds back the longest end of the reply that is still a piece of the system
  prompt (shorter than the window), shows it once the reply moves away from the prompt's
  text, and when the run reaches the window the reply is cut where the run began and stops
  with ``ECHO_NOTE``.

Thresholds are chosen so that ordinary code does not trip them: eight identical lines in a
row, or 240 characters of one short pattern, is not something an answer needs.

Pure logic over strings (``complete_guarded`` drives an engine handed to it); no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

__all__ = [
    "ECHO_NOTE",
    "ECHO_WINDOW",
    "GUARD_NOTES",
    "LOOP_NOTE",
    "GuardedReply",
    "LoopDetector",
    "ReplyGuard",
    "Trip",
    "complete_guarded",
]

MAX_BLOCK = 12
MIN_REPEATS = 3
MIN_LOOP_LINES = 8
MIN_BLANK_LINES = 24
MAX_PERIOD = 64
MIN_PERIODIC_CHARS = 240
ECHO_WINDOW = 32

LOOP_NOTE = "\n\n*(Forecode stopped this reply: the model began repeating itself.)*"
ECHO_NOTE = "\n\n*(Forecode stopped this reply: the model began repeating its instructions.)*"
GUARD_NOTES = (LOOP_NOTE.strip(), ECHO_NOTE.strip())


class LoopDetector:
    """Feeds on text; ``push`` says when the text fed so far ends in a loop (module
    docstring), ``feed`` also where in the piece it became one."""

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines, trailing spaces stripped
        self._partial: list[str] = []  # the current line's pieces
        self._text: list[str] = []  # the last MAX_PERIOD characters (for the periods)
        self._runs = [0] * (MAX_PERIOD + 1)  # _runs[p]: chars equal to the one p before
        self.looping = False

    def push(self, text: str) -> bool:
        return self.feed(text) is not None

    def feed(self, text: str) -> int | None:
        """Take ``text``; None while no loop, else how many of its characters it took to
        become one (0 when it already was)."""
        if self.looping:
            return 0
        for i, ch in enumerate(text):
            if self._push_char(ch):
                self.looping = True
                return i + 1
        return None

    def _push_char(self, ch: str) -> bool:
        recent = self._text
        n = len(recent)
        runs = self._runs
        hit = False
        for p in range(1, MAX_PERIOD + 1):
            if p <= n and recent[n - p] == ch:
                runs[p] += 1
                if runs[p] >= MIN_PERIODIC_CHARS:
                    hit = True
            else:
                runs[p] = 0
        recent.append(ch)
        if n + 1 > MAX_PERIOD:
            del recent[0]
        if ch == "\n":
            self._lines.append("".join(self._partial).rstrip())
            self._partial.clear()
            if self._line_loop():
                hit = True
        else:
            self._partial.append(ch)
        return hit

    def _line_loop(self) -> bool:
        lines = self._lines
        for block in range(1, MAX_BLOCK + 1):
            if len(lines) < block * MIN_REPEATS:
                break
            tail = lines[-block:]
            repeats = 1
            while (
                len(lines) >= block * (repeats + 1)
                and lines[-block * (repeats + 1) : -block * repeats] == tail
            ):
                repeats += 1
            if repeats < MIN_REPEATS:
                continue
            blank = not any(line.strip() for line in tail)
            if repeats * block >= (MIN_BLANK_LINES if blank else MIN_LOOP_LINES):
                return True
        return False


class Trip(StrEnum):
    """Which guard stopped a reply."""

    LOOP = "loop"  # the reply repeats itself
    ECHO = "echo"  # the reply recites the system prompt


class ReplyGuard:
    """One reply's guards: ``push`` each streamed piece and show what it returns; stop when
    ``tripped`` (a ``Trip``); show ``finish()`` at the end."""

    def __init__(self, system_prompt: str = "", *, echo_window: int = ECHO_WINDOW) -> None:
        self._system = system_prompt if len(system_prompt) >= echo_window else ""
        self._window = echo_window
        self._loops = LoopDetector()
        self._held = ""  # shown later, unless it turns out to be an echo
        self.tripped: Trip | None = None
        self.shown = ""  # everything returned so far (push and finish)

    def push(self, text: str) -> str:
        if self.tripped is not None or not text:
            return ""
        cut = self._loops.feed(text)
        if cut is not None:
            text = text[:cut]  # what follows the loop's last character is never shown
        out = self._push_echo(text) if self._system else text
        if cut is not None and self.tripped is None:
            self.tripped = Trip.LOOP
        self.shown += out
        return out

    def _push_echo(self, text: str) -> str:
        pending = self._held + text
        system, window = self._system, self._window
        # Windows that end in the held text were checked before (it is shorter than one).
        for end in range(max(window, len(self._held) + 1), len(pending) + 1):
            if pending[end - window : end] in system:
                # An echo: cut where its run of system-prompt text began.
                start = end - window
                while start > 0 and pending[start - 1 : end] in system:
                    start -= 1
                self.tripped = Trip.ECHO
                self._held = ""
                return pending[:start]
        # Hold back the longest end of ``pending`` that is a piece of the system prompt.
        keep = 0
        for k in range(min(len(pending), window - 1), 0, -1):
            if pending[-k:] in system:
                keep = k
                break
        self._held = pending[len(pending) - keep :]
        return pending[: len(pending) - keep]

    def finish(self) -> str:
        """What is left to show once decoding ended: the held-back text, or the note saying
        why the reply was stopped."""
        if self.tripped is Trip.LOOP:
            out = self._held + LOOP_NOTE
        elif self.tripped is Trip.ECHO:
            out = ECHO_NOTE
        else:
            out = self._held
        if self.tripped is not None and not (self.shown + self._held).strip():
            out = out.lstrip("\n")  # nothing shown before the note: no blank lines first
        self._held = ""
        self.shown += out
        return out


class GuardedReply:
    """What ``complete_guarded`` returns: the engine's ``Completion``, the text the user saw
    and the reply's stop reason ("stop" when a guard ended it)."""

    def __init__(self, completion: Any, text: str, stop_reason: str, tripped: Trip | None) -> None:
        self.completion = completion
        self.text = text
        self.stop_reason = stop_reason
        self.tripped = tripped


def complete_guarded(
    engine: Any,
    tokens: Sequence[int],
    *,
    max_tokens: int,
    stop: Sequence[str],
    system_prompt: str,
    should_stop: Callable[[], bool],
    on_text: Callable[[str], None],
) -> GuardedReply:
    """``engine.complete`` for a chat reply (greedy, no speculation) with a ``ReplyGuard``
    between the engine and ``on_text``: decoding stops within one step of a guard tripping."""
    guard = ReplyGuard(system_prompt)

    def guarded(text: str) -> None:
        shown = guard.push(text)
        if shown:
            on_text(shown)

    completion = engine.complete(
        tokens,
        max_tokens=max_tokens,
        stop=stop,
        speculative=False,
        should_stop=lambda: guard.tripped is not None or should_stop(),
        on_text=guarded,
    )
    rest = guard.finish()
    if rest:
        on_text(rest)
    reason = "stop" if guard.tripped is not None else str(completion.stop_reason)
    return GuardedReply(completion, guard.shown, reason, guard.tripped)
