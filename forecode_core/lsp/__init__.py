"""Language servers' pure core (issue 16): positions between LSP's UTF-16 units and the
editor's UTF-8 bytes (``positions``), one incremental change between two texts (``sync``),
diagnostics as plain values with the stale-version rule and a store by document and server
(``diagnostics``), the table of servers by language and its setting (``servers``), and the
restart back-off (``restart``). No process, thread or Qt here: ``app.services.lsp`` runs the
servers, ``app.ui`` shows the results."""
