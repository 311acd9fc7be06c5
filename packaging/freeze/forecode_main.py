"""The frozen app's one executable: a child process when a switch names one
(``forecode --worker ...``; see ``forecode_core.entrypoints``), else the editor. Two more
switches are the installed app's tools, not children: ``--install-pack FILE`` (a model pack
into the data folder: ``local_models.model_packs``), ``--models`` (the models it finds, JSON)
and ``--lsp-check FILE`` (the bundled language servers on a file: ``lsp_check``, beside this
script).

On Windows the executable is a windowed program (no console window: the spec's
``console=False``), so it starts with no standard streams; ``ensure_std_streams`` gives it
null ones first (a child, started with pipes, keeps its pipes). The tool switches then print
nothing to a terminal unless their output is redirected (``forecode --models > models.json``)
or the bundle is the diagnostic console build (``build.py dir --console``)."""

import sys

from forecode_core.entrypoints import dispatch
from forecode_core.windowless import ensure_std_streams

if __name__ == "__main__":
    ensure_std_streams()
    if sys.argv[1:2] == ["--install-pack"]:
        from local_models.model_packs import main as install_pack

        sys.exit(install_pack(sys.argv[2:]))
    if sys.argv[1:2] == ["--models"]:
        import json

        from local_models.model_store import installed_models, model_path

        found = {m.id: str(model_path(m.id)) for m in installed_models()}
        print(json.dumps({"models": found}))
        sys.exit(0)
    if sys.argv[1:2] == ["--lsp-check"]:
        from lsp_check import main as lsp_check

        sys.exit(lsp_check(sys.argv[2:]))
    if not dispatch(sys.argv):
        from app.main import main

        sys.exit(main())
