"""Render a synthetic clip with exact ground truth, and write it as video, images or a GT bundle."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid3d.formats.conventions import PIXEL_CENTER, invert_T, pixel_grid, project_points, transform_points
from vid3d.formats.errors import InputError
from vid3d.formats.shape import ClipShape
from vid3d.synthetic.config import SceneConfig
from vid3d.synthetic.primitives import cast_rays
from vid3d.synthetic.scene import LIGHT_TO, Scene, build_scene
from vid3d.synthetic.textures import surface_albedo

AMBIENT = 0.45  # shading = AMBIENT + (1 - AMBIENT) * max(0, n . l): a fixed world light, constant in time
FLOW_DEPTH_TOL = 0.01  # relative inverse-depth agreement for "not occluded" in optical_flow


@dataclass(frozen=True)
class SyntheticClip(ClipShape):
    """A rendered clip and its exact ground truth (T frames of H x W).

    Attributes:
        config: the :class:`SceneConfig` it was rendered from.
        rgb: ``(T, H, W, 3)`` uint8, 2x2 (``supersample``) anti-aliased.
        depth: ``(T, H, W)`` float32 z-depth in metres of the pixel-centre ray (> 0 everywhere).
        K: ``(3, 3)`` float64 intrinsics (pixel centres at +0.5).
        T_world_camera: ``(T, 4, 4)`` float64 camera-to-world (OpenCV axes).
        dynamic_mask: ``(T, H, W)`` bool, True where a moving object is seen.
        scene_flow: ``(T, H, W, 3)`` float32 world displacement of each pixel's 3-D point from t to t+1
            (0 on static surfaces and on the last frame).
        object_id: ``(T, H, W)`` int32 index of the object seen (0 = room).
        T_world_object: ``(M, T, 4, 4)`` float64 pose of every object at every frame.
        object_dynamic: ``(M,)`` bool, which objects move.
    """

    config: SceneConfig
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    T_world_camera: np.ndarray
    dynamic_mask: np.ndarray
    scene_flow: np.ndarray
    object_id: np.ndarray
    T_world_object: np.ndarray
    object_dynamic: np.ndarray

    @property
    def fps(self) -> float:
        return float(self.config.fps)

    @property
    def timestamps_s(self) -> np.ndarray:
        """``(T,)`` float64 seconds: ``t / fps``."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def points_moved(self, i: int, j: int) -> np.ndarray:
        """World points ``(H, W, 3)`` of frame i's pixels, each moved rigidly with its object to time j."""
        self._check_index(i)
        self._check_index(j)
        from vid3d.formats.conventions import unproject_depth

        X = unproject_depth(self.depth[i].astype(np.float64), self.K, self.T_world_camera[i])
        obj = self.object_id[i]
        for k in np.flatnonzero(self.object_dynamic):
            sel = obj == k
            if sel.any():
                T_jk = self.T_world_object[k, j] @ invert_T(self.T_world_object[k, i])
                X[sel] = transform_points(T_jk, X[sel])
        return X

    def optical_flow(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact optical flow from frame i to frame j (any pair, either direction).

        Pixel x of frame i is unprojected with depth_i, moved with its object's rigid motion from time
        i to j (identity for static surfaces) and projected into camera j: ``flow = x_j - x_i``.

        Returns:
            ``(flow (H, W, 2) float32, valid (H, W) bool)``; valid = lands inside image j, in front of
            the camera, and not occluded there (frame j's inverse depth, bilinear at the target, agrees
            with the projected one within 1 %).
        """
        H, W = self.height, self.width
        X = self.points_moved(i, j).reshape(-1, 3)
        uv, z = project_points(X, self.K, self.T_world_camera[j])
        uv = uv.reshape(H, W, 2)
        z = z.reshape(H, W)
        flow = (uv - pixel_grid(H, W)).astype(np.float32)
        inside = (z > 1e-6) & (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
        inv_j = _bilinear(1.0 / self.depth[j].astype(np.float64), uv - PIXEL_CENTER)
        with np.errstate(divide="ignore", invalid="ignore"):
            agree = np.abs(inv_j * z - 1.0) < FLOW_DEPTH_TOL
        return np.where(inside[..., None], flow, 0.0).astype(np.float32), inside & agree

    def write_video(self, path: str | os.PathLike, *, crf: int = 12) -> Path:
        """Write the RGB frames as H.264 (libx264, yuv420p) mp4 via PyAV, atomically.

        yuv420p needs even dimensions: an odd height/width is padded by repeating the last row/column
        (the decoded video is then one pixel larger than the clip). Returns the path.
        """
        import av

        path = Path(path)
        frames = self.rgb
        if frames.shape[1] % 2 or frames.shape[2] % 2:
            frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)), mode="edge")
        from vid3d.formats.atomic import atomic_file

        with atomic_file(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(self.fps)))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path

    def write_images(self, folder: str | os.PathLike) -> list[Path]:
        """Write ``frame_00000.png`` ... into ``folder`` (created), each atomically. Returns the paths."""
        import cv2

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for t, frame in enumerate(self.rgb):
            path = folder / f"frame_{t:05d}.png"
            tmp = _temp_path(path)
            try:
                if not cv2.imwrite(str(tmp), frame[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                    raise InputError(f"could not write image {path}")
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
            paths.append(path)
        return paths

    def to_bundle(self, path: str | os.PathLike, *, codec: str = "gzip") -> Path:
        """Write the ground truth as a vid3d bundle (source "synthetic ground truth", metric units).

        Fills rgb, depth, confidence (= 1), dynamic_mask and scene_flow; no prior (that only comes
        from an estimator). Returns the path.
        """
        from vid3d.formats.bundle import write_bundle

        T = self.num_frames
        write_bundle(
            path,
            rgb=self.rgb,
            T_world_camera=self.T_world_camera,
            K=np.broadcast_to(self.K, (T, 3, 3)).copy(),
            fps=self.fps,
            timestamps_s=self.timestamps_s,
            source_frames=np.arange(T, dtype=np.int32),
            depth=self.depth,
            confidence=np.ones_like(self.depth),
            dynamic_mask=self.dynamic_mask,
            scene_flow=self.scene_flow,
            codec=codec,
            source="synthetic ground truth",
            units="m",
            metric_scale=True,
        )
        return Path(path)

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.num_frames:
            raise InputError(f"frame index must be in [0, {self.num_frames}), got {i}")


def make_clip(cfg: SceneConfig | str = "tiny_dynamic") -> SyntheticClip:
    """Render a clip with exact ground truth from a config (or a preset name). Deterministic for a seed."""
    if isinstance(cfg, str):
        cfg = SceneConfig.preset(cfg)
    scene = build_scene(cfg)
    T, H, W = cfg.num_frames, cfg.height, cfg.width
    rgb = np.empty((T, H, W, 3), dtype=np.uint8)
    depth = np.empty((T, H, W), dtype=np.float32)
    object_id = np.empty((T, H, W), dtype=np.int32)
    scene_flow = np.zeros((T, H, W, 3), dtype=np.float32)
    dyn = np.array([p.dynamic for p in scene.primitives])
    for t in range(T):
        d, obj, flow = _render_geometry(scene, t)
        depth[t], object_id[t] = d, obj
        if t + 1 < T:
            scene_flow[t] = flow
        rgb[t] = _render_rgb(scene, t, cfg)
    return SyntheticClip(
        config=cfg,
        rgb=rgb,
        depth=depth,
        K=scene.K.copy(),
        T_world_camera=scene.T_world_camera.copy(),
        dynamic_mask=dyn[object_id],
        scene_flow=scene_flow,
        object_id=object_id,
        T_world_object=scene.T_world_object.copy(),
        object_dynamic=dyn,
    )


def _camera_rays(scene: Scene, t: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays through continuous pixel positions ``uv`` ``(N, 2)``: ``(origin (3,), dirs (N, 3))`` with
    unit camera-z, so the hit parameter is the z-depth."""
    Kinv = np.linalg.inv(scene.K)
    d_cam = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1) @ Kinv.T
    T_wc = scene.T_world_camera[t]
    return T_wc[:3, 3], d_cam @ T_wc[:3, :3].T


def _render_geometry(scene: Scene, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre rays of frame t: ``(depth (H, W), object_id (H, W), scene_flow to t+1 (H, W, 3))``."""
    T = scene.T_world_camera.shape[0]
    H, W = scene.height, scene.width
    uv = pixel_grid(H, W).reshape(-1, 2).astype(np.float64)
    origin, dirs = _camera_rays(scene, t, uv)
    hits = cast_rays(scene.primitives, scene.T_world_object[:, t], origin, dirs)
    if not np.isfinite(hits.s).all():
        raise RuntimeError("synthetic renderer: a ray left the room (camera outside the room?)")
    flow = np.zeros((H * W, 3))
    if t + 1 < T:
        for k in scene.dynamic_ids:
            sel = hits.object_id == k
            if sel.any():
                X = transform_points(scene.T_world_object[k, t], hits.p_object[sel])
                X_next = transform_points(scene.T_world_object[k, t + 1], hits.p_object[sel])
                flow[sel] = X_next - X
    return hits.s.reshape(H, W), hits.object_id.reshape(H, W), flow.reshape(H, W, 3)


def _render_rgb(scene: Scene, t: int, cfg: SceneConfig) -> np.ndarray:
    """Anti-aliased colour of frame t, ``(H, W, 3)`` uint8: the mean of ``supersample**2`` rays per pixel."""
    H, W = cfg.height, cfg.width
    n = cfg.supersample
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    acc = np.zeros((H * W, 3), dtype=np.float32)
    for oy in (np.arange(n) + 0.5) / n:
        for ox in (np.arange(n) + 0.5) / n:
            uv = np.stack([u.ravel() + ox, v.ravel() + oy], axis=1)
            origin, dirs = _camera_rays(scene, t, uv)
            hits = cast_rays(scene.primitives, scene.T_world_object[:, t], origin, dirs)
            albedo = np.zeros((H * W, 3), dtype=np.float32)
            for k, prim in enumerate(scene.primitives):
                sel = hits.object_id == k
                if sel.any():
                    albedo[sel] = surface_albedo(
                        hits.p_object[sel], seed=prim.texture_seed, rotation=prim.texture_rotation,
                        tint=prim.tint, scale=cfg.texture_scale,
                    )
            shade = AMBIENT + (1.0 - AMBIENT) * np.clip(hits.n_world @ LIGHT_TO, 0.0, None)
            acc += albedo * shade[:, None].astype(np.float32)
    img = acc / (n * n)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8).reshape(H, W, 3)


def _bilinear(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample ``img`` ``(H, W)`` at continuous *index* coordinates ``xy`` ``(..., 2)`` (x = column),
    clamped at the borders: ``(...)``."""
    H, W = img.shape
    x = np.clip(xy[..., 0], 0, W - 1)
    y = np.clip(xy[..., 1], 0, H - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, W - 2) if W > 1 else np.zeros_like(x, dtype=np.int64)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, H - 2) if H > 1 else np.zeros_like(y, dtype=np.int64)
    fx, fy = x - x0, y - y0
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    return (
        img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x1] * fx * (1 - fy) + img[y1, x0] * (1 - fx) * fy + img[y1, x1] * fx * fy
    )


def _temp_path(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent or ".")
    os.close(fd)
    return Path(name)
