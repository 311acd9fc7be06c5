"""Which shell a terminal runs and how, with Forecode's shell integration loaded.

- bash: ``bash --rcfile shell/bash.sh -i`` (the script reads ``/etc/bash.bashrc`` and
  ``~/.bashrc`` first);
- zsh: ``ZDOTDIR=shell/zsh`` with the user's own ZDOTDIR in ``FORECODE_USER_ZDOTDIR`` (each
  startup file reads the user's);
- PowerShell (``pwsh``/``powershell``): ``-NoExit -Command ". shell/forecode.ps1"`` (reads
  ``$PROFILE`` first);
- any other shell runs as it is, without marks (commands are then not recorded).

The shell is the user's (``$SHELL``, else bash; PowerShell on Windows) unless one is named;
on macOS it is a login shell, as the system's terminals start (its PATH comes from there).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SHELL_DIR", "Launch", "default_shell", "shell_launch"]

SHELL_DIR = Path(__file__).resolve().parent / "shell"


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    integrated: bool  # the shell emits the marks
    nonce: str | None = None  # the last parameter of every mark (None: not checked)


def default_shell(environ: Mapping[str, str]) -> str:
    if sys.platform == "win32":
        return shutil.which("pwsh") or shutil.which("powershell") or "powershell.exe"
    return environ.get("SHELL") or shutil.which("bash") or "/bin/sh"


def shell_launch(
    shell: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    login: bool = sys.platform == "darwin",  # macOS terminals start login shells (PATH)
) -> Launch:
    base = dict(os.environ if environ is None else environ)
    program = shell or default_shell(base)
    nonce = secrets.token_hex(16)  # the scripts keep it unexported: output cannot forge marks
    env = {
        **base,
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "TERM_PROGRAM": "forecode",
        "FORECODE_NONCE": nonce,
    }
    name = Path(program).name.lower().removesuffix(".exe")
    if name == "bash":
        if login:  # bash ignores --rcfile in a login shell: the script reads the login files
            env["FORECODE_BASH_LOGIN"] = "1"
        return Launch([program, "--rcfile", str(SHELL_DIR / "bash.sh"), "-i"], env, True, nonce)
    if name == "zsh":
        env["FORECODE_USER_ZDOTDIR"] = base.get("ZDOTDIR") or base.get("HOME", "")
        env["ZDOTDIR"] = str(SHELL_DIR / "zsh")
        return Launch([program, "-i", *(["-l"] if login else [])], env, True, nonce)
    if name in ("pwsh", "powershell"):
        script = str(SHELL_DIR / "forecode.ps1").replace("'", "''")
        argv = [program, "-NoLogo", "-NoExit", "-Command", f". '{script}'"]
        return Launch(argv, env, True, nonce)
    del env["FORECODE_NONCE"]
    return Launch([program, "-i"], env, False)
