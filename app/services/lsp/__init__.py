"""Language servers for the editor (issue 16), no Qt: ``hub.LspHub`` runs every server of a
window on one worker thread with its own asyncio loop; ``session.Session`` is one server
process (pygls's ``LanguageClient``) for one workspace root. The pure rules (positions,
incremental changes, diagnostics, the server table, restart back-off) are in
``forecode_core.lsp``; ``app.ui.lsp_bridge`` hands the results to the UI thread."""

from .hub import GatedHub, LspHub, ServerStatus, resolve_command

__all__ = ["GatedHub", "LspHub", "ServerStatus", "resolve_command"]
