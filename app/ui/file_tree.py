"""The explorer: the workspace folder as a tree, without what .gitignore excludes.

``QFileSystemModel`` lists folders lazily on its own thread and watches them; a proxy filters
rows through ``IgnoreRules`` (nested .gitignore files are read once per folder and cached),
decided off the UI thread unless that is cheap (``ignore_filter``).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QDir, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Signal
from PySide6.QtWidgets import QFileSystemModel, QTreeView, QWidget

from forecode_core.workspace.gitignore import IgnoreRules

from .git_decorations import BadgeDelegate, DecoratedFileSystemModel
from .ignore_filter import IgnoreDecisions, connect_refresh

__all__ = ["FileTree"]


class _IgnoreFilter(QSortFilterProxyModel):
    def __init__(self, root: Path, rules: IgnoreRules) -> None:
        super().__init__()
        self.root = root
        # Decided off the UI thread unless cheap (ignore_filter); hidden until decided.
        self.decisions = IgnoreDecisions(rules, self)
        connect_refresh(self.decisions, self._refilter)

    def _refilter(self) -> None:
        self.beginFilterChange()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    @property
    def rules(self) -> IgnoreRules:
        return self.decisions.rules

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        assert isinstance(model, QFileSystemModel)
        index = model.index(row, 0, parent)
        path = Path(model.filePath(index))
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return True  # ancestors of the root
        if not rel.parts:
            return True
        return self.decisions.accepts(rel.as_posix(), model.isDir(index))


class FileTree(QTreeView):
    """Activating a file emits ``fileActivated`` with its absolute path."""

    fileActivated = Signal(str)
    ignoreWarning = Signal(str)  # an ignore file beyond the limits (workspace.gitignore)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setUniformRowHeights(True)
        self.setAnimated(False)
        self.activated.connect(self._on_activated)
        self.setItemDelegate(BadgeDelegate(self))  # git status letters (git_decorations)
        self.fs_model: QFileSystemModel | None = None
        self.proxy: _IgnoreFilter | None = None
        self.root: Path | None = None

    def set_root(self, root: Path, rules: IgnoreRules) -> None:
        self.root = root
        fs = DecoratedFileSystemModel(self)  # git colours: git_decorations.GitController
        fs.setFilter(QDir.Filter.AllEntries | QDir.Filter.NoDotAndDotDot | QDir.Filter.Hidden)
        fs.setReadOnly(True)
        if self.proxy is not None:
            self.proxy.decisions.close()
        proxy = _IgnoreFilter(root, rules)
        proxy.decisions.warning.connect(self.ignoreWarning)
        proxy.setSourceModel(fs)
        proxy.setRecursiveFilteringEnabled(False)
        self.fs_model, self.proxy = fs, proxy
        self.setModel(proxy)
        for column in range(1, 4):
            self.hideColumn(column)
        source_root = fs.setRootPath(str(root))
        fs.sort(0)
        self.setRootIndex(proxy.mapFromSource(source_root))

    def set_rules(self, rules: IgnoreRules) -> None:
        if self.proxy is not None:
            self.proxy.decisions.set_rules(rules)  # rows switch once all are decided again

    def visible_paths(self) -> list[str]:
        """Relative paths of the rows loaded so far (expanded folders), for tests and status."""
        out: list[str] = []
        if self.proxy is None or self.root is None:
            return out

        def walk(parent: QModelIndex) -> None:
            assert self.proxy is not None and self.fs_model is not None and self.root is not None
            for row in range(self.proxy.rowCount(parent)):
                index = self.proxy.index(row, 0, parent)
                path = self.fs_model.filePath(self.proxy.mapToSource(index))
                out.append(os.path.relpath(path, self.root).replace(os.sep, "/"))
                walk(index)

        walk(self.rootIndex())
        return out

    # ----- paths of rows (explorer file operations, git colours) ---------------------------
    def index_for(self, path: str | os.PathLike[str]) -> QModelIndex | None:
        """The view's index of ``path``, or None when it is not loaded or is filtered out."""
        if self.proxy is None or self.fs_model is None:
            return None
        source = self.fs_model.index(os.fspath(path))
        if not source.isValid():
            return None
        index = self.proxy.mapFromSource(source)
        return index if index.isValid() else None

    def path_of(self, index: QModelIndex) -> Path | None:
        if self.proxy is None or self.fs_model is None or not index.isValid():
            return None
        return Path(self.fs_model.filePath(self.proxy.mapToSource(index)))

    def current_path(self) -> Path | None:
        """The explorer's focused row (None when nothing is selected)."""
        index = self.currentIndex()
        if not self.selectionModel() or not self.selectionModel().isSelected(index):
            return None
        return self.path_of(index)

    def _on_activated(self, index: QModelIndex) -> None:
        if self.proxy is None or self.fs_model is None:
            return
        source = self.proxy.mapToSource(index)
        if not self.fs_model.isDir(source):
            self.fileActivated.emit(self.fs_model.filePath(source))
