"""How Forecode starts its child processes, from a checkout and from a frozen bundle.

From a checkout (or a pip install) a child is ``python -m MODULE ARGS``. A frozen app
(PyInstaller's folder bundle, ``sys.frozen``) has no Python to run ``-m`` with: its one
executable is the editor, and it takes a switch that names the child instead,
``forecode --worker ARGS`` (see ``ENTRY_POINTS``). ``child_command`` builds either form;
``dispatch`` is what the frozen executable calls first, before it opens the editor.

Only the standard library is used; the modules are named by strings, so this module imports
none of the packages it starts.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ENTRY_POINTS", "child_command", "dispatch", "is_frozen"]

ENTRY_POINTS: dict[str, str] = {
    "--worker": "local_models.worker",
    "--embedder": "local_models.index.embed_worker",
    "--service": "cloud_server",
    "--find-in-files": "app.services.find_in_files",
    "--bug-targets": "app.services.bug_targets",
    "--calibrate-probe": "local_models.calibrate_probe",
    "--ggml-backends": "local_models.ggml_backends",
}
"""The frozen executable's switches, each the module ``python -m`` would run."""

_SWITCH_OF = {module: switch for switch, module in ENTRY_POINTS.items()}


_ROOT = str(Path(__file__).resolve().parent.parent)  # the checkout (or the bundle's root)


def is_frozen() -> bool:
    """True inside a frozen bundle (PyInstaller sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def child_command(
    module: str,
    args: Sequence[str] = (),
    *,
    python: str | None = None,
    frozen: bool | None = None,
) -> list[str]:
    """The command line that runs ``module`` as a child process.

    ``python``: the interpreter (default ``sys.executable``). In a frozen bundle, when
    ``python`` is the bundle's own executable, the child is that executable with the module's
    switch; an interpreter given explicitly (a test's) still gets ``-m``. A module with no
    switch raises ValueError in a frozen bundle: it could not start there."""
    exe = python if python is not None else sys.executable
    frozen = is_frozen() if frozen is None else frozen
    if frozen and exe == sys.executable:
        switch = _SWITCH_OF.get(module)
        if switch is None:
            raise ValueError(f"{module} has no entry point in the frozen app")
        return [exe, switch, *args]
    return [exe, "-m", module, *args]


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) with this checkout's root first on PYTHONPATH, so
    a child's ``-m app.services...`` finds the same code as the editor that starts it."""
    env = dict(os.environ if environ is None else environ)
    extra = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _ROOT + (os.pathsep + extra if extra else "")
    return env


def dispatch(argv: Sequence[str]) -> bool:
    """Run the child that ``argv[1]`` names, as ``python -m`` would, and return True; return
    False when ``argv[1]`` is no child's switch (the editor starts then). The child's
    ``SystemExit`` propagates."""
    if len(argv) < 2 or argv[1] not in ENTRY_POINTS:
        return False
    module = ENTRY_POINTS[argv[1]]
    sys.argv = [argv[0], *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return True
