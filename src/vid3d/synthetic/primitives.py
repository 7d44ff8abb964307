"""Ray casting against the scene's primitives (a closed room, boxes, spheres, walkers), vectorised numpy.

Every primitive lives in its own object frame (box and sphere centred at the origin, axis-aligned
box; the room is an axis-aligned box seen from inside; a walker is a rigid person-like stack of
legs box, torso box and head sphere, centred at half its height) and is placed by ``T_world_object``. A ray
``o + s d`` is mapped into the object frame, where ``s`` is unchanged (rigid map), so when the
directions come from ``K^-1 [u, v, 1]`` rotated to the world, ``s`` of the nearest hit *is* the
z-depth.

:func:`cast_rays_reference` is the slow per-ray twin used by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROOM, BOX, SPHERE, WALKER = "room", "box", "sphere", "walker"
_EPS = 1e-6

# a walker of height 1.7 m in its own frame (y down, origin at half height, z = walking direction):
# (kind, centre (3,), size) of each part; every number scales with the walker's height / 1.7
_WALKER_PARTS_1P7 = (
    (SPHERE, (0.0, -0.74, 0.0), (0.11,)),  # head: y in [-0.85, -0.63]
    (BOX, (0.0, -0.305, 0.0), (0.23, 0.305, 0.13)),  # torso, 0.46 m shoulders: y in [-0.61, 0]
    (BOX, (0.0, 0.425, 0.0), (0.17, 0.425, 0.11)),  # legs: y in [0, 0.85] (soles at +height/2)
)


def walker_parts(height: float) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The rigid parts of a walker ``height`` metres tall, in its own frame (origin at half height,
    y down, so its soles are the plane y = +height/2): ``[(kind, centre (3,), size), ...]`` with
    ``size`` as in :class:`Primitive` (box half extents, sphere radius)."""
    k = float(height) / 1.7
    return [(kind, k * np.array(c, dtype=np.float64), k * np.array(sz, dtype=np.float64)) for kind, c, sz in _WALKER_PARTS_1P7]


@dataclass(frozen=True)
class Primitive:
    """One rigid object.

    Attributes:
        kind: ``"room"`` (seen from inside), ``"box"``, ``"sphere"`` or ``"walker"``.
        size: room: (2, 3) lower and upper corners; box: (3,) half extents; sphere: (1,) radius;
            walker: (1,) height (parts from :func:`walker_parts`). Metres.
        dynamic: whether it moves over the clip.
        texture_seed: seed of its procedural texture.
        texture_rotation: (3, 3) rotation of texture coordinates.
        tint: (3,) base colour in [0, 1].
    """

    kind: str
    size: np.ndarray
    dynamic: bool
    texture_seed: int
    texture_rotation: np.ndarray
    tint: np.ndarray


@dataclass(frozen=True)
class RayHits:
    """Nearest hits of N rays.

    Attributes:
        s: ``(N,)`` float64 ray parameter of the hit (z-depth for rays with unit camera z), inf = miss.
        object_id: ``(N,)`` int32 index of the primitive hit, -1 = miss.
        p_object: ``(N, 3)`` float64 hit point in the hit object's frame.
        n_world: ``(N, 3)`` float64 unit outward (room: inward) surface normal in the world.
    """

    s: np.ndarray
    object_id: np.ndarray
    p_object: np.ndarray
    n_world: np.ndarray


def intersect_local(kind: str, size: np.ndarray, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest positive intersection in an object's frame.

    Args:
        kind: primitive kind. size: its size (see :class:`Primitive`).
        o: ray origins ``(N, 3)`` or ``(3,)``. d: ray directions ``(N, 3)`` (any length, non-zero).

    Returns:
        ``(s (N,), n (N, 3))``: ray parameter (inf where missed) and the local unit normal.
    """
    N = d.shape[0]
    o = np.broadcast_to(o, (N, 3))
    if kind == WALKER:  # nearest hit among the parts, each an axis-aligned part offset in the walker frame
        s = np.full(N, np.inf)
        n = np.zeros((N, 3))
        for part_kind, centre, part_size in walker_parts(float(size[0])):
            s_p, n_p = intersect_local(part_kind, part_size, o - centre, d)
            closer = s_p < s
            s[closer], n[closer] = s_p[closer], n_p[closer]
        return s, n
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == SPHERE:
            r = float(size[0])
            a = np.einsum("ij,ij->i", d, d)
            b = 2.0 * np.einsum("ij,ij->i", o, d)
            c = np.einsum("ij,ij->i", o, o) - r * r
            disc = b * b - 4 * a * c
            sq = np.sqrt(np.maximum(disc, 0.0))
            s0 = (-b - sq) / (2 * a)
            s1 = (-b + sq) / (2 * a)
            s = np.where(s0 > _EPS, s0, np.where(s1 > _EPS, s1, np.inf))
            s = np.where(disc >= 0, s, np.inf)
            p = o + np.where(np.isfinite(s), s, 0.0)[:, None] * d
            return s, p / r
        if kind == BOX:
            lo, hi = -np.asarray(size, dtype=np.float64), np.asarray(size, dtype=np.float64)
        elif kind == ROOM:
            lo, hi = np.asarray(size[0], dtype=np.float64), np.asarray(size[1], dtype=np.float64)
        else:
            raise ValueError(f"unknown primitive kind {kind!r}")
        t1 = (lo - o) / d
        t2 = (hi - o) / d
        tmin = np.minimum(t1, t2)
        tmax = np.maximum(t1, t2)
        rows = np.arange(N)
        if kind == ROOM:  # from inside: the exit point of the box, normal pointing inward
            axis = np.argmin(tmax, axis=1)
            s = tmax[rows, axis]
            s = np.where(s > _EPS, s, np.inf)
            sign = np.sign(d[rows, axis])  # leaving through the +axis wall -> inward normal is -axis
            n = np.zeros((N, 3))
            n[rows, axis] = -sign
            return s, n
        axis = np.argmax(tmin, axis=1)
        s_near = tmin[rows, axis]
        s_far = tmax.min(axis=1)
        hit = (s_near <= s_far) & (s_near > _EPS)
        s = np.where(hit, s_near, np.inf)
        n = np.zeros((N, 3))
        n[rows, axis] = -np.sign(d[rows, axis])
        return s, n


def cast_rays(
    primitives: list[Primitive], T_world_object: np.ndarray, origin: np.ndarray, dirs: np.ndarray
) -> RayHits:
    """Nearest hit of rays ``origin + s * dirs`` among all primitives.

    Args:
        primitives: the scene's objects (length M).
        T_world_object: ``(M, 4, 4)`` pose of each object at this instant.
        origin: ``(3,)`` ray origin in the world (the camera centre).
        dirs: ``(N, 3)`` ray directions in the world.

    Returns:
        :class:`RayHits` of the N rays.
    """
    N = dirs.shape[0]
    best = np.full(N, np.inf)
    obj = np.full(N, -1, dtype=np.int32)
    p_obj = np.zeros((N, 3))
    n_world = np.zeros((N, 3))
    d_norm = np.sqrt(np.einsum("ij,ij->i", dirs, dirs))
    for k, prim in enumerate(primitives):
        R = T_world_object[k, :3, :3]
        t = T_world_object[k, :3, 3]
        o_l = R.T @ (origin - t)
        idx = None
        if prim.kind != ROOM:  # cull: only rays within the cone of the object's bounding sphere
            r = bounding_radius(prim)
            to_c = t - origin
            dist = float(np.linalg.norm(to_c))
            if dist > r * 1.0001:
                cos_min = np.sqrt(1.0 - (r / dist) ** 2)
                idx = np.flatnonzero(dirs @ to_c >= cos_min * dist * d_norm * (1 - 1e-9))
                if idx.size == 0:
                    continue
        d_sel = dirs if idx is None else dirs[idx]
        d_l = d_sel @ R  # R^T d, row-wise
        s, n_l = intersect_local(prim.kind, prim.size, o_l, d_l)
        if idx is None and not np.isfinite(best).any():  # first full-frame primitive (the room): plain copy
            best, obj[:] = s, k
            obj[~np.isfinite(s)] = -1
            p_obj = o_l + np.where(np.isfinite(s), s, 0.0)[:, None] * d_l
            n_world = n_l @ R.T
            continue
        rows = np.arange(N) if idx is None else idx
        closer = s < best[rows]
        if not closer.any():
            continue
        rows = rows[closer]
        best[rows] = s[closer]
        obj[rows] = k
        p_obj[rows] = o_l + s[closer, None] * d_l[closer]
        n_world[rows] = n_l[closer] @ R.T
    return RayHits(s=best, object_id=obj, p_object=p_obj, n_world=n_world)


def bounding_radius(prim: Primitive) -> float:
    """Radius of a sphere about the object origin that contains the primitive (not for the room)."""
    if prim.kind == SPHERE:
        return float(prim.size[0])
    if prim.kind == WALKER:
        return max(
            float(np.linalg.norm(c)) + (float(sz[0]) if kind == SPHERE else float(np.linalg.norm(sz)))
            for kind, c, sz in walker_parts(float(prim.size[0]))
        )
    return float(np.linalg.norm(prim.size))


def cast_rays_reference(
    primitives: list[Primitive], T_world_object: np.ndarray, origin: np.ndarray, dirs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Slow per-ray twin of :func:`cast_rays` (plain-Python geometry): ``(s (N,), object_id (N,))``."""
    origin = [float(v) for v in origin]
    s_out = np.full(len(dirs), np.inf)
    id_out = np.full(len(dirs), -1, dtype=np.int32)
    for i, d in enumerate(dirs):
        for k, prim in enumerate(primitives):
            R = T_world_object[k, :3, :3]
            t = T_world_object[k, :3, 3]
            o = [sum(R[r, c] * (origin[r] - t[r]) for r in range(3)) for c in range(3)]
            dl = [sum(R[r, c] * d[r] for r in range(3)) for c in range(3)]
            s = _reference_hit(prim.kind, prim.size, o, dl)
            if s < s_out[i]:
                s_out[i], id_out[i] = s, k
    return s_out, id_out


def _reference_hit(kind: str, size: np.ndarray, o: list[float], d: list[float]) -> float:
    if kind == WALKER:
        return min(
            _reference_hit(part_kind, part_size, [o[a] - float(c[a]) for a in range(3)], d)
            for part_kind, c, part_size in walker_parts(float(size[0]))
        )
    if kind == SPHERE:
        r = float(size[0])
        a = sum(x * x for x in d)
        b = 2 * sum(x * y for x, y in zip(o, d))
        c = sum(x * x for x in o) - r * r
        disc = b * b - 4 * a * c
        if disc < 0:
            return np.inf
        for s in ((-b - disc**0.5) / (2 * a), (-b + disc**0.5) / (2 * a)):
            if s > _EPS:
                return s
        return np.inf
    if kind == BOX:
        lo, hi = [-float(v) for v in size], [float(v) for v in size]
    else:
        lo, hi = [float(v) for v in size[0]], [float(v) for v in size[1]]
    near, far = -np.inf, np.inf
    for a in range(3):
        if abs(d[a]) < 1e-15:
            if not lo[a] <= o[a] <= hi[a]:
                return np.inf
            continue
        t1, t2 = (lo[a] - o[a]) / d[a], (hi[a] - o[a]) / d[a]
        near, far = max(near, min(t1, t2)), min(far, max(t1, t2))
    if kind == ROOM:
        return far if far > _EPS else np.inf
    return near if near <= far and near > _EPS else np.inf
