"""The workspace: the open folder, its ignore rules and file list (scanned off the UI thread),
the recent folders, and resolving a path hint (a chat code block's file) to a file of it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path, PurePosixPath

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from forecode_core.next_edit.related_context import boost_related
from forecode_core.workspace.fuzzy import rank_paths
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.recent import RecentFolders
from forecode_core.workspace.walk import scan_files

from ..picker import Picker, PickerItem
from ..tasks import BackgroundTask
from .commands import Command

__all__ = ["RELATED_TAG", "Workspace"]

RELATED_TAG = "related"  # quick open's mark on a file that usually changes with the current one
QUICK_OPEN_ROWS = 50


class Workspace(QObject):
    """``excludes``: the ``files.exclude`` globs now. ``picker`` serves Quick Open and the
    recent folders; ``dialogs`` parents the folder dialog."""

    scanned = Signal()  # ``files`` is complete
    rules_changed = Signal(object)  # the new IgnoreRules (.gitignore saved, files.exclude)
    folder_requested = Signal(str)  # the user chose a folder to open
    opened = Signal(object)  # the new root (a Path), after ``open``
    file_requested = Signal(object)  # the user chose a workspace file (a Path) to open
    recent_changed = Signal(list)  # the recent folders, after one was dropped
    message = Signal(str, int)

    def __init__(
        self,
        excludes: Callable[[], Sequence[str]],
        picker: Picker,
        dialogs: QWidget,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._excludes = excludes
        self._picker = picker
        self._dialogs = dialogs
        self.root: Path | None = None
        self.rules: IgnoreRules | None = None
        self.files: list[str] = []  # workspace-relative POSIX paths, from the last scan
        self.files_complete = False
        self.languages: frozenset[str] = frozenset()  # the scan's file suffixes (".py", ...)
        self.recent = RecentFolders()
        # The files related to the current one, with their confidence (``set_related``).
        self._related: Callable[[], Sequence[tuple[str, float]]] | None = None
        self._scan = BackgroundTask(self)
        self._scan.done.connect(self._on_scan_done)
        self._scan.failed.connect(lambda m: self.message.emit(f"File scan failed: {m}", 5000))

    def commands(self) -> list[Command]:
        return [
            Command(
                "file.openFolder", "File: Open Folder...", "Ctrl+K, Ctrl+O", self.open_folder_dialog
            ),
            Command(
                "file.openRecent", "File: Open Recent Folder...", "Ctrl+R", self.open_recent_picker
            ),
            Command("view.quickOpen", "Go to File...", "Ctrl+P", self.quick_open),
        ]

    # ----- the folder --------------------------------------------------------------------------
    def open(self, folder: str | os.PathLike[str]) -> Path:
        """Make ``folder`` the workspace (its rules read); the scan is ``rescan``'s."""
        root = Path(folder).resolve()
        self.root = root
        self.rules = IgnoreRules.for_folder(root, self._excludes())
        self.opened.emit(root)
        return root

    def rescan(self) -> None:
        if self.root is None or self.rules is None:
            return
        root, rules = self.root, self.rules
        self.files_complete = False

        def scan(cancel: threading.Event) -> tuple[list[str], frozenset[str]]:
            files = list(scan_files(root, rules, should_stop=cancel.is_set))
            return files, frozenset(PurePosixPath(f).suffix for f in files)

        self._scan.start(scan)

    def _on_scan_done(self, found: object) -> None:
        assert isinstance(found, tuple)
        self.files, self.languages = found
        self.files_complete = True
        self.scanned.emit()

    def reload_rules(self) -> None:
        """Read the ignore rules again (``files.exclude`` changed)."""
        if self.root is not None and self.rules is not None:
            self.rules = IgnoreRules.for_folder(self.root, self._excludes())
            self.rules_changed.emit(self.rules)

    def file_saved(self, path: Path) -> None:
        """A saved ``.gitignore`` changes the rules and the file list."""
        if path.name == ".gitignore" and self.rules is not None and self.root is not None:
            self.reload_rules()
            self.rescan()

    def shutdown(self) -> None:
        self._scan.cancel()

    # ----- paths -------------------------------------------------------------------------------
    def relative(self, path: Path | None, fallback: str) -> str:
        """``path`` relative to the workspace (its name outside it; ``fallback`` for none)."""
        if path is None:
            return fallback
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.name

    def resolve_hint(self, hint: str, open_paths: Collection[Path] = ()) -> Path | None:
        """The file a path hint names: an open file (``open_paths``), a workspace file (one
        of the scan, or one on disk), or the one workspace file of a bare file name; None for
        no such file (or no folder)."""
        hint = hint.strip()
        if not hint or self.root is None:
            return None
        rel = hint[2:] if hint.startswith("./") else hint
        candidate = Path(rel) if Path(rel).is_absolute() else self.root / rel
        if candidate.resolve() in open_paths:
            return candidate.resolve()
        try:
            inside = candidate.resolve().relative_to(self.root).as_posix()
        except ValueError:
            inside = ""
        if inside and (inside in self.files or candidate.is_file()):
            return candidate
        if "/" not in rel:  # a bare file name: the one workspace file of that name
            named = [f for f in self.files if f.rsplit("/", 1)[-1] == rel]
            if len(named) == 1:
                return self.root / named[0]
        return None

    # ----- choosing ----------------------------------------------------------------------------
    def open_folder_dialog(self) -> None:
        start = str(self.root or Path.home())
        path = QFileDialog.getExistingDirectory(self._dialogs, "Open Folder", start)
        if path:
            self.folder_requested.emit(path)

    def open_recent(self, folder: str) -> None:
        """A recent folder: opened when it still exists, else dropped from the list."""
        if os.path.isdir(folder):
            self.folder_requested.emit(folder)
            return
        self.message.emit(f"{folder} no longer exists; it is removed from the recent list.", 10000)
        try:
            self.recent_changed.emit(self.recent.remove(folder))
        except OSError as exc:
            self.message.emit(f"The recent folders list could not be written: {exc}", 10000)

    def open_recent_picker(self) -> None:
        """Ctrl+R: the recent folders in the picker."""
        folders = self.recent.load()

        def provider(query: str) -> list[PickerItem]:
            return [
                PickerItem(Path(m.path).name, str(Path(m.path).parent), (), m.path)
                for m in rank_paths(query, folders, limit=len(folders))
            ]

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None:
                self.open_recent(str(item.data))

        self._picker.open("Open a recent folder", provider, on_accept=accept)

    def set_related(self, related: Callable[[], Sequence[tuple[str, float]]] | None) -> None:
        """Quick open's related files: a callable giving the files related to the current
        one (workspace-relative, with a confidence 0..1), asked when quick open opens."""
        self._related = related

    def quick_open(self) -> None:
        """Ctrl+P. With an empty query the files related to the current one come first,
        marked "related" (VS Code puts recently opened files there; these are the files that
        usually change with this one); with a query they get a modest boost
        (``forecode_core.next_edit.related_context.boost_related``)."""
        if self.root is None:
            self.message.emit("Open a folder first (File: Open Folder...).", 5000)
            return
        if self.files_complete:
            self.rescan()  # refresh in the background; the current list serves now
        files = self.files
        pairs = self._related() if self._related is not None else ()
        known = set(files) if pairs else set()
        related = {p: c for p, c in pairs if p in known}  # files ignored or gone: not offered

        def provider(query: str) -> list[PickerItem]:
            limit = QUICK_OPEN_ROWS + len(related)
            if query.strip():
                ranked = boost_related(rank_paths(query, files, limit=limit), related)
            else:  # the related files first (most likely first), then the rest in order
                ranked = rank_paths("", list(related), limit=len(related)) + [
                    m for m in rank_paths("", files, limit=limit) if m.path not in related
                ]
            out = []
            for match in ranked[:QUICK_OPEN_ROWS]:
                name_start = match.path.rfind("/") + 1
                positions = tuple(p - name_start for p in match.positions if p >= name_start)
                tag = RELATED_TAG if match.path in related else ""
                out.append(
                    PickerItem(
                        match.path[name_start:],
                        match.path[:name_start],
                        positions,
                        match.path,
                        tag,
                    )
                )
            return out

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None and self.root is not None:
                self.file_requested.emit(self.root / str(item.data))

        self._picker.open("Search files by name", provider, on_accept=accept)
