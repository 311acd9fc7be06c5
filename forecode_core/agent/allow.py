"""The command allow-list: which commands the agent may run without a click.

A rule is a program and an argument prefix, written as a command line (``pytest``,
``python -m pytest``). A command matches a rule when it splits (POSIX ``shlex``) into the
rule's words followed by any others, and it is plain: no shell metacharacter anywhere
(``;``, ``&``, ``|``, ``<``, ``>``, ``$``, backquote, parentheses, braces, ``*``, ``?``,
``[``, ``~``, ``#``, ``!``, a newline), no variable assignment before the program, and no
argument that reaches outside the workspace (absolute, ``..``, a drive letter). So
``pytest; rm -rf ~`` never matches ``pytest``. Anything else needs the user's click.

``argv`` gives a plain command's words (the runner executes them with no shell); a command
that is not plain has none, and runs through a shell only after the user approved its exact
text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["AllowList", "argv", "is_plain", "rule_for"]

_META = set(";&|<>$`(){}*?[]~#!\n\r\\\"'")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _reaches_out(word: str) -> bool:
    value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
    parts = value.replace("\\", "/").split("/")
    return value.startswith("/") or bool(_DRIVE.match(value)) or ".." in parts


def argv(command: str) -> list[str] | None:
    """The words of a plain command (module docstring), else None."""
    if not command.strip() or any(c in _META for c in command):
        return None
    try:
        words = shlex.split(command, posix=True)
    except ValueError:
        return None
    if not words or "=" in words[0] or any(_reaches_out(w) for w in words):
        return None
    return words


def is_plain(command: str) -> bool:
    return argv(command) is not None


def rule_for(command: str) -> str | None:
    """The rule "always allow this command" adds: the command's own words (None: it is not
    plain, so no rule can allow it)."""
    words = argv(command)
    return None if words is None else shlex.join(words)


@dataclass(frozen=True)
class AllowList:
    """The user's rules (settings ``agent.allowedCommands``); a rule that is not plain is
    ignored."""

    rules: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def of(cls, rules: Iterable[str]) -> AllowList:
        parsed = []
        for rule in rules:
            words = argv(rule)
            if words:
                parsed.append(tuple(words))
        return cls(tuple(parsed))

    def matches(self, command: str) -> bool:
        words = argv(command)
        if words is None:
            return False
        return any(_prefix(rule, words) for rule in self.rules)

    def with_rule(self, command: str) -> AllowList:
        words = argv(command)
        if words is None or tuple(words) in self.rules:
            return self
        return AllowList((*self.rules, tuple(words)))

    def texts(self) -> tuple[str, ...]:
        return tuple(shlex.join(rule) for rule in self.rules)


def _prefix(rule: Sequence[str], words: Sequence[str]) -> bool:
    return len(words) >= len(rule) and tuple(words[: len(rule)]) == tuple(rule)
