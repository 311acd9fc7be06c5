"""Stores: atomic writes, settings, hot-exit backups, one atomic JSON store."""
