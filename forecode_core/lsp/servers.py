"""Which language servers run for which language: presets, the default table and the
``lsp.servers`` setting.

Python works out of the box: basedpyright (types, undefined names, imports) and ``ruff
server`` (lint, with ruff's bug rules on), both installed with Forecode from PyPI. Other
languages by configuration, as in Zed and Helix: the setting maps a language id to a preset
name, a command line, or a list of them::

    "lsp.servers": {
        "cpp": "clangd",
        "go": "gopls",
        "rust": "rust-analyzer",
        "typescript": "typescript-language-server",
        "python": ["basedpyright", "ruff"],
        "java": []
    }

A language the setting does not name keeps the default (Python's pair; none for the rest);
an empty list turns a language's servers off. Each server gets its own process per workspace
root."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from forecode_core.bugs.rules import TIER1_RULES

__all__ = [
    "DEFAULT_TABLE",
    "PRESETS",
    "PYRIGHT_EXCLUDES",
    "RUFF_BUG_RULES",
    "ServerSpec",
    "ServerTable",
    "config_section",
    "dump_table",
    "missing_hint",
    "parse_table",
    "servers_for",
    "with_excludes",
]

# ruff's default rule set is E4, E7, E9 and F; the bug finder's tier 1 adds its bug rules
# (forecode_core.bugs.rules: F821, F841, B006, B023 and a few more bugbear/pylint errors) so a
# project's narrower selection cannot drop them.
RUFF_BUG_RULES = TIER1_RULES


@dataclass(frozen=True)
class ServerSpec:
    """One server: ``command`` starts it on stdio; ``settings`` answers its
    ``workspace/configuration`` requests (by section); ``init_options`` goes in
    ``initialize``."""

    name: str
    command: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    init_options: Mapping[str, Any] = field(default_factory=dict)
    install_hint: str = ""
    # What a frozen (packaged) app says instead: it has no pip (basedpyright comes in the
    # Python tools pack; ruff ships in the app itself). Empty: ``install_hint`` fits both.
    frozen_hint: str = ""
    # The settings' section that takes an ``exclude`` list of globs (pyright's family): the
    # session puts the workspace's git-ignored folders there (``with_excludes``).
    exclude_section: str = ""


# pyright's own default excludes, which an ``exclude`` setting replaces (its docs:
# "if no exclude paths are specified, Pyright automatically excludes ...").
PYRIGHT_EXCLUDES = ("**/node_modules", "**/__pycache__", "**/.*")


PRESETS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "basedpyright",
            ("basedpyright-langserver", "--stdio"),
            settings={
                # "standard" is Pylance's default: type errors, not basedpyright's
                # "recommended" warnings on every unknown type. A project's
                # pyrightconfig.json or [tool.basedpyright] wins over this.
                "basedpyright": {
                    "analysis": {
                        "typeCheckingMode": "standard",
                        "diagnosticMode": "openFilesOnly",
                        "autoSearchPaths": True,
                        "useLibraryCodeForTypes": True,
                    },
                    "disableOrganizeImports": True,
                },
            },
            install_hint="it comes with Forecode (pip install basedpyright)",
            frozen_hint=(
                "add the Python tools pack: forecode-python-tools, its tar.gz unpacked where "
                "Forecode's was or its .deb installed (README, Install)"
            ),
            # In openFilesOnly mode it still enumerates the workspace's files when it starts,
            # and the first check waits: 5,917 files in this repository's build/ (a tool
            # tree, not a venv, so not auto-excluded) made the first squiggle 2.5 s, not 1.2.
            exclude_section="basedpyright.analysis",
        ),
        ServerSpec(
            "ruff",
            ("ruff", "server"),
            init_options={"settings": {"lint": {"extendSelect": list(RUFF_BUG_RULES)}}},
            install_hint="it comes with Forecode (pip install ruff)",
            frozen_hint="it comes in Forecode's package: reinstall Forecode",
        ),
        ServerSpec("clangd", ("clangd",), install_hint="e.g. apt install clangd"),
        ServerSpec("gopls", ("gopls",), install_hint="go install golang.org/x/tools/gopls@latest"),
        ServerSpec("rust-analyzer", ("rust-analyzer",), install_hint="rustup component add"),
        ServerSpec(
            "typescript-language-server",
            ("typescript-language-server", "--stdio"),
            install_hint="npm install -g typescript-language-server typescript",
        ),
    )
}

# A table: language id -> the argv of each server (a preset is its name alone).
ServerTable = tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]

DEFAULT_TABLE: ServerTable = (("python", (("basedpyright",), ("ruff",))),)


def _argv(item: object, language: str) -> tuple[str, ...]:
    if isinstance(item, str):
        argv = tuple(shlex.split(item))
    elif isinstance(item, list) and all(isinstance(part, str) for part in item):
        argv = tuple(item)
    else:
        raise ValueError(f"{language}: each server is a name, a command line or a list of words")
    if not argv or not argv[0]:
        raise ValueError(f"{language}: an empty command")
    return argv


def parse_table(value: object) -> ServerTable:
    """The setting's JSON value as a table; raises ``ValueError`` saying what is wrong."""
    if not isinstance(value, dict):
        raise ValueError("must be an object of language id -> server(s)")
    return tuple(
        sorted((str(language), _servers(str(language), v)) for language, v in value.items())
    )


def _servers(language: str, value: object) -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    if isinstance(value, str) or (isinstance(value, list) and _is_words(value)):
        return (_argv(value, language),)
    if isinstance(value, list):
        return tuple(_argv(item, language) for item in value)
    raise ValueError(f"{language}: a server name, a command line or a list of them")


def _is_words(value: list[object]) -> bool:
    """``["clangd", "--background-index"]`` is one command; ``["basedpyright", "ruff"]``
    (every word a preset) or a list holding lists is several servers."""
    if not value or not all(isinstance(part, str) for part in value):
        return False
    return not all(str(part) in PRESETS for part in value)


def dump_table(table: ServerTable) -> dict[str, object]:
    return {language: [list(argv) for argv in argvs] for language, argvs in table}


def servers_for(language: str, table: ServerTable = ()) -> tuple[ServerSpec, ...]:
    """The servers for a language id: the setting's row, else the default's."""
    rows = dict(DEFAULT_TABLE)
    rows.update(dict(table))
    specs: list[ServerSpec] = []
    for argv in rows.get(language, ()):
        preset = PRESETS.get(argv[0]) if len(argv) == 1 else None
        if preset is not None:
            specs.append(preset)
        else:
            base = PRESETS.get(argv[0])
            name = argv[0].rsplit("/", 1)[-1]
            specs.append(
                ServerSpec(
                    name,
                    argv,
                    install_hint=base.install_hint if base is not None else "",
                    frozen_hint=base.frozen_hint if base is not None else "",
                )
            )
    return tuple(specs)


def missing_hint(spec: ServerSpec, frozen: bool) -> str:
    """The advice after "not installed" (empty: none): in a frozen app (``sys.frozen``,
    passed in by the caller) the packaged one, since there is no pip to run there."""
    return spec.frozen_hint if frozen and spec.frozen_hint else spec.install_hint


def config_section(settings: Mapping[str, Any], section: str | None) -> object:
    """A ``workspace/configuration`` answer: the exact section, else the dotted path into
    nested objects (``python.analysis`` in ``{"python": {"analysis": ...}}``), else None."""
    if not section:
        return dict(settings)
    if section in settings:
        return settings[section]
    node: object = settings
    for part in section.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def with_excludes(
    settings: Mapping[str, Any], section: str, ignored: Sequence[str]
) -> Mapping[str, Any]:
    """``settings`` with ``<section>.exclude``: pyright's defaults and the git-ignored folders
    ``ignored`` (workspace-relative, as ``**``-free globs), unless the settings name their own
    excludes already or there is nothing to add. A copy; ``settings`` is not changed."""
    if not section or not ignored:
        return settings
    parts = section.split(".")
    out: dict[str, Any] = dict(settings)
    node = out
    for part in parts:
        child = node.get(part)
        child = dict(child) if isinstance(child, Mapping) else {}
        node[part] = child
        node = child
    if "exclude" in node:
        return settings
    node["exclude"] = [*PYRIGHT_EXCLUDES, *(name.strip("/") for name in ignored)]
    return out
