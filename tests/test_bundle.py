"""Bundle v1: round trips, streaming writes, atomicity, validation of broken and foreign files.

How images are stored (format 1.1 recipes, their bounds, re-packing) is tested in test_bundle_storage.py."""

import os

import h5py
import numpy as np
import pytest
from bundle_fixtures import random_capture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vid3d.formats.bundle import CODECS, BundleWriter, open_bundle, validate_bundle, write_bundle
from vid3d.formats.errors import BundleFormatError, InputError, ShapeError


def write(path, arrays, **kw):
    return write_bundle(path, fps=15.0, source="test", **arrays, **kw)


@pytest.mark.parametrize("storage", ["default", "float16"])
def test_round_trip_every_dataset(tmp_path, storage):
    arrays = random_capture()
    path = write(tmp_path / "c.vid3d.h5", arrays, meta={"config": {"gaps": [1, 2], "lr": 1e-3}}, storage=storage)
    with open_bundle(path) as b:
        assert (b.num_frames, b.height, b.width, b.fps) == (4, 12, 16, 15.0)
        assert set(b.fields) == {"rgb", "depth", "confidence", "prior", "dynamic_mask", "scene_flow"}
        assert b.attrs["format_version"] == ("1.1.0" if storage == "default" else "1.0.0")
        np.testing.assert_array_equal(b.read("rgb"), arrays["rgb"])  # bit-exact
        np.testing.assert_array_equal(b.read("dynamic_mask"), arrays["dynamic_mask"])
        for name in ("depth", "prior"):  # float16 and the default log step alike: 2^-11 relative
            np.testing.assert_allclose(b.read(name), arrays[name], rtol=2**-11, atol=0)
        assert (b.read("depth")[:, 0, 0] == 0).all()
        moving = np.where(arrays["dynamic_mask"][..., None], arrays["scene_flow"], 0)  # static pixels: 0
        bound = b.encoding("scene_flow").bound
        sf_tol = 2**-11 * np.abs(moving) + 2**-25 if storage == "float16" else bound["max_error"]
        assert (np.abs(b.read("scene_flow") - moving) <= sf_tol).all()
        np.testing.assert_allclose(b.read("confidence"), arrays["confidence"], atol=0.5 / 255 + 1e-7)
        np.testing.assert_allclose(b.T_world_camera, arrays["T_world_camera"], atol=1e-6)
        np.testing.assert_allclose(b.K, np.broadcast_to(arrays["K"], (4, 3, 3)), rtol=1e-7)
        np.testing.assert_allclose(b.timestamps_s, np.arange(4) / 15.0)
        np.testing.assert_array_equal(b.source_frames, np.arange(4))
        assert b.meta("config") == {"gaps": [1, 2], "lr": 1e-3}
        f = b.frame(2)
        np.testing.assert_array_equal(f.rgb, arrays["rgb"][2])
        assert f.depth.dtype == np.float32 and f.dynamic_mask.dtype == bool
        assert f.index == 2 and f.timestamp_s == pytest.approx(2 / 15)
        with pytest.raises(InputError, match="out of range"):
            b.frame(4)
        for key in ("format", "format_version", "producer", "created_utc", "source", "num_frames", "height",
                    "width", "fps", "units", "metric_scale", "camera_convention", "pose_convention",
                    "depth_kind", "pixel_center"):
            assert key in b.attrs
        assert b.attrs["camera_convention"] == "opencv" and b.attrs["pose_convention"] == "T_world_camera"


class _ReadSpy:
    """Stands in for the reader's h5py file and records which datasets are indexed."""

    def __init__(self, file):
        self.file, self.paths = file, []

    def __contains__(self, path):
        return path in self.file

    def __getitem__(self, path):
        self.paths.append(path)
        return self.file[path]


def test_frame_reads_only_the_named_fields(tmp_path):
    arrays = random_capture(fields=("depth", "confidence", "dynamic_mask", "scene_flow"))  # no prior
    path = write(tmp_path / "c.vid3d.h5", arrays)
    with open_bundle(path) as b:
        full = b.frame(1)
        spy = b._file = _ReadSpy(b._file)
        f = b.frame(1, fields=("rgb", "depth", "prior"))  # prior is absent: None, not an error
        assert sorted(spy.paths) == ["/depth/z", "/image/rgb"]
        np.testing.assert_array_equal(f.rgb, full.rgb)
        np.testing.assert_array_equal(f.depth, full.depth)
        assert f.prior is None and f.confidence is None and f.dynamic_mask is None and f.scene_flow is None
        np.testing.assert_array_equal(f.K, full.K)
        np.testing.assert_array_equal(f.T_world_camera, full.T_world_camera)
        assert (f.index, f.timestamp_s) == (full.index, full.timestamp_s)
        spy.paths.clear()
        m = b.frame(-1, fields="dynamic_mask")  # one name; negative index from the end
        assert spy.paths == ["/mask/dynamic"] and m.index == 3 and m.rgb is None
        np.testing.assert_array_equal(m.dynamic_mask, arrays["dynamic_mask"][3])
        spy.paths.clear()
        assert b.frame(0, fields=()).rgb is None and spy.paths == []
        assert set(n for n in ("rgb", "depth", "confidence", "dynamic_mask", "scene_flow")
                   if getattr(b.frame(2), n) is not None) == set(b.fields)  # default: all present
        with pytest.raises(InputError, match="unknown field 'normals'"):
            b.frame(0, fields=("rgb", "normals"))
        b._file = spy.file


def test_one_frame_per_chunk_and_default_gzip(tmp_path):
    path = write(tmp_path / "c.vid3d.h5", random_capture())
    with h5py.File(path) as f:
        assert f["/depth/z"].chunks == (1, 12, 16)
        assert f["/image/rgb"].chunks == (1, 3, 12, 16)  # planar, lossless (format 1.1)
        assert f["/depth/z"].compression == "gzip" and f["/depth/z"].shuffle
    path = write(tmp_path / "f16.vid3d.h5", random_capture(), storage="float16")
    with h5py.File(path) as f:
        assert f["/image/rgb"].chunks == (1, 12, 16, 3) and f["/depth/z"].dtype == np.float16


@pytest.mark.parametrize("codec", CODECS)
def test_codecs_round_trip(tmp_path, codec):
    if codec.startswith("blosc"):
        pytest.importorskip("hdf5plugin")
    arrays = random_capture(fields=("depth",))
    path = write(tmp_path / "c.vid3d.h5", arrays, codec=codec)
    with open_bundle(path) as b:
        np.testing.assert_allclose(b.read("depth"), arrays["depth"], rtol=2**-11)


def test_streaming_writer_appends_frames(tmp_path):
    arrays = random_capture(T=3, fields=("prior",))
    path = tmp_path / "s.vid3d.h5"
    with BundleWriter(path, height=12, width=16, fps=30, source="stream", fields=("prior",)) as w:
        for t in range(3):
            w.append(rgb=arrays["rgb"][t], T_world_camera=arrays["T_world_camera"][t], K=arrays["K"],
                     timestamp_s=10 + t, source_frame=5 * t, prior=arrays["prior"][t])
            assert not path.exists()  # nothing under the final name until a clean close
    with open_bundle(path) as b:
        assert b.num_frames == 3 and not b.has("depth") and b.has("prior")
        np.testing.assert_array_equal(b.source_frames, [0, 5, 10])
        assert b.depth_field() == "prior"


def test_failed_write_leaves_existing_file_untouched(tmp_path):
    path = write(tmp_path / "c.vid3d.h5", random_capture(seed=1))
    before = path.read_bytes()
    arrays = random_capture(seed=2)
    with pytest.raises(KeyboardInterrupt):
        with BundleWriter(path, height=12, width=16, fps=30, source="x") as w:
            w.append(rgb=arrays["rgb"][0], T_world_camera=arrays["T_world_camera"][0], K=arrays["K"])
            raise KeyboardInterrupt
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.vid3d.h5"]  # no temporary left behind


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(rgb=np.zeros((4, 12, 16, 3), np.float32)), "uint8"),
        (dict(depth=np.full((4, 12, 16), np.nan, np.float32)), "NaN"),
        (dict(depth=-np.ones((4, 12, 16), np.float32)), ">= 0"),
        (dict(confidence=np.full((4, 12, 16), 2.0, np.float32)), r"\[0, 1\]"),
        (dict(depth=np.ones((4, 12, 15), np.float32)), "shape"),
        (dict(T_world_camera=np.tile(np.diag([2.0, 1, 1, 1]), (4, 1, 1))), "rigid"),
        (dict(depth=np.full((4, 12, 16), 1e6, np.float32)), "float16"),
    ],
)
def test_writer_rejects_bad_input(tmp_path, change, match):
    arrays = {**random_capture(), **change}
    storage = "float16" if match == "float16" else "default"  # 1e6 is in the range of the default log codes
    with pytest.raises((InputError, ShapeError), match=match):
        write(tmp_path / "bad.vid3d.h5", arrays, storage=storage)
    assert not any(p.name.startswith("bad") for p in tmp_path.iterdir())


def corrupt(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda f: f.attrs.__setitem__("format", "something.else"), "not a vid3d bundle"),
        (lambda f: f.attrs.__setitem__("format_version", "2.0.0"), "unsupported format_version"),
        (lambda f: f.attrs.__setitem__("format_version", "one"), "semver"),
        (lambda f: f.attrs.__delitem__("fps"), "missing root attribute 'fps'"),
        (lambda f: f.attrs.__setitem__("camera_convention", "opengl"), "camera_convention"),
        (lambda f: f.__delitem__("/camera/K"), "missing dataset /camera/K"),
        (lambda f: f.attrs.__setitem__("num_frames", 5), r"has shape \(4"),
        (lambda f: f["/camera/T_world_camera"].__setitem__(2, np.full((4, 4), np.nan)), "NaN"),
        (lambda f: f["/camera/T_world_camera"].__setitem__(1, np.diag([1, 1, 3, 1.0])), "frame 1 is not a rigid"),
        (lambda f: f["/camera/K"].__setitem__(0, np.zeros((3, 3))), "focal"),
    ],
)
def test_validation_says_what_is_wrong(tmp_path, fn, match):
    path = write(tmp_path / "c.vid3d.h5", random_capture())
    corrupt(path, fn)
    problems = validate_bundle(path)
    assert problems and any(__import__("re").search(match, p) for p in problems), problems
    with pytest.raises(BundleFormatError, match=match):
        open_bundle(path)


def test_deep_validation_finds_nan_in_a_frame(tmp_path):
    path = write(tmp_path / "c.vid3d.h5", random_capture(), storage="float16")  # quantised codes hold no NaN
    corrupt(path, lambda f: f["/depth/z"].__setitem__((3, 1, 1), np.float16("nan")))
    assert validate_bundle(path) == []  # the quick check reads no image
    assert any("NaN" in p and "frame 3" in p for p in validate_bundle(path, deep=True))


def test_foreign_and_truncated_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not an HDF5 file" in validate_bundle(text)[0]
    assert "no such file" in validate_bundle(tmp_path / "missing.h5")[0]
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    assert "not a vid3d bundle" in validate_bundle(foreign)[0]
    good = write(tmp_path / "c.vid3d.h5", random_capture())
    truncated = tmp_path / "t.vid3d.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BundleFormatError):
        open_bundle(truncated)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(T=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9), seed=st.integers(0, 10**6))
def test_round_trip_property(tmp_path, T, H, W, seed):
    arrays = random_capture(T=T, H=H, W=W, seed=seed)
    path = write(tmp_path / f"p{seed}_{T}{H}{W}.vid3d.h5", arrays)
    with open_bundle(path, deep=True) as b:
        np.testing.assert_array_equal(b.read("rgb"), arrays["rgb"])
        np.testing.assert_allclose(b.read("depth"), arrays["depth"], rtol=2**-11)
        np.testing.assert_allclose(b.T_world_camera, arrays["T_world_camera"], atol=1e-6)
