"""File operations in the explorer, as VS Code has them: New File, New Folder, Rename (F2),
Delete (Delete: to the trash, with a confirmation; Shift+Delete: permanently), Reveal in File
Manager, Copy Path, Copy Relative Path. From the explorer's context menu, its keys, and the
command palette (which act on the explorer's selection when it has focus, else on the active
file).

Names are checked before anything happens (``forecode_core.workspace.file_names``): no path
separators, no
name that exists, a clear message in the dialog while typing. Open tabs follow: renaming a file
or a folder moves its open tabs to the new path (unsaved text kept, as in VS Code); deleting
closes them, and when one has unsaved changes the confirmation says so first.

Nothing is lost on an error: a refused create, rename or delete (permission denied, a name
taken meanwhile, a full disk) leaves everything as it was and says why. Deleting goes to the
OS trash through Send2Trash, on a worker thread (a big folder never stalls the window); when
the trash is unavailable the user is told and asked before a permanent delete.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, QProcess, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from app.services.threads import SerialExecutor
from forecode_core.text.languages import language_for_path
from forecode_core.workspace.file_names import name_problem

if TYPE_CHECKING:
    from .document import Document
    from .main_window import MainWindow

__all__ = ["ExplorerOps", "NameDialog", "move_to_trash"]


def move_to_trash(path: Path) -> None:
    """Send ``path`` to the OS trash (raises ``OSError`` when it cannot)."""
    from send2trash import send2trash

    send2trash(os.fspath(path))


def rename_no_replace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, never replacing an existing ``dst`` (raises
    ``FileExistsError``): Linux's renameat2(RENAME_NOREPLACE) where the file system has it,
    else a check right before the rename (a name taken in between is still caught on most
    systems, where renaming onto an existing folder fails)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            renameat2 = libc.renameat2
        except (OSError, AttributeError):
            renameat2 = None
        if renameat2 is not None:
            at_fdcwd, rename_noreplace = -100, 1
            result = renameat2(
                at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace
            )
            if result == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                raise OSError(err, os.strerror(err), str(src), None, str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


def delete_permanently(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class NameDialog(QDialog):
    """A name, checked while typing: OK is disabled and the problem shown while it is bad."""

    def __init__(
        self,
        title: str,
        prompt: str,
        initial: str,
        check: Callable[[str], str | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.check = check
        self.edit = QLineEdit(initial)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #f48771;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(prompt))
        layout.addWidget(self.edit)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.edit.textChanged.connect(self._update)
        stem = initial.rfind(".")
        if stem > 0:  # VS Code selects the name without its extension
            self.edit.setSelection(0, stem)
        else:
            self.edit.selectAll()
        self.resize(420, self.sizeHint().height())
        self._update(initial, quiet=not initial)

    def _update(self, text: str, quiet: bool = False) -> None:
        problem = self.check(text)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(problem is None)
        self.problem.setText("" if quiet else problem or "")

    def _accept(self) -> None:
        if self.check(self.edit.text()) is None:
            self.accept()


class _Done(QObject):
    finished = Signal(object, object)  # callback, error or None


class ExplorerOps(QObject):
    """The explorer's file operations for ``window`` (see the module docstring)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.tree = window.tree
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self._executor = SerialExecutor("forecode-files")
        self._done = _Done()
        self._done.finished.connect(lambda callback, error: callback(error))
        # Keys while the explorer has focus (VS Code's). The explorer claims them before the
        # window's shortcuts (F2 is also the editor's Rename Symbol there).
        self.keys: dict[int, Callable[[], object]] = {
            QKeySequence(key)[0].toCombined(): handler
            for key, handler in (
                ("F2", lambda: self._on_selection(self.rename)),
                ("Del", lambda: self._on_selection(self.delete)),
                (
                    "Shift+Del",
                    lambda: self._on_selection(lambda path: self.delete(path, permanent=True)),
                ),
            )
        }
        self.tree.installEventFilter(self)
        # Seams for tests: the dialogs, the trash and opening a URL.
        self.ask_name: Callable[[str, str, str, Callable[[str], str | None]], str | None] = (
            self._ask_name
        )
        self.confirm: Callable[[str, str, str], bool] = self._confirm
        self.trash: Callable[[Path], None] = move_to_trash
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self.pending = 0  # deletes running on the worker thread

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.tree
            and isinstance(event, QKeyEvent)
            and event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
        ):
            handler = self.keys.get(event.keyCombination().toCombined())
            if handler is not None:
                event.accept()
                if event.type() == QEvent.Type.KeyPress:
                    handler()
                return True
        return super().eventFilter(watched, event)

    # ----- targets -----------------------------------------------------------------------
    def _on_selection(self, action: Callable[[Path], object]) -> None:
        """A key pressed in the explorer acts on its selection, or on nothing (whether or not
        Qt counts the explorer as focused: without a window manager the window may not be
        active after a dialog, yet the keys still reach the explorer)."""
        selected = self.tree.current_path()
        if selected is not None:
            action(selected)

    def target(self) -> Path | None:
        """The explorer's selection when it has focus (None when nothing is selected there),
        else the active file, else the explorer's selection."""
        if self.tree.hasFocus():
            return self.tree.current_path()
        doc = self.window.current_document()
        if doc is not None and doc.path is not None:
            return doc.path
        return self.tree.current_path()

    def _folder_for_new(self) -> Path | None:
        """Where New File / New Folder create: the explorer's selected folder (or the folder of
        its selected file), else the workspace folder."""
        selected = self.tree.current_path()
        if selected is None:
            return self.window.root
        return selected if selected.is_dir() else selected.parent

    # ----- the context menu --------------------------------------------------------------
    def _context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        target = self.tree.path_of(index) if index.isValid() else None
        if index.isValid():
            self.tree.setCurrentIndex(index)
        menu = self.build_menu(target)
        menu.exec(self.tree.viewport().mapToGlobal(pos))

    def build_menu(self, target: Path | None) -> QMenu:
        menu = QMenu(self.tree)
        folder = (
            target
            if target is not None and target.is_dir()
            else target.parent
            if target is not None
            else self.window.root
        )
        menu.addAction("New File...", lambda: self.new_file(folder))
        menu.addAction("New Folder...", lambda: self.new_folder(folder))
        menu.addSeparator()
        if target is not None:
            menu.addAction(
                _label("Reveal in File Manager", "Ctrl+Alt+R"), lambda: self.reveal(target)
            )
            menu.addSeparator()
            menu.addAction(_label("Copy Path", "Ctrl+Alt+C"), lambda: self.copy_path(target))
            menu.addAction(
                _label("Copy Relative Path", "Ctrl+Shift+Alt+C"),
                lambda: self.copy_path(target, relative=True),
            )
            menu.addSeparator()
            menu.addAction(_label("Rename...", "F2"), lambda: self.rename(target))
            menu.addAction(_label("Delete", "Delete"), lambda: self.delete(target))
        return menu

    # ----- dialogs (seams) ---------------------------------------------------------------
    def _ask_name(
        self, title: str, prompt: str, initial: str, check: Callable[[str], str | None]
    ) -> str | None:
        dialog = NameDialog(title, prompt, initial, check, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.edit.text()

    def _confirm(self, text: str, informative: str, button: str) -> bool:
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setText(text)
        box.setInformativeText(informative)
        yes = box.addButton(button, QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is yes

    def _error(self, text: str) -> None:
        self.window.show_message(text, 15000)
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Forecode", text, QMessageBox.StandardButton.Ok, self.window
        )
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()
        self.last_error = text

    last_error: str | None = None

    # ----- new ---------------------------------------------------------------------------
    def _check_in(self, folder: Path, current: str | None = None) -> Callable[[str], str | None]:
        def exists(name: str) -> bool:
            if not os.path.lexists(folder / name):
                return False
            if current is not None and name.lower() == current.lower() and name != current:
                try:  # a case-only rename on a case-insensitive file system
                    return name in os.listdir(folder)
                except OSError:
                    return True
            return True

        return lambda name: name_problem(name, exists, current=current)

    def new_file(self, folder: Path | None = None) -> Path | None:
        return self._new(folder, directory=False)

    def new_folder(self, folder: Path | None = None) -> Path | None:
        return self._new(folder, directory=True)

    def _new(self, folder: Path | None, *, directory: bool) -> Path | None:
        if self.window.root is None:
            self.window.show_message("Open a folder first (File: Open Folder...).")
            return None
        if folder is None:
            folder = self._folder_for_new()
        if folder is None:
            return None
        what = "Folder" if directory else "File"
        rel = os.path.relpath(folder, self.window.root)
        where = "the workspace folder" if rel == "." else rel
        name = self.ask_name(
            f"New {what}", f"Name of the new {what.lower()} in {where}:", "", self._check_in(folder)
        )
        if name is None:
            return None
        problem = self._check_in(folder)(name)
        if problem is not None:
            self._error(problem)
            return None
        path = folder / name
        try:
            if directory:
                path.mkdir()
            else:
                with open(path, "x"):  # never replaces a file created meanwhile
                    pass
        except OSError as exc:
            self._error(f"Could not create {path}: {_reason(exc)}")
            return None
        self.window.git.refresh_soon()
        if not directory:
            self.window.open_file(path)
        self._select(path)
        return path

    def _select(self, path: Path) -> None:
        """Select ``path`` in the explorer if its row is listed already (the model lists new
        entries on its own thread, a moment later)."""
        index = self.tree.index_for(path)
        if index is not None:
            self.tree.setCurrentIndex(index)
            self.tree.scrollTo(index)

    # ----- rename ------------------------------------------------------------------------
    def rename(self, target: Path | None = None) -> Path | None:
        target = target or self.target()
        root = self.window.root
        if target is None or root is None:
            return None
        if target == root:
            self.window.show_message("The workspace folder itself cannot be renamed here.")
            return None
        folder = target.parent
        check = self._check_in(folder, current=target.name)
        name = self.ask_name("Rename", f"New name for {target.name}:", target.name, check)
        if name is None or name == target.name:
            return None
        problem = check(name) or self._saving_under(target)
        if problem is not None:
            self._error(problem)
            return None
        new = folder / name
        try:
            if name.lower() == target.name.lower():
                os.rename(target, new)  # a case-only rename: the "existing" name is itself
            else:
                rename_no_replace(target, new)
        except FileExistsError:
            self._error(
                f"A file or folder '{name}' already exists at this location. "
                "Choose a different name."
            )
            return None
        except OSError as exc:
            self._error(f"Could not rename {target.name} to {name}: {_reason(exc)}")
            return None
        for doc in self.window.documents():
            if doc.path is None:
                continue
            if doc.path == target:
                self._retarget(doc, new)
            elif _is_under(doc.path, target):
                self._retarget(doc, new / doc.path.relative_to(target))
        self.window.git.refresh_soon()
        self._select(new)
        return new

    def _saving_under(self, target: Path, verb: str = "rename") -> str | None:
        """A tab under ``target`` with a save in flight (on the writer thread): renaming or
        deleting now would let that save write the old path again, so it waits for it."""
        for doc in self.window.documents():
            path = doc.path
            if (
                doc.save_pending
                and path is not None
                and (path == target or _is_under(path, target))
            ):
                return f"{doc.title} is being saved: {verb} it when the save has finished."
        return None

    def _retarget(self, doc: Document, new: Path) -> None:
        """Move an open tab to its file's new path: same buffer, same undo, same unsaved text;
        its hot-exit backup moves with it."""
        window = self.window
        if doc.path is not None:
            window.watcher.removePath(str(doc.path))
        old_key = doc.backup_key
        doc.path = new.resolve()
        language = language_for_path(doc.path, doc.editor.line_text(0))
        if language is not doc.editor.language:
            doc.editor.set_language(language)
        if doc.is_dirty():
            doc.backup_now()
        if old_key != doc.backup_key:
            window.docs.drop_backup(old_key)
        window.watcher.addPath(str(doc.path))
        doc.titleChanged.emit()
        if doc is window.current_document():
            window.retrieved.attach(doc.editor, window.workspace_path(doc))

    # ----- delete ------------------------------------------------------------------------
    def delete(self, target: Path | None = None, *, permanent: bool = False) -> None:
        target = target or self.target()
        root = self.window.root
        if target is None or root is None:
            return
        problem = (
            "The workspace folder itself cannot be deleted here."
            if target == root
            else self._saving_under(target, "delete")
        )
        if problem is not None:  # a save in flight would write the deleted file again
            self.window.show_message(problem)
            return
        docs = [
            d
            for d in self.window.documents()
            if d.path is not None and (d.path == target or _is_under(d.path, target))
        ]
        dirty = [d for d in docs if d.is_dirty()]
        kind = "folder" if target.is_dir() and not target.is_symlink() else "file"
        text = (
            f"Are you sure you want to {'permanently ' if permanent else ''}delete "
            f"'{target.name}'{' and its contents' if kind == 'folder' else ''}?"
        )
        info = (
            "This cannot be undone."
            if permanent
            else f"You can restore this {kind} from the Trash."
        )
        if dirty:
            names = ", ".join(d.title for d in dirty[:5]) + (" …" if len(dirty) > 5 else "")
            info += (
                f"\n\nYou have unsaved changes in {names}. Deleting closes "
                f"{'it' if len(dirty) == 1 else 'them'} and the changes are lost."
            )
        if not self.confirm(text, info, "Delete Permanently" if permanent else "Move to Trash"):
            return
        operation = delete_permanently if permanent else self.trash

        def finished(error: object) -> None:
            self.pending -= 1
            if error is None:
                self._close_deleted(target)
                self.window.show_message(
                    f"Deleted {target.name}." if permanent else f"Moved {target.name} to the Trash."
                )
                return
            assert isinstance(error, BaseException)
            if permanent or not target.exists():
                self._error(f"Could not delete {target.name}: {_reason(error)}")
                return
            # The trash is unavailable (no trash on this volume, no permission there): say so
            # and ask before deleting for good.
            if self.confirm(
                f"Could not move '{target.name}' to the Trash: {_reason(error)}.",
                "Delete it permanently instead? This cannot be undone.",
                "Delete Permanently",
            ):
                self._run(delete_permanently, target, finished_permanent)

        def finished_permanent(error: object) -> None:
            self.pending -= 1
            if error is None:
                self._close_deleted(target)
                self.window.show_message(f"Deleted {target.name}.")
            else:
                assert isinstance(error, BaseException)
                self._error(f"Could not delete {target.name}: {_reason(error)}")
                if not target.exists():
                    self._close_deleted(target)

        self._run(operation, target, finished)

    def _run(
        self, operation: Callable[[Path], None], target: Path, callback: Callable[[object], None]
    ) -> None:
        self.pending += 1

        def job() -> None:
            try:
                operation(target)
            except Exception as exc:  # reported on the UI thread
                self._done.finished.emit(callback, exc)
            else:
                self._done.finished.emit(callback, None)

        self._executor.submit(job)

    def _close_deleted(self, target: Path) -> None:
        window = self.window
        for doc in list(window.documents()):
            if doc.path is not None and (doc.path == target or _is_under(doc.path, target)):
                if os.path.exists(doc.path):
                    continue  # something else took its place meanwhile: keep the tab
                doc.editor.setSavePoint()  # the user agreed to lose the unsaved text
                window.close_tab(window.tabs.indexOf(doc))
        window.git.refresh_soon()

    # ----- reveal, copy ------------------------------------------------------------------
    def reveal(self, target: Path | None = None) -> None:
        target = target or self.target()
        if target is None:
            return
        if sys.platform == "darwin":
            QProcess.startDetached("open", ["-R", str(target)])
        elif sys.platform == "win32":
            QProcess.startDetached("explorer", [f"/select,{target}"])
        else:  # xdg-open on the folder (it cannot select the file)
            folder = target if target.is_dir() else target.parent
            self.open_url(QUrl.fromLocalFile(str(folder)))

    def copy_path(self, target: Path | None = None, *, relative: bool = False) -> str | None:
        target = target or self.target()
        if target is None:
            return None
        text = str(target)
        if relative and self.window.root is not None:
            text = os.path.relpath(target, self.window.root)
        QGuiApplication.clipboard().setText(text)
        self.window.show_message(f"Copied {text}")
        return text

    def close(self) -> None:
        self._executor.shutdown(wait=False)  # a delete under way finishes on its own


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return path != folder


def _label(text: str, shortcut: str) -> str:
    return f"{text}\t{shortcut}"
