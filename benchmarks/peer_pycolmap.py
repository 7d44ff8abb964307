"""The peer baseline of the poses benchmark: plain pycolmap with its defaults, as a new user runs it.

One shared SIMPLE_RADIAL camera, SIFT with default options, sequential matching, incremental mapping
with default options; the largest model is kept. No motion masks, no focal initialisation, no fill.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import vid3d  # noqa: F401  (zlib before pycolmap)


def plain_pycolmap(rgb: np.ndarray, workdir: Path) -> dict:
    """Run plain pycolmap on frames ``(T, H, W, 3)`` u8. Returns ``registered`` (int), ``poses``
    ``{frame: T_world_camera (4, 4)}`` of the largest model, ``K`` (3, 3) or None, ``model_sizes``,
    ``seconds``, and ``path_over_depth`` (largest distance between two camera centres over the median
    depth of the model's points; the parallax the reconstruction found)."""
    import pycolmap

    from vid3d.optimizer.sfm import colmap
    from vid3d.optimizer.sfm.stage import translation_over_depth

    t0 = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    image_dir, _ = colmap.write_inputs(rgb, None, workdir)
    database = workdir / "peer.db"
    database.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    pycolmap.extract_features(database, image_dir, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              device=pycolmap.Device.cpu)
    pycolmap.match_sequential(database, device=pycolmap.Device.cpu)
    recs = pycolmap.incremental_mapping(database, image_dir, workdir / "peer_sparse")
    out = {"registered": 0, "poses": {}, "K": None, "model_sizes": [], "path_over_depth": float("nan")}
    if recs:
        sizes = {k: r.num_reg_images() for k, r in recs.items()}
        best = max(sizes, key=lambda k: (sizes[k], -k))
        model = colmap.model_from_reconstruction(recs[best])
        out.update(registered=len(model.T_world_camera), poses=dict(model.T_world_camera), K=model.K,
                   model_sizes=sorted(sizes.values(), reverse=True))
        out["path_over_depth"] = translation_over_depth(model.T_world_camera, model.points_world, model.obs)
    out["seconds"] = time.perf_counter() - t0
    return out
