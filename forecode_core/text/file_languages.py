"""Which language a file is in, by its name: the one table behind the editor's languages
(``forecode_core.text.languages``, which adds lexers, keywords and comment syntax) and the index's
chunking (``forecode_core.index.chunking``, which adds tree-sitter grammars). Pure data and a
lookup; it lives in ``local_models`` because ``local_models`` may not import ``app``.

``language_id_for_path(path, first_line)``: by exact file name, then extension (any case),
then a Dockerfile name, then a ``#!`` line; "plaintext" otherwise.
"""

from __future__ import annotations

import fnmatch
from pathlib import PurePath

__all__ = ["FILE_LANGUAGES", "PLAIN_TEXT_ID", "language_id_for_path"]

PLAIN_TEXT_ID = "plaintext"

FILE_LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # language id: (extensions, exact file names)
    "python": ((".py", ".pyw", ".pyi"), ("SConstruct",)),
    "javascript": ((".js", ".mjs", ".cjs", ".jsx"), ()),
    "typescript": ((".ts", ".mts", ".cts", ".tsx"), ()),
    "c": ((".c", ".h"), ()),
    "cpp": ((".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".ipp"), ()),
    "rust": ((".rs",), ()),
    "go": ((".go",), ()),
    "java": ((".java",), ()),
    "json": ((".json", ".jsonc", ".code-workspace"), (".babelrc",)),
    "yaml": ((".yaml", ".yml"), ()),
    "toml": ((".toml",), ("Cargo.lock", "poetry.lock", "uv.lock")),
    "markdown": ((".md", ".markdown", ".mdx"), ()),
    "html": ((".html", ".htm", ".xhtml", ".vue", ".svelte"), ()),
    "xml": ((".xml", ".svg", ".xsd", ".xsl", ".plist", ".ui", ".qrc"), ()),
    "css": ((".css", ".scss", ".less"), ()),
    "shell": (
        (".sh", ".bash", ".zsh", ".ksh"),
        (".bashrc", ".bash_profile", ".profile", ".zshrc", "PKGBUILD"),
    ),
    "makefile": ((".mk", ".mak"), ("Makefile", "GNUmakefile", "makefile")),
    "diff": ((".diff", ".patch"), ()),
    "ini": (
        (".ini", ".cfg", ".conf", ".properties", ".env"),
        (".editorconfig", ".gitconfig", ".env"),
    ),
    "sql": ((".sql",), ()),
    PLAIN_TEXT_ID: ((".txt", ".text", ".log"), ()),
}

_BY_EXT = {ext: lang for lang, (exts, _) in FILE_LANGUAGES.items() for ext in exts}
_BY_NAME = {name: lang for lang, (_, names) in FILE_LANGUAGES.items() for name in names}
_SHEBANG = {
    "python": "python",
    "node": "javascript",
    "bash": "shell",
    "sh": "shell",
    "zsh": "shell",
    "deno": "typescript",
}


def language_id_for_path(path: str | PurePath, first_line: str = "") -> str:
    """The language id of a file: by exact name, then extension, then a ``#!`` line."""
    name = PurePath(path).name
    if name in _BY_NAME:
        return _BY_NAME[name]
    lowered = name.lower()
    suffix = PurePath(lowered).suffix
    if suffix in _BY_EXT:
        return _BY_EXT[suffix]
    if fnmatch.fnmatch(lowered, "dockerfile*") or fnmatch.fnmatch(lowered, "*.dockerfile"):
        return "shell"
    if first_line.startswith("#!"):
        for word in reversed(first_line[2:].replace("/", " ").split()):
            base = word.rstrip("0123456789.")
            if base in _SHEBANG:
                return _SHEBANG[base]
    return PLAIN_TEXT_ID
