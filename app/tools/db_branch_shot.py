"""The README's database-branch screenshot: ``python -m app.tools.db_branch_shot OUT.png``.

A real window on a scratch copy of a tiny shop project (a SQLite development database and a
pytest suite whose tests write to it, one of them failing), "Run Tests on a Database Branch"
from the owner, the real shadow, branch and test run; the window is grabbed once the preview
is shown. Nothing is scripted: the figures are the run's own.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from app.tools.scratch import scratch_window_env, settle_until, settler

APP = """\
import os
import sqlite3


def connect():
    return sqlite3.connect(os.environ.get("DATABASE_URL", "sqlite:///shop.sqlite3")[10:])


def restock(conn, sku, count):
    conn.execute("UPDATE stock SET count = count + ? WHERE sku = ?", (count, sku))
    conn.commit()


def add_order(conn, sku, qty):
    conn.execute("INSERT INTO orders (sku, qty) VALUES (?, ?)", (sku, qty))
    conn.execute("UPDATE stock SET count = count - ? WHERE sku = ?", (qty, sku))
    conn.commit()
"""

TESTS = """\
from shop import add_order, connect, restock


def test_restock():
    conn = connect()
    restock(conn, "pen", 5)
    assert conn.execute("SELECT count FROM stock WHERE sku = 'pen'").fetchone()[0] == 15


def test_order_takes_stock():
    conn = connect()
    add_order(conn, "mug", 2)
    assert conn.execute("SELECT count FROM stock WHERE sku = 'mug'").fetchone()[0] == 1


def test_cancel_order():
    conn = connect()
    conn.execute("DELETE FROM orders WHERE id = 1")
    conn.commit()
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
"""


def make_project(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "shop.py").write_text(APP)
    (folder / "test_shop.py").write_text(TESTS)
    (folder / ".env").write_text("DATABASE_URL=sqlite:///shop.sqlite3\n")
    conn = sqlite3.connect(folder / "shop.sqlite3")
    conn.execute("CREATE TABLE stock (sku TEXT PRIMARY KEY, count INT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT, qty INT)")
    conn.executemany("INSERT INTO stock VALUES (?, ?)", [("pen", 10), ("mug", 3), ("cap", 7)])
    conn.executemany("INSERT INTO orders (sku, qty) VALUES (?, ?)", [("pen", 1), ("cap", 2)])
    conn.commit()
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args(argv)
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider test_shop.py"
    settings = {"completion.enabled": False, "cloud.autostart": False,
                "dbBranch.testCommand": command}  # fmt: skip
    scratch = scratch_window_env("fc-dbshot-", settings)
    project = scratch / "shop"
    make_project(project)

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    window = MainWindow()
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.open_folder(project)
    window.open_file(project / "test_shop.py")
    window.show()
    settle = settler(app)
    settle()
    owner = window.db_branch
    owner.run_tests()
    settle_until(settle, lambda: not owner.running, 120)
    settle()
    if owner.dock is not None:
        window.resizeDocks([owner.dock], [int(height * 0.45)], Qt.Orientation.Vertical)
    settle()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(args.out))
    owner.discard()
    settle()
    window.close()
    print(f"wrote {args.out}" if ok else f"could not write {args.out}")
    return 0 if ok and not owner.running else 1


if __name__ == "__main__":
    sys.exit(main())
