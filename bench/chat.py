"""The ``chat`` benchmark: coding questions asked through the real service, answers tested.

For each model (``--models``; default: every installed one), a ``LlamaBackend`` on that model
is served by ``cloud_server.service.start_server`` on 127.0.0.1 with a fresh token and reached
through the editor's own client (``cloud_client.client.CloudClient``), one question at a time,
each its own conversation, as the chat panel sends it (no context items, the service's system
prompt, ``--max-tokens`` as the panel's cap). The questions (``bench.chat_questions``) each ask
for one Python function; the answer's code is extracted (``extract_code``) and the question's
tests run against it in a subprocess (``run_tests``: the model's code is untrusted, so it runs
in a temporary folder, isolated mode, with a wall-clock timeout and CPU, memory and file-size
limits).

Figures per model (``models`` → id): ``pass_rate``, ``ttft_ms`` (p50 of call → first
``ChatDelta``), ``answer_s`` (p50 of call → ``ChatDone``), ``passed``/``asked``, the failure
kinds, finish reasons, guard stops and completion tokens; ``default_pass_rate`` is the service's
default model's (``SERVICE_MODEL``), None when it did not run. Target: ``default_pass_rate``
>= 0.65.

Answer extraction, in order: fenced blocks (``` or ~~~) tagged python/py or untagged that parse
and define the function, first one wins (an unterminated last block, cut by the length limit or
the reply guard, counts up to its longest parsing run of whole lines; the guard's note is not
the model's text); else the whole reply when it parses and defines it. From the chosen code
only the definitions are kept (imports, functions, classes, assignments, ``try`` around
imports): example calls, prints, asserts and ``if __name__ == "__main__":`` blocks are
dropped, as a user would when pasting the function.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import percentile

__all__ = ["TestOutcome", "code_blocks", "extract_code", "run_tests"]

DEFAULT_ROUNDS = 1
DEFAULT_MAX_TOKENS = 1024  # what the chat panel sends (ChatPanel.max_tokens)
TEST_TIMEOUT_S = 10.0
TARGET = 0.65

_FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$", re.M)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


# ---------------------------------------------------------------------------------------------
# answer extraction


def code_blocks(reply: str) -> list[tuple[str, str]]:
    """``(language tag, code)`` of every fenced block in ``reply``, in order. A block cut off
    before its closing fence (the reply hit the length limit) runs to the end."""
    return [(tag, code) for tag, code, _closed in _blocks(reply)]


def _blocks(reply: str) -> list[tuple[str, str, bool]]:
    blocks: list[tuple[str, str, bool]] = []
    pos = 0
    while True:
        start = _FENCE.search(reply, pos)
        if start is None:
            return blocks
        fence = start.group("fence")
        tag = start.group("info").strip().split(" ")[0].lower() if start.group("info") else ""
        body_from = start.end() + 1
        close = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        end = close.search(reply, body_from)
        if end is None:
            blocks.append((tag, reply[body_from:], False))
            return blocks
        blocks.append((tag, reply[body_from : end.start()], True))
        pos = end.end()


def _defines(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return None


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(
        node,
        ast.Import
        | ast.ImportFrom
        | ast.FunctionDef
        | ast.AsyncFunctionDef
        | ast.ClassDef
        | ast.Assign
        | ast.AnnAssign,
    ):
        return True
    if isinstance(node, ast.Try):  # try: import x / except ImportError: ...
        return all(isinstance(n, ast.Import | ast.ImportFrom | ast.Assign) for n in node.body)
    return False


def extract_code(reply: str, function: str) -> str | None:
    """The definitions of the answer that defines ``function``; None when no block (or the
    bare reply) parses and defines it. See the module docstring."""
    from forecode_core.chat.repetition import GUARD_NOTES

    for note in GUARD_NOTES:  # Forecode's own words after a stopped reply, not the model's
        reply = reply.replace(note, "")
    candidates = [(code, closed) for tag, code, closed in _blocks(reply) if tag in _PYTHON_TAGS]
    candidates.append((reply, True))
    for code, closed in candidates:
        tree = _parse(code)
        if tree is None and not closed:
            # Cut off (length limit, or a loop the guard stopped): the longest run of whole
            # lines from the start that parses.
            lines = code.splitlines(keepends=True)
            for n in range(len(lines) - 1, 0, -1):
                tree = _parse("".join(lines[:n]))
                if tree is not None:
                    break
        if tree is None or not _defines(tree, function):
            continue
        kept = [node for node in tree.body if _is_definition(node)]
        return ast.unparse(ast.Module(body=kept, type_ignores=[])) + "\n"
    return None


# ---------------------------------------------------------------------------------------------
# running the tests


@dataclass(frozen=True)
class TestOutcome:
    passed: bool
    kind: str  # "passed", "no_code", "failed", "timeout"
    detail: str = ""


_HARNESS = """\
import sys
try:  # cheap limits on untrusted code: CPU seconds, address space, file size, no core dumps
    import resource
    for limit, value in ((resource.RLIMIT_CPU, {cpu}), (resource.RLIMIT_AS, 1 << 30),
                         (resource.RLIMIT_FSIZE, 1 << 20), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
except ImportError:  # not on this platform: the wall-clock timeout still holds
    pass
namespace = {"__name__": "solution"}
with open("solution.py", encoding="utf-8") as f:
    exec(compile(f.read(), "solution.py", "exec"), namespace)
with open("tests.py", encoding="utf-8") as f:
    exec(compile(f.read(), "tests.py", "exec"), namespace)
print("ALL TESTS PASSED")
"""


def run_tests(code: str | None, tests: str, *, timeout: float = TEST_TIMEOUT_S) -> TestOutcome:
    """Run ``tests`` against ``code`` in a child Python (isolated mode, a temporary folder as
    its working directory, stdin closed, a minimal environment, a wall-clock timeout, CPU /
    memory / file-size limits where the platform has them). Passed only when every assert
    held and the harness reached its end."""
    if code is None:
        return TestOutcome(False, "no_code", "the reply has no code that defines the function")
    with tempfile.TemporaryDirectory(prefix="forecode-bench-chat-") as tmp:
        Path(tmp, "solution.py").write_text(code, encoding="utf-8")
        Path(tmp, "tests.py").write_text(tests, encoding="utf-8")
        Path(tmp, "harness.py").write_text(
            _HARNESS.replace("{cpu}", str(max(1, int(timeout)))), encoding="utf-8"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "HOME": tmp,
            "TMPDIR": tmp,
        }
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "harness.py"],
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return TestOutcome(False, "timeout", f"the tests ran past {timeout:g} s")
    if proc.returncode == 0 and proc.stdout.rstrip().endswith("ALL TESTS PASSED"):
        return TestOutcome(True, "passed")
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return TestOutcome(False, "failed", tail[:300])


# ---------------------------------------------------------------------------------------------
# the benchmark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", default=None, help="comma-separated model ids (default: every installed model)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="ask only the first N questions"
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help=f"reply cap sent with each question (default {DEFAULT_MAX_TOKENS}, the chat panel's)",
    )
    parser.add_argument(
        "--replies",
        action="store_true",
        help="keep every reply in the JSON (default: failed ones only)",
    )


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _ask(client: Any, question: Any, max_tokens: int) -> dict[str, Any]:
    from forecode_core.chat.types import ChatDelta, ChatDone, ChatMessage, ChatParams, Role

    params = ChatParams(
        conversation_id=f"bench-chat-{question.id}",
        max_tokens=max_tokens,
        messages=(ChatMessage(Role.USER, question.prompt),),
    )
    began = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    done: Any = None
    error = ""
    try:
        for event in client.chat(params, timeout=600.0):
            if isinstance(event, ChatDelta):
                if first is None:
                    first = time.perf_counter() - began
                parts.append(event.text)
            elif isinstance(event, ChatDone):
                done = event
    except Exception as exc:  # one failed call is a figure, not the end of the run
        error = f"{type(exc).__name__}: {exc}"
    total = time.perf_counter() - began
    return {
        "reply": "".join(parts),
        "ttft_s": first,
        "answer_s": total,
        "error": error,
        "finish_reason": getattr(done, "finish_reason", "none"),
        "completion_tokens": int((getattr(done, "usage", None) or {}).get("completion_tokens", 0)),
    }


def _bench_model(
    model_id: str, questions: list[Any], max_tokens: int, keep_replies: bool
) -> dict[str, Any]:
    from cloud_client.client import CloudClient
    from cloud_server.backends import LlamaBackend
    from cloud_server.config import ServerConfig
    from cloud_server.service import start_server
    from forecode_core.chat.repetition import GUARD_NOTES
    from local_models.model_store import ensure_model

    path = ensure_model(model_id)
    token = secrets.token_urlsafe(32)
    config = ServerConfig(tokens=(token,), slots=1, model_path=str(path))
    load_began = time.perf_counter()
    backend = LlamaBackend(config)
    server = start_server(config, backend=backend)
    client = CloudClient(server.address, token)
    load_s = time.perf_counter() - load_began
    rows: list[dict[str, Any]] = []
    began = time.perf_counter()
    try:
        info = client.info()
        for question in questions:
            answer = _ask(client, question, max_tokens)
            outcome = run_tests(extract_code(answer["reply"], question.function), question.tests)
            guarded = any(note in answer["reply"] for note in GUARD_NOTES)
            row = {
                "id": question.id,
                "passed": outcome.passed,
                "kind": outcome.kind,
                "ttft_ms": _r(None if answer["ttft_s"] is None else answer["ttft_s"] * 1000, 1),
                "answer_s": _r(answer["answer_s"], 2),
                "finish_reason": answer["finish_reason"],
                "completion_tokens": answer["completion_tokens"],
                "guard_stop": guarded,
            }
            if answer["error"]:
                row["error"] = answer["error"]
            if outcome.detail:
                row["detail"] = outcome.detail
            if keep_replies or not outcome.passed:
                row["reply"] = answer["reply"][:4000]
            rows.append(row)
            print(
                f"[chat] {model_id} {question.id}: {outcome.kind} "
                f"({answer['answer_s']:.1f} s, {answer['completion_tokens']} tokens)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        client.close()
        server.stop(grace=1.0)
        backend.close()
    passed = sum(1 for r in rows if r["passed"])
    ttfts = [r["ttft_ms"] for r in rows if r["ttft_ms"] is not None]
    kinds: dict[str, int] = {}
    finishes: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        finishes[r["finish_reason"]] = finishes.get(r["finish_reason"], 0) + 1
    return {
        "model": (info.get("models") or [model_id])[0],
        "file": path.name,
        "pass_rate": _r(passed / len(rows), 4) if rows else None,
        "passed": passed,
        "asked": len(rows),
        "ttft_ms": _r(percentile(ttfts, 50), 1) if ttfts else None,
        "answer_s": _r(percentile([r["answer_s"] for r in rows], 50), 2) if rows else None,
        "answer_s_p95": _r(percentile([r["answer_s"] for r in rows], 95), 2) if rows else None,
        "completion_tokens_p50": _r(percentile([r["completion_tokens"] for r in rows], 50), 1)
        if rows
        else None,
        "kinds": kinds,
        "finish_reasons": finishes,
        "guard_stops": sum(1 for r in rows if r["guard_stop"]),
        "load_s": _r(load_s, 2),
        "wall_s": _r(time.perf_counter() - began, 1),
        "questions": rows,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.chat_questions import QUESTIONS
    from forecode_core.chat.prompt_formats import CHAT_PROMPT_VERSION
    from local_models.model_store import SERVICE_MODEL, installed_models

    if args.models:
        model_ids = [m.strip() for m in args.models.split(",") if m.strip()]
    else:
        model_ids = [m.id for m in installed_models()]
    questions = list(QUESTIONS[: args.limit] if args.limit else QUESTIONS)
    started = time.perf_counter()
    models: dict[str, Any] = {}
    for model_id in model_ids:
        models[model_id] = _bench_model(model_id, questions, args.max_tokens, args.replies)
    default = models.get(SERVICE_MODEL)
    return {
        "default_model": SERVICE_MODEL,
        "default_pass_rate": default["pass_rate"] if default else None,
        "models": models,
        "questions": len(questions),
        "max_tokens": args.max_tokens,
        "chat_prompt_version": CHAT_PROMPT_VERSION,
        "targets": {"default_pass_rate": f">= {TARGET}"},
        "wall_s": _r(time.perf_counter() - started, 1),
    }
