"""The codebase index's pure parts: Merkle tree, client-side crypto and vector rotation, the secret
denylist, chunking, ranking, the search seam."""
