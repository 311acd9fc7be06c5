"""The next-edit session (forecode_core.next_edit.session): table tests on marked text.

Marks: ``ˇ`` the caret; ``⟨old|new⟩`` an offered edit (the text holds ``old``; each mark is one
offer, in text order, unless a test builds its offers itself).
"""

from __future__ import annotations

import pytest

from forecode_core.next_edit.events import Change
from forecode_core.next_edit.propagation import Edit, propose
from forecode_core.next_edit.session import (
    ActionKind,
    Offer,
    OfferEdit,
    Session,
    Source,
    accepted,
    escape,
    from_proposals,
    in_short_indent,
    offer,
    on_change,
    press_tab,
    reverts,
    word_of,
)


def marked(text: str) -> tuple[str, int, list[OfferEdit]]:
    """(clean text, caret, the ⟨old|new⟩ edits in text order)."""
    out: list[str] = []
    edits: list[OfferEdit] = []
    caret = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "ˇ":
            caret = len("".join(out))
            i += 1
        elif ch == "⟨":
            close = text.index("⟩", i)
            old, new = text[i + 1 : close].split("|")
            start = len("".join(out))
            out.append(old)
            edits.append(OfferEdit(start, start + len(old), old, new))
            i = close + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out), caret, edits


def offers_of(text: str, edits: list[OfferEdit], source: Source) -> list[Offer]:
    return [Offer((e,), source, text.count("\n", 0, e.start)) for e in edits]


def apply(text: str, edits: tuple[OfferEdit, ...]) -> str:
    for e in reversed(edits):
        text = text[: e.start] + e.new + text[e.end :]
    return text


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset)


def session_with(text: str, caret: int, prop: list[OfferEdit], model: list[OfferEdit]) -> Session:
    s = Session(version=1)
    line = line_of(text, caret)
    s = offer(s, offers_of(text, prop, Source.PROPAGATION), Source.PROPAGATION, 1, caret_line=line)
    return offer(s, offers_of(text, model, Source.MODEL), Source.MODEL, 1, caret_line=line)


# ---------------------------------------------------------------- which one is shown


@pytest.mark.parametrize(
    ("prop", "model", "shown"),
    [
        # a model suggestion on the caret's line is shown first
        ("a = ⟨x|y⟩\nbˇ = ⟨1|2⟩\n", "model", "1"),
        # else propagation's first (its order: nearest below the caret first)
        ("aˇ = 0\nb = ⟨x|y⟩\nc = ⟨1|2⟩\n", "prop", "x"),
    ],
)
def test_shown_order(prop: str, model: str, shown: str) -> None:
    text, caret, edits = marked(prop)
    # the last mark is the model's, the others propagation's
    s = session_with(text, caret, edits[:-1], edits[-1:])
    assert s.shown is not None
    assert s.shown.edits[0].old == shown
    assert s.shown.source == (Source.MODEL if model == "model" else Source.PROPAGATION)


def test_model_elsewhere_shown_when_propagation_has_nothing() -> None:
    text, caret, edits = marked("aˇ = 0\nb = 1\nc = ⟨1|2⟩\n")
    s = session_with(text, caret, [], edits)
    assert s.shown is not None and s.shown.source == Source.MODEL


def test_model_duplicate_of_a_site_is_offered_once() -> None:
    text, caret, edits = marked("aˇ = 0\nb = ⟨x|y⟩\n")
    s = session_with(text, caret, edits, edits)
    assert s.model is None and len(s.propagation) == 1


def test_stale_offer_is_dropped() -> None:
    text, _caret, edits = marked("aˇ = ⟨x|y⟩\n")
    s = Session(version=2)
    stale = offer(s, offers_of(text, edits, Source.MODEL), Source.MODEL, 1, caret_line=0)
    assert stale.empty


# ---------------------------------------------------------------- Tab


@pytest.mark.parametrize(
    ("case", "kind", "result"),
    [
        # nothing on offer: Tab is Tab
        ("a = 1ˇ\n", ActionKind.PASS, None),
        # the edit on the caret's line: accepted
        ("a = ⟨x|y⟩ˇ\n", ActionKind.ACCEPT, "a = yˇ\n"),
        # the caret inside the edit's span
        ("a = ⟨xx|y⟩\nˇ", ActionKind.JUMP, "a = ˇxx\n"),
        # elsewhere: the first Tab jumps to it (the caret never moves unasked)
        ("aˇ = 0\n\nb = ⟨x|y⟩\n", ActionKind.JUMP, "a = 0\n\nb = ˇx\n"),
        # the caret in leading whitespace short of the indent: Tab indents
        ("def f():\nˇ\nb = ⟨x|y⟩\n", ActionKind.PASS, None),
        ("if a:\n  ˇb = ⟨x|y⟩\n", ActionKind.PASS, None),
        # in leading whitespace at the indent already: the suggestion's Tab
        ("if a:\n    ˇb = ⟨x|y⟩\n", ActionKind.ACCEPT, "if a:\n    b = yˇ\n"),
    ],
)
def test_tab(case: str, kind: ActionKind, result: str | None) -> None:
    text, caret, edits = marked(case)
    s = session_with(text, caret, edits, [])
    action = press_tab(s, text, caret)
    assert action.kind == kind
    if kind == ActionKind.ACCEPT:
        new = apply(text, action.edits)
        assert new[: action.offset] + "ˇ" + new[action.offset :] == result
    elif kind == ActionKind.JUMP:
        assert text[: action.offset] + "ˇ" + text[action.offset :] == result
        assert action.line == line_of(text, action.offset)


def test_jump_then_accept() -> None:
    text, caret, edits = marked("aˇ = 0\n\nb = ⟨x|y⟩\n")
    s = session_with(text, caret, edits, [])
    jump = press_tab(s, text, caret)
    assert jump.kind == ActionKind.JUMP
    second = press_tab(s, text, jump.offset)  # the session is the same: nothing was edited
    assert second.kind == ActionKind.ACCEPT
    assert apply(text, second.edits) == "a = 0\n\nb = y\n"


def test_other_file_opens() -> None:
    s = Session(version=1)
    other = Offer((OfferEdit(5, 6, "x", "y"),), Source.PROPAGATION, 141, path="pkg/b.py")
    s = offer(s, [other], Source.PROPAGATION, 1, caret_line=0)
    action = press_tab(s, "a = 1\n", 0)
    assert (action.kind, action.path, action.line, action.offset) == (
        ActionKind.OPEN,
        "pkg/b.py",
        141,
        5,
    )


@pytest.mark.parametrize(
    ("case", "short"),
    [
        ("def f():\nˇ", True),
        ("def f():\n  ˇ", True),
        ("def f():\n    ˇ", False),
        ("def f():\n    ˇx", False),
        ("x = 1\nˇy", False),  # at column 0 of a line at its indent
        ("x = 1\n  ˇy", False),  # beyond it (over-indented) is not short
        ("    x = 1\n\nˇ", True),  # blank lines skipped to the last code line
        ("{\nˇ}", True),
        ("x = [  # a comment\nˇ", True),
        ("x = 1 ˇ", False),  # not in leading whitespace
    ],
)
def test_short_indent(case: str, short: bool) -> None:
    text, caret, _ = marked(case)
    assert in_short_indent(text, caret) is short


# ---------------------------------------------------------------- Esc, typing, staleness


def test_escape_dismisses_in_one_press() -> None:
    text, caret, edits = marked("aˇ = ⟨x|y⟩\nb = ⟨x|y⟩\n")
    s = session_with(text, caret, edits[1:], edits[:1])
    s, handled = escape(s)
    assert handled and s.empty and s.shown is None
    s, handled = escape(s)
    assert not handled  # the second Esc is the editor's own
    # the same offers coming back for this version are not shown again
    again = offer(
        s, offers_of(text, edits, Source.PROPAGATION), Source.PROPAGATION, 1, caret_line=0
    )
    assert again.empty


@pytest.mark.parametrize(
    ("typed", "left"),
    [
        ("t", "imeout=5"),
        ("timeout", "=5"),
        ("timeout=5", None),  # typed all of it: nothing left
    ],
)
def test_typing_through_an_insertion(typed: str, left: str | None) -> None:
    text = "fetch(url, )\n"
    at = text.index(")")
    s = session_with(text, at, [], [OfferEdit(at, at, "", "timeout=5")])
    s = on_change(s, Change(at, "", typed, 1.0, 0), 2)
    if left is None:
        assert s.shown is None
    else:
        assert s.shown is not None
        e = s.shown.edits[0]
        assert (e.start, e.new) == (at + len(typed), left)


def test_typing_through_a_replacement_keeps_the_old_boxed() -> None:
    text, caret, edits = marked("x = ˇ⟨old|new⟩\n")
    start = edits[0].start
    s = session_with(text, caret, [], edits)
    s = on_change(s, Change(start, "", "ne", 1.0, 0), 2)
    assert s.shown is not None
    e = s.shown.edits[0]
    assert (e.start, e.end, e.old, e.new) == (start + 2, start + 5, "old", "w")
    # the rest of the other offers move with the typing
    text2 = "x = neold\n"
    assert apply(text2, s.shown.edits) == "x = new\n"


def test_typing_anything_else_drops_the_suggestion() -> None:
    text = "fetch(url, )\n"
    at = text.index(")")
    s = session_with(text, at, [], [OfferEdit(at, at, "", "timeout=5")])
    s = on_change(s, Change(at, "", "x", 1.0, 0), 2)
    assert s.empty and s.version == 2


def test_edit_elsewhere_drops_stale_suggestions() -> None:
    text, caret, edits = marked("aˇ = 1\nb = ⟨x|y⟩\nc = ⟨x|y⟩\n")
    s = session_with(text, caret, edits, [])
    s = on_change(s, Change(0, "a", "z", 1.0, 0), 2)
    assert s.empty


def test_word_of_an_insertion() -> None:
    text = "fetch(url)\n"
    at = text.index(")")
    s = session_with(text, at, [], [OfferEdit(at, at, "", ", timeout=5")])
    assert word_of(s, at) == ","
    s = on_change(s, Change(at, "", ",", 1.0, 0), 2)
    assert word_of(s, at + 1) == " timeout"
    assert word_of(s, at) == ""  # not at the caret: Ctrl+Right moves as usual


# ---------------------------------------------------------------- accept, Tab Tab Tab


def run_tabs(
    text: str, caret: int, s: Session, presses: int
) -> tuple[str, int, Session, list[str]]:
    """Press Tab ``presses`` times, making each action as the editor would."""
    kinds: list[str] = []
    version = s.version
    for _ in range(presses):
        action = press_tab(s, text, caret)
        kinds.append(action.kind.value)
        if action.kind == ActionKind.JUMP:
            caret = action.offset
        elif action.kind == ActionKind.ACCEPT:
            shown = s.shown
            assert shown is not None
            text = apply(text, action.edits)
            caret = action.offset
            version += 1
            s = accepted(s, shown, version, caret_line=line_of(text, caret))
    return text, caret, s, kinds


def test_tab_tab_tab_through_a_rename_at_four_sites() -> None:
    before = (
        "def area(rect):\n"
        "    return rect.w * rect.h\n"
        "\n"
        "total = 0\n"
        "for shape in shapes:\n"
        "    total += area(shape)\n"
        "print(area(box), area(box2))\n"
        "result = area\n"
    )
    # the user renamed the function at its definition
    text = before.replace("def area", "def surface", 1)
    at = text.index("surface")
    history = [Edit(at, "area", "surface")]
    caret = at + len("surface")
    proposals = propose(text, history, caret, path="shapes.py")
    assert [p.old for p in proposals] == ["area"] * 4
    s = offer(
        Session(version=1),
        from_proposals(text, proposals),
        Source.PROPAGATION,
        1,
        caret_line=0,
    )
    text, caret, s, kinds = run_tabs(text, caret, s, 7)
    # two sites on one line: the second is at the caret's line after the first's accept
    assert kinds == ["jump", "accept", "jump", "accept", "accept", "jump", "accept"]
    assert text == before.replace("area", "surface")
    assert s.empty
    # the caret sits after the last accepted site
    assert text[:caret].endswith("result = surface")


def test_accept_rebases_the_rest_and_shows_the_next() -> None:
    text, caret, edits = marked("x = ⟨a|bbbb⟩ˇ; y = ⟨a|bbbb⟩\nz = ⟨a|bbbb⟩\n")
    s = session_with(text, caret, edits, [])
    text2, _caret2, s2, kinds = run_tabs(text, caret, s, 1)
    assert kinds == ["accept"]
    assert s2.shown is not None
    e = s2.shown.edits[0]
    assert text2[e.start : e.end] == "a" and e.start == edits[1].start + 3
    assert [o.line for o in s2.propagation] == [0, 1]


def test_accept_drops_an_overlapping_offer() -> None:
    text = "foo(bar)\n"
    s = Session(version=1)
    first = Offer((OfferEdit(0, 3, "foo", "baz"),), Source.PROPAGATION, 0)
    overlapping = Offer((OfferEdit(2, 5, "o(b", "X"),), Source.MODEL, 0)
    s = offer(s, [first], Source.PROPAGATION, 1, caret_line=0)
    s = offer(s, [overlapping], Source.MODEL, 1, caret_line=5)
    assert s.shown is first
    s2 = accepted(s, first, 2, caret_line=0)
    assert s2.empty
    assert text  # the text itself is the editor's


# ---------------------------------------------------------------- never a revert


@pytest.mark.parametrize(
    ("recent", "edit", "reverts_it"),
    [
        # the user renamed foo -> bar at 4; an offer to turn it back is never shown
        (Edit(4, "foo", "bar"), OfferEdit(4, 7, "bar", "foo"), True),
        # the same words elsewhere are no revert
        (Edit(4, "foo", "bar"), OfferEdit(20, 23, "bar", "foo"), False),
        # a deletion taken back (the deleted text inserted again where it was)
        (Edit(4, "x, ", ""), OfferEdit(4, 4, "", "x, "), True),
        # a larger pair: its trimmed core put back
        (Edit(0, "a = f(1)", "a = f(2)"), OfferEdit(6, 7, "2", "1"), True),
        # going further is no revert
        (Edit(0, "a = f(1)", "a = f(2)"), OfferEdit(6, 7, "2", "3"), False),
    ],
)
def test_reverts(recent: Edit, edit: OfferEdit, reverts_it: bool) -> None:
    assert reverts(Offer((edit,), Source.MODEL, 0), [recent]) is reverts_it


def test_a_revert_is_never_offered_and_stays_out_after_accepts() -> None:
    # the user changed the first call's 1 to 2; the model proposes putting it back
    text = "a = f(2)\nb = f(1)\n"
    recent = [Edit(6, "1", "2")]
    back = Offer((OfferEdit(6, 7, "2", "1"),), Source.MODEL, 0)
    s = offer(Session(version=1), [back], Source.MODEL, 1, caret_line=0, recent=recent)
    assert s.empty
    # propagation offers the second call; after its accept, the revert still is not offered
    site = Offer((OfferEdit(15, 16, "1", "2"),), Source.PROPAGATION, 1)
    s = offer(s, [site], Source.PROPAGATION, 1, caret_line=0, recent=recent)
    s = offer(s, [back], Source.MODEL, 1, caret_line=0, recent=recent)
    assert s.model is None
    done = accepted(s, site, 2, caret_line=1, recent=[*recent, Edit(15, "1", "2")])
    assert done.empty
    assert apply(text, site.edits) == "a = f(2)\nb = f(2)\n"
