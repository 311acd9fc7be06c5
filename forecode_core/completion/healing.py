"""Token healing: which of a completion prompt's last tokens to take back at the caret.

A prompt that ends where the caret is usually ends mid-token: the user typed ``==`` and the
prompt's last token is `` ==`` where the model, in training, saw `` ==`` followed by `` b`` —
or, for another tokenizer, `` =`` then ``=`` split in a way the model never saw, which it
then "continues" with ``=`` (``===``) or, after ``os.path.jo``, with ``inder`` (a new token
after ``jo`` instead of ``join``). Measured on Gemma 3 270M before this module:
``if a =`` completed ``="x" and b =="y"`` and ``os.path.jo`` completed ``inder(p)``.

The fix (token healing, as the guidance library and others do it) has two halves:

* here, pure: ``heal_count`` says how many of the prompt's last tokens to take back — those
  that cover the caret line's last lexical unit (a run of word characters, or of operator
  characters, with the blanks typed after it), at most ``MAX_HEAL_TOKENS`` tokens and
  ``MAX_HEAL_CHARS`` characters, never across a line break, never on a line of blanks only;
* in the engine (``local_models.engine.Engine.complete``'s ``force_prefix``): the prompt
  without those tokens, and the first generated tokens constrained to spell their text again
  (each one's text a prefix of what is left to spell, or starting with all of it); that text is
  not part of the answer. So the model picks `` ==`` itself and then `` b``, or ``.join``.

Healing also exposes tokens the split never offered: measured, Qwen2.5-Coder 0.5B healed
``return x <`` into `` <<<<<<<`` (a merge marker) and Gemma healed ``y = x !`` into
`` ![](`` (a Markdown image). ``may_extend`` keeps the constrained token to the operator the
user was typing: past an operator character it may add at most one more operator character
(``=`` to ``==``, ``!`` to ``!=``, ``<`` to ``<=``), nothing else; past a word character,
anything (``jo`` to ``join``). Whether ``==`` may become ``===`` is then the model's own
choice, made with the tokens it was trained on, and the post-processing judges the line
(Python's ``syntax`` rule drops ``a === b``; in JavaScript it is valid).

The rule is the same for every language and model: it acts on the tokens' texts, not on the
operator typed.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MAX_HEAL_CHARS", "MAX_HEAL_TOKENS", "heal_count", "last_unit", "may_extend"]

MAX_HEAL_TOKENS = 3
MAX_HEAL_CHARS = 16

_OPERATOR_CHARS = frozenset("=+-*/%<>!&|^~.:@?,;$#\\")


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def last_unit(line_before_caret: str) -> str:
    """The caret line's last lexical unit: the blanks at its end and, before them, the run of
    word characters or of operator characters (brackets and quotes end a unit: what follows
    them is the model's own choice, and a healed bracket could retype a closer the editor
    inserted after the caret). ``""`` when the
    line holds only blanks (an indent: the model's first token there is its own choice)."""
    line = line_before_caret
    if not line.strip():
        return ""
    end = len(line)
    i = end
    while i > 0 and line[i - 1] in " \t":
        i -= 1
    if i == 0:
        return ""
    kind = _is_word if _is_word(line[i - 1]) else _OPERATOR_CHARS.__contains__
    while i > 0 and kind(line[i - 1]):
        i -= 1
    return line[i:end]


def heal_count(pieces: Sequence[str], prefix: str) -> int:
    """How many of the prompt's last tokens to take back: ``pieces`` are the texts of the
    prompt's tokens just before the caret (in order, the last one ends at the caret; a few
    are enough), ``prefix`` the text before the caret (to find the line's last unit). 0 when
    the tokens do not spell the prefix's end (a format that put something between them), when
    the unit is empty, or when covering it would take more than ``MAX_HEAL_TOKENS`` tokens or
    ``MAX_HEAL_CHARS`` characters or cross a line break."""
    unit = last_unit(prefix[prefix.rfind("\n") + 1 :])
    if not unit:
        return 0
    taken = ""
    for k in range(1, min(MAX_HEAL_TOKENS, len(pieces)) + 1):
        taken = pieces[-k] + taken
        if "\n" in taken or "\r" in taken or len(taken) > MAX_HEAL_CHARS:
            return 0
        if not prefix.endswith(taken):
            return 0
        if len(taken) >= len(unit):
            return k
    return 0


def may_extend(rest: str, piece: str) -> bool:
    """Whether a constrained step may choose a token spelling ``piece`` while ``rest`` is
    still to be spelt (``piece`` starts with ``rest``, or is a start of it): the text it adds
    past ``rest`` is empty, follows a word character, or is one operator character."""
    extra = piece[len(rest) :]
    if not extra or not rest or _is_word(rest[-1]):
        return True
    return len(extra) == 1 and extra in _OPERATOR_CHARS
