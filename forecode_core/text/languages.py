"""Languages the editor knows: how a file name maps to a language, which Lexilla lexer styles it,
its keyword lists and its comment syntax.

Pure data and lookups (no Qt, no lexilla import): the UI shell turns a ``Language`` into a
configured Scintilla lexer. Which files are in which language (extensions, file names, ``#!``
lines) is ``forecode_core.text.file_languages``'s table, shared with the codebase index; adding a
language is one entry there and one in ``LANGUAGES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from forecode_core.text.file_languages import FILE_LANGUAGES, PLAIN_TEXT_ID, language_id_for_path

__all__ = ["LANGUAGES", "PLAIN_TEXT", "Language", "by_id", "language_for_path"]

_PY_KW = (
    "False None True and as assert async await break case class continue def del elif else "
    "except finally for from global if import in is lambda match nonlocal not or pass raise "
    "return try type while with yield"
)
_PY_BUILTINS = (
    "abs all any bool bytearray bytes callable chr classmethod dict dir divmod enumerate "
    "filter float format frozenset getattr hasattr hash help hex id input int isinstance "
    "issubclass iter len list map max min next object open ord pow print property range repr "
    "reversed round set setattr slice sorted staticmethod str sum super tuple type vars zip self"
)
_JS_KW = (
    "abstract as async await break case catch class const continue debugger declare default "
    "delete do else enum export extends false finally for from function get if implements import "
    "in instanceof interface keyof let module namespace new null of package private protected "
    "public readonly return satisfies set static super switch this throw true try type typeof "
    "undefined var void while with yield"
)
_TS_TYPES = "any bigint boolean never number object string symbol unknown Array Promise Record"
_C_KW = (
    "alignas alignof auto bool break case char const constexpr continue default do double else "
    "enum extern false float for goto if inline int long nullptr register restrict return short "
    "signed sizeof static static_assert struct switch thread_local true typedef typeof union "
    "unsigned void volatile while _Bool _Complex _Atomic"
)
_CPP_KW = _C_KW + (
    " catch class concept consteval constinit const_cast co_await co_return co_yield decltype "
    "delete dynamic_cast explicit export final friend mutable namespace new noexcept operator "
    "override private protected public reinterpret_cast requires static_cast template this "
    "throw try typeid typename using virtual"
)
_CPP_TYPES = (
    "size_t ssize_t ptrdiff_t int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t "
    "uint64_t std string vector map unique_ptr shared_ptr"
)
_JAVA_KW = (
    "abstract assert boolean break byte case catch char class const continue default do double "
    "else enum exports extends final finally float for goto if implements import instanceof int "
    "interface long module native new non-sealed package permits private protected public record "
    "requires return sealed short static strictfp super switch synchronized this throw throws "
    "transient try var void volatile while yield true false null"
)
_GO_KW = (
    "break case chan const continue default defer else fallthrough for func go goto if import "
    "interface map package range return select struct switch type var true false nil iota"
)
_GO_TYPES = (
    "any bool byte comparable complex64 complex128 error float32 float64 int int8 int16 int32 "
    "int64 rune string uint uint8 uint16 uint32 uint64 uintptr append cap clear close copy "
    "delete len make max min new panic print println recover"
)
_RUST_KW = (
    "as async await break const continue crate dyn else enum extern false fn for if impl in let "
    "loop match mod move mut pub ref return self Self static struct super trait true type union "
    "unsafe use where while"
)
_RUST_TYPES = (
    "bool char f32 f64 i8 i16 i32 i64 i128 isize str u8 u16 u32 u64 u128 usize String Vec "
    "Option Result Box Some None Ok Err"
)
_SH_KW = (
    "if then else elif fi case esac for while until do done in function select time return "
    "break continue exit export local readonly declare typeset unset shift source alias echo "
    "printf read cd set test trap eval exec"
)
_HTML_KW = (
    "a abbr address area article aside audio b base bdi bdo blockquote body br button canvas "
    "caption cite code col colgroup data datalist dd del details dfn dialog div dl dt em embed "
    "fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hr html i iframe img "
    "input ins kbd label legend li link main map mark menu meta meter nav noscript object ol "
    "optgroup option output p param picture pre progress q rp rt ruby s samp script section "
    "select slot small source span strong style sub summary sup table tbody td template "
    "textarea tfoot th thead time title tr track u ul var video wbr "
    "alt async charset class content defer dir disabled for height href id lang method name "
    "placeholder rel role src style tabindex target title type value width"
)
_CSS_PROPS = (
    "align-items background background-color border border-radius bottom box-shadow box-sizing "
    "color cursor display flex flex-direction font font-family font-size font-weight gap grid "
    "grid-template-columns height justify-content left letter-spacing line-height margin "
    "max-width min-height opacity outline overflow padding position right text-align "
    "text-decoration top transform transition width z-index"
)

# Style categories used by the themes. Lexers that publish style tags through Lexilla's
# metadata (python, cpp, rust, bash, hypertext, ...) are mapped from their tags by the UI;
# the lexers below publish none, so their style numbers (SciLexer.h) are mapped here.
_JSON_STYLES = {
    1: "number",
    2: "string",
    3: "error",
    4: "property",
    5: "escape",
    6: "comment",
    7: "comment",
    8: "operator",
    9: "string",
    10: "string",
    11: "keyword",
    12: "keyword",
    13: "error",
}
_YAML_STYLES = {
    1: "comment",
    2: "property",
    3: "keyword",
    4: "number",
    5: "type",
    6: "preprocessor",
    7: "string",
    8: "error",
    9: "operator",
}
_TOML_STYLES = {
    1: "comment",
    2: "property",
    3: "keyword",
    4: "number",
    5: "type",
    6: "property",
    7: "error",
    8: "operator",
    9: "string",
    10: "string",
    11: "string",
    12: "string",
    13: "escape",
    14: "number",
    15: "error",
}
_MARKDOWN_STYLES = {
    2: "strong",
    3: "strong",
    4: "emphasis",
    5: "emphasis",
    6: "heading",
    7: "heading",
    8: "heading",
    9: "heading",
    10: "heading",
    11: "heading",
    12: "operator",
    13: "keyword",
    14: "keyword",
    15: "comment",
    16: "comment",
    17: "operator",
    18: "link",
    19: "string",
    20: "string",
    21: "string",
}
_CSS_STYLES = {
    1: "tag",
    2: "type",
    3: "keyword",
    4: "keyword",
    5: "operator",
    6: "property",
    7: "error",
    8: "string",
    9: "comment",
    10: "type",
    11: "keyword",
    12: "preprocessor",
    13: "string",
    14: "string",
    15: "property",
    16: "attribute",
    17: "property",
    18: "keyword",
    19: "property",
    20: "keyword",
    21: "keyword",
    22: "preprocessor",
    23: "identifier",
}


@dataclass(frozen=True)
class Language:
    """A language the editor can highlight.

    ``lexer`` is a Lexilla lexer name; ``keywords`` are its word lists by index;
    ``properties`` are lexer properties; ``styles`` maps style numbers to theme categories for
    lexers whose Lexilla metadata carries no tags.
    """

    id: str
    name: str
    lexer: str | None
    extensions: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()
    line_comment: str | None = None
    block_comment: tuple[str, str] | None = None
    styles: dict[int, str] = field(default_factory=dict)
    indent_after: tuple[str, ...] = ()  # line endings after which auto-indent adds a level


_FOLD = (("fold", "1"), ("fold.compact", "0"))
_C_LIKE = (*_FOLD, ("fold.comment", "1"), ("lexer.cpp.track.preprocessor", "0"))


def _language(
    lang_id: str, name: str, lexer: str | None, *rest: object, **named: object
) -> Language:
    """A ``Language`` whose extensions and file names come from the shared table."""
    extensions, filenames = FILE_LANGUAGES[lang_id]
    return Language(lang_id, name, lexer, extensions, filenames, *rest, **named)  # type: ignore[arg-type]


PLAIN_TEXT = _language(PLAIN_TEXT_ID, "Plain Text", None)

LANGUAGES: tuple[Language, ...] = (
    _language(
        "python",
        "Python",
        "python",
        (_PY_KW, _PY_BUILTINS),
        (*_FOLD, ("tab.timmy.whinge.level", "1"), ("lexer.python.strings.f.pep.701", "1")),
        "#",
        None,
        indent_after=(":",),
    ),
    _language(
        "javascript",
        "JavaScript",
        "cpp",
        (_JS_KW, ""),
        _C_LIKE,
        "//",
        ("/*", "*/"),
        indent_after=("{", "[", "("),
    ),
    _language(
        "typescript",
        "TypeScript",
        "cpp",
        (_JS_KW, _TS_TYPES),
        _C_LIKE,
        "//",
        ("/*", "*/"),
        indent_after=("{", "[", "("),
    ),
    _language(
        "c",
        "C",
        "cpp",
        (_C_KW, _CPP_TYPES),
        _C_LIKE,
        "//",
        ("/*", "*/"),
        indent_after=("{",),
    ),
    _language(
        "cpp",
        "C++",
        "cpp",
        (_CPP_KW, _CPP_TYPES),
        _C_LIKE,
        "//",
        ("/*", "*/"),
        indent_after=("{",),
    ),
    _language(
        "rust",
        "Rust",
        "rust",
        (_RUST_KW, _RUST_TYPES),
        _FOLD,
        "//",
        ("/*", "*/"),
        indent_after=("{", "[", "("),
    ),
    _language(
        # Lexilla has no Go lexer; its C-family lexer with Go's keywords is what SciTE does.
        "go",
        "Go",
        "cpp",
        (_GO_KW, _GO_TYPES),
        _C_LIKE,
        "//",
        ("/*", "*/"),
        indent_after=("{", "(", "["),
    ),
    _language(
        "java",
        "Java",
        "cpp",
        (_JAVA_KW, ""),
        _C_LIKE,
        "//",
        ("/*", "*/"),
        indent_after=("{",),
    ),
    _language(
        "json",
        "JSON",
        "json",
        ("false true null", ""),
        (*_FOLD, ("lexer.json.allow.comments", "1"), ("lexer.json.escape.sequence", "1")),
        "//",
        ("/*", "*/"),
        _JSON_STYLES,
        indent_after=("{", "["),
    ),
    _language(
        "yaml",
        "YAML",
        "yaml",
        ("true false yes no null",),
        _FOLD,
        "#",
        None,
        _YAML_STYLES,
        indent_after=(":",),
    ),
    _language(
        "toml",
        "TOML",
        "toml",
        ("true false",),
        _FOLD,
        "#",
        None,
        _TOML_STYLES,
    ),
    _language(
        "markdown",
        "Markdown",
        "markdown",
        (),
        (),
        None,
        ("<!--", "-->"),
        _MARKDOWN_STYLES,
    ),
    _language(
        "html",
        "HTML",
        "hypertext",
        (_HTML_KW, _JS_KW),
        (*_FOLD, ("fold.html", "1")),
        None,
        ("<!--", "-->"),
        indent_after=(">",),
    ),
    _language(
        "xml",
        "XML",
        "xml",
        (),
        (*_FOLD, ("fold.html", "1")),
        None,
        ("<!--", "-->"),
    ),
    _language(
        "css",
        "CSS",
        "css",
        (_CSS_PROPS,),
        _FOLD,
        None,
        ("/*", "*/"),
        _CSS_STYLES,
        indent_after=("{",),
    ),
    _language(
        "shell",
        "Shell Script",
        "bash",
        (_SH_KW,),
        _FOLD,
        "#",
        None,
        indent_after=("then", "do", "{"),
    ),
    _language(
        "makefile",
        "Makefile",
        "makefile",
        (),
        (),
        "#",
        None,
    ),
    _language("diff", "Diff", "diff", (), (), None, None),
    _language(
        "ini",
        "Properties",
        "props",
        (),
        (),
        "#",
        None,
    ),
    _language(
        "sql",
        "SQL",
        "sql",
        (
            "select from where insert into values update set delete create table drop alter index "
            "join left right inner outer on group by order having limit offset as and or not null "
            "primary key foreign references default unique distinct union all case when then "
            "else end begin commit rollback",
        ),
        _FOLD,
        "--",
        ("/*", "*/"),
    ),
    PLAIN_TEXT,
)

_BY_ID = {lang.id: lang for lang in LANGUAGES}


def by_id(language_id: str) -> Language:
    """The language with this id; an unknown id raises ``KeyError`` naming the valid ones."""
    try:
        return _BY_ID[language_id]
    except KeyError:
        raise KeyError(f"unknown language {language_id!r}; known: {', '.join(_BY_ID)}") from None


def language_for_path(path: str | PurePath, first_line: str = "") -> Language:
    """The language for a file: by exact name, then extension, then a ``#!`` line
    (``forecode_core.text.file_languages.language_id_for_path``)."""
    return _BY_ID[language_id_for_path(path, first_line)]
