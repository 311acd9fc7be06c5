"""The bug finder's pure core (issue 16, "A first bug finder").

- ``rules``: tier 1, ruff's rules that flag likely bugs with few false positives (added to
  ``ruff server``'s selection by ``forecode_core.lsp.servers``).
- ``functions``: the functions changed since the last commit (``git diff -U0`` hunks -> the new
  side's lines -> the functions that hold them).
- ``review``: tier 2, the model's review: the prompt (numbered function, shuffled context per
  sample), the strict parser of its findings, the agreement rule across samples (one finding
  per function at most) and the dismissal keys.
"""
