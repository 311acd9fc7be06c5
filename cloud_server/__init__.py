"""The Forecode cloud service: gRPC on loopback by default (see ARCHITECTURE.md)."""
