"""A secret rotation of embedding space: what keeps stored vectors from confirming guessed code.

The service stores the chunks' embeddings so it can search them. Embeddings from a public model
(all-MiniLM-L6-v2) are not secret in themselves: anyone who guesses a chunk's code, embeds the
guess with the same model and compares gets cosine 1.000 for the exact chunk and about 0.998 for
a one-word change. So the client never sends the model's vectors as they are: it multiplies
every chunk vector and every query vector by one secret orthogonal matrix ``Q`` derived from the
workspace key (``WorkspaceKeys.vector_transform``).

An orthogonal matrix keeps every inner product (``(Qa)·(Qb) = a·b``), so cosine similarity,
the service's ranking and the client's scores are unchanged, but a guess embedded without ``Q``
lands at a random angle from the stored vector: in 384 dimensions its cosine with any stored
vector is about ``N(0, 1/384)``, |cos| around 0.05.

What it does not hide (the README says so too): the pairwise similarities among the stored
vectors (a rotation keeps them), so an operator who can guess *many* of a workspace's chunks
(a vendored public library, say) can match them by their similarity structure; and ``Q`` itself
yields to linear algebra once an operator holds a few hundred known (chunk, stored vector) pairs
(orthogonal Procrustes needs about as many pairs as there are dimensions). It keeps the
operator from confirming a guess of one chunk, not from a large known-plaintext attack.

How ``Q`` is made: a Gaussian matrix from a SHAKE-256 stream of the 32-byte seed (Box-Muller
over 53-bit uniforms, so the numbers do not depend on numpy's random generators, whose streams
may change between versions), then its QR decomposition with the signs fixed
(``Q * sign(diag(R))``): a Haar-random orthogonal matrix, the same on every machine up to
floating-point rounding (which changes cosines by about 1e-7). Teammates who share the
workspace key share ``Q``, so their vectors stay comparable.

``VECTOR_SPACE`` names this construction; ``WorkspaceKeys.key_id`` (the workspace's name on the
service) is derived with it, so a client with another transform version, or none, talks to
another workspace on the service and never mixes its vectors with these.

Pure: numpy and hashlib only; no Qt, gRPC or llama.cpp.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = ["SEED_BYTES", "VECTOR_SPACE", "VectorTransform"]

VECTOR_SPACE = "orthogonal-v1"  # bump when the construction of Q changes
SEED_BYTES = 32
MAX_DIMENSION = 4096


def _gaussian(seed: bytes, dimension: int) -> npt.NDArray[np.float64]:
    """A ``dimension`` x ``dimension`` matrix of standard normal numbers from ``seed``."""
    count = dimension * dimension
    pairs = (count + 1) // 2
    info = f"{VECTOR_SPACE}/gaussian/{dimension}".encode("ascii")
    stream = hashlib.shake_256(info + b"\0" + seed).digest(16 * pairs)
    words = np.frombuffer(stream, dtype="<u8").reshape(pairs, 2)
    uniform = (words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))  # [0, 1)
    u1 = 1.0 - uniform[:, 0]  # (0, 1]: log is finite
    u2 = uniform[:, 1]
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    normal = np.empty(2 * pairs, np.float64)
    normal[0::2] = radius * np.cos(angle)
    normal[1::2] = radius * np.sin(angle)
    return normal[:count].reshape(dimension, dimension)


class VectorTransform:
    """One secret orthogonal matrix; ``apply`` rotates vectors (rows), ``invert`` undoes it.
    Holds no copy of the seed; ``repr`` shows only the dimension."""

    __slots__ = ("_matrix", "dimension")

    def __init__(self, seed: bytes, dimension: int) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise ValueError(f"a vector transform seed is {SEED_BYTES} bytes")
        if not 1 <= dimension <= MAX_DIMENSION:
            raise ValueError(f"a vector transform has 1 to {MAX_DIMENSION} dimensions")
        q, r = np.linalg.qr(_gaussian(seed, dimension))
        signs = np.sign(np.diag(r))
        signs[signs == 0] = 1.0
        # Stored transposed: rows @ matrix.T is (matrix @ row) for every row at once.
        self._matrix: npt.NDArray[np.float64] = np.ascontiguousarray((q * signs).T)
        self.dimension = dimension

    def __repr__(self) -> str:
        return f"VectorTransform(dimension={self.dimension})"

    def apply(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """``Q @ v`` for one vector or each row of a matrix, as float32 (norms kept)."""
        return self._map(vectors, self._matrix)

    def invert(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """``Q.T @ v``: the model's vector back from ``apply``'s."""
        return self._map(vectors, self._matrix.T)

    def _map(
        self, vectors: npt.ArrayLike, right: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float32]:
        data = np.asarray(vectors, dtype=np.float64)
        if data.ndim not in (1, 2) or data.shape[-1] != self.dimension:
            raise ValueError(
                f"expected vectors of {self.dimension} dimensions, got shape {data.shape}"
            )
        out: npt.NDArray[np.float32] = (data @ right).astype(np.float32)
        return out
