"""Next-command prediction's pure core (``forecode_core.terminal.predict``): secrets never
stored nor suggested, history ranking by sequences, the prefix filter, the model tier's
input and answers, the stored form."""

from __future__ import annotations

import json

import pytest

from forecode_core.store.json_store import CorruptDocument
from forecode_core.terminal.predict import (
    CommandHistory,
    command_head,
    has_secret,
    model_input,
    model_suggestion,
    rank_next,
    redact_secrets,
    suggest,
)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("TOKEN=abc123 ./deploy.sh", True),
        ("GITHUB_TOKEN=ghp_x gh pr list", True),
        ("export AWS_SECRET_ACCESS_KEY=wJalr", True),
        ("env PGPASSWORD=hunter2 psql -h db", True),
        ("DB_PASS='s3 cret' make migrate", True),
        ("make && API_KEY=k1 python run.py", True),
        ("mysql --password=hunter2 -u root", True),
        ("gh auth login --token ghp_x", True),
        ('curl -H "Authorization: Bearer eyJhbGci" https://api.example.org', True),
        ("git clone https://bob:hunter2@example.org/r.git", True),
        ("pytest -q tests/test_calc.py", False),
        ("git commit -m 'fix the token parser'", False),
        ("DEBUG=1 python -m app", False),
        ("PYTHONPATH=. pytest", False),
        ("TOKEN= ./run.sh", False),  # no value
        ("cd ~/src && ls -la", False),
        ("git clone https://example.org/r.git", False),
    ],
)
def test_secret_lines(line: str, secret: bool) -> None:
    assert has_secret(line) is secret
    redacted = redact_secrets(line)
    assert (redacted != line) is secret
    assert not has_secret(redacted) or "***" in redacted


def test_redaction_keeps_the_rest() -> None:
    out = redact_secrets("TOKEN=abc DEBUG=1 ./x --password 'a b' -v")
    assert out.startswith("TOKEN=*** DEBUG=1 ./x --password ") and "a b" not in out
    assert out.endswith(" -v")


def test_the_history_never_stores_secrets_or_hidden_lines() -> None:
    history = CommandHistory()
    assert history.add("pytest -q")
    assert not history.add("TOKEN=abc ./deploy.sh")
    assert not history.add(" ls secret-dir")  # a leading blank: "do not remember"
    assert not history.add("")
    assert not history.add("echo a\necho b")
    assert not history.add("x" * 600)
    assert history.add("git status  ")
    assert history.commands == ["pytest -q", "git status"]
    small = CommandHistory(limit=3)
    for n in range(5):
        small.add(f"echo {n}")
    assert small.commands == ["echo 2", "echo 3", "echo 4"]


SESSION = [
    "git fetch",
    "pytest -q",
    "git add -p",
    "git commit",
    "git push",
    "git pull",
    "pytest -q",
    "git status",
    "git diff",
    "vim app.py",
    "pytest -q",
    "git add -p",
    "git commit",
    "git pull",
    "pytest -q",
]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("", "git status"),  # after "git pull; pytest -q": "git status" (trigram)
        ("git a", "git add -p"),  # after "pytest -q" (bigram, twice)
        ("git s", "git status"),  # the prefix filters the same ranking
        ("git c", "git commit"),  # no follower matches: all commands by recency-weighted count
        ("v", "vim app.py"),
        ("git add -p", None),  # the whole line is typed: nothing to add
        ("make", None),
        ("TOKEN=x git", None),
    ],
)
def test_suggestions_follow_sequences_and_the_prefix(typed: str, expected: str | None) -> None:
    assert suggest(rank_next(SESSION), typed) == expected


def test_ranking_levels() -> None:
    ranked = rank_next(SESSION)
    # the trigram's follower of (git pull, pytest -q) before the bigram's of pytest -q, though
    # "git add -p" followed "pytest -q" twice; then the rest; each command once
    assert ranked[:2] == ["git status", "git add -p"]
    assert len(ranked) == len(set(ranked)) == len(set(SESSION))
    assert rank_next([]) == []
    # a secret that reached the list by hand is never ranked
    assert "TOKEN=a ./x" not in rank_next(["ls", "TOKEN=a ./x", "ls"])


def test_recency_breaks_ties() -> None:
    ranked = rank_next(["make", "a", "make", "b", "make"])
    assert ranked[0] == "b"  # both followed "make" once: the later one first


def test_the_model_tier() -> None:
    inp = model_input(["pytest -q", "TOKEN=a ./deploy", "git status"], "git c", "proj")
    assert inp.language == "shell" and inp.suffix == "\n"
    assert inp.prefix.endswith("pytest -q\ngit status\ngit c") and "TOKEN" not in inp.prefix
    assert "in proj" in inp.prefix.split("\n")[0]
    assert model_suggestion("ommit -m 'x'\ngit push\n", "git c") == "git commit -m 'x'"
    # the typed text's trailing blank is not in the prompt: the answer brings it back
    assert model_input([], "git ").prefix.endswith("\ngit")
    assert model_suggestion(" status\n", "git ") == "git status"
    assert model_suggestion("\ngit", "git ") is None  # the line ended: nothing to add
    assert model_suggestion("-status", "git ") is None  # not what was typed
    assert model_suggestion("\n", "git c") is None
    assert model_suggestion("  ", "git c") is None
    assert model_suggestion("=abc ./x", "TOKEN") is None
    assert model_suggestion("# a comment", "") is None


def test_the_stored_form_round_trips_and_drops_bad_lines() -> None:
    history = CommandHistory()
    for c in SESSION:
        history.add(c)
    data = json.dumps(history.to_document()).encode()
    assert CommandHistory.from_document(data).commands == SESSION
    doc = history.to_document() | {"commands": ["ls", "PASSWORD=x db"]}
    assert CommandHistory.from_document(json.dumps(doc).encode()).commands == ["ls"]
    with pytest.raises(CorruptDocument):
        CommandHistory.from_document(b'{"format": "forecode-terminal-history", "version": 1}')
    with pytest.raises(CorruptDocument):
        CommandHistory.from_document(b"[]")


def test_a_command_never_seen_backs_off_to_its_head() -> None:
    history = ["git commit -m 'a'", "git status", "ls", "git commit -m 'b'"]
    # "git commit -m 'b'" was never followed by anything: what followed another commit
    assert suggest(rank_next(history), "") == "git status"
    assert command_head("git commit -m 'x y'") == "git commit" and command_head("ls") == "ls"
