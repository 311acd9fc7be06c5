"""Editor services that run processes or threads but hold no Qt: find in files (its worker
process), git status (a bounded git runner), the start-up GC policy."""
