"""Forecode's gRPC contracts (``proto/forecode/v1/*.proto``) and their generated Python stubs.

The stubs are generated from the ``.proto`` files by grpcio-tools at install time
(``python -m proto.build``, run by ``packaging/bootstrap.py``); they are not committed.
"""
