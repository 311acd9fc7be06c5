"""The chat benchmark's logic: answer extraction and the test runner on marked answers, the
question set's own tests against reference answers written here, and one quick real run
(``--limit 1``, the small model) through the real service.

Only the shape of the real run's result is checked, never a pass or a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_bench import check_metadata

from bench import BENCHMARKS
from bench.chat import code_blocks, extract_code, run_tests
from bench.chat_questions import QUESTIONS

REPO = Path(__file__).resolve().parent.parent


def test_code_blocks_any_fence_any_tag_and_a_cut_off_last_block() -> None:
    reply = (
        "Text\n```python\na = 1\n```\nmore\n~~~\nb = 2\n~~~\n"
        "````py title\nc = '```'\n````\n```js\nlet d\n```\n```python\ne = 5\n"
    )
    assert code_blocks(reply) == [
        ("python", "a = 1\n"),
        ("", "b = 2\n"),
        ("py", "c = '```'\n"),
        ("js", "let d\n"),
        ("python", "e = 5\n"),
    ]
    assert code_blocks("no code here") == []


def test_extract_takes_the_first_block_that_defines_the_function_and_keeps_definitions() -> None:
    reply = """Usage first:
```python
print(add(1, 2))
```
The function:
```python
import math
from functools import reduce

LIMIT = 10

def helper(x):
    return x

def add(a, b):
    return helper(a) + b

print(add(2, 3))
assert add(1, 1) == 2
if __name__ == "__main__":
    add(input(), 1)
```
And again:
```python
def add(a, b):
    return 0
```
"""
    code = extract_code(reply, "add")
    assert code is not None
    assert "def add(a, b):\n    return helper(a) + b" in code
    assert "import math" in code and "LIMIT = 10" in code and "def helper" in code
    for dropped in ("print(", "assert ", "__main__", "return 0"):
        assert dropped not in code


def test_extract_skips_other_languages_and_broken_blocks_and_falls_back_to_bare_code() -> None:
    assert extract_code("```js\nfunction add(a, b) {}\n```", "add") is None
    broken = "```python\ndef add(a, b)\n    return a + b\n```"
    assert extract_code(broken, "add") is None
    assert extract_code("```python\ndef sub(a, b):\n    return a - b\n```", "add") is None
    bare = "def add(a, b):\n    return a + b\n"
    assert extract_code(bare, "add") == bare
    indented = "```python\n    def add(a, b):\n        return a + b\n```"
    assert extract_code(indented, "add") == bare


def test_run_tests_passes_fails_times_out_and_reports_missing_code() -> None:
    good = "def square(x):\n    return x * x\n"
    assert run_tests(good, "assert square(3) == 9\n").kind == "passed"
    wrong = run_tests("def square(x):\n    return x + x\n", "assert square(3) == 9\n")
    assert (wrong.passed, wrong.kind, wrong.detail) == (False, "failed", "AssertionError")
    crash = run_tests("def square(x):\n    return x.nope\n", "square(1)\n")
    assert crash.kind == "failed" and "AttributeError" in crash.detail
    slow = run_tests("def square(x):\n    while True:\n        pass\n", "square(1)\n", timeout=2.0)
    assert slow.kind == "timeout"
    assert run_tests(None, "assert True\n").kind == "no_code"
    # A test file that ends early (sys.exit(0) in the answer) is not a pass.
    sneaky = run_tests("import sys\ndef square(x):\n    sys.exit(0)\n", "square(1)\n")
    assert not sneaky.passed


def test_the_answers_code_runs_in_a_scratch_folder_without_the_callers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORECODE_SECRET_FOR_TEST", "x")
    code = (
        "import os\ndef probe():\n    return os.getcwd(), "
        "os.environ.get('FORECODE_SECRET_FOR_TEST')\n"
    )
    outcome = run_tests(
        code,
        f"cwd, secret = probe()\nassert secret is None\n"
        f"assert cwd != {str(tmp_path)!r} and 'forecode-bench-chat' in cwd\n",
    )
    assert outcome.passed, outcome


REFERENCE = {
    "count_vowels": "def count_vowels(text):\n    return sum(c in 'aeiouAEIOU' for c in text)\n",
    "is_prime": (
        "def is_prime(n):\n    if n < 2:\n        return False\n"
        "    return all(n % d for d in range(2, int(n ** 0.5) + 1))\n"
    ),
    "spiral": (
        "def spiral(m):\n    out = []\n    m = [list(r) for r in m]\n    while m:\n"
        "        out += m.pop(0)\n        m = [list(r) for r in zip(*m)][::-1]\n"
        "    return out\n"
    ),
    "format_duration": (
        "def format_duration(s):\n    h, r = divmod(s, 3600)\n    m, s = divmod(r, 60)\n"
        "    parts = [f'{v}{u}' for v, u in ((h, 'h'), (m, 'm'), (s, 's')) if v]\n"
        "    return ' '.join(parts) or '0s'\n"
    ),
}


def test_the_question_set_is_fixed_unique_and_its_tests_accept_correct_answers() -> None:
    assert len(QUESTIONS) >= 30
    assert len({q.id for q in QUESTIONS}) == len(QUESTIONS)
    for q in QUESTIONS:
        assert f"`{q.function}(" in q.prompt, q.id
        assert q.function in q.tests and "assert" in q.tests, q.id
    by_id = {q.id: q for q in QUESTIONS}
    for qid, answer in REFERENCE.items():
        reply = f"Here you go:\n```python\n{answer}\nprint('demo')\n```\nDone."
        outcome = run_tests(extract_code(reply, by_id[qid].function), by_id[qid].tests)
        assert outcome.passed, (qid, outcome)
        # ... and reject a wrong one.
        wrong = f"def {by_id[qid].function}(*args):\n    return None\n"
        assert not run_tests(wrong, by_id[qid].tests).passed, qid


@pytest.mark.slow
def test_chat_benchmark_quick_run_through_the_real_service(tmp_path: Path) -> None:
    assert BENCHMARKS["chat"] == "bench.chat"
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "chat",
            "--json",
            str(out),
            "--limit",
            "1",
            "--models",
            "gemma-3-270m",
            "--max-tokens",
            "48",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    check_metadata(result, "chat")
    assert result["questions"] == 1 and result["max_tokens"] == 48
    assert result["default_pass_rate"] is None  # the default model did not run
    model = result["models"]["gemma-3-270m"]
    assert model["asked"] == 1 and model["pass_rate"] in (0.0, 1.0)
    assert model["ttft_ms"] > 0 and model["answer_s"] > 0
    row = model["questions"][0]
    assert row["id"] == QUESTIONS[0].id and row["finish_reason"] in ("stop", "length")
    assert row["completion_tokens"] <= 48


def test_a_reply_cut_off_in_its_block_still_yields_the_function() -> None:
    from forecode_core.chat.repetition import LOOP_NOTE

    stopped = (
        "```python\ndef half(x):\n    return x / 2\n\n"
        + "print(half(4))\n" * 8
        + "print(half("
        + LOOP_NOTE
    )
    code = extract_code(stopped, "half")
    assert code == "def half(x):\n    return x / 2\n"
    assert run_tests(code, "assert half(4) == 2\n").passed
    cut = "```python\ndef half(x):\n    return x / 2\n\ndef other(y):\n    return ("
    assert extract_code(cut, "half") == "def half(x):\n    return x / 2\n"
    # A closed block with a syntax error is not trimmed into something that parses.
    assert extract_code("```python\ndef half(x):\n    return x /\n```", "half") is None
