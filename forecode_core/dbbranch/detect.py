"""Finding the project's development database, without running any of the project's code.

Where, in this order (the first is the one a branch is made of; the rest are shown):
``DATABASE_URL`` in the editor's environment; ``DATABASE_URL`` in a ``.env`` file (parsed by
python-dotenv's ``dotenv_values`` on a bounded read, interpolation off: it parses, never
executes, and it is the parser the project itself most likely uses, so quoting and
``export`` lines are read as the project reads them); Django's ``DATABASES`` in a settings
module (read with ``ast``, never imported: importing user code would run it in the editor's
process); a docker-compose service whose image is PostgreSQL (``yaml.safe_load``:
no tags, no objects); ``sqlalchemy.url`` in ``alembic.ini`` (``configparser``, raw);
SQLite files by their 16-byte header.

The walk is the core's one walker (``walk_files``) over one bounded pass: folders the
workspace's ignore rules drop are not entered, nor virtual environments, ``node_modules`` or
``.git``; a file the rules ignore in a folder that is entered is still looked at (a
development database is usually in ``.gitignore``). Symlinks are never followed (a link can
point outside the workspace). A config file over ``MAX_CONFIG_BYTES``, a binary one (a NUL
byte) or an unparsable one is skipped with a note; only files whose size is a multiple of
512 (every SQLite file is whole pages of at least 512 bytes) have their first 16 bytes read,
at most ``MAX_HEADER_READS`` of them.
"""

from __future__ import annotations

import ast
import configparser
import io
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import yaml
from dotenv import dotenv_values

from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.shadow_plan import (
    CACHE_DIRS,
    DATABASE_SIDE_FILES,
    REFERENCED_DIRS,
    SQLITE_HEADER,
)
from forecode_core.workspace.walk import walk_files

from .found import DbKind, FoundDatabase, from_url

__all__ = [
    "MAX_CONFIG_BYTES",
    "Detection",
    "detect",
    "found_from_setting",
]

MAX_CONFIG_BYTES = 256 * 1024
MAX_WALK_FILES = 20_000
MAX_HEADER_READS = 2_000
_ENV_NAMES = (".env", ".env.local", ".env.development")
_COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")
_POSTGRES_IMAGE = re.compile(r"(^|/)(postgres|postgresql|postgis)[^/]*$")


@dataclass
class Detection:
    """What ``detect`` found, best first, and what it skipped and why."""

    found: list[FoundDatabase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    root: str = ""

    @property
    def best(self) -> FoundDatabase | None:
        return next((f for f in self.found if f.branchable), None)

    def add(self, item: FoundDatabase | None) -> None:
        if item is None:
            return
        item = replace(item, root=self.root)
        if item.kind is DbKind.SQLITE:
            item = self._nearest(item)
        key = (item.kind, item.path or item.url)
        if all((f.kind, f.path or f.url) != key for f in self.found):
            self.found.append(item)

    def _nearest(self, item: FoundDatabase) -> FoundDatabase:
        """A relative SQLite path that is no file under the workspace but is one beside the
        file that names it (``backend/.env`` naming ``sqlite:///db.sqlite3``) is that one."""
        folder = str(PurePosixPath(item.source).parent)
        if os.path.isabs(item.path) or folder == "." or "/" not in item.source:
            return item
        if os.path.exists(os.path.join(self.root, item.path)):
            return item
        beside = posixpath.normpath(f"{folder}/{item.path}")
        if not os.path.isfile(os.path.join(self.root, beside)):
            return item
        return replace(item, path=beside, url="sqlite:///" + beside)


@dataclass
class _Files:
    """The walk's harvest, by role (relative POSIX paths, in walk order)."""

    env: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    manage: list[str] = field(default_factory=list)
    compose: list[str] = field(default_factory=list)
    alembic: list[str] = field(default_factory=list)
    sqlite: list[str] = field(default_factory=list)


class _FolderRules(IgnoreRules):
    """The workspace's rules for folders; files are all looked at (see the module doc)."""

    def __init__(self, rules: IgnoreRules | None) -> None:
        # Deliberately not IgnoreRules.__init__: every decision is made here.
        self._inner = rules
        self.root = rules.root if rules is not None else None

    def is_dir_ignored(self, rel_dir: str) -> bool:
        name = rel_dir.rsplit("/", 1)[-1]
        if name in REFERENCED_DIRS or name in CACHE_DIRS:
            return True
        return self._inner is not None and self._inner.is_dir_ignored(rel_dir)

    def is_file_ignored(self, rel_path: str) -> bool:
        return False


def detect(
    root: str | os.PathLike[str],
    environ: Mapping[str, str],
    rules: IgnoreRules | None = None,
    *,
    limit: int = MAX_WALK_FILES,
) -> Detection:
    """The databases the project at ``root`` names; see the module docstring."""
    top = os.path.abspath(os.fspath(root))
    out = Detection(root=top)
    if url := environ.get("DATABASE_URL"):
        out.add(from_url(url, "environment", 0, "DATABASE_URL in the environment"))
    files = _walk(top, rules, limit, out)
    env_values: dict[str, str] = {}
    for rel in files.env:
        env_values.update(_from_env_file(top, rel, out))
    for rel in files.settings:
        _from_django(top, rel, files.manage, out)
    for rel in files.compose:
        _from_compose(top, rel, {**env_values, **environ}, out)
    for rel in files.alembic:
        _from_alembic(top, rel, out)
    for rel in files.sqlite:
        out.add(FoundDatabase(DbKind.SQLITE, "sqlite:///" + rel, rel, rel, 0, "SQLite header"))
    return out


def found_from_setting(text: str, root: str = "") -> FoundDatabase | None:
    """The user's own choice (the ``dbBranch.database`` setting): a URL, or a SQLite file's
    path (relative to the workspace ``root`` or absolute)."""
    text = text.strip()
    if not text:
        return None
    if "://" in text:
        found = from_url(text, "settings", 0, "set by hand")
    else:
        found = FoundDatabase(
            DbKind.SQLITE, "sqlite:///" + text, text, "settings", 0, "set by hand"
        )
    return None if found is None else replace(found, root=root)


# ----- the walk --------------------------------------------------------------------------------


def _walk(top: str, rules: IgnoreRules | None, limit: int, out: Detection) -> _Files:
    files = _Files()
    reads = 0
    walked = 0
    for rel, entry in walk_files(top, _FolderRules(rules), links="report", limit=limit):
        walked += 1
        if entry.is_symlink():
            continue  # never followed: it may point outside the workspace
        name = entry.name
        role = _role(rel, name)
        if role is not None:
            getattr(files, role).append(rel)
            continue
        if reads >= MAX_HEADER_READS or name.endswith(DATABASE_SIDE_FILES):
            continue
        size = entry.stat(follow_symlinks=False).st_size
        if size >= 512 and size % 512 == 0:
            reads += 1
            if _head(os.path.join(top, rel)) == SQLITE_HEADER:
                files.sqlite.append(rel)
    if walked >= limit:
        out.notes.append(f"the search stopped after {limit} files")
    files.env.sort(key=lambda r: (r.count("/"), r))  # the root's .env first
    return files


def _role(rel: str, name: str) -> str | None:
    if name in _ENV_NAMES:
        return "env"
    if name in _COMPOSE_NAMES:
        return "compose"
    if name == "alembic.ini":
        return "alembic"
    if name == "manage.py":
        return "manage"
    parent = PurePosixPath(rel).parent.name
    if name.endswith(".py") and (name == "settings.py" or parent == "settings"):
        return "settings"
    return None


def _head(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, len(SQLITE_HEADER))
    except OSError:
        return b""
    finally:
        os.close(fd)


def _read_config(top: str, rel: str, out: Detection) -> str | None:
    """A config file's text: a regular file (no link), at most ``MAX_CONFIG_BYTES``, no NUL
    byte; else None and a note."""
    try:
        fd = os.open(os.path.join(top, rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        out.notes.append(f"{rel}: not read ({e.strerror})")
        return None
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        out.notes.append(f"{rel}: over {MAX_CONFIG_BYTES // 1024} KiB, not read")
        return None
    if b"\0" in data:
        out.notes.append(f"{rel}: binary, not read")
        return None
    return data.decode("utf-8", errors="replace")


def _line_of(text: str, pattern: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 0


# ----- the sources -----------------------------------------------------------------------------


def _from_env_file(top: str, rel: str, out: Detection) -> dict[str, str]:
    text = _read_config(top, rel, out)
    if text is None:
        return {}
    values = {k: v for k, v in dotenv_values(stream=io.StringIO(text), interpolate=False).items()}
    url = values.get("DATABASE_URL")
    if url:
        line = _line_of(text, r"^\s*(export\s+)?DATABASE_URL\s*=")
        out.add(from_url(url, rel, line, f"DATABASE_URL in {rel}"))
    return {k: v for k, v in values.items() if v is not None}


def _from_alembic(top: str, rel: str, out: Detection) -> None:
    text = _read_config(top, rel, out)
    if text is None:
        return
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text, rel)
        url = parser.get("alembic", "sqlalchemy.url", fallback="")
    except configparser.Error:
        out.notes.append(f"{rel}: not a valid ini file")
        return
    folder = str(PurePosixPath(rel).parent)
    url = url.replace("%(here)s", "." if folder == "." else folder).strip()
    if url and not url.startswith("driver://"):  # alembic's template placeholder
        out.add(from_url(url, rel, _line_of(text, r"^\s*sqlalchemy\.url\s*="), "alembic.ini"))


_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``$VAR`` against ``env`` (no commands)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        return env.get(name) or (m.group(2) or "")

    return _VAR.sub(one, value)


def _compose_env(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("environment")
    if isinstance(raw, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        pairs = (str(item).split("=", 1) for item in raw)
        return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}
    return {}


def _host_port(service: Mapping[str, Any]) -> str:
    ports = service.get("ports")
    for item in ports if isinstance(ports, list) else []:
        spec = str(item).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) >= 2 and parts[-1] == "5432" and parts[-2].isdigit():
            return parts[-2]
    return "5432"


def _from_compose(top: str, rel: str, env: Mapping[str, str], out: Detection) -> None:
    text = _read_config(top, rel, out)
    if text is None:
        return
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        out.notes.append(f"{rel}: not valid YAML")
        return
    services = doc.get("services") if isinstance(doc, Mapping) else None
    if not isinstance(services, Mapping):
        return
    for service in services.values():
        image = service.get("image") if isinstance(service, Mapping) else None
        if not isinstance(image, str) or not _POSTGRES_IMAGE.search(image.split(":", 1)[0]):
            continue
        values = {k: _interpolate(v, env) for k, v in _compose_env(service).items()}
        user = values.get("POSTGRES_USER") or "postgres"
        name = values.get("POSTGRES_DB") or user
        password = values.get("POSTGRES_PASSWORD", "")
        auth = f"{user}:{password}" if password else user
        url = f"postgresql://{auth}@localhost:{_host_port(service)}/{name}"
        line = _line_of(text, r"^\s*image:\s*['\"]?" + re.escape(image))
        out.add(from_url(url, rel, line, f"docker-compose service ({image})"))


# ----- Django ----------------------------------------------------------------------------------


def _from_django(top: str, rel: str, manage: list[str], out: Detection) -> None:
    text = _read_config(top, rel, out)
    if text is None or "DATABASES" not in text:
        return
    try:
        tree = ast.parse(text, rel)
    except (SyntaxError, ValueError, RecursionError):
        out.notes.append(f"{rel}: not parsable Python")
        return
    for node, value in _assignments(tree, "DATABASES"):
        default = _dict_get(value, "default") if isinstance(value, ast.Dict) else None
        if default is None:
            continue
        found = _django_entry(top, rel, default, node.lineno)
        if found is not None:
            module = _module_name(rel, manage)
            out.add(replace(found, django_settings=module))
            return


def _assignments(tree: ast.Module, name: str) -> Iterator[tuple[ast.stmt, ast.expr]]:
    """Module-level ``name = value`` (or ``name: T = value``) statements and their values."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            yield node, value


def _dict_get(node: ast.Dict, key: str) -> ast.expr | None:
    for k, v in zip(node.keys, node.values, strict=True):
        if isinstance(k, ast.Constant) and k.value == key:
            return v
    return None


def _const(node: ast.expr | None) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
        return str(node.value)
    if isinstance(node, ast.Call):  # os.environ.get("X", "default"), config("X", default=..)
        return _call_default(node)
    return ""


def _call_default(call: ast.Call) -> str:
    for kw in call.keywords:
        if kw.arg == "default":
            return _const(kw.value)
    strings = [a.value for a in call.args if isinstance(a, ast.Constant)]
    return str(strings[1]) if len(strings) > 1 and isinstance(strings[1], str) else ""


def _path_tail(node: ast.expr | None) -> str:
    """The file part of a Django ``NAME`` such as ``BASE_DIR / "db.sqlite3"``,
    ``os.path.join(BASE_DIR, "db", "x.sqlite3")`` or ``str(BASE_DIR / "x")``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left = _path_tail(node.left)
        right = _path_tail(node.right)
        return f"{left}/{right}" if left and right else right
    if isinstance(node, ast.Call):
        parts = [_path_tail(a) for a in node.args]
        if isinstance(node.func, ast.Attribute) and node.func.attr == "join":
            return "/".join(p for p in parts if p)
        if isinstance(node.func, ast.Name) and node.func.id in {"str", "Path"} and parts:
            return parts[-1]
    return ""


def _django_entry(top: str, rel: str, entry: ast.expr, line: int) -> FoundDatabase | None:
    if isinstance(entry, ast.Call):  # dj_database_url.config(default=...) / env.db(...)
        return from_url(_call_default(entry) or _const(entry), rel, line, "Django DATABASES")
    if not isinstance(entry, ast.Dict):
        return None
    engine = _const(_dict_get(entry, "ENGINE"))
    name_node = _dict_get(entry, "NAME")
    if engine.endswith("sqlite3"):
        tail = _path_tail(name_node)
        if not tail:
            return None
        path = tail if os.path.isabs(tail) else _django_base(top, rel, tail)
        how = "Django DATABASES"
        return FoundDatabase(DbKind.SQLITE, "sqlite:///" + path, path, rel, line, how)
    if "postgres" in engine or "postgis" in engine:
        parts = {k: _const(_dict_get(entry, k)) for k in ("USER", "PASSWORD", "HOST", "PORT")}
        url = _pg_url(parts, _const(name_node))
        return from_url(url, rel, line, "Django DATABASES")
    return FoundDatabase(DbKind.OTHER, engine, "", rel, line, "Django DATABASES")


def _pg_url(parts: Mapping[str, str], name: str) -> str:
    """A libpq URL from Django's parts; a socket folder as ``HOST`` goes in the query."""
    user = quote(parts["USER"], safe="")
    auth = user + (f":{quote(parts['PASSWORD'], safe='')}" if parts["PASSWORD"] else "")
    at = auth + "@" if auth else ""
    host, port = parts["HOST"] or "localhost", parts["PORT"]
    if host.startswith("/"):
        query = f"?host={quote(host)}" + (f"&port={port}" if port else "")
        return f"postgresql://{at}/{quote(name, safe='')}{query}"
    return f"postgresql://{at}{host}{':' + port if port else ''}/{quote(name, safe='')}"


def _django_base(top: str, rel: str, tail: str) -> str:
    """``tail`` relative to Django's ``BASE_DIR``: the settings module's grandparent (the
    project template's), or the one above for a ``settings/`` package, whichever holds the
    file; the grandparent when neither does (it may not exist yet)."""
    parent = PurePosixPath(rel).parent
    bases = [parent.parent, parent.parent.parent]
    for base in bases:
        candidate = str(base / tail) if str(base) != "." else tail
        if os.path.isfile(os.path.join(top, candidate)):
            return candidate
    first = bases[0]
    return str(first / tail) if str(first) != "." else tail


def _module_name(rel: str, manage: list[str]) -> str:
    """``mysite/settings.py`` -> ``mysite.settings``, relative to the folder of the nearest
    ``manage.py`` above it (where Django's tests run), else the workspace."""
    path = PurePosixPath(rel)
    for m in sorted(manage, key=len, reverse=True):
        base = PurePosixPath(m).parent
        if str(base) == "." or base in path.parents:
            path = path.relative_to(base) if str(base) != "." else path
            break
    return ".".join(path.with_suffix("").parts)
