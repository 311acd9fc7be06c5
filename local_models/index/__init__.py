"""The codebase index on the client: chunking, embeddings and the Merkle tree (issue 6).

No Qt here. ``embed_model`` converts the embedding model to GGUF once; ``embedder`` runs it
through llama.cpp (inside a worker process, never on the editor's UI thread).
"""
