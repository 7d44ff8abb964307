"""`vid3d info` and `vid3d export` on bundles: figures, formats other tools read, clear errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from bundle_fixtures import random_capture

from vid3d.cli import main
from vid3d.formats.bundle import open_bundle, write_bundle
from vid3d.formats.conventions import unproject_depth


def run(args, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = 0
    try:
        main(list(map(str, args)))
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def bundle(tmp_path):
    arrays = random_capture(T=5, H=10, W=14)
    arrays["depth"] = np.where(arrays["depth"] > 0, arrays["depth"], 0)
    return write_bundle(tmp_path / "cap.vid3d.h5", fps=12.0, source="clip.mp4", **arrays), arrays


def test_info_table_and_json(bundle, capsys):
    path, _ = bundle
    code, out, err = run(["info", path], capsys)
    assert code == 0, err
    for needle in ("5 at 12 fps", "14 x 10", "camera_convention=opencv", "pose_convention=T_world_camera",
                   "/depth/z", "compression", "source=clip.mp4", "producer=vid3d"):
        assert needle in out
    code, out, _ = run(["info", path, "--json", "--check"], capsys)
    summary = json.loads(out)
    assert summary["num_frames"] == 5 and summary["problems"] == []
    assert summary["raw_bytes"] > 0 and summary["compression_ratio"] > 0


def test_export_ply_matches_unprojection(bundle, tmp_path, capsys):
    path, arrays = bundle
    out = tmp_path / "cloud.ply"
    code, _, err = run(["export", path, "--to", "ply", "-o", out, "--stride", "1", "--frames", "1:3"], capsys)
    assert code == 0, err
    data = out.read_bytes()
    header, body = data.split(b"end_header\n", 1)
    n = int(header.split(b"element vertex ")[1].split(b"\n")[0])
    vert = np.frombuffer(body, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    assert len(vert) == n
    with open_bundle(path) as b:
        expect = [unproject_depth(b.frame(t).depth, b.K[t], b.T_world_camera[t])[b.frame(t).depth > 0] for t in (1, 2)]
    np.testing.assert_allclose(vert["xyz"], np.concatenate(expect), rtol=1e-5, atol=1e-5)
    o3d = pytest.importorskip("open3d", exc_type=ImportError)
    pcd = o3d.io.read_point_cloud(str(out))
    assert len(pcd.points) == n


def test_export_tum_one_line_per_frame(bundle, tmp_path, capsys):
    path, arrays = bundle
    out = tmp_path / "traj.txt"
    assert run(["export", path, "--to", "tum", "-o", out], capsys)[0] == 0
    rows = np.loadtxt(out)
    assert rows.shape == (5, 8)
    np.testing.assert_allclose(rows[:, 1:4], arrays["T_world_camera"][:, :3, 3], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rows[:, 4:], axis=1), 1, atol=1e-6)


def test_export_colmap_loads_in_pycolmap(bundle, tmp_path, capsys):
    path, arrays = bundle
    out = tmp_path / "model"
    assert run(["export", path, "--to", "colmap", "-o", out], capsys)[0] == 0
    assert len(list((out / "images").glob("*.png"))) == 5
    pycolmap = pytest.importorskip("pycolmap")
    rec = pycolmap.Reconstruction(str(out))
    assert rec.num_reg_images() == 5 and rec.num_points3D() > 0
    for image in rec.images.values():
        t = image.image_id - 1
        np.testing.assert_allclose(image.projection_center(), arrays["T_world_camera"][t][:3, 3], atol=1e-5)
    cam = next(iter(rec.cameras.values()))
    np.testing.assert_allclose(cam.calibration_matrix(), arrays["K"], atol=1e-5)


def test_export_npz(bundle, tmp_path, capsys):
    path, arrays = bundle
    out = tmp_path / "all.npz"
    assert run(["export", path, "--to", "npz", "-o", out], capsys)[0] == 0
    z = np.load(out)
    np.testing.assert_array_equal(z["images"], arrays["rgb"])
    np.testing.assert_allclose(z["cam_c2w"], arrays["T_world_camera"], atol=1e-6)
    assert z["depths"].shape == (5, 10, 14) and "scene_flow" in z and "dynamic_mask" in z


@pytest.mark.parametrize(
    "args, match",
    [
        (["--to", "obj"], "--to must be one of"),
        (["--to", "ply", "--frames", "9:12"], "selects no frame"),
        (["--to", "ply", "--frames", "a:b"], "START:END"),
        (["--to", "ply", "--min-confidence", "3"], r"\[0, 1\]"),
    ],
)
def test_export_bad_options(bundle, capsys, args, match):
    path, _ = bundle
    code, _, err = run(["export", path, *args], capsys)
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1
    assert __import__("re").search(match, err)


def test_bad_files_one_line_error(tmp_path, capsys):
    (tmp_path / "x.vid3d.h5").write_text("not hdf5")
    for args in (["info", tmp_path / "missing.vid3d.h5"], ["info", tmp_path / "x.vid3d.h5"],
                 ["export", tmp_path / "x.vid3d.h5", "--to", "tum"]):
        code, out, err = run(args, capsys)
        assert code == 2 and err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err


def test_every_command_has_help(capsys):
    for cmd in ("optimize", "view", "render", "info", "export", "eval"):
        code, out, _ = run([cmd, "--help"], capsys)
        assert code == 0 and "Usage" in out, cmd


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "vid3d", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "optimize" in r.stdout
