"""Procedural, non-repeating colour textures defined in 3-D object coordinates.

The texture of a surface point is a function of its position in its object's own frame, so texture
moves with the object (brightness constancy for optical flow). It mixes a few octaves of RGB value
noise (smooth blobs at several scales) with sharp-edged random-colour patches (corners for SIFT),
seen through a random rotation per object so patch edges never line up with walls.
"""

from __future__ import annotations

import numpy as np

# cycles per metre and weight of each value-noise octave, and of the sharp patch layer
OCTAVES = ((0.8, 1.0), (1.9, 0.8), (4.1, 0.65), (8.3, 0.5), (15.0, 0.35))
PATCH_FREQS = (2.6, 6.5)
PATCH_WEIGHT = 0.6
LUMA_FREQ = 3.0


_P = (np.uint32(0x8DA6B343), np.uint32(0xD8163841), np.uint32(0xCB1AB31F))


def _mix(h: np.ndarray, seed: int) -> np.ndarray:
    """Finalise a combined lattice hash ``(N,)`` uint32 with a seed (murmur-style avalanche)."""
    h = h ^ np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    return h


def _hash3(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Integer lattice coordinates ``(N,)`` -> well-mixed uint32 hashes ``(N,)``."""
    u = [np.asarray(a).astype(np.int64).astype(np.uint32) * p for a, p in zip((ix, iy, iz), _P)]
    return _mix(u[0] ^ u[1] ^ u[2], seed)


def _hash_rgb(h: np.ndarray) -> np.ndarray:
    """uint32 hashes ``(N,)`` -> three values in [0, 1] ``(N, 3)`` (10 bits each)."""
    return np.stack([(h >> np.uint32(s)) & np.uint32(1023) for s in (0, 10, 20)], axis=-1).astype(np.float32) / 1023.0


def value_noise_rgb(p: np.ndarray, seed: int) -> np.ndarray:
    """RGB value noise in [0, 1] at points ``p`` ``(N, 3)`` (lattice spacing 1), smooth: ``(N, 3)`` float32."""
    fl = np.floor(p)
    f = (p - fl).astype(np.float32)
    w = f * f * (3.0 - 2.0 * f)  # smoothstep
    # per-axis hash terms of the two lattice neighbours: (i + d) * P = i * P + d * P (uint32 wrap-around)
    terms = []
    for a in range(3):
        h0 = fl[:, a].astype(np.int64).astype(np.uint32) * _P[a]
        terms.append((h0, h0 + _P[a]))
    weights = [(1.0 - w[:, a], w[:, a]) for a in range(3)]
    out = np.zeros((p.shape[0], 3), dtype=np.float32)
    scale = np.float32(1.0 / 1023.0)
    for dx in (0, 1):
        for dy in (0, 1):
            hxy = terms[0][dx] ^ terms[1][dy]
            wxy = weights[0][dx] * weights[1][dy]
            for dz in (0, 1):
                h = _mix(hxy ^ terms[2][dz], seed)
                wc = wxy * weights[2][dz] * scale
                for c, sh in enumerate((0, 10, 20)):
                    out[:, c] += wc * ((h >> np.uint32(sh)) & np.uint32(1023)).astype(np.float32)
    return out


def patches_rgb(p: np.ndarray, seed: int) -> np.ndarray:
    """Sharp-edged random-colour cells in [0, 1] at points ``p`` ``(N, 3)`` (cell size 1): ``(N, 3)`` float32."""
    i = np.floor(p).astype(np.int64)
    return _hash_rgb(_hash3(i[:, 0], i[:, 1], i[:, 2], seed + 7919))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (3, 3) float64."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def surface_albedo(
    p_object: np.ndarray, *, seed: int, rotation: np.ndarray, tint: np.ndarray, scale: float = 1.0
) -> np.ndarray:
    """Albedo in [0, 1] of surface points given in their object's frame.

    Args:
        p_object: points ``(N, 3)`` in the object's own coordinates, metres.
        seed: texture seed of the object (different objects look different).
        rotation: (3, 3) rotation applied to ``p_object`` before sampling (hides lattice axes).
        tint: (3,) base colour of the object in [0, 1].
        scale: multiplies every frequency.

    Returns:
        ``(N, 3)`` float32 albedo.
    """
    q = (p_object @ rotation.T).astype(np.float32)
    acc = np.zeros(q.shape[:-1] + (3,), dtype=np.float32)
    total = 0.0
    for k, (freq, weight) in enumerate(OCTAVES):
        acc += weight * value_noise_rgb(q * (freq * scale) + 17.3 * k, seed * 31 + k)
        total += weight
    for k, freq in enumerate(PATCH_FREQS):  # coarse and fine sharp-edged cells: corners for SIFT
        acc += PATCH_WEIGHT * patches_rgb(q * (freq * scale) + 3.7 - 2.4 * k, seed + k)
        total += PATCH_WEIGHT
    acc /= total
    stretched = np.clip(0.5 + 2.8 * (acc - 0.5), 0.0, 1.0)  # sums of noise cluster near 0.5: restore contrast
    # a separate luminance blob layer, so features survive the conversion to grey
    lum = value_noise_rgb(q * (LUMA_FREQ * scale) + 5.1, seed + 2)[:, :1]
    albedo = (0.3 * tint.astype(np.float32) + 0.7 * stretched) * (0.55 + 0.9 * lum)
    return np.clip(albedo, 0.0, 1.0).astype(np.float32)
