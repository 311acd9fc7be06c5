"""The multi-file edit answer parser (forecode_core.edits.answer): well-formed answers become
per-file operations; every malformed one is rejected whole with its reason and line."""

from __future__ import annotations

import pytest

from forecode_core.edits.answer import EditsAnswerError, OpKind, parse_edits
from forecode_core.edits.prompt import SentFile

FILES = {
    "app/main.py": SentFile("app/main.py", "def main():\n    return 1\n", "python"),
    "app/util.py": SentFile("app/util.py", "X = 1\n", "python"),
    "big.py": SentFile("big.py", "partial\n", "python", editable=False),
}

GOOD = """\
I add a helper, use it in main, and remove util.

FILE: app/main.py
```python
from app.helpers import two

def main():
    return two()
```

NEW FILE: app/helpers.py
```python
def two():
    return 2
```

DELETE FILE: app/util.py
"""


def test_a_well_formed_answer_becomes_operations() -> None:
    parsed = parse_edits(GOOD, FILES)
    assert parsed.explanation == "I add a helper, use it in main, and remove util."
    assert [(op.kind, op.path, op.line) for op in parsed.ops] == [
        (OpKind.EDIT, "app/main.py", 3),
        (OpKind.NEW, "app/helpers.py", 11),
        (OpKind.DELETE, "app/util.py", 17),
    ]
    assert parsed.ops[0].block == "from app.helpers import two\n\ndef main():\n    return two()\n"
    assert parsed.ops[1].block == "def two():\n    return 2\n"
    assert parsed.ops[2].block == ""


@pytest.mark.parametrize(
    ("answer", "path", "kind"),
    [
        ("### FILE: `app/main.py`\n```python\nx = 1\n```\n", "app/main.py", OpKind.EDIT),
        ("**New file:** ./pkg/a.py\n\n~~~\nA = 1\n~~~\n", "pkg/a.py", OpKind.NEW),
        ("Edit: app/main.py\n````\n```inner```\n````\n", "app/main.py", OpKind.EDIT),
        ("- DELETE: app/util.py\n\nDone.\n", "app/util.py", OpKind.DELETE),
        ("file: app/main.py\r\n```\r\ny = 2\r\n```\r\n", "app/main.py", OpKind.EDIT),
    ],
)
def test_header_variants(answer: str, path: str, kind: OpKind) -> None:
    (op,) = parse_edits(answer, FILES).ops
    assert (op.path, op.kind) == (path, kind)


MALFORMED = [
    # (answer, words in the reason, line)
    ("I would change main.\n", "names no file", 0),
    ("", "names no file", 0),
    ("```python\nx = 1\n```\n", "belongs to no file", 1),
    ("FILE: app/main.py\n", "has no code block", 1),
    ("FILE: app/main.py\nThen some prose.\n```\nx\n```\n", "must be followed by its code", 2),
    ("FILE: app/main.py\nFILE: app/util.py\n```\nx\n```\n", "has no code block", 1),
    ("FILE: app/main.py\n```python\nx = 1\n", "never closes", 1),
    ("DELETE FILE: app/util.py\n```\nX = 1\n```\n", "takes no code block", 2),
    ("FILE: /etc/passwd\n```\nx\n```\n", "is absolute", 1),
    ("FILE: C:/x.py\n```\nx\n```\n", "is absolute", 1),
    ("FILE: ../outside.py\n```\nx\n```\n", "'..' parts", 1),
    ("FILE: app//main.py\n```\nx\n```\n", "'..' parts", 1),
    ("FILE: app\\main.py\n```\nx\n```\n", "not a file path", 1),
    ("FILE: the main file\n```\nx\n```\n", "not a file path", 1),
    ("FILE:\n```\nx\n```\n", "names no path", 1),
    ("FILE: app/other.py\n```\nx\n```\n", "was not sent", 1),
    ("DELETE FILE: nowhere.py\n", "was not sent", 1),
    ("FILE: big.py\n```\nx\n```\n", "sent only in part", 1),
    ("NEW FILE: app/main.py\n```\nx\n```\n", "which exists", 1),
    ("NEW FILE: n.py\n```\nimport os\n# ... existing code ...\n```\n", "leaves code out", 1),
    ("FILE: app/main.py\n```\n\n```\n", "is empty", 1),
    (
        "FILE: app/main.py\n```\nx\n```\nFILE: app/main.py\n```\ny\n```\n",
        "twice (lines 1 and 5)",
        5,
    ),
]


@pytest.mark.parametrize(("answer", "words", "line"), MALFORMED)
def test_malformed_answers_are_rejected_whole(answer: str, words: str, line: int) -> None:
    with pytest.raises(EditsAnswerError) as info:
        parse_edits(answer, FILES)
    assert words in info.value.reason
    assert info.value.line == line
    message = info.value.user_message
    assert message.startswith("The model's answer is not a well-formed set of file edits")
    assert message.endswith("Nothing was changed.")


def test_one_bad_section_rejects_the_good_ones_too() -> None:
    answer = GOOD + "\nFILE: app/nowhere.py\n```\nx\n```\n"
    with pytest.raises(EditsAnswerError, match="was not sent"):
        parse_edits(answer, FILES)


ONE = {  # one file sent editable (the current file), one sent as context only
    "src/s.py": SentFile("src/s.py", "def f():\n    raise E('old')\n", "python", excerpt=(1, 2)),
    "big.py": SentFile("big.py", "partial\n", "python", editable=False),
}


@pytest.mark.parametrize(
    ("answer", "ops"),
    [
        # the user run's answer: prose, a headerless block, then a stray header naming the file
        (
            "The changed line is:\n```python\n    raise E('new')\n```\nNEW FILE: src/s.py\n",
            [("src/s.py", OpKind.EDIT, "    raise E('new')\n")],
        ),
        # the stray header followed by prose
        (
            "```python\nx = 1\n```\nFILE: src/s.py\nThat is all.\n",
            [("src/s.py", OpKind.EDIT, "x = 1\n")],
        ),
        # a headerless block alone
        ("```\nx = 1\n```\n", [("src/s.py", OpKind.EDIT, "x = 1\n")]),
    ],
)
def test_with_one_editable_file_a_headerless_block_is_that_files(
    answer: str, ops: list[tuple[str, OpKind, str]]
) -> None:
    parsed = parse_edits(answer, ONE)
    assert [(op.path, op.kind, op.block) for op in parsed.ops] == ops


@pytest.mark.parametrize(
    ("answer", "files", "words"),
    [
        # two editable files: a headerless block is still nobody's
        ("```\nx = 1\n```\n", FILES, "belongs to no file"),
        # a second headerless block is not guessed
        ("```\nx\n```\nSome prose.\n```\ny\n```\n", ONE, "belongs to no file"),
        # a header after the block naming ANOTHER file keeps its rule
        ("```\nx\n```\nFILE: big.py\n", ONE, "has no code block"),
        # the stray header followed by its own block: the file named twice
        ("```\nx\n```\nFILE: src/s.py\n```\ny\n```\n", ONE, "twice"),
    ],
)
def test_the_one_file_rule_never_guesses_more(
    answer: str, files: dict[str, SentFile], words: str
) -> None:
    with pytest.raises(EditsAnswerError) as info:
        parse_edits(answer, files)
    assert words in info.value.reason
