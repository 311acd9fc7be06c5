"""A multi-file edit under review, as one value: each file's hunks and decisions, which file
and hunk are current, and what accepting the decisions makes of each file.

A new file is one hunk (all its lines added), a deleted file one hunk (all its lines
removed): a file's accept and reject are its hunks'. A ``FAILED`` file has no hunks and is
never applied. The set is ready to apply once every hunk of every file is decided;
``accepted_files`` says what to do: a modified file's text with only its accepted hunks
(``apply.review.apply_hunks``), a new file's text, a deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from forecode_core.apply.review import Hunk, apply_hunks, diff_hunks, indentation_matters
from forecode_core.edits.events import FileChange, FileChangeKind

__all__ = ["AcceptedFile", "EditSetState", "FileReview"]


@dataclass(frozen=True)
class FileReview:
    change: FileChange
    hunks: tuple[Hunk, ...]
    decisions: tuple[bool | None, ...]  # per hunk: accepted, rejected, undecided

    @classmethod
    def of(cls, change: FileChange) -> FileReview:
        if change.kind is FileChangeKind.FAILED:
            hunks: tuple[Hunk, ...] = ()
        elif change.kind is FileChangeKind.DELETED:
            hunks = diff_hunks(change.original, "")
        else:
            indent = indentation_matters(change.path)
            hunks = diff_hunks(change.original, change.new_text, indent_matters=indent)
        return cls(change, hunks, (None,) * len(hunks))

    @property
    def path(self) -> str:
        return self.change.path

    @property
    def decided(self) -> bool:
        return all(d is not None for d in self.decisions)

    @property
    def accepted(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.decisions) if d is True)

    def decide(
        self, index: int | None, accept: bool, *, only_undecided: bool = False
    ) -> FileReview:
        """Decide hunk ``index`` (None: every hunk; ``only_undecided``: leave decided ones)."""
        out = list(self.decisions)
        for i in range(len(out)) if index is None else (index,):
            if not (only_undecided and out[i] is not None):
                out[i] = accept
        return replace(self, decisions=tuple(out))

    def result_text(self) -> str:
        """The file with its accepted hunks (a modified file's)."""
        accepted = {self.hunks[i].index for i in self.accepted}
        return apply_hunks(self.change.original, self.hunks, accepted)


@dataclass(frozen=True)
class AcceptedFile:
    """What accepting does to one file: ``kind`` and its text after (a deletion: "")."""

    path: str
    kind: FileChangeKind
    original: str
    text: str


@dataclass(frozen=True)
class EditSetState:
    files: tuple[FileReview, ...]
    current_file: int = 0
    current_hunk: int = 0

    @classmethod
    def of(cls, changes: Sequence[FileChange]) -> EditSetState:
        files = tuple(FileReview.of(c) for c in changes)
        first = next((i for i, f in enumerate(files) if f.hunks), 0)
        return cls(files, first, 0)

    @property
    def file(self) -> FileReview | None:
        return self.files[self.current_file] if 0 <= self.current_file < len(self.files) else None

    @property
    def ready(self) -> bool:
        """Every hunk of every file decided (and there was something to decide)."""
        return any(f.hunks for f in self.files) and all(f.decided for f in self.files)

    def select(self, index: int) -> EditSetState:
        return replace(self, current_file=index, current_hunk=0)

    def with_hunk(self, index: int) -> EditSetState:
        return replace(self, current_hunk=index)

    def _with_file(self, index: int, review: FileReview) -> EditSetState:
        files = list(self.files)
        files[index] = review
        return replace(self, files=tuple(files))

    def decide_hunk(self, accept: bool) -> EditSetState:
        """Decide the current hunk, then move to the next undecided one (in this file, then
        the next files)."""
        review = self.file
        if review is None or not 0 <= self.current_hunk < len(review.hunks):
            return self
        state = self._with_file(self.current_file, review.decide(self.current_hunk, accept))
        return state.next_undecided()

    def decide_file(self, accept: bool) -> EditSetState:
        review = self.file
        if review is None or not review.hunks:
            return self
        return self._with_file(self.current_file, review.decide(None, accept)).next_undecided()

    def decide_rest(self, accept: bool) -> EditSetState:
        """Every undecided hunk of every file (accept all / reject all)."""
        files = tuple(
            f.decide(None, accept, only_undecided=True) if f.hunks else f for f in self.files
        )
        return replace(self, files=files)

    def next_undecided(self) -> EditSetState:
        """The first undecided hunk at or after the current one, wrapping; unchanged when none."""
        n = len(self.files)
        for step in range(n + 1):
            i = (self.current_file + step) % n if n else 0
            if i >= n:
                break
            review = self.files[i]
            start = self.current_hunk if step == 0 else 0
            for h in range(start, len(review.decisions)):
                if review.decisions[h] is None:
                    return replace(self, current_file=i, current_hunk=h)
            if step == n:  # wrapped to the current file's first hunks
                for h in range(0, start):
                    if review.decisions[h] is None:
                        return replace(self, current_file=i, current_hunk=h)
        return self

    def accepted_files(self) -> tuple[AcceptedFile, ...]:
        """What applying the decisions does, file by file (files with nothing accepted left
        out)."""
        out: list[AcceptedFile] = []
        for review in self.files:
            if not review.accepted:
                continue
            change = review.change
            if change.kind is FileChangeKind.MODIFIED:
                text = review.result_text()
            elif change.kind is FileChangeKind.NEW:
                text = change.new_text
            else:
                text = ""
            out.append(AcceptedFile(change.path, change.kind, change.original, text))
        return tuple(out)
