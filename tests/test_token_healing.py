"""Token healing at the caret (forecode_core.completion.healing, local_models.engine's
``force_prefix``, the worker's ``_healed``).

Seen by a user: right after typing ``==`` a completion offered ``=`` (``===``). The cause is
the prompt ending mid-token: the model answers after a split of the caret's last token that
it never saw in training. Table tests on marked text (``ˇ`` is the caret) for the pure rules,
then the real default model through the worker's own prompt path.
"""

from __future__ import annotations

import io

import pytest

from forecode_core.completion.healing import heal_count, last_unit, may_extend
from forecode_core.completion.postprocess import postprocess
from forecode_core.completion.prompt import CompletionInput
from forecode_core.profiles import profile_for
from local_models.engine.output import TextOutput
from local_models.engine.vocab_index import VocabIndex

CARET = "ˇ"


def _before(marked: str) -> str:
    assert marked.count(CARET) == 1
    return marked.split(CARET)[0]


@pytest.mark.parametrize(
    ("marked", "unit"),
    [
        ("    if a ==ˇ", "=="),
        ("    if a == ˇ", "== "),
        ("    if a =ˇ", "="),
        ("x = a !ˇ", "!"),
        ("    return os.path.joˇ", "jo"),
        ("    return fooˇ", "foo"),
        ("    return foo_bar2ˇ", "foo_bar2"),
        ("print(ˇ", ""),  # a bracket ends the unit: what follows is the model's own
        ("s = 'abˇ", "ab"),
        ("s = 'ˇ", ""),
        ("    ˇ", ""),  # an indent
        ("ˇ", ""),
        ("a->ˇ", "->"),
        ("x += ˇ", "+= "),
        ("\tcase 1:ˇ", ":"),
    ],
)
def test_the_last_unit_of_the_caret_line(marked: str, unit: str) -> None:
    assert last_unit(_before(marked)) == unit


# pieces: the texts of the prompt's last tokens before the caret, as a tokenizer split them
@pytest.mark.parametrize(
    ("pieces", "marked", "count"),
    [
        (["    ", "if", " a", " =="], "    if a ==ˇ", 1),
        (["    ", "if", " a", " =", "="], "    if a ==ˇ", 2),  # a split the model never saw
        ([" return", " os", ".path", ".j", "o"], "    return os.path.joˇ", 2),
        ([" x", " !"], "    y = x !ˇ", 1),
        ([" a", " ==", " "], "if a == ˇ", 2),
        (["print", "("], "print(ˇ", 0),  # nothing to heal after a bracket
        (["\n", "    "], "def f():\n    ˇ", 0),  # an indent: never
        (["x", "\n"], "x\nˇ", 0),
        # the tokens must spell the prefix's end (a format that put text between: no healing)
        (["<|fim_prefix|>"], "if a ==ˇ", 0),
        # more than MAX_HEAL_TOKENS tokens to cover the unit: not healed
        (["a", "b", "c", "d"], "x = abcdˇ", 0),
        # more than MAX_HEAL_CHARS characters
        ([" " + "x" * 20], "y = " + "x" * 20 + "ˇ", 0),
    ],
)
def test_how_many_tokens_are_taken_back(pieces: list[str], marked: str, count: int) -> None:
    assert heal_count(pieces, _before(marked)) == count


@pytest.mark.parametrize(
    ("rest", "piece", "ok"),
    [
        (" ==", " ==", True),
        (" =", " ==", True),  # "=" to "==": one more operator character
        (" ==", " ===", True),  # the model's choice: the post-processing judges the line
        (" <", " <<<<<<<", False),  # a merge marker, seen from Qwen 0.5B healed
        (" !", " ![](", False),  # a Markdown image, seen from Gemma healed
        (" !", " !=", True),
        ("jo", "join", True),  # past a word character anything goes
        (".jo", ".join", True),
        (" =", " =", True),
        (" ==", " =", True),  # a shorter start of rest
    ],
)
def test_what_a_constrained_token_may_add(rest: str, piece: str, ok: bool) -> None:
    assert may_extend(rest, piece) is ok


def test_the_vocabulary_index_lists_the_tokens_that_spell_the_rest() -> None:
    vocab = [(0, b" "), (1, b" ="), (2, b" =="), (3, b" ==="), (4, b" = "), (5, b"="), (6, b"")]
    index = VocabIndex(vocab)
    assert len(index) == 6  # the empty piece is never chosen
    assert sorted(index.compatible(b" ==")) == [0, 1, 2, 3]
    assert sorted(index.compatible(b"=")) == [5]
    assert index.compatible(b"") == []
    only_exact = index.compatible(b" ==", lambda rest, piece: piece == rest)
    assert sorted(only_exact) == [0, 1, 2]  # the shorter starts are kept, " ===" is not


def test_the_output_hides_the_healed_start() -> None:
    pieces = {1: b" =", 2: b"=", 3: b" b", 4: b":"}
    sent: list[str] = []
    out = TextOutput(lambda t: t == 0, pieces.__getitem__, ("\n",), sent.append, hidden=" ==")
    for token in (1, 2, 3, 4):
        assert out.push(token) is None
    out.finish()
    assert (out.answer, "".join(sent)) == (" b:", " b:")
    assert out.text == " == b:"


def test_a_python_line_with_three_equals_is_never_shown() -> None:
    # Whatever the model says, the post-processing judges the line as Python sees it.
    for raw in ("=", "= b:", "= None"):
        assert postprocess(raw, "    if a ==", "\n", "python").reason_dropped == "invalid_syntax"


# --- the real default model, through the worker's prompt path ---------------------------------

CASES = [
    # (language, prefix, suffix, check on the answer)
    ("python", "import os\n\n\ndef f(p):\n    return os.path.jo", "\n", "join"),
    ("python", "def check(a, b):\n    if a ==", "\n        return True\n    return False\n", "=="),
    ("python", "def check(a, b):\n    if a =", "\n        return True\n    return False\n", "="),
]


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    from local_models.engine import Engine
    from local_models.model_store import ensure_small_model
    from local_models.worker import _fim_tokens, _Inbox, _Output, _Server

    engine = Engine(ensure_small_model(), n_ctx=2048, n_threads=1)
    info = engine.info
    fim = _fim_tokens(engine, info)
    profile = profile_for(
        str(info.architecture or ""),
        info.name or "",
        fim_ids_present=fim is not None,
        fim_token_strings=fim,
        chat_template=info.chat_template,
    )
    yield _Server(engine, profile, _Output(io.BytesIO()), _Inbox(), profile.chat)
    engine.close()


def _answer(server, language: str, prefix: str, suffix: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    inp = CompletionInput(path=f"x.{language[:2]}", language=language, prefix=prefix, suffix=suffix)
    tokens = server._render(inp)
    tokens, fresh, force = server._healed(tokens, prefix)
    done = server.engine.complete(
        tokens,
        max_tokens=16,
        stop=tuple(server.profile.stop),
        fresh_from=fresh,
        force_prefix=force,
    )
    return force, done.text


@pytest.mark.slow
def test_the_real_model_completes_the_token_the_caret_is_in(server) -> None:  # type: ignore[no-untyped-def]
    # Before the index is built the worker heals nothing (no request waits for it).
    assert server._healed([1, 2, 3], "x = a ==") == ([1, 2, 3], None, "")
    server.engine.prepare_healing()
    assert server.engine.healing_ready()
    for language, prefix, suffix, operator in CASES:
        force, answer = _answer(server, language, prefix, suffix)
        assert force.strip(), (prefix, "nothing healed")
        line = prefix.rsplit("\n", 1)[-1] + answer.split("\n", 1)[0]
        if operator == "join":
            # Unhealed, Gemma 3 270M answered "inder(p)": os.path.joinder.
            assert line.lstrip().startswith("return os.path.join("), (prefix, answer)
        else:
            # The user's operator ends where the model's next token begins: "a == b", or,
            # after one "=", the model's "==" — never a third "=".
            assert "===" not in line, (prefix, answer)
            shown = postprocess(answer, prefix, suffix, language)
            assert shown.reason_dropped is None and shown.text.strip(), (prefix, answer)
