"""What a detector found: ``FoundDatabase`` (kind, where it is, which file said so) and the
URL rules the detectors share. Pure: strings in, values out."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "DbKind",
    "FoundDatabase",
    "from_url",
    "postgres_url",
    "with_database",
]


class DbKind(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"
    OTHER = "other"  # found (MySQL, ...) but no branch can be made of it


@dataclass(frozen=True)
class FoundDatabase:
    """A development database the project names.

    ``url``: for PostgreSQL a libpq URI (``postgresql://user:pw@host:port/name``, the driver
    suffix of ``postgresql+psycopg2`` dropped); for SQLite ``sqlite:///`` + ``path``.
    ``path``: SQLite's file as the project names it, relative to the workspace when it is
    inside it (POSIX), else absolute; "" for a server database. ``source``: the file that
    said so, relative to the workspace (``"environment"`` for the editor's own environment,
    ``"settings"`` for the user's setting); ``line``: 1-based there, 0 when unknown.
    ``how``: a few words for the user ("DATABASE_URL in .env"). ``django_settings``: the
    settings module when the project is a Django one ("mysite.settings"), else "".
    ``root``: the workspace it was found in (absolute; "" when not known).
    """

    kind: DbKind
    url: str
    path: str
    source: str
    line: int
    how: str
    django_settings: str = ""
    root: str = ""

    @property
    def branchable(self) -> bool:
        return self.kind is not DbKind.OTHER

    @property
    def label(self) -> str:
        """One line for the user, the password never shown."""
        where = f"{self.source}:{self.line}" if self.line else self.source
        shown = self.path if self.kind is DbKind.SQLITE else _hide_password(self.url)
        return f"{self.kind.value} {shown} ({self.how}, {where})"


_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}
_SQLITE_SCHEMES = {"sqlite", "sqlite3", "spatialite"}


def _scheme(url: str) -> str:
    head = url.split(":", 1)[0].lower() if ":" in url else ""
    return head.split("+", 1)[0]


def from_url(url: str, source: str, line: int, how: str) -> FoundDatabase | None:
    """A ``FoundDatabase`` for a database URL (Django/SQLAlchemy/dj-database-url forms), None
    for text that is no URL. SQLite: ``sqlite:///rel/path`` is relative, ``sqlite:////abs``
    absolute; ``:memory:`` and an empty path are no database to branch (None)."""
    url = url.strip()
    scheme = _scheme(url)
    if not scheme or "://" not in url:
        return None
    if scheme in _SQLITE_SCHEMES:
        rest = url.split("://", 1)[1]
        path = rest[1:] if rest.startswith("/") else rest  # sqlite:///x -> x, ////x -> /x
        path = unquote(path.split("?", 1)[0])
        if not path or path == ":memory:":
            return None
        path = posixpath.normpath(path)
        return FoundDatabase(DbKind.SQLITE, "sqlite:///" + path, path, source, line, how)
    if scheme in _POSTGRES_SCHEMES:
        return FoundDatabase(DbKind.POSTGRES, postgres_url(url), "", source, line, how)
    return FoundDatabase(DbKind.OTHER, url, "", source, line, how)


def postgres_url(url: str) -> str:
    """``url`` as libpq reads it: the scheme ``postgresql`` (any ``+driver`` dropped)."""
    return "postgresql://" + url.split("://", 1)[1]


def with_database(url: str, name: str) -> str:
    """A PostgreSQL URL naming database ``name`` instead, all else kept (query included)."""
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(name, safe="")).geturl()


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()
