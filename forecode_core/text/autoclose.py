"""Auto-closing brackets and quotes as VS Code does them (``editor.autoClosingBrackets``,
``editor.autoClosingQuotes``), on the text of the caret's line.

- Typing ``(``, ``[`` or ``{`` inserts the pair, the caret between, when the next character
  is whitespace, the end of the line or one of ``;:.,=}])>`` (VS Code's ``autoCloseBefore``;
  so not right before a string's closing quote or a word).
- A quote is closed the same way, but never after a word character (``don't``; a string
  prefix such as Python's ``f`` or ``rb`` excepted), nor inside a string or a line comment
  (a simple scan of the line before the caret).
- Typing a closer right before the one auto-inserted for it steps over it; Backspace between
  an auto-inserted pair deletes both (VS Code's ``autoClosingOvertype`` / ``autoClosingDelete``
  "auto": only pairs Forecode inserted; the caller tracks which those are).
- An opener or a quote typed over a selection wraps it; in Python the third of three quotes
  typed in a row closes the triple-quoted string.
- Enter between a bracket pair puts the closer on a line of its own below an indented one.

Pure functions over ``str``; the Qt hook is ``app.ui.autoclose``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUTO_CLOSE_BEFORE",
    "Rules",
    "Typed",
    "on_backspace",
    "on_char",
    "on_enter",
    "rules_for",
    "wrap",
]

BRACKETS = {"(": ")", "[": "]", "{": "}"}
#: A pair is auto-closed only before one of these (or at the end of the line).
AUTO_CLOSE_BEFORE = frozenset(";:.,=}])> \t")
_PY_PREFIXES = frozenset({"r", "u", "b", "f", "rb", "br", "fr", "rf"})


@dataclass(frozen=True)
class Rules:
    """One language's pairs: ``quotes`` auto-closed, the line comment that ends code on a line,
    and the word prefixes a string may have (``f"..."``)."""

    quotes: frozenset[str] = frozenset({'"', "'"})
    line_comment: str | None = None
    string_prefixes: frozenset[str] = frozenset()
    brackets: bool = True
    triple_quotes: bool = False  # the third quote typed opens a triple-quoted string


PLAIN = Rules(quotes=frozenset({'"'}))
_BY_LANGUAGE: dict[str, Rules] = {
    "python": Rules(line_comment="#", string_prefixes=_PY_PREFIXES, triple_quotes=True),
    "javascript": Rules(frozenset({'"', "'", "`"}), "//"),
    "typescript": Rules(frozenset({'"', "'", "`"}), "//"),
    "go": Rules(frozenset({'"', "'", "`"}), "//"),
    "rust": Rules(frozenset({'"'}), "//"),  # 'a is a lifetime
    "c": Rules(line_comment="//"),
    "cpp": Rules(line_comment="//"),
    "java": Rules(line_comment="//"),
    "csharp": Rules(line_comment="//"),
    "json": Rules(frozenset({'"'})),
    "markdown": Rules(frozenset({'"', "`"})),  # ' is an apostrophe in prose
    "plaintext": PLAIN,
    "shell": Rules(frozenset({'"', "'", "`"}), "#"),
    "yaml": Rules(line_comment="#"),
    "toml": Rules(line_comment="#"),
}


def rules_for(language_id: str) -> Rules:
    return _BY_LANGUAGE.get(language_id, Rules())


@dataclass(frozen=True)
class Typed:
    """What typing a character does instead of inserting it: ``insert`` replaces
    ``delete_after`` characters after the caret, and the caret ends ``caret`` characters
    into ``insert``. A step over a closer is ``Typed("", 0, skip=1)``."""

    insert: str
    caret: int
    skip: int = 0  # move the caret over this many characters instead


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _in_string_or_comment(before: str, rules: Rules) -> bool:
    """Whether the end of ``before`` (a line up to the caret) is inside a string or a line
    comment, by a simple left-to-right scan (escapes; strings end at the line's end)."""
    quote = ""
    i = 0
    while i < len(before):
        ch = before[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in rules.quotes:
            quote = ch
        elif rules.line_comment and before.startswith(rules.line_comment, i):
            return True
        i += 1
    return bool(quote)


def on_char(
    ch: str,
    before: str,
    after: str,
    rules: Rules,
    *,
    brackets: bool = True,
    quotes: bool = True,
    over_auto_closer: bool = False,
) -> Typed | None:
    """What typing ``ch`` with an empty selection does, or None to insert it as usual.
    ``before``/``after`` are the caret's line around it; ``over_auto_closer``: the character
    after the caret is a closer Forecode auto-inserted (and still tracks)."""
    if over_auto_closer and after[:1] == ch and (ch in BRACKETS.values() or ch in rules.quotes):
        return Typed("", 0, skip=1)
    closes = not after or after[0] in AUTO_CLOSE_BEFORE
    if ch in BRACKETS and brackets and rules.brackets and closes:
        return Typed(ch + BRACKETS[ch], 1)
    if (
        ch in rules.quotes
        and quotes
        and rules.triple_quotes
        and before.endswith(ch * 2)
        and not before.endswith(ch * 3)
        and not after.startswith(ch)
    ):
        return Typed(ch * 4, 1)  # '""' + '"' -> '"""|"""'
    if ch in rules.quotes and quotes and closes:
        if before and _word_char(before[-1]):
            word = before[
                len(
                    before.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
                ) :
            ]
            start = len(before) - len(word)
            if word.lower() not in rules.string_prefixes or (
                start > 0 and _word_char(before[start - 1])
            ):
                return None
        if _in_string_or_comment(before, rules):
            return None
        return Typed(ch + ch, 1)
    return None


def wrap(
    ch: str, selected: str, rules: Rules, *, brackets: bool = True, quotes: bool = True
) -> str | None:
    """The text that replaces a selection when ``ch`` is typed over it, or None."""
    if not selected:
        return None
    if ch in BRACKETS and brackets and rules.brackets:
        return ch + selected + BRACKETS[ch]
    if ch in rules.quotes and quotes:
        return ch + selected + ch
    return None


def on_backspace(before: str, after: str, rules: Rules, *, over_auto_closer: bool) -> bool:
    """Whether Backspace deletes the character after the caret too: it sits between an
    opener and the closer auto-inserted for it."""
    if not over_auto_closer or not before or not after:
        return False
    opener, closer = before[-1], after[0]
    return BRACKETS.get(opener) == closer or (opener == closer and opener in rules.quotes)


def on_enter(before: str, after: str) -> bool:
    """Whether Enter splits a bracket pair: the closer goes on a line of its own below an
    indented empty line (``{|}`` → ``{`` / indent ``|`` / ``}``)."""
    b, a = before.rstrip(), after.lstrip(" \t")
    return bool(b) and bool(a) and BRACKETS.get(b[-1]) == a[0]
