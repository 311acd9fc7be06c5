"""forecode_core.dbbranch.detect: the project's development database, found by reading its
files (never running them). Table tests on marked fixtures: ``ˇ`` starts the line a finding
must name (it is removed before the file is written)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from forecode_core.dbbranch import DbKind, detect, found_from_setting, from_url
from forecode_core.dbbranch.detect import MAX_CONFIG_BYTES
from forecode_core.dbbranch.found import with_database
from forecode_core.workspace.gitignore import IgnoreRules

MARK = "ˇ"


def write_marked(root: Path, files: dict[str, str]) -> dict[str, int]:
    """The files written without their marks; the marked line of each (1-based)."""
    lines: dict[str, int] = {}
    for rel, text in files.items():
        if MARK in text:
            lines[rel] = text[: text.index(MARK)].count("\n") + 1
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(MARK, ""))
    return lines


def make_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()


CASES = [
    (
        "env file",
        {".env": "DEBUG=1\nˇexport DATABASE_URL='postgres://app:s3cret@db:5433/shop'\n"},
        [(DbKind.POSTGRES, "postgresql://app:s3cret@db:5433/shop", ".env")],
    ),
    (
        "env file, SQLAlchemy driver suffix",
        {".env": "ˇDATABASE_URL=postgresql+psycopg2://u@localhost/x\n"},
        [(DbKind.POSTGRES, "postgresql://u@localhost/x", ".env")],
    ),
    (
        "env file, sqlite",
        {".env": "ˇDATABASE_URL=sqlite:///var/dev.sqlite3\n"},
        [(DbKind.SQLITE, "var/dev.sqlite3", ".env")],
    ),
    (
        "django sqlite",
        {
            "manage.py": "import os\n",
            "mysite/settings.py": (
                "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\n"
                "ˇDATABASES = {\n    'default': {\n"
                "        'ENGINE': 'django.db.backends.sqlite3',\n"
                "        'NAME': BASE_DIR / 'db.sqlite3',\n    }\n}\n"
            ),
        },
        [(DbKind.SQLITE, "db.sqlite3", "mysite/settings.py")],
    ),
    (
        "django postgres, os.environ.get defaults",
        {
            "proj/settings.py": (
                "import os\nˇDATABASES = {'default': {\n"
                "  'ENGINE': 'django.db.backends.postgresql',\n"
                "  'NAME': os.environ.get('DB_NAME', 'shop'),\n  'USER': 'app',\n"
                "  'HOST': 'localhost', 'PORT': 5432}}\n"
            ),
        },
        [(DbKind.POSTGRES, "postgresql://app@localhost:5432/shop", "proj/settings.py")],
    ),
    (
        "django with dj_database_url",
        {
            "app/settings/base.py": (
                "import dj_database_url\nˇDATABASES = {'default': dj_database_url.config("
                "default='postgres://me@/appdb')}\n"
            ),
        },
        [(DbKind.POSTGRES, "postgresql://me@/appdb", "app/settings/base.py")],
    ),
    (
        "docker compose with interpolation and a host port",
        {
            ".env": "PGPASS=pw\n",
            "docker-compose.yml": (
                "services:\n  web:\n    image: python:3.12\n  db:\nˇ    image: postgres:16\n"
                "    ports: ['15432:5432']\n    environment:\n"
                "      POSTGRES_DB: ${DB_NAME:-shop}\n      POSTGRES_PASSWORD: ${PGPASS}\n"
            ),
        },
        [(DbKind.POSTGRES, "postgresql://postgres:pw@localhost:15432/shop", "docker-compose.yml")],
    ),
    (
        "compose environment as a list, postgis image",
        {
            "compose.yaml": (
                "services:\n  db:\nˇ    image: postgis/postgis\n    environment:\n"
                "      - POSTGRES_USER=geo\n"
            ),
        },
        [(DbKind.POSTGRES, "postgresql://geo@localhost:5432/geo", "compose.yaml")],
    ),
    (
        "alembic.ini (its template placeholder is not a database)",
        {
            "alembic.ini": "[alembic]\nscript_location = migrations\n"
            "ˇsqlalchemy.url = sqlite:///%(here)s/app.db\n",
            "other/alembic.ini": "[alembic]\nsqlalchemy.url = driver://user:pass@localhost/dbname\n",
        },
        [(DbKind.SQLITE, "app.db", "alembic.ini")],
    ),
    (
        "mysql is shown, never branched",
        {".env": "ˇDATABASE_URL=mysql://root@localhost/app\n"},
        [(DbKind.OTHER, "mysql://root@localhost/app", ".env")],
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sources(tmp_path: Path, files: dict[str, str], expected: list[tuple[DbKind, str, str]]):
    lines = write_marked(tmp_path, files)
    found = detect(tmp_path, {}).found
    got = [(f.kind, f.path if f.kind is DbKind.SQLITE else f.url, f.source) for f in found]
    assert got == expected
    for f in found:
        assert f.line == lines.get(f.source, 0)
        assert f.root == str(tmp_path)


def test_environment_comes_first_and_order_is_kept(tmp_path: Path):
    write_marked(tmp_path, {".env": "DATABASE_URL=postgres://a@h/fromfile\n"})
    make_sqlite(tmp_path / "data" / "x.db")
    found = detect(tmp_path, {"DATABASE_URL": "postgres://a@h/fromenv"}).found
    assert [f.source for f in found] == ["environment", ".env", "data/x.db"]
    assert detect(tmp_path, {}).best is not None


def test_django_module_and_manage_folder(tmp_path: Path):
    make_sqlite(tmp_path / "src" / "db.sqlite3")
    write_marked(
        tmp_path,
        {
            "src/manage.py": "",
            "src/site/settings.py": "import os\nDATABASES = {'default': {'ENGINE': "
            "'django.db.backends.sqlite3', 'NAME': os.path.join(BASE_DIR, 'db.sqlite3')}}\n",
        },
    )
    found = detect(tmp_path, {}).found
    assert found[0].path == "src/db.sqlite3"
    assert found[0].django_settings == "site.settings"
    assert len(found) == 1  # the file found by its header is the same database


def test_sqlite_by_header_not_by_name(tmp_path: Path):
    make_sqlite(tmp_path / "a" / "real.bin")
    (tmp_path / "fake.sqlite3").write_bytes(b"not a database".ljust(4096, b"\0"))
    (tmp_path / "short.db").write_bytes(b"SQLite format 3\0")  # not whole pages
    found = detect(tmp_path, {}).found
    assert [f.path for f in found] == ["a/real.bin"]


def test_ignored_folders_not_entered_but_ignored_files_seen(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("db.sqlite3\nbuild/\n")
    make_sqlite(tmp_path / "db.sqlite3")
    make_sqlite(tmp_path / "build" / "cache.db")
    make_sqlite(tmp_path / "node_modules" / "pkg" / "x.db")
    make_sqlite(tmp_path / ".venv" / "lib" / "y.db")
    found = detect(tmp_path, {}, IgnoreRules.for_folder(tmp_path)).found
    assert [f.path for f in found] == ["db.sqlite3"]


def test_hostile_files(tmp_path: Path):
    outside = tmp_path / "outside"
    ws = tmp_path / "ws"
    ws.mkdir()
    outside.mkdir()
    make_sqlite(outside / "secret.db")
    (outside / "env").write_text("DATABASE_URL=postgres://x@h/stolen\n")
    os.symlink(outside / "secret.db", ws / "link.db")
    os.symlink(outside / "env", ws / ".env")
    os.symlink(outside, ws / "linked-folder")
    os.symlink(ws, ws / "loop")
    (ws / "sub").mkdir()
    (ws / "sub" / ".env").write_bytes(b"DATABASE_URL=postgres://a@h/x\0\xff\xfe" * 10)
    big = "# padding\n" * (MAX_CONFIG_BYTES // 10 + 10) + "DATABASE_URL=postgres://a@h/big\n"
    (ws / "deep").mkdir()
    (ws / "deep" / ".env").write_text(big)
    (ws / "docker-compose.yml").write_text("a: &a [*a]\nservices: {db: {image: [1, 2]}}\n: :\n")
    (ws / "settings.py").write_text("DATABASES = {'default': (\n")
    result = detect(ws, {})
    assert result.found == []
    notes = "\n".join(result.notes)
    assert "sub/.env: binary" in notes
    assert "deep/.env: over 256 KiB" in notes
    assert "docker-compose.yml: not valid YAML" in notes
    assert "settings.py: not parsable Python" in notes


def test_bounded_walk(tmp_path: Path):
    for i in range(30):
        (tmp_path / f"f{i:02}.txt").write_text("x")
    make_sqlite(tmp_path / "zz.db")
    result = detect(tmp_path, {}, limit=10)
    assert result.found == []
    assert "stopped after 10 files" in result.notes[0]


@pytest.mark.parametrize(
    ("text", "kind", "where"),
    [
        ("", None, None),
        ("postgres://u:pw@h/db", DbKind.POSTGRES, "postgresql://u:pw@h/db"),
        ("data/dev.db", DbKind.SQLITE, "data/dev.db"),
        ("sqlite:////abs/x.db", DbKind.SQLITE, "/abs/x.db"),
        ("sqlite://:memory:", None, None),
    ],
)
def test_setting(text: str, kind: DbKind | None, where: str | None):
    found = found_from_setting(text, "/ws")
    if kind is None:
        assert found is None
        return
    assert found is not None and found.kind is kind and found.source == "settings"
    assert (found.path or found.url) == where


def test_label_hides_password_and_urls_rewrite():
    found = from_url("postgres://app:hunter2@db:5432/shop", ".env", 3, "DATABASE_URL in .env")
    assert found is not None
    assert "hunter2" not in found.label and "app:***@db" in found.label
    assert with_database("postgresql://u@/dev?host=/tmp/s&port=5", "br") == (
        "postgresql://u@/br?host=/tmp/s&port=5"
    )


def test_sqlite_path_beside_the_file_that_names_it(tmp_path: Path):
    make_sqlite(tmp_path / "backend" / "db.sqlite3")
    write_marked(tmp_path, {"backend/.env": "DATABASE_URL=sqlite:///db.sqlite3\n"})
    found = detect(tmp_path, {}).found
    assert [(f.path, f.source) for f in found] == [("backend/db.sqlite3", "backend/.env")]
