"""Forecode: the desktop editor (Qt shell in ``app.ui``, pure core in ``forecode_core``)."""

__version__ = "0.1.0"
