"""PageRank by sparse power iteration (scipy), for graphs of a tenant's authors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import sparse

Vector = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]


def pagerank(
    n: int,
    sources: Indices,
    targets: Indices,
    weights: Vector | None = None,
    *,
    damping: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> Vector:
    """The PageRank of ``n`` nodes over the directed edges ``sources[i] -> targets[i]``
    (parallel edges add their weights). Scores sum to 1; a node without out-edges spreads its
    score evenly, as does the teleport. Iterates until the L1 change is below ``n * tol``."""
    ranks, _ = pagerank_steps(
        n, sources, targets, weights, damping=damping, tol=tol, max_iter=max_iter
    )
    return ranks


def pagerank_steps(
    n: int,
    sources: Indices,
    targets: Indices,
    weights: Vector | None = None,
    *,
    damping: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[Vector, int]:
    """:func:`pagerank` and how many iterations it took."""
    if n == 0:
        return np.zeros(0), 0
    w = np.ones(len(sources)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.bincount(sources, weights=w, minlength=n)
    # Column-stochastic transposed matrix: M[t, s] = w(s->t) / out(s).
    m = sparse.csr_matrix((w / out[sources], (targets, sources)), shape=(n, n))
    dangling = out == 0
    x = np.full(n, 1.0 / n)
    steps = 0
    while steps < max_iter:
        steps += 1
        previous = x
        x = damping * (m @ x + previous[dangling].sum() / n) + (1.0 - damping) / n
        if np.abs(x - previous).sum() < n * tol:
            break
    result: Vector = x / x.sum()
    return result, steps
