"""Text: decoding and encoding files, languages and lexers, the editor's editing rules (comments,
auto-closing, occurrences) and the changed-lines diff."""
