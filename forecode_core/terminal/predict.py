"""Next-command prediction (issue 17): what the user will type next in the terminal's prompt
line, shown as ghost text that a key accepts into the line (the user presses Enter).

- ``CommandHistory``: this workspace's commands, oldest first, as the terminal ran them.
  ``add`` refuses what must never be stored: an empty line, a line typed with a leading blank
  (bash's ``HISTCONTROL=ignorespace`` habit: "do not remember this"), a very long line, and any
  line that holds a secret (``has_secret``: ``TOKEN=...``, ``--password ...``, a bearer header,
  a URL's ``user:password@``).
- ``rank_next(history)``: the candidates for the next command, best first, from history
  sequences: what followed the last two commands before (trigram), then what followed the
  last one (bigram), then what followed a command with the same first two words (a
  ``git commit -m "..."`` never seen before is still a commit), then every command; within a
  level by recency-weighted count (``DECAY``). Computed once per finished command; each key
  the user types only filters it (``suggest``: the first candidate that extends the typed text).
- The model tier (when history has nothing): ``model_input`` is the completion engine's input
  (the recent commands as a shell file, the typed text as the line to complete) and
  ``model_suggestion`` turns its answer into a suggestion, or None (empty, no longer than what
  was typed, multi-line answers cut to their first line, a secret).
- ``to_document``/``from_document``: the stored form (``forecode_core.store.json_store``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from forecode_core.completion.prompt import CompletionInput
from forecode_core.store.json_store import CorruptDocument, read_document

__all__ = [
    "HISTORY_FORMAT",
    "CommandHistory",
    "command_head",
    "has_secret",
    "model_input",
    "model_suggestion",
    "rank_next",
    "redact_secrets",
    "suggest",
]

HISTORY_FORMAT = "forecode-terminal-history"
HISTORY_VERSION = 1
MAX_COMMANDS = 2000  # the stored history keeps the newest this many
MAX_COMMAND_CHARS = 500  # a longer line (a pasted script) is neither stored nor suggested
DECAY = 0.995  # a command's weight falls by this per later command (recency)
MODEL_CONTEXT_COMMANDS = 20  # the recent commands the model sees

# Parts of an environment variable's name that mark its value as a secret (GITHUB_TOKEN,
# AWS_SECRET_ACCESS_KEY, PGPASSWORD, DB_PASS, API_KEY, ...).
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "APIKEY", "CREDENTIAL", "PRIVATE")
_SECRET_PARTS = frozenset({"PASS", "PWD_HASH", "KEY", "AUTH", "COOKIE", "SESSION", "PAT"})
_ASSIGNMENT = re.compile(r"(?:^|(?<=[\s;&|(`]))([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S*)")
_SECRET_FLAG = re.compile(
    r"(?i)(--?(?:password|passwd|token|api[-_]?key|secret|auth(?:-token)?|access[-_]?key)"
    r"(?:[= ]|(?=['\"])))(\"[^\"]*\"|'[^']*'|\S+)"
)
_BEARER = re.compile(r"(?i)(authorization:\s*(?:bearer|basic|token)?\s*)([^\s'\"]+)")
_URL_CREDENTIALS = re.compile(r"(://[^/\s:@]+:)([^@\s/]+)(@)")


def _secret_name(name: str) -> bool:
    upper = name.upper()
    if any(word in upper for word in _SECRET_WORDS):
        return True
    return any(part in _SECRET_PARTS for part in upper.split("_"))


def has_secret(line: str) -> bool:
    """Whether ``line`` holds a secret: a secret-like variable given a value, a password or
    token flag with a value, an Authorization header, a URL's ``user:password@``."""
    for m in _ASSIGNMENT.finditer(line):
        if _secret_name(m.group(1)) and m.group(2).strip("'\""):
            return True
    return bool(_SECRET_FLAG.search(line) or _BEARER.search(line) or _URL_CREDENTIALS.search(line))


def redact_secrets(text: str) -> str:
    """``text`` with the value of each secret ``has_secret`` finds replaced by ``***``."""

    def assignment(m: re.Match[str]) -> str:
        if _secret_name(m.group(1)) and m.group(2).strip("'\""):
            return f"{m.group(1)}=***"
        return m.group(0)

    text = _ASSIGNMENT.sub(assignment, text)
    text = _SECRET_FLAG.sub(lambda m: m.group(1) + "***", text)
    text = _BEARER.sub(lambda m: m.group(1) + "***", text)
    return _URL_CREDENTIALS.sub(lambda m: m.group(1) + "***" + m.group(3), text)


def _storable(command: str) -> bool:
    return (
        bool(command.strip())
        and not command[:1].isspace()
        and "\n" not in command.strip()
        and len(command) <= MAX_COMMAND_CHARS
        and not has_secret(command)
    )


@dataclass
class CommandHistory:
    """One workspace's commands, oldest first (at most ``limit``)."""

    commands: list[str] = field(default_factory=list)
    limit: int = MAX_COMMANDS

    def add(self, command: str) -> bool:
        """Remember ``command`` (as run, trailing blanks dropped); False when it must not be
        stored (see the module's notes)."""
        if not _storable(command):
            return False
        self.commands.append(command.rstrip())
        if len(self.commands) > self.limit:
            del self.commands[: len(self.commands) - self.limit]
        return True

    def to_document(self) -> dict[str, Any]:
        return {"format": HISTORY_FORMAT, "version": HISTORY_VERSION, "commands": self.commands}

    @classmethod
    def from_document(cls, data: bytes) -> CommandHistory:
        """The history stored in ``data``; ``CorruptDocument`` when it is not one. Lines
        that must not be stored (a file written by hand) are dropped."""
        doc = read_document(data, HISTORY_FORMAT, HISTORY_VERSION, "terminal history")
        commands = doc.get("commands")
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise CorruptDocument("'commands' is not a list of strings")
        history = cls()
        for command in commands:
            history.add(command)
        return history


def command_head(command: str) -> str:
    """A command's first two words (``git commit -m "x"`` -> ``git commit``): what a command
    with arguments never typed before shares with the ones before it."""
    return " ".join(command.split()[:2])


def rank_next(commands: Sequence[str], limit: int = 200) -> list[str]:
    """The likely next commands after ``commands`` (oldest first), best first: what followed
    the last two commands before (trigram), then the last one (bigram), then any command with
    the last one's head (``command_head``: after a ``git commit -m`` never seen, what followed
    other commits), then every command; within a level by recency-weighted count; each
    command once; never one holding a secret."""
    n = len(commands)
    if not n:
        return []
    last = commands[-1]
    last2 = commands[-2] if n > 1 else None
    head = command_head(last)
    # trigram, bigram, the head's bigram, unigram
    levels: tuple[dict[str, float], ...] = ({}, {}, {}, {})
    previous_head = ""
    for i, command in enumerate(commands):
        weight = DECAY ** (n - 1 - i)
        levels[3][command] = levels[3].get(command, 0.0) + weight
        if i >= 1 and previous_head == head:
            levels[2][command] = levels[2].get(command, 0.0) + weight
            if commands[i - 1] == last:
                levels[1][command] = levels[1].get(command, 0.0) + weight
                if last2 is not None and i >= 2 and commands[i - 2] == last2:
                    levels[0][command] = levels[0].get(command, 0.0) + weight
        previous_head = command_head(command)
    out: list[str] = []
    seen: set[str] = set()
    for level in levels:
        for command, _w in sorted(level.items(), key=lambda kv: -kv[1]):
            if command in seen or has_secret(command):
                continue
            seen.add(command)
            out.append(command)
            if len(out) >= limit:
                return out
    return out


def suggest(ranked: Sequence[str], typed: str) -> str | None:
    """The first of ``ranked`` that extends ``typed`` (the whole command; the ghost text is
    what follows ``typed``); None when none does or ``typed`` holds a secret."""
    if has_secret(typed):
        return None
    for command in ranked:
        if len(command) > len(typed) and command.startswith(typed):
            return command
    return None


def model_input(recent: Sequence[str], typed: str, folder: str = "") -> CompletionInput:
    """The completion engine's input: the recent commands (secrets left out) as the lines of
    a shell file, ``typed`` as the line being written."""
    kept = [c for c in recent if not has_secret(c)][-MODEL_CONTEXT_COMMANDS:]
    where = f" in {folder}" if folder else ""
    head = f"# Commands a developer ran in a terminal{where}, one a line, oldest first.\n"
    # The typed text's trailing blanks are left out (a tokenizer's word starts with its blank:
    # after "git " the small model ended the line, after "git" it wrote " status").
    prefix = head + "".join(c + "\n" for c in kept) + typed.rstrip()
    return CompletionInput("terminal-history.sh", "shell", prefix, "\n")


def model_suggestion(answer: str, typed: str) -> str | None:
    """The command the model's ``answer`` (the text after ``typed`` without its trailing
    blanks, as ``model_input`` asked) suggests, or None (nothing past ``typed``, another
    start than ``typed``, a comment, a line that may not be stored)."""
    command = typed.rstrip() + answer.split("\n", 1)[0].rstrip()
    if (
        len(command) <= len(typed)
        or not command.startswith(typed)
        or not _storable(command)
        or command.lstrip().startswith("#")
    ):
        return None
    return command
