"""The workspace: ignore rules (git's wildmatch), the file scan, fuzzy path ranking, file-name
checks, recent folders."""
