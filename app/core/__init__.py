"""The pure core: plain Python over plain data. No Qt, gRPC or llama.cpp imports (checked by
``lint-imports``; see ARCHITECTURE.md)."""
