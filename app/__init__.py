"""Forecode: the desktop editor (Qt shell in ``app.ui``, pure core in ``app.core``)."""

__version__ = "0.1.0"
