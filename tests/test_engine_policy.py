"""The engine's policy apart from llama.cpp, table-tested on plain token lists (no model): the KV
cache's bookkeeping (``local_models.engine.cache``), the drafters and batch lengths
(``drafters``), tokens to streamed text (``output``), the one-thread fallback (``threads``) and
the meaning of a decode's return code (``decode.result_of``)."""

from __future__ import annotations

from typing import Any

import pytest

from local_models.engine.cache import KvLedger, SyncPlan, common_prefix, find_runs, run_limit
from local_models.engine.decode import DecodeError, DecodeResult, result_of
from local_models.engine.drafters import (
    PREVIOUS,
    REJOIN_CONFIRM,
    ROW_COST_PRIOR,
    DraftSource,
    PromptLookup,
    RewriteDrafter,
    SpeculativeDrafter,
    best_length,
    draft_length,
    lookup_in,
    scaled_costs,
)
from local_models.engine.output import TextOutput
from local_models.engine.threads import ThreadPolicy

# --- the KV cache's bookkeeping -------------------------------------------------------------------

A = list(range(100, 140))  # 40 distinct tokens: a "file"
B = list(range(200, 220))  # 20 other distinct tokens: inserted text


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ([], [], 0),
        ([1, 2, 3], [], 0),
        ([1, 2, 3], [1, 2, 4], 2),
        ([1, 2, 3], [1, 2, 3, 4], 3),
        (list(range(200)), list(range(200)), 200),  # past the 64-token slices
        (list(range(200)), [*range(130), 0, *range(131, 200)], 130),
    ],
)
def test_common_prefix(a: list[int], b: list[int], want: int) -> None:
    assert common_prefix(a, b) == want == common_prefix(b, a)


@pytest.mark.parametrize(
    ("n", "fresh_from", "want"),
    [(10, None, 9), (10, 4, 4), (10, 20, 9), (10, -3, 0), (1, None, 0)],
)
def test_run_limit_never_covers_the_last_token_nor_the_fresh_tail(
    n: int, fresh_from: int | None, want: int
) -> None:
    assert run_limit(n, fresh_from) == want


@pytest.mark.parametrize(
    ("name", "cached", "prompt", "start", "limit", "min_run", "want"),
    [
        # Text inserted after the first 10 tokens: the rest moved right by 20.
        ("insert", A, [*A[:10], *B, *A[10:]], 10, 59, 4, [(10, 30, 29)]),
        # Ten tokens deleted after the first 10: the rest moved left by 10.
        ("delete", A, [*A[:10], *A[20:]], 10, 29, 4, [(20, 10, 19)]),
        # A run shorter than min_run is not worth moving.
        ("short", A, [*A[:10], *B, *A[10:13], 1], 10, 33, 4, []),
        # Two blocks swapped: the longer one is kept in place order, the other is not moved
        # across it (runs increase in both positions).
        ("swap", A, [*A[:5], *A[25:40], *A[5:25], 7], 5, 40, 4, [(5, 20, 20)]),
        # Only up to the limit (fresh_from): nothing past it comes from the cache.
        ("limit", A, [*A[:10], *B, *A[10:]], 10, 40, 4, [(10, 30, 10)]),
        ("min_run 0: off", A, [*A[:10], *B, *A[10:]], 10, 59, 0, []),
    ],
)
def test_find_runs(
    name: str,
    cached: list[int],
    prompt: list[int],
    start: int,
    limit: int,
    min_run: int,
    want: list[tuple[int, int, int]],
) -> None:
    assert find_runs(cached, prompt, start, limit, min_run) == want, name


def test_find_runs_is_not_pulled_away_by_repeated_boilerplate() -> None:
    """A line repeated all over the file must not anchor the alignment: the longest run that
    really moved is chosen first, the boilerplate is matched only in the gaps around it."""
    boiler = [7, 8, 9, 10, 11]
    cached = [*A[:6], *boiler, *A[6:20], *boiler, *A[20:34], *boiler]
    prompt = [*A[:6], *B[:3], *boiler, *A[6:20], *boiler, *A[20:34], *boiler, 1]
    runs = find_runs(cached, prompt, 6, len(prompt) - 1, 4)
    assert runs == [(6, 9, len(cached) - 6)]


def ledger(tokens: list[int], *, tail: int | None = 0, min_run: int = 4) -> KvLedger:
    kv = KvLedger(min_run=min_run, chunk_reuse=min_run > 0)
    kv.tokens = list(tokens)
    kv.tail = tail
    return kv


# (name, cached, tail, prompt, fresh_from, plan, plan.gaps, plan.final, plan.cost)
SYNC_CASES: list[tuple[Any, ...]] = [
    (
        "the same prompt, logits in place: nothing to do",
        A,
        0,
        A,
        None,
        SyncPlan(ready=True, prefix=40, prompt_len=40),
        (),
        (40, 40),
        0,
    ),
    (
        "the same prompt without its logits: the last token again",
        A,
        None,
        A,
        None,
        SyncPlan(ready=False, prefix=39, drops=((39, None),), park_offset=41, prompt_len=40),
        (),
        (39, 40),
        1,
    ),
    (
        "a prefix of the cache: truncate, run the last token again",
        A,
        0,
        A[:30],
        None,
        SyncPlan(ready=False, prefix=29, drops=((29, None),), park_offset=41, prompt_len=30),
        (),
        (29, 30),
        1,
    ),
    (
        "appended text: only the new tokens",
        A[:30],
        0,
        A,
        None,
        SyncPlan(ready=False, prefix=30, park_offset=41, prompt_len=40),
        (),
        (30, 40),
        10,
    ),
    (
        "an insertion: the text after it moves",
        A,
        0,
        [*A[:10], *B, *A[10:], 1],
        None,
        SyncPlan(
            ready=False,
            prefix=10,
            runs=((10, 30, 30),),
            park_offset=62,
            prompt_len=61,
        ),
        ((10, 30),),
        (60, 61),
        21,
    ),
    (
        "a deletion: the cells in between are dropped",
        A,
        0,
        [*A[:10], *A[20:], 1],
        None,
        SyncPlan(
            ready=False,
            prefix=10,
            runs=((20, 10, 20),),
            drops=((10, 20),),
            park_offset=41,
            prompt_len=31,
        ),
        (),
        (30, 31),
        1,
    ),
    (
        "fresh_from: the tail after it is evaluated, not moved",
        A,
        0,
        [*A[:10], *B, *A[10:], 1],
        40,
        SyncPlan(
            ready=False,
            prefix=10,
            runs=((10, 30, 10),),
            drops=((20, None),),
            park_offset=62,
            prompt_len=61,
        ),
        ((10, 30),),
        (40, 61),
        41,
    ),
]


@pytest.mark.parametrize("case", SYNC_CASES, ids=[c[0] for c in SYNC_CASES])
def test_sync_plans(case: tuple[Any, ...]) -> None:
    name, cached, tail, prompt, fresh_from, plan, gaps, final, cost = case
    kv = ledger(cached, tail=tail)
    got = kv.plan(prompt, fresh_from)
    assert got == plan, name
    assert got.gaps == gaps and got.final == final and got.cost == cost, name
    assert kv.reuse_cost(prompt, fresh_from) == cost, name
    assert kv.tokens == cached, "planning changes nothing"


def test_without_chunk_reuse_only_the_common_prefix_is_kept() -> None:
    kv = ledger(A, min_run=0)
    plan = kv.plan([*A[:10], *B, *A[10:], 1])
    assert plan.runs == () and plan.drops == ((10, None),) and plan.cost == 51


@pytest.mark.parametrize(
    ("name", "greedy_from", "successor", "prompt", "want"),
    [
        ("the same request again", 30, 99, A[:30], [*A[30:], 99]),
        ("part of the completion accepted", 30, 99, A[:35], [*A[35:], 99]),
        ("the whole cache", 30, 99, A, [99]),
        ("before the generated tokens", 30, 99, A[:29], None),
        ("a different prompt", 30, 99, [*A[:31], 5], None),
        ("nothing generated greedily", None, None, A[:30], None),
    ],
)
def test_replay_of_greedily_generated_tokens(
    name: str,
    greedy_from: int | None,
    successor: int | None,
    prompt: list[int],
    want: list[int] | None,
) -> None:
    kv = ledger(A)
    kv.greedy_from, kv.successor = greedy_from, successor
    assert kv.replay_for(prompt) == want, name
    assert (kv.reuse_cost(prompt) == 0) if want is not None else True


def test_forget_truncate_clear() -> None:
    kv = ledger(A)
    kv.greedy_from, kv.successor = 30, 99
    kv.truncate(20)
    assert kv.tokens == A[:20] and (kv.tail, kv.greedy_from, kv.successor) == (None,) * 3
    kv.clear()
    assert kv.tokens == []


# --- the decode step ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rc", "want"),
    [(0, DecodeResult.OK), (1, DecodeResult.CONTEXT_FULL), (2, DecodeResult.CANCELLED)],
)
def test_decode_return_codes(rc: int, want: DecodeResult) -> None:
    assert result_of(rc) is want


@pytest.mark.parametrize("rc", [-1, -3, 3])
def test_other_decode_codes_raise_a_clear_error(rc: int) -> None:
    with pytest.raises(DecodeError, match=f"llama_decode failed with code {rc} during prefill"):
        result_of(rc, "during prefill")
    assert issubclass(DecodeError, RuntimeError)


# --- prompt lookup --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "limit", "want"),
    [
        # The latest earlier occurrence of the longest recent n-gram (up to 4 tokens).
        ([1, 2, 3, 4, 5, 6, 9, 2, 3, 4], 3, (3, [5, 6, 9])),
        ([1, 2, 3, 4, 5, 1, 2, 3, 4], 8, (4, [5, 1, 2, 3, 4])),
        # A longer match wins over a later shorter one.
        ([1, 2, 3, 7, 9, 3, 8, 2, 3], 2, (2, [7, 9])),
        # One matching token is not enough (NGRAM_MIN = 2).
        ([5, 6, 7, 3], 4, (0, [])),
        ([1, 2, 3], 4, (0, [])),
    ],
)
def test_prompt_lookup(history: list[int], limit: int, want: tuple[int, list[int]]) -> None:
    assert PromptLookup(history).draft(limit) == want


def test_prompt_lookup_follows_pushed_tokens() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5])
    for t in (9, 3):
        lookup.push(t)
    assert lookup.draft(4) == (0, [])  # "9 3" never occurred before
    lookup = PromptLookup([1, 2, 3, 4, 5])
    for t in (2, 3):
        lookup.push(t)
    assert lookup.draft(4) == (2, [4, 5, 2, 3])


@pytest.mark.parametrize(
    ("source", "history", "want"),
    [
        ([1, 2, 3, 4, 5, 6], [9, 1, 2, 3, 4], [5, 6]),
        ([1, 2, 3, 4], [9, 1, 2, 3, 4], []),  # nothing follows it
        ([1, 2, 3, 4, 5], [2, 3, 4], []),  # fewer than four tokens to match
        ([0, 2, 3, 4, 5], [1, 2, 3, 4], []),  # all four must match
    ],
)
def test_lookup_in_the_previous_cache(
    source: list[int], history: list[int], want: list[int]
) -> None:
    where: dict[int, list[int]] = {}
    for i, t in enumerate(source):
        where.setdefault(t, []).append(i)
    assert lookup_in(source, where, history, 8) == want


# --- draft lengths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "available", "batch_ms", "want"),
    [
        (0.9, 6, [None] * 8, 6),  # nothing measured: optimistic, try them all
        (0.05, 6, [None] * 8, 0),  # a hopeless draft is not verified
        # Each extra row costs as much as a token: drafting never pays.
        (0.6, 6, [None, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0], 0),
        # Rows nearly free: verify all that is drafted.
        (0.6, 6, [None, 10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6], 6),
    ],
)
def test_draft_length(
    alpha: float, available: int, batch_ms: list[float | None], want: int
) -> None:
    assert draft_length(alpha, available, batch_ms) == want


def test_batch_lengths_follow_the_measured_costs() -> None:
    # Decode times measured by an apply engine of the 1.5B model on this 2-core CPU: small
    # batches cost nearly as much per row as one token, 8 rows more than 4 or 16.
    costs = scaled_costs({1: 50.0, 4: 177.0, 8: 432.0, 16: 533.0, 32: 992.0, 64: 1715.0})
    assert costs[1] == 1.0 and costs[8] > costs[4] > costs[16] > ROW_COST_PRIOR[16]
    alphas = (0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995)
    chosen = [best_length(a, 63, 64, costs) + 1 for a in alphas]
    assert 8 not in chosen and chosen == sorted(chosen), chosen
    # where the prior would verify 4-row drafts, these costs say one token at a time
    assert best_length(0.8, 63, 64) > 0 and best_length(0.8, 63, 64, costs) == 0
    assert scaled_costs({}) == ROW_COST_PRIOR  # nothing measured: the prior
    # Timed while another process held the CPU: big batches look 5x slower than they are.
    # Speculation stays on (the costs stay within a factor of the prior).
    slowed = scaled_costs({1: 40.0, 4: 900.0, 8: 1800.0, 16: 3600.0, 32: 7000.0, 64: 14000.0})
    assert best_length(0.97, 63, 64, slowed) > 0 and best_length(0.99, 63, 64, slowed) > 8


def test_verify_batches_grow_with_the_acceptance_seen() -> None:
    assert best_length(0.3, 63, 64) == 0  # unlikely drafts: plain decoding is cheaper
    lengths = [best_length(a, 63, 64) for a in (0.8, 0.9, 0.97, 0.995)]
    assert lengths == sorted(lengths) and lengths[-1] >= 31, lengths
    assert best_length(0.999, 63, 16) <= 15  # the caller's bound holds
    assert best_length(0.999, 5, 64) == 5  # the end of the draft: all that is left


# --- complete(speculative=True)'s drafter ---------------------------------------------------------


def test_speculative_drafter_prefers_the_previous_continuation() -> None:
    previous = [1, 2, 3, 4, 5, 6, 7, 8]
    drafter = SpeculativeDrafter([9, 1, 2, 3, 4], previous)
    assert drafter.propose(6, [None] * 8) == (PREVIOUS, [5, 6, 7, 8])
    assert drafter.propose(0, [None] * 8) == (0, [])  # no room: no draft
    # Not in the previous cache: prompt lookup. A 2-gram's prior (0.4) pays for one token
    # while no batch size is measured.
    drafter = SpeculativeDrafter([1, 2, 3, 9, 1, 2], previous=[])
    assert drafter.propose(6, [None] * 8) == (2, [3])
    drafter.push(3)
    drafter.push(9)  # now "1 2 3 9" occurred before (a 4-gram, prior 0.6): two tokens
    assert drafter.propose(6, [None] * 8) == (4, [1, 2])


def test_speculative_drafter_lengthens_a_source_that_succeeds_and_drops_one_that_fails() -> None:
    costly = [None, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0]  # each row costs 20 % of a token
    drafter = SpeculativeDrafter([1, 2, 3, 4, 5, 6, 1, 2])
    assert drafter.propose(6, costly) == (2, [3])
    for _ in range(4):
        drafter.verified(2, 6, 6)
    assert drafter.propose(6, costly) == (2, [3, 4, 5, 6, 1, 2])
    drafter = SpeculativeDrafter([1, 2, 3, 4, 5, 6, 1, 2])
    for _ in range(4):
        drafter.verified(2, 1, 0)
    assert drafter.propose(6, costly) == (2, [])


# --- rewrite's drafter ----------------------------------------------------------------------------

KNOWN = list(range(10, 26))  # the original text's tokens


def test_rewrite_drafter_follows_leaves_and_rejoins_the_known_text() -> None:
    d = RewriteDrafter([1, 2, 3], KNOWN, max_batch=64)
    first = d.propose(5)
    assert (first.source, first.candidate, first.tokens) == (
        DraftSource.KNOWN,
        [10, 11, 12, 13, 14],
        [10, 11, 12, 13, 14],
    )
    for t in (10, 11, 12):
        d.push(t)
    assert d.propose(4).candidate == [13, 14, 15, 16]
    d.push(99)  # the model leaves the known text (the edit)
    off = d.propose(4)
    assert off.source is DraftSource.LOOKUP and off.tokens == []  # nothing to look up
    for t in (14, 15, 16):  # ... and comes back: the last three tokens are found again
        d.push(t)
    assert d.rejoins == 1 and d.at == 7 and d.synced
    back = d.propose(4)
    assert back.source is DraftSource.REJOINED and back.candidate == [17, 18, 19, 20]
    # Less trusted just after a rejoin (prior 0.8): a shorter batch than the 4 offered.
    assert back.tokens == [17, 18, 19]
    d.verified(back, 3, 20)
    for t in (17, 18, 19, 20, 21, 22, 23, 24):
        d.push(t)
    assert d.since_rejoin >= REJOIN_CONFIRM
    assert d.propose(8).source is DraftSource.KNOWN


def test_rewrite_drafter_drafts_the_alternative_text_off_the_known_one() -> None:
    alt = [50, 51, 52, 53, 54, 55]
    d = RewriteDrafter([1, 2, 3], KNOWN, alt, max_batch=64)
    for t in (10, 50, 51):
        d.push(t)
    assert not d.alt_synced
    d.push(52)  # the last three tokens occur in alt: follow it
    assert d.alt_synced and d.alt_at == 3
    p = d.propose(10)
    assert (p.source, p.candidate) == (DraftSource.ALT, [53, 54, 55])
    assert p.tokens == p.candidate[: len(p.tokens)] and p.tokens


def test_rewrite_drafter_prompt_lookup_needs_three_tokens_of_context() -> None:
    prompt = [7, 8, 9, 60, 61, 62, 63, 64]
    d = RewriteDrafter(prompt, KNOWN, max_batch=64)
    for t in (99, 8, 9):  # "8 9": a 2-gram of the prompt, too weak for a rewrite
        d.push(t)
    assert d.propose(8).tokens == []
    d2 = RewriteDrafter(prompt, KNOWN, max_batch=64)
    for t in (7, 8, 9):
        d2.push(t)
    p = d2.propose(8)
    assert p.source is DraftSource.LOOKUP and p.candidate == [60, 61, 62, 63, 64, 7, 8, 9]


def test_rewrite_drafter_record_fades_and_cuts_batches() -> None:
    d = RewriteDrafter([1], KNOWN, max_batch=16)
    p = d.propose(15)
    # The known text is trusted (0.97): at the prior costs a 6-row batch pays best.
    assert p.candidate == KNOWN[:15] and p.tokens == KNOWN[:5]
    for _ in range(6):
        d.verified(p, 0, 0)  # rejected at once, again and again
    assert d.propose(15).tokens == []
    assert RewriteDrafter([1], KNOWN, max_batch=4).propose(15).tokens == KNOWN[:3]


# --- tokens to text -------------------------------------------------------------------------------

VOCAB = {
    1: b"ab",
    2: b"c\n",
    3: b"de",
    4: "🚀".encode()[:2],
    5: "🚀".encode()[2:],
    6: b"x",
}
EOS = 0


def output(stop: tuple[str, ...], sent: list[str]) -> TextOutput:
    return TextOutput(lambda t: t == EOS, VOCAB.__getitem__, stop, sent.append)


@pytest.mark.parametrize(
    ("tokens", "stop", "reasons", "text", "sent"),
    [
        ([1, 2, 3], (), [None, None, None], "abc\nde", ["ab", "c\n", "de"]),
        # A stop string across tokens: cut there, never streamed; the possible start of a stop
        # string is held back until it is known not to be one.
        ([1, 2, 3], ("\nd",), [None, None, "stop"], "abc", ["ab", "c"]),
        ([1, 2, 6], ("\nd",), [None, None, None], "abc\nx", ["ab", "c", "\nx"]),
        # The end of generation: not kept.
        ([1, EOS], (), [None, "eos"], "ab", ["ab"]),
        # A character split across tokens is sent whole.
        ([4, 5, 6], (), [None, None, None], "🚀x", ["🚀", "x"]),
        # An empty stop string is no stop string.
        ([1, 2], ("",), [None, None], "abc\n", ["ab", "c\n"]),
    ],
)
def test_text_output(
    tokens: list[int],
    stop: tuple[str, ...],
    reasons: list[str | None],
    text: str,
    sent: list[str],
) -> None:
    got: list[str] = []
    out = output(stop, got)
    assert [out.push(t) for t in tokens] == reasons
    if reasons[-1] != "stop":
        out.finish()
    assert out.text == text and got == sent and "".join(got) == text
    assert out.tokens == [t for t in tokens if t != EOS]


# --- the one-thread fallback ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_threads_drop_to_one_under_contention_and_come_back_later() -> None:
    clock, calls = Clock(), []
    policy = ThreadPolicy(calls.append, 2, clock)
    policy.note("decode", 0.010)
    policy.note("decode", 0.030)  # slower, but within 4x its best: no change
    assert policy.now == 2 and calls == []
    policy.note("decode", 0.050)  # over 4x the best with all threads: contention
    assert policy.now == 1 and policy.tripped and calls == [1]
    policy.note("decode", 0.012)  # one thread's time for this kind of decode
    policy.begin_request()
    assert policy.now == 1  # still backing off
    clock.now = 10.0
    policy.begin_request()
    assert policy.now == 2 and calls == [1, 2]
    policy.note("decode", 0.016)  # worse than one thread did (x1.25): back to one at once
    assert policy.now == 1 and calls == [1, 2, 1]
    clock.now = 25.0  # the back-off doubled (10 s, then 20 s)
    policy.begin_request()
    assert policy.now == 1
    clock.now = 30.0
    policy.begin_request()
    assert policy.now == 2


# --- purity ---------------------------------------------------------------------------------------


def test_the_policy_modules_import_without_llama_cpp() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import local_models.engine.cache, local_models.engine.drafters\n"
        "import local_models.engine.output, local_models.engine.threads\n"
        "assert 'llama_cpp' not in sys.modules, 'a policy module loaded llama.cpp'\n"
        "from local_models.engine import Engine\n"
        "assert 'llama_cpp' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
