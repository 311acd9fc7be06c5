"""Render the main window offscreen to a PNG (the README's screenshot).

    .venv/bin/python -m app.tools.screenshot docs/screenshot.png [--folder docs/sample]
        [--file docs/sample/inventory.py] [--theme dark|light]
    .venv/bin/python -m app.tools.screenshot docs/chat.png --chat
    .venv/bin/python -m app.tools.screenshot docs/apply-review.png --apply
    .venv/bin/python -m app.tools.screenshot docs/apply-refusal.png --refusal
    .venv/bin/python -m app.tools.screenshot docs --next-edit
    .venv/bin/python -m app.tools.screenshot docs/shadow-review.png --shadow-review
    .venv/bin/python -m app.tools.screenshot docs/edit-set.png --edit-set

``--chat`` opens the chat panel (Ctrl+L) with a question about the selected ``restock`` method
and a streamed reply holding a code block; the reply comes from a scripted backend (the
window's ``chat_backend`` seam), so the shot needs no service and is the same every time.

``--chat --live`` asks the real service instead: the editor starts it on loopback with its
default model (Qwen2.5-Coder-1.5B-Instruct) and the shot waits for the whole answer;
``--question`` replaces the question.

``--apply`` reviews ``APPLY_BLOCK`` (a parameter added to ``restock`` and its body changed, a
blank line added in ``add``) against docs/sample/inventory.py with the real deterministic path:
insertions highlighted, the replaced lines in a box beside them, the whitespace-only hunk
grayed, the current hunk's Accept / Reject bar.

``--refusal`` applies ``REFUSAL_BLOCK``, which the deterministic path refuses; the model path is
scripted (``ScriptedModelApply``: an answer that leaves ``# ... existing code ...`` in place of
a method's body) and the editor's own checks refuse it: the review says why, nothing changes.

``--next-edit`` writes the README's two next-edit shots into the folder ``out``
(``next-edit-jump.png``, ``next-edit-replacement.png``) from one window: a copy of the
standard library's ``json`` package, ``encoder.py`` open, ``_current_indent_level`` renamed
to ``depth`` in ``_iterencode_list``'s header (typed); the pause's edit patterns show
"Tab → line N" at the caret line's end and the arrow in the margin (the first shot); Tab
jumps, Tab accepts, Tab jumps to the next site, shown as the old name boxed and the new one
beside it (the second). No model: edit-pattern propagation only, so the shots are the same
every time.

``--shadow-review`` reviews ``SHADOW_BLOCK`` (restock made to log through a ``log_restock`` the
file never defines) with the real deterministic path and waits for the real shadow check (the
sample copied into a hidden shadow, basedpyright and ruff's servers rooted there): the new
problem under the review's header and squiggled beside its hunk; the sample is untouched.

``--edit-set`` turns on the chat's "Edit files" mode and asks the real gRPC service, started in
this process on loopback with a token (``cloud_server.service.start_server``), whose model seam
answers ``EDIT_SET_ANSWER`` (scripted, so the shot is the same every time): the set of three
files (inventory.py changed, test_inventory.py new, README.md changed) resolved by the service's
apply pipeline, checked in the shadow (the undefined ``reason`` it adds is listed on its row), shown
as one set with no repair rounds (``shadow.repairRounds`` 0, so the first answer is what shows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.tools.scratch import settler

REPO = Path(__file__).resolve().parents[2]

CHAT_QUESTION = "Can restock go negative? Make it refuse that. @README.md"
CHAT_REPLY = """Yes: `restock` adds `count` as given, so a negative count lowers the stock \
and can take it **below zero**. Check the argument before changing anything:

```python
def restock(self, sku: str, count: int) -> int:
    if count <= 0:
        raise ValueError(f"restock needs a positive count, got {count}")
    item = self._items[sku]
    item.quantity += count
    return item.quantity
```

A `KeyError` for an unknown SKU stays as it is, like in `add`.
"""


APPLY_BLOCK = """class Inventory:
    # ... existing code ...
    def add(self, item: Item) -> None:
        if item.sku in self._items:
            raise KeyError(f"duplicate SKU {item.sku!r}")

        self._items[item.sku] = item

    def restock(self, sku: str, count: int, *, allow_negative: bool = False) -> int:
        if count < 0 and not allow_negative:
            raise ValueError(f"restock needs a positive count, got {count}")
        item = self._items[sku]
        item.quantity += count
        return item.quantity

    # ... existing code ...
"""


# A block the deterministic path refuses (is the check added above the body or does it replace
# it?), and a model answer that leaves a placeholder in place of restock's body.
REFUSAL_BLOCK = """class Inventory:
    # ... existing code ...
    def restock(self, sku: str, count: int) -> int:
        if count <= 0:
            raise ValueError(f"restock needs a positive count, got {count}")
        # ... existing code ...
"""


# restock logs through a helper the file never defines: the shadow check's new problem.
SHADOW_BLOCK = """class Inventory:
    # ... existing code ...
    def restock(self, sku: str, count: int) -> int:
        item = self._items[sku]
        item.quantity += count  # counts can only grow here
        log_restock(sku, count)
        return item.quantity

    # ... existing code ...
"""

# The multi-file set: inventory.py keeps a history (with an undefined ``reason``: the check's
# finding), a new test module for it, the sample's README naming it.
EDIT_SET_ANSWER = """Restock refuses a count below one and records each change; a test covers it.

FILE: inventory.py
```python
class Inventory:
    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self.history: list[tuple[str, int, str]] = []
    # ... existing code ...
    def restock(self, sku: str, count: int) -> int:
        if count < 1:
            raise ValueError(f"restock needs a positive count, got {count}")
        item = self._items[sku]
        item.quantity += count  # counts can only grow here
        self.history.append((sku, count, reason))
        return item.quantity
    # ... existing code ...
```

NEW FILE: test_inventory.py
```python
from decimal import Decimal

from inventory import Inventory, Item


def test_restock_adds_and_records() -> None:
    stock = Inventory()
    stock.add(Item("A-1", "Widget", Decimal("2.50"), 4))
    assert stock.restock("A-1", 3) == 7
    assert stock.history == [("A-1", 3, "restock")]
```

FILE: README.md
```markdown
# Sample

A folder to try **Forecode** on: `inventory.py`, `server.ts`, `config.json`.
`test_inventory.py` checks restocking.
```
"""


class ScriptedModelApply:
    """The apply seam's model path (``PipelineApplyBackend.model``) answering with the file
    whose ``restock`` body the model left as ``# ... existing code ...``: the editor's own
    checks refuse it."""

    def __init__(self, request: Any) -> None:
        original = request.original
        old = (
            "        item = self._items[sku]\n        item.quantity += count  # counts can "
            "only grow here\n        return item.quantity\n"
        )
        new = (
            '        if count <= 0:\n            raise ValueError(f"restock needs a positive '
            'count, got {count}")\n        # ... existing code ...\n'
        )
        self.text = original.replace(old, new)

    def cancel(self) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        from forecode_core.apply.events import ApplyDone
        from forecode_core.streams import Delta, FinishReason

        for line in self.text.splitlines(keepends=True):
            time.sleep(0.005)
            yield Delta(line)
        yield ApplyDone(FinishReason.STOP, source="model")


class ScriptedChat:
    """A ``ChatBackend`` that streams ``CHAT_REPLY`` a few words at a time."""

    def chat(self, params: Any) -> ScriptedChat:
        return self

    def cancel(self) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        from forecode_core.chat.types import ChatDelta, ChatDone, ChatStarted, FinishReason

        yield ChatStarted("scripted reply", "cloud")
        words = CHAT_REPLY.split(" ")
        for i in range(0, len(words), 4):
            time.sleep(0.01)
            yield ChatDelta(" ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else ""))
        yield ChatDone(FinishReason.STOP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--folder", type=Path, default=REPO / "docs" / "sample")
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--theme", choices=("dark", "light"), default="dark")
    parser.add_argument("--size", default="1280x800")
    parser.add_argument(
        "--type",
        default="",
        metavar="TEXT",
        help="type TEXT at the end of line 34 and wait for the local model's "
        "ghost-text suggestion before the shot",
    )
    parser.add_argument(
        "--chat",
        action="store_true",
        help="open the chat panel with a scripted reply (docs/chat.png)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="with --chat: the real loopback service answers (its default "
        "model), not the scripted reply",
    )
    parser.add_argument("--question", default=CHAT_QUESTION, help="with --chat: what to ask")
    parser.add_argument(
        "--select", default="restock", help="with --chat: the method selected before asking"
    )
    parser.add_argument(
        "--completion-model",
        default="",
        help="with --type: completion.model (a model id; default: the calibrated tier)",
    )
    parser.add_argument("--line", type=int, default=34, help="with --type: the line to type below")
    parser.add_argument(
        "--apply",
        action="store_true",
        help="review an apply of APPLY_BLOCK (docs/apply-review.png)",
    )
    parser.add_argument(
        "--next-edit",
        action="store_true",
        help="the next-edit jump marker and replacement shots, written into the folder OUT",
    )
    parser.add_argument(
        "--refusal",
        action="store_true",
        help="an apply of REFUSAL_BLOCK refused (docs/apply-refusal.png)",
    )
    parser.add_argument(
        "--shadow-review",
        action="store_true",
        help="an apply of SHADOW_BLOCK with the shadow's new problem (docs/shadow-review.png)",
    )
    parser.add_argument(
        "--edit-set",
        action="store_true",
        help="a multi-file edit from the loopback service, reviewed as a set (docs/edit-set.png)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # A screenshot must not depend on (or touch) the user's settings and backups, and starts
    # no chat service (a chat shot uses the scripted backend).
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"forecode-shot-{os.getpid()}"
    os.environ["FORECODE_CONFIG_DIR"] = str(scratch / "config")
    os.environ["FORECODE_DATA_DIR"] = str(scratch / "data")
    (scratch / "config").mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "cloud.autostart": bool(args.chat and args.live),
        "index.enabled": False,
    }
    issue16 = args.shadow_review or args.edit_set
    if args.chat or args.apply or args.refusal or args.next_edit or issue16:
        settings["completion.enabled"] = False
    if issue16:  # the editor's own servers are not in the shot (the shadow runs its own)
        settings["lsp.enabled"] = False
        settings["shadow.repairRounds"] = 0
    if args.next_edit:  # a copy of the stdlib's json package: its encoder.py is the subject
        settings["lsp.enabled"] = False  # no squiggles or counts that depend on a server's pace
        args.folder = _json_copy(scratch / "json")
        args.file = args.folder / "encoder.py"
        args.size = "1180x700" if args.size == "1280x800" else args.size
    if args.completion_model:
        settings["completion.model"] = args.completion_model
    (scratch / "config" / "settings.json").write_text(json.dumps(settings))

    from dataclasses import replace

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow
    from forecode_core.apply.review_state import ReviewPhase

    app = QApplication(sys.argv[:1])
    from app.ui.apply_backend import PipelineApplyBackend

    service = _loopback_service() if args.edit_set else None
    window = MainWindow(
        chat_backend=(
            service[1] if service else ScriptedChat() if args.chat and not args.live else None
        ),
        apply_backend=PipelineApplyBackend(ScriptedModelApply) if args.refusal else None,
    )
    window.apply_settings(replace(window.settings, theme=args.theme))
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.open_folder(args.folder)
    file = args.file or next(iter(sorted(args.folder.glob("*.py"))), None)
    doc = window.open_file(file) if file is not None else None
    window.show()

    settle = settler(app)  # the file model lists the folder, the editor paints

    settle()
    if doc is not None and args.next_edit:
        ok = shoot_next_edit(window, doc, settle, args.out)
        window.close()
        return 0 if ok else 1
    if doc is not None and args.type:
        from PySide6.QtTest import QTest

        for _ in range(1500):  # the engine loads in the background (at most ~30 s)
            if (engine := window.completions.engine) is not None and engine.is_ready():
                break
            settle()
        doc.editor.go_to_line(args.line, 1)
        doc.editor.gotoPos(doc.editor.lineEndPosition(args.line - 1))
        QTest.keyClick(doc.editor, Qt.Key.Key_Return)
        QTest.keyClicks(doc.editor, args.type)
        for _ in range(300):
            if (inline := window.completions.inline) is not None and inline.suggestion:
                break
            settle()
        last, steady = None, 0  # the rest of a multi-line suggestion streams in after line 1
        while steady < 4 and (inline := window.completions.inline) is not None:
            now = str(inline.suggestion)
            steady = steady + 1 if now == last else 0
            last = now
            settle()
    elif doc is not None and args.chat:
        shoot_chat(window, doc, settle, args.question, args.select, 6000 if args.live else 500)
    elif doc is not None and args.apply:
        shoot_apply(window, doc, settle)
    elif doc is not None and args.shadow_review:
        shoot_shadow_review(window, doc, settle)
    elif doc is not None and args.edit_set:
        shoot_edit_set(window, settle)
    elif doc is not None and args.refusal:
        review = window.start_review(doc, REFUSAL_BLOCK)
        for _ in range(250):
            settle()
            if review is None or review.state is ReviewPhase.FAILED:
                break
        settle()
    elif doc is not None:
        doc.editor.go_to_line(17, 9)
        settle()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(args.out))
    window.close()
    if service is not None:
        service[1].close()
        _stop_service(service[0])
    print(f"wrote {args.out}" if ok else f"could not write {args.out}")
    return 0 if ok else 1


def _json_copy(folder: Path) -> Path:
    """The standard library's ``json`` package's sources, copied into ``folder``."""
    import json as json_package
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    source = Path(json_package.__file__).parent
    for py in sorted(source.glob("*.py")):
        shutil.copy(py, folder / py.name)
    return folder


def shoot_next_edit(window: Any, doc: Any, settle: Any, out: Path) -> bool:
    """The rename typed, the jump marker shot; Tab, Tab, Tab; the replacement shot."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    editor = doc.editor
    header = "def _iterencode_list(lst, _current_indent_level):"
    text = editor.text()
    start = len(text[: text.index(header) + header.index("_current")].encode())
    editor.setSel(start, start + len("_current_indent_level"))
    editor.focus()
    QTest.keyClicks(editor, "depth")
    window.next_edit.predict_now()  # the pause (without waiting for it)
    settle()
    line = editor.lineFromPosition(start)
    editor.setFirstVisibleLine(max(0, line - 11))
    settle()
    out.mkdir(parents=True, exist_ok=True)
    shots = [(out / "next-edit-jump.png", window.grab())]
    for _ in range(3):  # jump to the first site, accept it, jump to the next
        QTest.keyClick(editor, Qt.Key.Key_Tab)
        settle()
    editor.setFirstVisibleLine(max(0, line - 11))
    settle()
    shots.append((out / "next-edit-replacement.png", window.grab()))
    ok = True
    for path, pixmap in shots:
        saved = pixmap.save(str(path))
        ok = ok and saved
        print(f"wrote {path}" if saved else f"could not write {path}")
    return ok


def shoot_chat(window: Any, doc: Any, settle: Any, question: str, method: str, rounds: int) -> None:
    """Select ``method``, open the panel, ask, and wait for the whole reply."""
    editor = doc.editor
    lines = editor.text().splitlines(keepends=True)
    first = next(
        (i for i, line in enumerate(lines) if line.lstrip().startswith(f"def {method}(")), None
    )
    if first is not None:  # the def and every following line indented deeper (or blank)
        indent = len(lines[first]) - len(lines[first].lstrip())
        last = first
        for i in range(first + 1, len(lines)):
            if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) <= indent:
                break
            if lines[i].strip():
                last = i
        start = len("".join(lines[:first]).encode())
        end = len("".join(lines[: last + 1]).rstrip("\n").encode())
        editor.setSel(start, end)
    window.chat.toggle()
    sizes = window.splitter.sizes()
    window.splitter.setSizes([200, sum(sizes) - 200 - 520, 520])
    panel = window.chat_panel
    panel.input.setPlainText(question)
    panel.send()
    for _ in range(rounds):  # 20 ms * 25 a round
        settle()
        if not panel.is_streaming() and panel.current.messages[-1].role == "assistant":
            break
    panel.refresh_context()
    panel.scroll_area.verticalScrollBar().setValue(0)
    settle()


def shoot_apply(window: Any, doc: Any, settle: Any) -> None:
    """Review ``APPLY_BLOCK`` (deterministic path) and move to the substantive change."""
    from forecode_core.apply.review_state import ReviewPhase

    review = window.start_review(doc, APPLY_BLOCK)
    for _ in range(250):
        settle()
        if review.state is ReviewPhase.REVIEW:
            break
    review.move_current(1)  # the parameter and the new check, past the grayed blank line
    review.view.setFirstVisibleLine(12)
    settle()


def _loopback_service() -> tuple[Any, Any]:
    """The real gRPC service on 127.0.0.1 with a fresh token and a scripted model seam, in a
    child process (``bench.scripted_service``: the editor never loads the service in-process);
    (the child, a ``CloudClient`` to it)."""
    import secrets
    import subprocess

    from cloud_client.client import CloudClient

    token = secrets.token_urlsafe(24)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.scripted_service"],
        cwd=REPO,
        env={**os.environ, "FORECODE_SCRIPTED_TOKEN": token},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    if len(line) != 2 or line[0] != "port":
        child.kill()
        raise SystemExit("screenshot: the scripted service did not start")
    return child, CloudClient(f"127.0.0.1:{line[1]}", token)


def _stop_service(child: Any) -> None:
    child.stdin.close()
    try:
        child.wait(timeout=10)
    except Exception:
        child.kill()
        child.wait()


def _wait(settle: Any, done: Any, rounds: int) -> None:
    for _ in range(rounds):
        if done():
            return
        settle()


def shoot_shadow_review(window: Any, doc: Any, settle: Any) -> None:
    """Review ``SHADOW_BLOCK`` and wait for the shadow's verdict (at most ~5 minutes)."""
    from app.services.shadow import ShadowWorkspace
    from app.ui.apply_review import ApplyReview
    from forecode_core.apply.review_state import ReviewPhase

    # the review's 10 s limit (then shown without the check) is for a user; the shot waits
    ApplyReview.CHECK_TIMEOUT_MS = 300_000
    window.review.make_shadow = lambda root: ShadowWorkspace(
        root, rules=lambda: window.workspace.rules, check_timeout_s=300
    )
    review = window.start_review(doc, SHADOW_BLOCK)
    _wait(settle, lambda: review.state is ReviewPhase.REVIEW, 250)
    _wait(settle, lambda: review.checks.state in ("done", "timed_out", "failed"), 600)
    print(f"check: {review.checks.state}: {review.checks.title.text()}")
    review.view.setFirstVisibleLine(14)
    settle()


def shoot_edit_set(window: Any, settle: Any) -> None:
    """Ask for the set in the chat's Edit files mode; wait for the review and its check."""
    from app.services.shadow import ShadowWorkspace

    window.review.make_shadow = lambda root: ShadowWorkspace(  # the shot waits for the check
        root, rules=lambda: window.workspace.rules, check_timeout_s=300
    )
    window.actions_by_id["edits.start"].trigger()
    window.chat_panel.send(
        "Make restock refuse counts below one, keep a history, test it @README.md"
    )
    _wait(settle, lambda: window.edit_set.review is not None, 1500)
    review = window.edit_set.review
    if review is None:
        print("no review opened")
        return
    _wait(settle, lambda: review.check_note.startswith(("checked", "not checked")), 600)
    print(f"set: {review.rows()} {review.check_note}")
    sizes = window.splitter.sizes()
    window.splitter.setSizes([0, sum(sizes) - 430, 430])
    review.file_list.setCurrentRow(0)
    settle()


if __name__ == "__main__":
    sys.exit(main())
