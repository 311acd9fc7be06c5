"""The next-edit session of one buffer: the suggestions on offer, which one is shown, and what
Tab, Esc, typing and an accept do. Pure: the editor feeds it document changes, caret
positions and new offers; it answers with a new ``Session`` value and, for a key, an
``Action`` the editor carries out. Offsets are ``str`` indices into the buffer's text.

What the user gets (the rules VS Code's, Zed's and Cursor's users asked for, see
../shared/research/next_edit.md):

- **Offers** come from edit-pattern propagation (``propagation.propose``: many sites, nearest
  below the caret first) and from the model (``answer.Suggestion``: one edit). Each is keyed by
  the document ``version`` it was computed for: an offer for any other version is stale and
  dropped (``offer``).
- **Which one is shown** (``Session.shown``): a model suggestion on the caret's line first;
  else the propagation sites in their order; else the model's suggestion elsewhere. A model
  suggestion that is one of the propagation sites is not offered twice.
- **Tab** (``press_tab``): the caret in leading whitespace that is not yet at its line's indent
  indents (``Action.PASS``: Zed's and VS Code's users filed bugs when prediction stole that
  Tab); else with the shown edit at the caret (on the caret's line, or the caret inside its
  span) it is accepted (``ACCEPT``: the edits and where the caret goes); else the first Tab
  jumps to it (``JUMP``) and only the second accepts: the caret never moves unasked. An offer
  in another file is ``OPEN``: the editor switches there, and the offer goes with it.
- **Esc** (``escape``) dismisses everything on offer in one press.
- **Typing** (``on_change``): the user's change that types the start of the shown edit's new
  text at its start keeps it, shrunk (Ctrl+Right's word of an insertion is such a change);
  any other change drops every offer (a stale suggestion never stays on screen; propagation
  runs again after the new edit).
- **After an accept** (``accepted``): the other offers are re-based past the accepted edits
  (one overlapping them is dropped) and the next is shown at once; the model's prefetched
  suggestion arrives as a new offer for the new version.
- **Never a revert**: an offer that turns one of the user's recent edits (``recent``: the
  buffer's ``EditEvent``s, accepts included) back into what it was is never offered, on
  arrival and again after each accept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from forecode_core.next_edit.answer import Suggestion
from forecode_core.next_edit.events import Change
from forecode_core.next_edit.propagation import EditPair, Proposal

__all__ = [
    "Action",
    "ActionKind",
    "Offer",
    "OfferEdit",
    "Session",
    "Source",
    "accepted",
    "at_caret",
    "escape",
    "expected_indent",
    "from_proposals",
    "from_suggestion",
    "in_short_indent",
    "offer",
    "on_change",
    "press_tab",
    "reverts",
    "word_of",
]


class Source(StrEnum):
    PROPAGATION = "propagation"
    MODEL = "model"


class ActionKind(StrEnum):
    PASS = "pass"  # the key does what it did before (Tab indents or inserts a tab)
    JUMP = "jump"  # move the caret to ``Action.offset`` and show the edit there
    ACCEPT = "accept"  # make ``Action.edits`` (one undo step), caret to ``Action.offset``
    OPEN = "open"  # switch to ``Action.path`` at ``Action.offset``; the offer goes along


@dataclass(frozen=True)
class OfferEdit:
    """``old`` at ``[start, end)`` becomes ``new``."""

    start: int
    end: int
    old: str
    new: str


@dataclass(frozen=True)
class Offer:
    edits: tuple[OfferEdit, ...]  # sorted, disjoint
    source: Source
    line: int  # 0-based line of the first edit (the jump marker's "line 142" is line + 1)
    label: str = ""  # why (propagation's pattern), for the tooltip and the tests
    path: str = ""  # "" is this buffer; else another open file's (a cross-file jump)

    @property
    def start(self) -> int:
        return self.edits[0].start

    @property
    def end(self) -> int:
        return self.edits[-1].end

    @property
    def is_insertion(self) -> bool:
        return all(e.start == e.end for e in self.edits)

    @property
    def is_deletion(self) -> bool:
        return all(not e.new for e in self.edits)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    offset: int = -1  # JUMP/OPEN: where the caret goes; ACCEPT: the caret after the edits
    edits: tuple[OfferEdit, ...] = ()  # ACCEPT: what to make, in document order
    line: int = -1  # JUMP/OPEN: the target line
    path: str = ""  # OPEN: the other file


@dataclass(frozen=True)
class Session:
    """What one buffer has on offer (a value: every event gives a new one)."""

    version: int = 0  # the document version the offsets refer to
    caret_line: int = 0  # the caret's line when the offers arrived (a model's "at the caret")
    propagation: tuple[Offer, ...] = ()  # in the order they are offered
    model: Offer | None = None
    model_at_caret: bool = False
    dismissed: tuple[tuple[OfferEdit, ...], ...] = field(default=())  # Esc'd, not offered again

    @property
    def shown(self) -> Offer | None:
        if self.model is not None and self.model_at_caret:
            return self.model
        if self.propagation:
            return self.propagation[0]
        return self.model

    @property
    def empty(self) -> bool:
        return not self.propagation and self.model is None


# ---------------------------------------------------------------- reverts


def _trim(before: str, after: str) -> tuple[str, str]:
    p = 0
    while p < min(len(before), len(after)) and before[p] == after[p]:
        p += 1
    q = 0
    while (
        q < min(len(before), len(after)) - p
        and before[len(before) - 1 - q] == after[len(after) - 1 - q]
    ):
        q += 1
    return before[p : len(before) - q], after[p : len(after) - q]


def _reverts_one(edit: OfferEdit, pair: EditPair) -> bool:
    lo, hi = pair.offset, pair.offset + len(pair.after)
    if edit.end < lo or edit.start > hi:
        return False  # not touching the edit's span
    if lo <= edit.start and edit.end <= hi:
        rel_s, rel_e = edit.start - lo, edit.end - lo
        if pair.after[:rel_s] + edit.new + pair.after[rel_e:] == pair.before:
            return True
    core_before, core_after = _trim(pair.before, pair.after)
    return (core_after or core_before) != "" and _trim(edit.old, edit.new) == (
        core_after,
        core_before,
    )


def reverts(offer_: Offer, recent: Sequence[EditPair]) -> bool:
    """Whether the offer turns one of the ``recent`` edits (offsets in the current text) back
    into what it was."""
    return any(_reverts_one(e, pair) for e in offer_.edits for pair in recent)


# ---------------------------------------------------------------- offers


def from_proposals(text: str, proposals: Sequence[Proposal], path: str = "") -> list[Offer]:
    """Propagation's proposals (in their order) as offers on ``text``."""
    return [
        Offer(
            (OfferEdit(p.start, p.end, p.old, p.new),),
            Source.PROPAGATION,
            text.count("\n", 0, p.start),
            p.reason,
            path,
        )
        for p in proposals
    ]


def from_suggestion(text: str, suggestion: Suggestion) -> Offer:
    """The model's suggestion (``answer.check_answer``'s) as an offer on ``text``."""
    edits = tuple(
        OfferEdit(e.start, e.end, text[e.start : e.end], e.text) for e in suggestion.edits
    )
    return Offer(edits, Source.MODEL, text.count("\n", 0, edits[0].start) if edits else 0)


def offer(
    session: Session,
    offers: Sequence[Offer],
    source: Source,
    version: int,
    *,
    caret_line: int,
    recent: Sequence[EditPair] = (),
) -> Session:
    """New offers from one source for document ``version``: they replace that source's
    earlier ones. Stale (another version), reverting and dismissed offers are dropped."""
    if version != session.version:
        return session
    kept = tuple(
        o for o in offers if o.edits and not reverts(o, recent) and o.edits not in session.dismissed
    )
    if source is Source.PROPAGATION:
        model = session.model
        if model is not None and any(model.edits == o.edits for o in kept):
            model = None  # the model found a site propagation has: offer it once
        return replace(session, propagation=kept, model=model, caret_line=caret_line)
    model_offer = kept[0] if kept else None
    if model_offer is not None and any(model_offer.edits == o.edits for o in session.propagation):
        model_offer = None
    at_caret = model_offer is not None and model_offer.line == caret_line and not model_offer.path
    return replace(session, model=model_offer, model_at_caret=at_caret, caret_line=caret_line)


def escape(session: Session) -> tuple[Session, bool]:
    """Esc: every offer dismissed in one press (not offered again for this version); False
    when there was nothing to dismiss (Esc does its other jobs)."""
    if session.empty:
        return session, False
    gone = tuple(o.edits for o in (*session.propagation, session.model) if o is not None)
    return Session(version=session.version, dismissed=session.dismissed + gone), True


# ---------------------------------------------------------------- changes


def _shift_edit(e: OfferEdit, at: int, removed: int, delta: int) -> OfferEdit | None:
    """``e`` after ``removed`` characters at ``at`` were replaced (``delta`` = inserted -
    removed); None when the change touches it."""
    if at + removed <= e.start and not (removed == 0 and at == e.start):
        return OfferEdit(e.start + delta, e.end + delta, e.old, e.new)
    if at >= e.end and not (removed == 0 and at == e.end and e.start == e.end):
        return e
    return None


def _shift_offer(o: Offer, at: int, removed: str, inserted: str) -> Offer | None:
    if o.path:
        return o  # another file's offsets: a change here does not move them
    delta = len(inserted) - len(removed)
    out: list[OfferEdit] = []
    for e in o.edits:
        moved = _shift_edit(e, at, len(removed), delta)
        if moved is None:
            return None
        out.append(moved)
    lines = inserted.count("\n") - removed.count("\n")
    line = o.line + lines if at + len(removed) <= o.start else o.line
    return replace(o, edits=tuple(out), line=line)


def _typed_through(o: Offer, change: Change) -> Offer | None:
    """The shown offer after the user typed the start of its first edit's new text at its
    start: the rest of it; None when the change is anything else."""
    first = o.edits[0]
    if change.removed or not change.inserted or change.offset != first.start or o.path:
        return None
    if not first.new.startswith(change.inserted):
        return None
    n = len(change.inserted)
    rest = OfferEdit(first.start + n, first.end + n, first.old, first.new[n:])
    others = tuple(OfferEdit(e.start + n, e.end + n, e.old, e.new) for e in o.edits[1:])
    edits = ((rest,) if rest.new or rest.old else ()) + others
    if not edits:
        return replace(o, edits=())
    return replace(o, edits=edits)


def on_change(session: Session, change: Change, version: int) -> Session:
    """A change the user made (not an accept: ``accepted``). Typing through the shown edit
    keeps it (shrunk) and the other offers (moved); anything else drops every offer."""
    shown = session.shown
    if shown is not None:
        through = _typed_through(shown, change)
        if through is not None:
            at, removed, inserted = change.offset, "", change.inserted
            rest_prop = tuple(
                moved
                for o in session.propagation
                if o is not shown and (moved := _shift_offer(o, at, removed, inserted)) is not None
            )
            model = session.model
            if model is shown:
                model = through if through.edits else None
            elif model is not None:
                model = _shift_offer(model, at, removed, inserted)
            if shown is not session.model:
                rest_prop = ((through,) if through.edits else ()) + rest_prop
            return replace(
                session,
                version=version,
                propagation=rest_prop,
                model=model,
                model_at_caret=session.model_at_caret and model is not None,
            )
    return Session(version=version, caret_line=session.caret_line)


def accepted(
    session: Session,
    done: Offer,
    version: int,
    *,
    caret_line: int,
    recent: Sequence[EditPair] = (),
) -> Session:
    """``done`` was accepted (its edits made; the document is now ``version``): the other
    offers re-based past its edits, those overlapping dropped, reverts dropped again."""
    rest: list[Offer] = []
    model: Offer | None = None
    for o in (*session.propagation, session.model):
        if o is None or o is done:
            continue
        moved: Offer | None = o
        for e in reversed(done.edits):  # the latest first: earlier offsets stay valid
            if moved is None:
                break
            moved = _shift_offer(moved, e.start, e.old, e.new)
        if moved is None or reverts(moved, recent):
            continue
        if o is session.model:
            model = moved
        else:
            rest.append(moved)
    at_caret = model is not None and model.line == caret_line and not model.path
    return Session(
        version=version,
        caret_line=caret_line,
        propagation=tuple(rest),
        model=model,
        model_at_caret=at_caret,
        dismissed=session.dismissed,
    )


# ---------------------------------------------------------------- keys


_INDENT_AFTER = (":", "{", "(", "[")


def expected_indent(text: str, line_start: int, tab_size: int) -> int:
    """The indent (columns) a line starting at ``line_start`` should have: the previous
    non-blank line's, one level more after an opener (``:``, ``{``, ``(``, ``[``)."""
    pos = line_start
    while pos > 0:
        prev_start = text.rfind("\n", 0, pos - 1) + 1
        prev = text[prev_start : pos - 1].rstrip("\r")
        if prev.strip():
            width = _columns(prev[: len(prev) - len(prev.lstrip())], tab_size)
            code = prev.split("#", 1)[0].rstrip() if "#" in prev else prev.rstrip()
            return width + (tab_size if code.endswith(_INDENT_AFTER) else 0)
        pos = prev_start
    return 0


def _columns(indent: str, tab_size: int) -> int:
    col = 0
    for ch in indent:
        col = (col // tab_size + 1) * tab_size if ch == "\t" else col + 1
    return col


def in_short_indent(text: str, caret: int, tab_size: int = 4) -> bool:
    """Whether the caret sits in its line's leading whitespace and that line is not yet at its
    expected indent: Tab indents there, whatever is on offer."""
    line_start = text.rfind("\n", 0, caret) + 1
    head = text[line_start:caret]
    if head.strip():
        return False
    line_end = text.find("\n", caret)
    line = text[line_start : len(text) if line_end < 0 else line_end].rstrip("\r")
    indent = line[: len(line) - len(line.lstrip())]
    return _columns(indent, tab_size) < expected_indent(text, line_start, tab_size)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset)


def at_caret(o: Offer, text: str, caret: int) -> bool:
    """Whether the offer is where the caret is: on its line, or the caret inside its span."""
    if o.path:
        return False
    if o.start <= caret <= o.end:
        return True
    return _line_of(text, o.start) == _line_of(text, caret)


def press_tab(session: Session, text: str, caret: int, tab_size: int = 4) -> Action:
    """What Tab does (module doc); ``text`` is the buffer now (version ``session.version``)."""
    shown = session.shown
    if shown is None or in_short_indent(text, caret, tab_size):
        return Action(ActionKind.PASS)
    if shown.path:
        return Action(ActionKind.OPEN, shown.start, line=shown.line, path=shown.path)
    if not at_caret(shown, text, caret):
        return Action(ActionKind.JUMP, shown.start, line=_line_of(text, shown.start))
    delta = sum(len(e.new) - (e.end - e.start) for e in shown.edits)
    return Action(ActionKind.ACCEPT, shown.end + delta, edits=shown.edits)


_WORD = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")


def word_of(session: Session, caret: int) -> str:
    """Ctrl+Right: the next word of the shown insertion when it starts at the caret, else
    ``""`` (the key moves the caret as usual). Typing it keeps the rest (``on_change``)."""
    shown = session.shown
    if shown is None or shown.path:
        return ""
    first = shown.edits[0]
    if first.start != first.end or first.start != caret:
        return ""
    m = _WORD.match(first.new)
    return m.group(0) if m else ""
