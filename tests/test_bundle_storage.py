"""Bundle format 1.1 storage: the recipes round-trip within the bounds they state, 1.0 files still read, a
1.0 reader refuses 1.1 datasets, re-packing (``vid3d pack``), ``vid3d info`` bounds, ``optimize --compact``."""

import os

import h5py
import numpy as np
import pytest
from bundle_fixtures import random_capture
from hypothesis import given, settings
from hypothesis import strategies as st

from vid3d.cli import main
from vid3d.formats.bundle import STORAGE_PRESETS, BundleWriter, Storage, open_bundle, repack_bundle, validate_bundle, \
    write_bundle
from vid3d.formats.bundle.encoding import delta2d, undelta2d, undelta2d_reference, unzigzag16, zigzag16
from vid3d.formats.errors import BundleFormatError, InputError

# What a format 1.0 reader checks of each image dataset (vid3d 1.0's validate: dtype, then shape (T, H, W, *c)).
V1_0_LAYOUT = {"/image/rgb": (np.uint8, (3,)), "/depth/z": (np.float16, ()), "/depth/confidence": (np.uint8, ()),
               "/depth/prior": (np.float16, ()), "/mask/dynamic": (np.uint8, ()),
               "/flow/scene_fwd": (np.float16, (3,))}


def write(path, arrays, **kw):
    return write_bundle(path, fps=15.0, source="test", **arrays, **kw)


def run(args, capsys):
    code = 0
    try:
        main(list(map(str, args)))
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def smooth_capture(T=4, H=24, W=32, seed=0):
    """A capture whose images are smooth (what the 2-D filter is for) plus the random fixture's extremes."""
    a = random_capture(T=T, H=H, W=W, seed=seed)
    y, x = np.mgrid[0:H, 0:W] / max(H, W)
    a["rgb"][:, : H // 2] = (np.stack([x, y, x * y], -1)[: H // 2] * 255).astype(np.uint8)
    a["depth"][:, H // 2:] = (2.0 + x + y)[H // 2:]
    a["depth"][:, 0, :3] = 0.0  # invalid pixels
    a["depth"][0, 1, 1] = 1e-3  # a far outlier of the range
    return a


# -- the filter -------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 19), st.integers(1, 23)), bits=st.sampled_from([8, 16]),
       seed=st.integers(0, 10**6))
def test_undelta2d_fast_matches_reference_and_inverts(shape, bits, seed):
    dtype = np.uint8 if bits == 8 else np.uint16
    q = np.random.default_rng(seed).integers(0, 2**bits, shape).astype(dtype)
    e = delta2d(q)
    np.testing.assert_array_equal(undelta2d_reference(e), q)
    np.testing.assert_array_equal(undelta2d(e.copy()), q)


def test_zigzag_maps_small_residuals_to_small_codes():
    e = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    np.testing.assert_array_equal(unzigzag16(zigzag16(e)), e)
    np.testing.assert_array_equal(zigzag16(np.array([0, 1, 2], np.int16).view(np.uint16)), [0, 2, 4])
    np.testing.assert_array_equal(zigzag16(np.array([-1, -2, -32768], np.int16).view(np.uint16)), [1, 3, 65535])


# -- round trips within the stated bounds ------------------------------------------------------------


@pytest.mark.parametrize("storage", list(STORAGE_PRESETS))
def test_each_storage_round_trips_within_its_stated_bounds(tmp_path, storage):
    a = smooth_capture()
    path = write(tmp_path / "c.vid3d.h5", a, storage=storage)
    with open_bundle(path, deep=True) as b:
        for name in ("depth", "prior"):
            bound = b.encoding(name).bound
            assert bound["kind"] == "relative"
            got = b.read(name)
            np.testing.assert_array_equal(got == 0, a[name] == 0)
            assert (np.abs(got - a[name]) <= bound["max_error"] * a[name] + bound.get("abs_floor", 0)).all()
        conf = b.encoding("confidence").bound
        assert conf["max_error"] <= 0.5 / 255 + 1e-6
        assert (np.abs(b.read("confidence") - a["confidence"]) <= conf["max_error"]).all()
        moving = np.where(a["dynamic_mask"][..., None], a["scene_flow"], 0)
        sf, bound = b.read("scene_flow"), b.encoding("scene_flow").bound
        assert (sf[~a["dynamic_mask"]] == 0).all()  # static pixels exactly 0
        tol = bound["max_error"] * np.abs(moving) + bound.get("abs_floor", 0) if bound["kind"] == "relative" \
            else bound["max_error"]
        assert (np.abs(sf - moving) <= tol).all()
        rgb = b.read("rgb")
        if storage == "compact":
            enc = b.encoding("rgb")
            assert enc.name == "jpeg" and enc.bound["quality"] == 90
            err = np.abs(rgb.astype(int) - a["rgb"])
            assert err.max() == enc.bound["max_error"]  # measured when written, stated in the attributes
        else:
            np.testing.assert_array_equal(rgb, a["rgb"])
        for t in (0, 3):  # a frame reads the same numbers as the whole dataset
            f = b.frame(t)
            for name in b.fields:
                np.testing.assert_array_equal(getattr(f, name), b.read(name)[t])
            assert f.scene_flow.flags.c_contiguous and f.rgb.shape == (24, 32, 3)
        np.testing.assert_array_equal(b.read("rgb", frames=[3, 1]), rgb[[3, 1]])
        np.testing.assert_array_equal(b.read("scene_flow", frames=slice(1, 3)), sf[1:3])
        assert b.read("depth", frames=[]).shape == (0, 24, 32)


def test_default_depth_bound_is_half_of_float16s():
    from vid3d.formats.bundle.encoding import LogDepth

    bound = LogDepth(rel_step=STORAGE_PRESETS["default"].depth_rel_step).max_rel_error
    assert bound <= 0.5 * 2.0**-11 + 1e-7  # float16: 2^-11


def test_scene_flow_without_mask_keeps_every_pixel_and_empty_frames_work(tmp_path):
    a = random_capture(T=3, fields=("depth", "scene_flow"))
    path = write(tmp_path / "nomask.vid3d.h5", a)
    with open_bundle(path, deep=True) as b:
        assert b.encoding("scene_flow").support == "all"
        assert (np.abs(b.read("scene_flow") - a["scene_flow"]) <= b.encoding("scene_flow").bound["max_error"]).all()
    a = random_capture(T=3, fields=("depth", "dynamic_mask", "scene_flow"))
    a["dynamic_mask"][1] = False  # a frame without moving pixels
    path = write(tmp_path / "still.vid3d.h5", a)
    with open_bundle(path, deep=True) as b:
        assert (b.frame(1).scene_flow == 0).all()
        assert np.abs(b.frame(2).scene_flow).max() > 0


def test_frame_reads_the_scene_flow_with_its_mask_only(tmp_path):
    path = write(tmp_path / "c.vid3d.h5", random_capture())
    with open_bundle(path) as b:
        opened = b._file
        seen = []

        class Spy:
            def __contains__(self, p):
                return p in opened

            def __getitem__(self, p):
                seen.append(p)
                return opened[p]

        b.frame(0)  # offsets loaded on first use
        b._file = Spy()
        b.frame(2, fields=("scene_flow",))
        assert sorted(seen) == ["/flow/scene_fwd", "/mask/dynamic"]
        b._file = opened


def test_parameters_come_from_the_first_frame_and_clipping_is_counted(tmp_path):
    a = random_capture(T=2, fields=("depth",))
    a["depth"] = np.where(a["depth"] > 0, 1.0 + a["depth"] / 300, 0).astype(np.float32)  # 1.0 to 1.1
    a["depth"][1, 2, 2] = 1e30  # far beyond the codes of a fine step (e^+-0.33 around frame 0's median)
    path = write(tmp_path / "c.vid3d.h5", a, storage=Storage(depth_rel_step=1e-5))
    with open_bundle(path) as b:
        bound = b.encoding("depth").bound
        assert bound["clipped"] == 1 and "clipped" in b.encoding("depth").describe()
        with h5py.File(path) as f:
            assert f["/depth/z"].attrs["clipped"] == 1


def test_bad_storage_settings_are_refused():
    with pytest.raises(InputError, match="jpeg_quality"):
        Storage(rgb="jpeg", jpeg_quality=0)
    with pytest.raises(InputError, match="float16 layout"):
        Storage(quantize=False, rgb="jpeg")
    with pytest.raises(InputError, match="unknown storage"):
        write_bundle("/tmp/never.vid3d.h5", **random_capture(), fps=1.0, source="x", storage="tiny")


# -- versions -------------------------------------------------------------------------------------------


def test_format_1_0_files_still_read(tmp_path):
    a = random_capture()
    path = write(tmp_path / "old.vid3d.h5", a, storage="float16")
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == "1.0.0"
        assert not any("vid3d_encoding" in f[p].attrs for p in V1_0_LAYOUT)
        raw_depth = f["/depth/z"][()]
    with open_bundle(path) as b:
        np.testing.assert_array_equal(b.read("depth"), raw_depth.astype(np.float32))
        assert b.encoding("depth").name == "plain" and b.encoding("depth").bound["max_error"] == 2.0**-11


@pytest.mark.parametrize("storage", ["default", "compact"])
def test_a_1_0_reader_refuses_every_quantised_dataset(tmp_path, storage):
    path = write(tmp_path / "new.vid3d.h5", random_capture(), storage=storage)
    with h5py.File(path) as f:
        T, H, W = f.attrs["num_frames"], f.attrs["height"], f.attrs["width"]
        for p, (dtype, channels) in V1_0_LAYOUT.items():
            ds = f[p]
            refused = ds.dtype != np.dtype(dtype) or ds.shape != (T, H, W, *channels)
            assert refused == ("vid3d_encoding" in ds.attrs), p  # encoded <=> a 1.0 reader says "has dtype/shape"


def test_unknown_encoding_asks_for_a_newer_vid3d(tmp_path):
    path = write(tmp_path / "c.vid3d.h5", random_capture())
    with h5py.File(path, "r+") as f:
        f["/depth/z"].attrs["vid3d_encoding"] = "wavelet_v9"
    with pytest.raises(BundleFormatError, match="wavelet_v9.*upgrade vid3d"):
        open_bundle(path)


def test_broken_packed_scene_flow_is_reported(tmp_path):
    path = write(tmp_path / "c.vid3d.h5", random_capture())
    with h5py.File(path, "r+") as f:
        f["/flow/scene_fwd_offsets"][2] = 10**9
    assert any("scene_fwd_offsets must rise" in p for p in validate_bundle(path))
    path = write(tmp_path / "d.vid3d.h5", random_capture())
    with h5py.File(path, "r+") as f:
        f["/mask/dynamic"][1] = 1  # the support no longer matches the stored vectors
    assert validate_bundle(path) == []
    assert any("holds" in p and "support" in p for p in validate_bundle(path, deep=True))


# -- re-packing ----------------------------------------------------------------------------------------


def test_repack_keeps_everything_and_requantising_is_exact(tmp_path):
    a = random_capture()
    fields = ("depth", "confidence", "prior", "dynamic_mask", "scene_flow")
    src = tmp_path / "f16.vid3d.h5"
    with BundleWriter(src, height=12, width=16, fps=15, source="clip.mp4", fields=fields, storage="float16",
                      units="m", metric_scale=True, attrs={"custom_note": "kept"}) as w:
        for t in range(4):
            w.append(rgb=a["rgb"][t], T_world_camera=a["T_world_camera"][t], K=a["K"], timestamp_s=0.5 * t,
                     source_frame=3 * t, **{n: a[n][t] for n in fields})
        w.set_meta("config", {"lr": 1e-3})
        w.set_meta_array("losses/total", np.arange(5, dtype=np.float32))
    default = repack_bundle(src, tmp_path / "default.vid3d.h5")
    again = repack_bundle(default, tmp_path / "again.vid3d.h5")
    with open_bundle(src) as s, open_bundle(default) as d, open_bundle(again) as g:
        assert d.attrs["format_version"] == "1.1.0" and d.attrs["custom_note"] == "kept"
        assert "f16.vid3d.h5" in d.attrs["repacked_from"]
        assert d.meta("config") == {"lr": 1e-3}
        np.testing.assert_array_equal(d.meta("losses/total"), np.arange(5))
        assert (d.attrs["units"], d.attrs["metric_scale"], d.attrs["source"], d.fps) == ("m", True, "clip.mp4", 15)
        np.testing.assert_array_equal(d.source_frames, s.source_frames)
        np.testing.assert_array_equal(d.timestamps_s, s.timestamps_s)
        np.testing.assert_allclose(d.T_world_camera, s.T_world_camera, atol=1e-7)
        for name in s.fields:
            np.testing.assert_array_equal(g.read(name), d.read(name))  # the same step twice: no new error
        np.testing.assert_allclose(d.read("depth"), s.read("depth"), rtol=2**-11)


def test_repack_onto_itself_and_interrupted_repack(tmp_path, monkeypatch):
    path = write(tmp_path / "c.vid3d.h5", random_capture(), storage="float16")
    before = path.read_bytes()

    def interrupted(self, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(BundleWriter, "append", interrupted)
    with pytest.raises(KeyboardInterrupt):
        repack_bundle(path, path, storage="compact")
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["c.vid3d.h5"]
    monkeypatch.undo()
    repack_bundle(path, path, storage="compact")
    with open_bundle(path) as b:
        assert b.encoding("rgb").name == "jpeg"
    assert sorted(os.listdir(tmp_path)) == ["c.vid3d.h5"]


def test_pack_cli(tmp_path, capsys):
    src = write(tmp_path / "c.vid3d.h5", random_capture(T=3, H=20, W=24), storage="float16")
    out = tmp_path / "small.vid3d.h5"
    code, stdout, err = run(["pack", src, out, "--compact"], capsys)
    assert code == 0, err
    assert "compact" in stdout and "smaller" in stdout
    with open_bundle(out) as b:
        assert b.encoding("rgb").name == "jpeg"
    for argv, message in ((["pack", tmp_path / "missing.h5", out], "no such bundle"),
                          (["pack", src, out, "--compact", "--float16"], "not both")):
        code, _, err = run(argv, capsys)
        assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    code, _, err = run(["pack", foreign, out], capsys)
    assert code == 2 and "not a vid3d bundle" in err
    with open_bundle(out) as b:  # the earlier output is untouched by the failed run
        assert b.encoding("rgb").name == "jpeg"


def test_info_states_the_bounds(tmp_path, capsys):
    import json

    path = write(tmp_path / "c.vid3d.h5", random_capture())
    code, out, err = run(["info", path], capsys)
    assert code == 0, err
    assert "precision" in out and "relative step" in out and "static ones exactly 0" in out
    assert "log_uint16_delta2d" in out
    code, out, _ = run(["info", path, "--json"], capsys)
    summary = json.loads(out)
    assert summary["precision"]["/depth/z"]["kind"] == "relative"
    assert summary["precision"]["/depth/z"]["max_error"] <= 2.0**-11
    assert summary["compression_ratio"] > 0


def test_optimize_compact_writes_a_compact_bundle(tmp_path, capsys, monkeypatch):
    from vid3d.cli import optimize as cli_optimize

    monkeypatch.setattr(cli_optimize, "DEMO_PRESET", "tiny_dynamic")
    out = tmp_path / "demo.vid3d.h5"
    code, _, err = run(["optimize", "--demo", "-o", out, "--stages", "frontend", "--gaps", "1,2,4",
                        "--quality", "draft", "-q", "--compact"], capsys)
    assert code == 0, err
    with open_bundle(out) as b:
        assert b.encoding("rgb").name == "jpeg"
        assert b.encoding("prior").bound["step"] == STORAGE_PRESETS["compact"].depth_rel_step
