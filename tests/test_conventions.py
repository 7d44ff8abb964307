"""Convention pins: tiny hand-computed cases that fail loudly if an axis, a direction or an order flips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vid3d.formats import conventions as cv


def rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_camera_to_world_pin():
    # Camera at world (1, 2, 3), looking along world +x: camera z (forward) = world +x.
    R = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)  # columns: camera x, y, z axes in world
    T_world_camera = cv.make_T(R, np.array([1.0, 2.0, 3.0]))
    p_world = cv.transform_points(T_world_camera, np.array([[0.0, 0.0, 2.0]]))  # 2 m in front of the camera
    np.testing.assert_allclose(p_world, [[3.0, 2.0, 3.0]])


def test_pixel_centre_and_projection_pin():
    K = cv.make_K(100.0, 100.0, 2.0, 1.0)  # a 4x2 image whose centre is exactly (2, 1)
    depth = np.full((2, 4), 5.0)
    p = cv.unproject_depth(depth, K)
    # pixel (u=1, v=0) has centre (1.5, 0.5): x = (1.5 - 2) * 5 / 100
    np.testing.assert_allclose(p[0, 1], [-0.025, -0.025, 5.0])
    uv, z = cv.project_points(p.reshape(-1, 3), K)
    np.testing.assert_allclose(uv.reshape(2, 4, 2), cv.pixel_grid(2, 4), atol=1e-6)
    np.testing.assert_allclose(z, 5.0)


def test_unproject_with_pose_and_torch_twin():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    K = cv.make_K(50, 52, 16.3, 11.7)
    T = cv.make_T(rot_z(30), np.array([0.3, -0.2, 1.0]))
    depth = rng.uniform(1, 4, (24, 32)).astype(np.float32)
    p_np = cv.unproject_depth(depth, K, T)
    p_t = cv.unproject_depth(torch.from_numpy(depth), torch.from_numpy(K).float(), torch.from_numpy(T).float())
    np.testing.assert_allclose(p_t.numpy(), p_np, rtol=1e-5, atol=1e-5)
    uv, z = cv.project_points(p_np.reshape(-1, 3), K, T)
    np.testing.assert_allclose(uv.reshape(24, 32, 2), cv.pixel_grid(24, 32), atol=1e-3)
    np.testing.assert_allclose(z.reshape(24, 32), depth, rtol=1e-5)


def test_scale_intrinsics_keeps_pixel_centres():
    K = cv.make_K(100, 100, 32.0, 24.0)  # image 64x48, optical centre at the image centre
    K2 = cv.scale_intrinsics(K, 0.5, 0.5)  # image 32x24
    np.testing.assert_allclose(K2[:2, 2], [16.0, 12.0])
    np.testing.assert_allclose(np.diag(K2)[:2], [50, 50])


def test_colmap_conversion_pin():
    # COLMAP stores world-to-camera. A camera at world (0, 0, -5) with identity rotation sees the origin
    # 5 m ahead: t_camera_world = (0, 0, 5).
    T = cv.T_world_camera_from_colmap(np.array([1.0, 0, 0, 0]), np.array([0.0, 0.0, 5.0]))
    np.testing.assert_allclose(T[:3, 3], [0, 0, -5])
    # 90 deg about z, quaternion scalar-first (w, x, y, z) = (cos 45, 0, 0, sin 45)
    q = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(cv.quat_wxyz_to_R(q), rot_z(90), atol=1e-12)
    T = cv.T_world_camera_from_colmap(q, np.array([1.0, 2.0, 3.0]))
    q2, t2 = cv.colmap_from_T_world_camera(T)
    np.testing.assert_allclose(q2, q, atol=1e-12)
    np.testing.assert_allclose(t2, [1, 2, 3], atol=1e-12)


def test_opengl_to_opencv_flips_y_and_z():
    T_gl = np.eye(4)
    T_cv = cv.T_world_camera_from_opengl(T_gl)
    np.testing.assert_allclose(np.diag(T_cv), [1, -1, -1, 1])


def test_tum_line_order():
    T = cv.make_T(rot_z(90), np.array([1.0, 2.0, 3.0]))
    vals = [float(v) for v in cv.tum_line_from_T_world_camera(0.5, T).split()]
    np.testing.assert_allclose(vals, [0.5, 1, 2, 3, 0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)], atol=1e-9)


quats = st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
    lambda q: np.linalg.norm(q) > 0.1)
vec3 = st.lists(st.floats(-100, 100, allow_nan=False), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(quats, vec3)
def test_rigid_transform_axioms(q, t):
    R = cv.quat_wxyz_to_R(np.array(q))
    T = cv.make_T(R, np.array(t))
    assert cv.rigidity_error(T) < 1e-9
    np.testing.assert_allclose(T @ cv.invert_T(T), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(cv.quat_wxyz_to_R(cv.R_to_quat_wxyz(R)), R, atol=1e-9)
    q_back, t_back = cv.colmap_from_T_world_camera(cv.T_world_camera_from_colmap(np.array(q), np.array(t)))
    np.testing.assert_allclose(cv.quat_wxyz_to_R(q_back), R, atol=1e-9)
    np.testing.assert_allclose(t_back, t, atol=1e-7)
