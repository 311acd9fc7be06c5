"""Forecode's pure core: the rules and data types every process shares.

Plain Python over plain data: no Qt, no gRPC, no llama.cpp, and nothing from ``app``,
``local_models``, ``cloud_server`` or ``cloud_client`` (an import-linter contract says so).
Subpackages by what they hold: ``text`` (decoding, languages, editing rules), ``completion``
(the completion prompt and its filters), ``chat`` (messages, prompt formats, context),
``apply`` (block parsing, the deterministic path, windows, review hunks), ``index`` (Merkle
tree, client-side crypto, chunking, ranking), ``workspace`` (ignore rules, scanning, fuzzy
paths), ``store`` (settings and atomic JSON stores); ``protocol`` (the engine worker's IPC
messages), ``models`` (the model registry's data).
"""
