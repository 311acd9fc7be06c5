"""A header naming a dunder file keeps its underscores (``forecode_core.edits.answer``):
``FILE: __init__.py`` is ``__init__.py``, never ``init__.py`` (the header's ``__``
decoration and the path's quote stripping used to eat them); ``__`` around a whole path is
still decoration."""

from __future__ import annotations

import pytest

from forecode_core.edits.answer import OpKind, parse_edits
from forecode_core.edits.prompt import SentFile

FILES = {
    "__init__.py": SentFile("__init__.py", "X = 1\n", "python"),
    "pkg/__main__.py": SentFile("pkg/__main__.py", "main()\n", "python"),
    "_private_.py": SentFile("_private_.py", "Y = 1\n", "python"),
}


@pytest.mark.parametrize(
    ("header", "path"),
    [
        ("FILE: __init__.py", "__init__.py"),
        ("FILE: `__init__.py`", "__init__.py"),
        ("**FILE:** __init__.py", "__init__.py"),
        ("**FILE: __init__.py**", "__init__.py"),
        ("### FILE: pkg/__main__.py", "pkg/__main__.py"),
        ("FILE: _private_.py", "_private_.py"),
        ("__FILE:__ __init__.py", "__init__.py"),
        ("FILE: __pkg/__main__.py__", "pkg/__main__.py"),  # decoration around the path
    ],
)
def test_a_dunder_path_keeps_its_underscores(header: str, path: str) -> None:
    (op,) = parse_edits(f"{header}\n```python\nX = 2\n```\n", FILES).ops
    assert (op.kind, op.path) == (OpKind.EDIT, path)
