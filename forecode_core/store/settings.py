"""User settings: one JSONC file (VS Code style dotted keys) in the platform's config folder.

The schema is the ``Settings`` dataclass below: each line names the field, its type, the JSON key,
the default and the constraint, so adding a setting is one line. ``load_settings`` never raises:
a missing, unreadable or malformed file gives the defaults, and a bad value for one key keeps that
key's default; every such case is reported as a human-readable problem string.

The file may contain ``//`` and ``/* */`` comments and trailing commas, as VS Code allows.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import platformdirs

from forecode_core.lsp.servers import ServerTable, dump_table, parse_table
from forecode_core.models import MODELS

__all__ = [
    "SCHEMA",
    "Kind",
    "SettingSpec",
    "Settings",
    "config_dir",
    "data_dir",
    "default_settings_text",
    "load_settings",
    "settings_path",
    "settings_to_json",
    "strip_jsonc",
]

APP_NAME = "forecode"
SETTINGS_FILE = "settings.json"


def config_dir() -> Path:
    """The folder for ``settings.json``: ``$FORECODE_CONFIG_DIR`` if set, else the platform's."""
    env = os.environ.get("FORECODE_CONFIG_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """The folder for app data (backups, caches): ``$FORECODE_DATA_DIR`` if set, else the
    platform's."""
    env = os.environ.get("FORECODE_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


# --- value kinds -------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value does not fit its kind; the message says why ("is out of range (6–72)")."""


def _show(value: object, limit: int = 60) -> str:
    """A short JSON rendering of a user's value for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_int(value: object) -> bool:
    # bool is a subclass of int: True must not pass as a font size.
    return isinstance(value, int) and not isinstance(value, bool)


class Kind(Protocol):
    """How one setting's JSON value is checked and converted to the field value, and back."""

    @property
    def allowed(self) -> str: ...

    def parse(self, value: object) -> object: ...

    def dump(self, value: object) -> object: ...


@dataclass(frozen=True)
class IntRange:
    lo: int
    hi: int

    @property
    def allowed(self) -> str:
        return f"a whole number {self.lo}–{self.hi}"

    def parse(self, value: object) -> object:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise _Invalid(f"is not a whole number (allowed: {self.lo}–{self.hi})")
        assert isinstance(value, int)
        if not self.lo <= value <= self.hi:
            raise _Invalid(f"is out of range ({self.lo}–{self.hi})")
        return value

    def dump(self, value: object) -> object:
        return value


@dataclass(frozen=True)
class Bool:
    @property
    def allowed(self) -> str:
        return "true or false"

    def parse(self, value: object) -> object:
        if not isinstance(value, bool):
            raise _Invalid("is not true or false")
        return value

    def dump(self, value: object) -> object:
        return value


@dataclass(frozen=True)
class Text:
    @property
    def allowed(self) -> str:
        return "a string"

    def parse(self, value: object) -> object:
        if not isinstance(value, str):
            raise _Invalid("is not a string")
        return value

    def dump(self, value: object) -> object:
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of JSON strings, each mapped to a field value."""

    options: Mapping[str, object]

    @property
    def allowed(self) -> str:
        return "one of " + ", ".join(_show(o) for o in self.options)

    def parse(self, value: object) -> object:
        if not isinstance(value, str) or value not in self.options:
            raise _Invalid("is not " + self.allowed)
        return self.options[value]

    def dump(self, value: object) -> object:
        for name, mapped in self.options.items():
            if mapped == value:
                return name
        return value


@dataclass(frozen=True)
class IntList:
    lo: int
    hi: int

    @property
    def allowed(self) -> str:
        return f"a list of whole numbers {self.lo}–{self.hi}"

    def parse(self, value: object) -> object:
        if not isinstance(value, list):
            raise _Invalid(f"is not {self.allowed}")
        items = IntRange(self.lo, self.hi)
        out: list[int] = []
        for item in value:
            try:
                out.append(cast(int, items.parse(item)))
            except _Invalid as e:
                raise _Invalid(f"contains {_show(item)}, which {e}") from None
        return tuple(out)

    def dump(self, value: object) -> object:
        return list(cast(tuple[int, ...], value))


@dataclass(frozen=True)
class PatternList:
    """A list of strings; VS Code's object form ``{"**/.git": true}`` is accepted too (the
    patterns whose value is true)."""

    @property
    def allowed(self) -> str:
        return "a list of strings (or an object of pattern: true/false, as in VS Code)"

    def parse(self, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    raise _Invalid(f"contains {_show(item)}, which is not a string")
            return tuple(cast(list[str], value))
        if isinstance(value, dict):
            out: list[str] = []
            for pattern, enabled in value.items():
                if not isinstance(enabled, bool):
                    raise _Invalid(f"has {_show(pattern)}: {_show(enabled)}, expected true/false")
                if enabled:
                    out.append(pattern)
            return tuple(out)
        raise _Invalid(f"is not {self.allowed}")

    def dump(self, value: object) -> object:
        return list(cast(tuple[str, ...], value))


_T = TypeVar("_T")


@dataclass(frozen=True)
class Servers:
    """``lsp.servers``: language id -> server(s) (``forecode_core.lsp.servers``)."""

    @property
    def allowed(self) -> str:
        return "an object of language id -> a server name, a command line, or a list of them"

    def parse(self, value: object) -> object:
        try:
            return parse_table(value)
        except ValueError as e:
            raise _Invalid(str(e)) from None

    def dump(self, value: object) -> object:
        return dump_table(cast(ServerTable, value))


def _setting(key: str, default: _T, kind: Kind) -> _T:
    return field(default=default, metadata={"key": key, "kind": kind})


# --- the schema --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    # field: type                   JSON key                         default  constraint
    theme: str = _setting("workbench.theme", "dark", Choice({"dark": "dark", "light": "light"}))
    font_family: str = _setting("editor.fontFamily", "", Text())  # "" = platform monospace
    font_size: int = _setting("editor.fontSize", 11, IntRange(6, 72))
    tab_size: int = _setting("editor.tabSize", 4, IntRange(1, 16))
    insert_spaces: bool = _setting("editor.insertSpaces", True, Bool())
    word_wrap: bool = _setting("editor.wordWrap", False, Choice({"off": False, "on": True}))
    render_whitespace: bool = _setting(
        "editor.renderWhitespace", False, Choice({"none": False, "all": True})
    )
    rulers: tuple[int, ...] = _setting("editor.rulers", (), IntList(1, 500))
    # Typing ( [ { or a quote inserts the pair (forecode_core.text.autoclose), as VS Code.
    auto_closing_brackets: bool = _setting(
        "editor.autoClosingBrackets",
        True,
        Choice({"languageDefined": True, "always": True, "never": False}),
    )
    auto_closing_quotes: bool = _setting(
        "editor.autoClosingQuotes",
        True,
        Choice({"languageDefined": True, "always": True, "never": False}),
    )
    trim_trailing_whitespace: bool = _setting("files.trimTrailingWhitespace", False, Bool())
    insert_final_newline: bool = _setting("files.insertFinalNewline", False, Bool())
    files_exclude: tuple[str, ...] = _setting("files.exclude", (), PatternList())
    # Delay after the last change before an unsaved buffer is backed up (hot exit).
    hot_exit_delay_ms: int = _setting("files.hotExitDelayMs", 500, IntRange(50, 10000))
    # "auto" = the platform's line ending (\r\n on Windows).
    default_eol: str = _setting(
        "files.eol", "\n", Choice({"\n": "\n", "\r\n": "\r\n", "auto": os.linesep})
    )
    # Inline completions from the local model.
    completion_enabled: bool = _setting("completion.enabled", True, Bool())
    completion_debounce_ms: int = _setting("completion.debounceMs", 60, IntRange(0, 2000))
    completion_max_tokens: int = _setting("completion.maxTokens", 48, IntRange(1, 512))
    # Which installed model answers completions: "auto" = the best quality whose measured
    # latency on this machine fits completion.latencyBudgetMs (local_models.calibrate), or a
    # model id. completion.modelPath, when set, overrides it.
    completion_model: str = _setting(
        "completion.model", "auto", Choice({"auto": "auto", **{m: m for m in MODELS}})
    )
    completion_latency_budget_ms: int = _setting(
        "completion.latencyBudgetMs", 500, IntRange(50, 60000)
    )
    # "" = the model chosen above; otherwise the path of any GGUF file.
    completion_model_path: str = _setting("completion.modelPath", "", Text())
    # Next-edit suggestions (Tab predicts the next change, issue 15): on/off; "eager" shows the
    # edit, "subtle" only a marker until Alt is held; the model: "local" (the completion
    # engine's) or "none" (edit-pattern propagation alone).
    next_edit_enabled: bool = _setting("nextEdit.enabled", True, Bool())
    next_edit_mode: str = _setting(
        "nextEdit.mode", "eager", Choice({"eager": "eager", "subtle": "subtle"})
    )
    next_edit_model: str = _setting(
        "nextEdit.model", "local", Choice({"local": "local", "none": "none"})
    )
    # The chat panel (Ctrl+L): tokens of code sent along with a question (estimated), and the
    # longest reply asked for.
    chat_context_budget_tokens: int = _setting(
        "chat.contextBudgetTokens", 6000, IntRange(256, 200_000)
    )
    chat_max_tokens: int = _setting("chat.maxTokens", 1024, IntRange(16, 32768))
    # The model of the service the editor starts on loopback: "" = the service's default
    # (Qwen2.5-Coder-1.5B-Instruct from PyPI); otherwise the path of any GGUF file.
    chat_model_path: str = _setting("chat.modelPath", "", Text())
    # The chat service: "" = run one on loopback with the editor (when cloud.autostart is on);
    # otherwise its address ("host:port"; the token is set with "Cloud: Set Service Token").
    cloud_url: str = _setting("cloud.url", "", Text())
    cloud_autostart: bool = _setting("cloud.autostart", True, Bool())
    # The codebase index (issue 6): synced in the background with the chat service (when
    # there is one) for @codebase and the completion context. Off: nothing leaves the machine.
    index_enabled: bool = _setting("index.enabled", True, Bool())
    # Quiet time after the last file change before the index syncs again.
    index_debounce_ms: int = _setting("index.debounceMs", 2000, IntRange(100, 60000))
    # Git status colours in the explorer and the changed-lines gutter (VS Code's git.enabled):
    # off runs no git at all.
    git_enabled: bool = _setting("git.enabled", True, Bool())
    # Language servers (issue 16): diagnostics, hover, definitions. Python has basedpyright
    # and ruff by default; other languages by lsp.servers ({"cpp": "clangd", "go": "gopls"}).
    lsp_enabled: bool = _setting("lsp.enabled", True, Bool())
    lsp_servers: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = _setting(
        "lsp.servers", (), Servers()
    )
    # The bug finder's tier 2 (issue 16): when the editor is idle the local model reviews the
    # functions changed since the last commit; off: only the servers' diagnostics (tier 1).
    bugs_tier2: bool = _setting("bugs.tier2", True, Bool())
    # The shadow check's repair loop (issue 16): an AI edit whose check finds new errors goes
    # back to the model with them for up to this many rounds before the review; 0: off.
    shadow_repair_rounds: int = _setting("shadow.repairRounds", 2, IntRange(0, 5))
    # Files a tool may rewrite in place besides SQLite databases (gitignore-style globs, e.g.
    # "tests/fixtures/**"): the shadow copy snapshots them, never links or clones them (issue
    # 16); read when a folder's shadow is made.
    shadow_fixtures: tuple[str, ...] = _setting("shadow.fixtures", (), PatternList())
    # The agent (issue 17): commands it may run without a click, each a program and an
    # argument prefix ("python -m pytest"); shell syntax never matches (forecode_core.agent).
    agent_allowed_commands: tuple[str, ...] = _setting("agent.allowedCommands", (), PatternList())
    # Database branches (issue 17): the development database a test run's branch is made of
    # ("" = the one found in the project: DATABASE_URL, .env, Django, compose, alembic.ini,
    # SQLite files; else a URL or a SQLite file's path), and the test command run on it
    # ("" = "python -m pytest -q" with the project's interpreter).
    db_branch_database: str = _setting("dbBranch.database", "", Text())
    db_branch_test_command: str = _setting("dbBranch.testCommand", "", Text())
    # Updates (issue 18; the tarball's folder only: a .deb is updated by apt): look for a new
    # version in the background after start (a newer one is downloaded and verified, then
    # offered as "Restart to update"; never applied without that yes); off-line says nothing.
    # updates.url: "" = the address built into the app; else an update repository's URL.
    updates_check: bool = _setting("updates.check", True, Bool())
    updates_url: str = _setting("updates.url", "", Text())


@dataclass(frozen=True)
class SettingSpec:
    key: str  # dotted JSON key, e.g. "editor.fontSize"
    field: str  # Settings attribute
    default: object  # field value
    kind: Kind

    @property
    def default_json(self) -> object:
        return self.kind.dump(self.default)


SCHEMA: tuple[SettingSpec, ...] = tuple(
    SettingSpec(f.metadata["key"], f.name, f.default, f.metadata["kind"]) for f in fields(Settings)
)
_BY_KEY: dict[str, SettingSpec] = {spec.key: spec for spec in SCHEMA}


# --- JSONC -------------------------------------------------------------------------------------


def strip_jsonc(text: str) -> str:
    """Blank out ``//`` and ``/* */`` comments and trailing commas outside strings.

    Removed characters become spaces (line breaks are kept), so line and column numbers in a
    JSON error still point at the user's text.
    """
    out = list(text)
    n = len(text)
    i = 0
    in_string = False
    pending_comma = -1  # a comma outside strings with only blanks/comments after it so far

    def blank(start: int, end: int) -> None:
        for k in range(start, end):
            if out[k] not in "\r\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            blank(i, end)
            i = end
            continue
        if c == '"':
            in_string = True
            pending_comma = -1
        elif c == ",":
            pending_comma = i
        elif c in "}]":
            if pending_comma >= 0:
                out[pending_comma] = " "
            pending_comma = -1
        elif not c.isspace():
            pending_comma = -1
        i += 1
    return "".join(out)


# --- loading -----------------------------------------------------------------------------------


def _check(obj: dict[str, Any]) -> tuple[Settings, list[str]]:
    values: dict[str, object] = {}
    problems: list[str] = []
    for key, value in obj.items():
        spec = _BY_KEY.get(key)
        if spec is None:
            msg = f"unknown setting {key!r} (ignored)"
            close = difflib.get_close_matches(key, list(_BY_KEY), n=1, cutoff=0.6)
            if not close:
                lowered = {k.lower(): k for k in _BY_KEY}
                close = [lowered[m] for m in difflib.get_close_matches(key.lower(), lowered, n=1)]
            if close:
                msg += f"; did you mean {close[0]!r}?"
            problems.append(msg)
            continue
        try:
            values[spec.field] = spec.kind.parse(value)
        except _Invalid as e:
            problems.append(f"{key}: {_show(value)} {e}; using {_show(spec.default_json)}")
    return Settings(**cast(dict[str, Any], values)), problems


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """Read the settings file (default: ``settings_path()``). Never raises.

    Returns the settings and a list of problems to show the user; an empty list means the file
    was fine (or absent).
    """
    name = SETTINGS_FILE
    try:
        if path is None:
            path = settings_path()
        name = path.name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return Settings(), []
        except OSError as e:
            why = e.strerror or type(e).__name__
            return Settings(), [f"{name} could not be read ({why}) — using defaults"]
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            return Settings(), [
                f"{name} is not valid UTF-8 (byte offset {e.start}) — using defaults"
            ]
        cleaned = strip_jsonc(text)
        if not cleaned.strip():
            return Settings(), []  # an empty file means "no settings", as in VS Code
        try:
            obj = json.loads(cleaned)
        except json.JSONDecodeError as e:
            return Settings(), [
                f"{name} line {e.lineno}, column {e.colno}: {e.msg} — using defaults"
            ]
        if not isinstance(obj, dict):
            kind = {list: "a list", str: "a string", bool: "true/false", type(None): "null"}
            what = kind.get(type(obj), "a number")
            return Settings(), [
                f"{name}: the top level must be an object {{...}}, not {what} — using defaults"
            ]
        return _check(obj)
    except Exception as e:  # e.g. RecursionError on absurdly deep nesting: never stop the app
        return Settings(), [f"{name} could not be loaded ({type(e).__name__}) — using defaults"]


def settings_to_json(s: Settings) -> dict[str, object]:
    """The settings as dotted keys -> JSON values (the shape of ``settings.json``)."""
    return {spec.key: spec.kind.dump(getattr(s, spec.field)) for spec in SCHEMA}


def default_settings_text() -> str:
    """Pretty JSON of every key with its default, for a new ``settings.json``."""
    return json.dumps(settings_to_json(Settings()), indent=4, ensure_ascii=False) + "\n"
