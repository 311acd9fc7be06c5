"""Apply of a block that adds a new definition (the user run of 2026-12-05: chat answered "Add a
function is_palindrome(s) at the end of this file." with the function alone, and Apply on
jinja's ``utils.py`` refused: "The model did not finish writing the file (it stopped after 22
tokens)").

The cause: nothing in the block anchors, so the deterministic path refused and the model path
got the file's last two lines (the ``end`` window) as "the part to rewrite" with the function
as the edit; Qwen2.5-Coder 1.5B either repeated the two lines (the function left out:
``find_missed_line``, reported as unfinished) or wrote the function in their place (seen here:
``__repr__`` replaced). Now the deterministic path places a lone new top-level definition at
the end of the file, and a new definition after ``def f(...):`` and an elision indented into
``f`` right after ``f`` (``forecode_core.apply.block``, rule 5).

Table tests on plain data, then the product's apply path (``helpers.engine_apply.run_apply``:
the editor's pipeline with the service's model path) with the real service model on a copy of
jinja's ``utils.py``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from helpers.engine_apply import run_apply

from forecode_core.apply.block import Applied, ApplyInput, apply_deterministic
from forecode_core.apply.pipeline import first_step
from forecode_core.models import SERVICE_MODEL
from forecode_core.streams import FailureCode, StreamError
from local_models.apply_model import open_engine
from local_models.model_store import ensure_model

PALINDROME = (
    "def is_palindrome(s: str) -> bool:\n"
    '    """Return True if s reads the same backwards."""\n'
    "    return s == s[::-1]\n"
)

FILE = (
    "import os\n"
    "\n"
    "\n"
    "def first(x):\n"
    "    y = x + 1\n"
    "    return y\n"
    "\n"
    "\n"
    "class Box:\n"
    "    def __init__(self):\n"
    "        self.items = []\n"
    "\n"
    "    def __repr__(self):\n"
    '        return f"<Box {self.items!r}>"\n'
)

# (name, original, block, expected new file or None for a refusal)
TABLE: list[tuple[str, str, str, str | None]] = [
    (
        "lone new function goes at the end, two blank lines as the file has",
        FILE,
        PALINDROME,
        FILE + "\n\n" + PALINDROME,
    ),
    (
        "lone new function, file without a final newline",
        FILE.rstrip("\n"),
        PALINDROME,
        FILE + "\n\n" + PALINDROME.rstrip("\n"),
    ),
    (
        "lone new function after trailing blank lines: they are not doubled",
        FILE + "\n\n",
        PALINDROME,
        FILE + "\n\n" + PALINDROME + "\n\n",
    ),
    (
        "after a last function being typed (not valid Python): appended, nothing else touched",
        "import os\n\n\ndef count(s):\n    t = s.split()\n    if not t or t[0] ==\n"
        "    return len(t)\n",
        PALINDROME,
        "import os\n\n\ndef count(s):\n    t = s.split()\n    if not t or t[0] ==\n"
        "    return len(t)\n\n\n" + PALINDROME,
    ),
    (
        "lone decorated new function goes at the end",
        FILE,
        "@functools.cache\n" + PALINDROME,
        FILE + "\n\n@functools.cache\n" + PALINDROME,
    ),
    (
        "lone new class goes at the end",
        FILE,
        "class Pair:\n    left = None\n    right = None\n",
        FILE + "\n\nclass Pair:\n    left = None\n    right = None\n",
    ),
    (
        "new function after a named function's elided body goes right after it",
        FILE,
        "def first(x):\n    # ... existing code ...\n\n\n" + PALINDROME,
        FILE.replace("    return y\n", "    return y\n\n\n" + PALINDROME),
    ),
    (
        "new method at the end of a class shown as a wrapper",
        FILE,
        "class Box:\n    # ... existing code ...\n\n    def size(self):\n        return 1\n",
        FILE + "\n    def size(self):\n        return 1\n",
    ),
    (
        "a top-level elision still means the end of the file",
        FILE,
        "def first(x):\n    y = x + 1\n    return y\n# ... existing code ...\n\n\n" + PALINDROME,
        FILE + "\n\n" + PALINDROME,
    ),
    (
        "a lone method (indented) cannot be placed: refused",
        FILE,
        "    def size(self):\n        return 1\n",
        None,
    ),
    (
        "a function the file already defines replaces it, never added twice",
        FILE,
        "def first(x, z):\n    return x\n",
        FILE.replace(
            "def first(x):\n    y = x + 1\n    return y\n", "def first(x, z):\n    return x\n"
        ),
    ),
]


@pytest.mark.parametrize(
    ("original", "block", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_new_definition_placement(original: str, block: str, expected: str | None) -> None:
    result = apply_deterministic(original, block)
    if expected is None:
        assert not isinstance(result, Applied), result
    else:
        assert isinstance(result, Applied), result
        assert result.text == expected


# The end of the user's buffer (781 lines): jinja's utils.py, then a function being typed.
USER_TAIL = (
    "\n\ndef count_words(source: str) -> int:\n"
    '    """\n'
    "    Count the number of words in the given text.\n\n"
    "    Args:\n"
    "    text (str): The text to count words in.\n\n"
    "    Returns:\n"
    "    int: The number of words in the text.\n"
    '    """\n'
    "    tokens = source.split()\n"
    "    if not tokens or tokens[0] ==\n"
    "    return len(tokens)\n"
)
USER_BLOCK = (
    "def is_palindrome(s: str) -> bool:\n"
    '    """Check if a string is a palindrome."""\n'
    "    return s == s[::-1]\n"
)


def jinja_utils() -> str:
    import jinja2.utils

    text = Path(jinja2.utils.__file__).read_text(encoding="utf-8")
    assert len(text.splitlines()) > 700  # the user's file: 766 lines, ends in a class's method
    return text


def test_user_case_is_placed_without_the_model() -> None:
    original = jinja_utils()
    step = first_step(ApplyInput("src/jinja2/utils.py", "python", original, PALINDROME))
    assert isinstance(step, Applied), step
    assert step.text == original + "\n\n" + PALINDROME
    assert [p.how for p in step.placements] == ["end of file"]


@pytest.mark.slow
def test_user_case_through_the_product_with_the_service_model(tmp_path: Path) -> None:
    """The user's request through the editor's pipeline and the service's model path, on the
    service's model (Qwen2.5-Coder 1.5B, a 4,096-token slot as in the run): the function is
    added at the end and the rest of the file is byte-identical, and so are a new method at
    the end of the last class and a new function after a named one."""
    copy = tmp_path / "utils.py"
    copy.write_text(jinja_utils(), encoding="utf-8")
    original = copy.read_text(encoding="utf-8")
    engine = open_engine(ensure_model(SERVICE_MODEL), n_ctx=4096, n_threads=2)
    try:
        result = run_apply(
            engine, ApplyInput("src/jinja2/utils.py", "python", original, PALINDROME)
        )
        assert result is not None
        assert result.text == original + "\n\n" + PALINDROME
        assert not result.removals

        # The user's own buffer and block (refused before: the model repeated the end window
        # and left the function out).
        buffer = original + USER_TAIL
        assert len(buffer.splitlines()) == 781
        result = run_apply(engine, ApplyInput("src/jinja2/utils.py", "python", buffer, USER_BLOCK))
        assert result is not None
        assert result.text == buffer + "\n\n" + USER_BLOCK

        method = (
            "class Namespace:\n    # ... existing code ...\n\n"
            "    def is_empty(self) -> bool:\n        return not self.__attrs\n"
        )
        result = run_apply(engine, ApplyInput("src/jinja2/utils.py", "python", original, method))
        assert result is not None
        assert (
            result.text
            == original + "\n    def is_empty(self) -> bool:\n        return not self.__attrs\n"
        )

        middle = (
            'def url_quote(obj: t.Any, charset: str = "utf-8", for_qs: bool = False) -> str:\n'
            "    # ... existing code ...\n\n\n" + PALINDROME
        )
        result = run_apply(engine, ApplyInput("src/jinja2/utils.py", "python", original, middle))
        assert result is not None
        head, sep, tail = original.partition("    return rv\n\n\n@abc.MutableMapping.register")
        assert sep
        assert result.text == (
            head + "    return rv\n\n\n" + PALINDROME + "\n\n@abc.MutableMapping.register" + tail
        )

        # A lone method (indented, no class line) places nowhere for certain: the model path
        # rewrites the window the planner finds. The guarantee: a clear refusal, or the method
        # added with every line of the file kept.
        lone = "    def is_empty(self) -> bool:\n        return not self.__attrs\n"
        try:
            result = run_apply(engine, ApplyInput("src/jinja2/utils.py", "python", original, lone))
        except StreamError as exc:
            assert exc.code == FailureCode.INCOMPLETE, exc
            assert "Nothing was changed" in exc.message
        else:
            assert result is not None
            assert_only_added(original, result.text, lone)
    finally:
        engine.close()


def assert_only_added(original: str, text: str, block: str) -> None:
    """``text`` is ``original`` with lines inserted, among them every line of ``block``."""
    old, new = original.splitlines(keepends=True), text.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    added: list[str] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        assert op in ("equal", "insert"), (op, old[i1:i2], new[j1:j2])
        if op == "insert":
            added.extend(x.strip() for x in new[j1:j2])
    assert all(x.strip() in added for x in block.splitlines() if x.strip())
