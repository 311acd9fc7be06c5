"""Syntax highlighting: a Lexilla lexer per language, styled by theme category.

Lexilla publishes style tags ("comment line", "literal string", "keyword" ...) for most lexers;
those are mapped to theme categories here, with a few style names refined (a ``def`` name is a
function, a class name a type). Lexers without metadata carry an explicit table in
``forecode_core.text.languages``.
"""

from __future__ import annotations

from functools import cache

from lexilla import Lexer, create_lexer

from forecode_core.text.languages import Language

from .theme import Theme

__all__ = ["STYLE_DEFAULT", "create_configured_lexer", "style_categories"]

STYLE_DEFAULT = 32

_NAME_HINTS = (
    ("DEFNAME", "function"),
    ("CLASSNAME", "type"),
    ("GLOBALCLASS", "type"),
    ("WORD2", "type"),
    ("DECORATOR", "preprocessor"),
    ("SCE_P_ATTRIBUTE", "property"),
    ("LIFETIME", "type"),
    ("MACRO", "preprocessor"),
    ("ESCAPE", "escape"),
)
_TAG_ORDER = (
    ("comment", "comment"),
    ("numeric", "number"),
    ("regex", "string"),
    ("literal string", "string"),
    ("here-doc", "string"),
    ("literal", "string"),
    ("keyword", "keyword"),
    ("preprocessor", "preprocessor"),
    ("annotation", "preprocessor"),
    ("operator", "operator"),
    ("attribute", "attribute"),
    ("tag", "tag"),
    ("error", "error"),
)


def _category(tags: str, name: str) -> str | None:
    for hint, category in _NAME_HINTS:
        if hint in name:
            return category
    for tag, category in _TAG_ORDER:
        if tag in tags:
            return category
    return None


@cache
def style_categories(lexer_name: str) -> dict[int, str]:
    """Style number → theme category for a lexer, from Lexilla's style metadata."""
    lexer = create_lexer(lexer_name)
    if lexer is None:
        return {}
    try:
        out: dict[int, str] = {}
        for style in range(lexer.named_styles()):
            category = _category(lexer.tags_of_style(style), lexer.name_of_style(style))
            if category:
                out[style] = category
        # Rust's extra keyword lists (types, macros) carry only the "identifier" tag.
        if lexer_name == "rust":
            out.update({7: "keyword", 8: "type", 9: "type"})
        return out
    finally:
        lexer.release()


def create_configured_lexer(language: Language) -> Lexer | None:
    """A Lexilla lexer with the language's keywords and properties set (not yet attached)."""
    if language.lexer is None:
        return None
    lexer = create_lexer(language.lexer)
    if lexer is None:
        return None
    for index, words in enumerate(language.keywords):
        if words:
            lexer.word_list_set(index, words)
    for key, value in language.properties:
        lexer.property_set(key, value)
    return lexer


def categories_for(language: Language) -> dict[int, str]:
    if language.lexer is None:
        return {}
    table = dict(style_categories(language.lexer))
    table.update(language.styles)
    return table


def colours_for(language: Language, theme: Theme) -> dict[int, tuple[str, bool, bool]]:
    """Style number → (colour, bold, italic) for every style the language's lexer uses."""
    return {
        style: theme.categories[cat]
        for style, cat in categories_for(language).items()
        if cat in theme.categories
    }
