"""Go to definition's history (Alt+Left / Alt+Right) and hover text, as tables."""

from __future__ import annotations

from forecode_core.lsp.navigation import LIMIT, NavigationHistory, Place, hover_text

A, B, C, D = (Place("a.py", 1), Place("b.py", 2), Place("c.py", 3), Place("d.py", 4))


def test_back_and_forward_like_a_browser() -> None:
    h = NavigationHistory().jumped(A)  # at A, jumped to B
    h, target = h.go_back(B)
    assert target == A and h.forward == (B,)
    h, target = h.go_forward(A)
    assert target == B and h.back == (A,) and h.forward == ()
    h, target = h.go_forward(B)
    assert target is None  # nothing ahead


def test_a_new_jump_after_going_back_drops_the_forward_half() -> None:
    h = NavigationHistory().jumped(A).jumped(B)  # A -> B -> C
    h, _ = h.go_back(C)  # at B, C ahead
    h = h.jumped(B)  # from B to D
    assert h.back == (A, B) and h.forward == ()
    assert NavigationHistory().go_back(A) == (NavigationHistory(), None)


def test_history_is_bounded_and_keeps_one_of_a_repeated_place() -> None:
    h = NavigationHistory()
    for i in range(LIMIT + 10):
        h = h.jumped(Place("x.py", i))
    assert len(h.back) == LIMIT and h.back[-1] == Place("x.py", LIMIT + 9)
    assert NavigationHistory().jumped(D).jumped(D).back == (D,)


def test_hover_markdown_becomes_call_tip_text() -> None:
    md = "```python\n(function) def f(x: int) -> int\n```\n---\nAdds \\_one\\_.\n\n\n"
    assert hover_text(md) == "(function) def f(x: int) -> int\nAdds _one_."
    long = "\n".join(f"line {i}" for i in range(30))
    assert hover_text(long, max_lines=3) == "line 0\nline 1\nline 2\n…"
    assert hover_text("x" * 200, max_width=10) == "x" * 9 + "…"
    assert hover_text("") == ""
