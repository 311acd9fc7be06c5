"""The local engine: llama.cpp in a worker process the editor can lose and restart.

No Qt imports here (ARCHITECTURE.md). The editor talks to the engine only through
``local_models.client.EngineClient``.
"""
