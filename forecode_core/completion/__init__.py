"""Completions: the versioned prompt under a token budget, per-model prompt formats,
post-processing filters, retrieval rules."""
