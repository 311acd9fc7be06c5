"""Issue 18's updates, the pure part: what a release's signed manifest says (``manifest``),
which files of a new release must be downloaded and which the installed folder already has
(``plan``), and what the app does with a staged update at its next start (``start``).

The network, the signatures and the files are elsewhere: ``packaging/updates.py`` publishes a
release (python-tuf's signed metadata), ``app/services/updates.py`` checks, downloads and
stages it, ``app/services/update_start.py`` applies it at start and rolls it back.
"""
