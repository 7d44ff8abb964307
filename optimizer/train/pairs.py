"""Training pairs over frame gaps, and the batches of several pairs per optimizer step.

Pairs are forward, (i, i + g) for g in the configured gaps (the reference uses i -> j only; the
backward flow serves the validity mask). Batches are a pure function of (seed, step): step s takes
the pairs at positions [s B, (s + 1) B) of an endless sequence of seeded shuffles, so a resumed run
sees exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def make_pairs(num_frames: int, gaps: Iterable[int], available: Iterable[tuple[int, int]] | None = None
               ) -> list[tuple[int, int]]:
    """Forward pairs ``(i, i + g)`` inside the clip, sorted by (gap, i); only those in ``available`` if given."""
    have = None if available is None else set(available)
    out = []
    for g in sorted(set(int(g) for g in gaps)):
        for i in range(num_frames - g):
            if have is None or (i, i + g) in have:
                out.append((i, i + g))
    return out


def batch_indices(num_pairs: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices ``(batch_size,)`` into the pair list for optimizer step ``step`` (deterministic)."""
    if num_pairs < 1:
        raise ValueError("no pairs to batch")
    start = step * batch_size
    out = []
    epoch, offset = divmod(start, num_pairs)
    while len(out) < batch_size:
        perm = np.random.default_rng([seed, epoch]).permutation(num_pairs)
        take = perm[offset:offset + batch_size - len(out)]
        out.extend(take.tolist())
        epoch, offset = epoch + 1, 0
    return np.asarray(out, dtype=np.int64)


def sample_pixels(valid: np.ndarray, n: int, rng: np.random.Generator, *,
                  dynamic: np.ndarray | None = None, dynamic_fraction: float = 0.0) -> np.ndarray:
    """Flat pixel indices ``(n,)`` drawn from ``valid (h, w)`` bool, a share from ``dynamic (h, w)``.

    Without replacement while there are enough pixels; with replacement otherwise. When no pixel is
    valid, returns indices of invalid pixels (the caller's mask then zeroes them).
    """
    flat_valid = valid.reshape(-1)
    pool = np.flatnonzero(flat_valid)
    if pool.size == 0:
        pool = np.arange(flat_valid.size)
    n_dyn = 0
    picks = []
    if dynamic is not None and dynamic_fraction > 0:
        dyn_pool = np.flatnonzero(flat_valid & dynamic.reshape(-1))
        if dyn_pool.size:
            n_dyn = int(round(n * dynamic_fraction))
            picks.append(rng.choice(dyn_pool, size=n_dyn, replace=dyn_pool.size < n_dyn))
    n_rest = n - n_dyn
    picks.append(rng.choice(pool, size=n_rest, replace=pool.size < n_rest))
    return np.concatenate(picks)
