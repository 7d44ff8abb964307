"""PyDNet v2 prior: torch executor vs its numpy twin, TF pins (SAME padding, legacy resize), file
errors, the real research-only file when ../shared has it, and the prior stage with a tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import vid3d  # noqa: F401
from vid3d.formats.errors import InputError, ShapeError
from vid3d.optimizer.prior import PriorConfig, available_backends
from vid3d.optimizer.prior import run as estimate_prior
from vid3d.optimizer.prior.pydnet import (
    Graph, Op, PyDNet, PyDNetSpec, build_graph, check_graph, load_graph, pydnet_disparity, reference_disparity,
    resize_bilinear_legacy, same_padding, save_graph,
)
from vid3d.optimizer.prior.pydnet.reference import legacy_resize_matrix, tf_same_pads

TINY = PyDNetSpec(height=64, width=128, encoder=(3, 5, 7), decoder=(6, 4))  # odd widths, 3 stride-2 levels
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "models" / "pydnet_v2" / "pydnet_v2_half_float16.tflite"
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="../shared/models/pydnet_v2 is absent")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    return save_graph(build_graph(TINY, seed=0), tmp_path_factory.mktemp("pydnet") / "pydnet_tiny.npz")


@pytest.fixture(scope="module")
def real_net() -> PyDNet:
    return PyDNet.from_tflite(REAL)


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()


def _hololens_frame(index: int = 0):
    import cv2

    root = SHARED / "data" / "hololens_dvmvs"
    name = sorted((root / "images").iterdir())[index].name
    rgb = cv2.cvtColor(cv2.imread(str(root / "images" / name)), cv2.COLOR_BGR2RGB)
    depth = cv2.imread(str(root / "depth" / name), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000.0
    return rgb, depth


# --- TF pins --------------------------------------------------------------------------------------


def test_same_padding_is_tf_same_and_asymmetric():
    assert same_padding(384, 3, 2) == (0, 1)  # stride 2, even size: the extra pixel goes after
    assert same_padding(12, 2, 1) == (0, 1)  # PyDNet's 2x2 convs
    assert same_padding(7, 3, 2) == (1, 1) and same_padding(5, 1, 1) == (0, 0)
    for n in range(1, 20):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                assert same_padding(n, k, s) == tf_same_pads(n, k, s), (n, k, s)


def test_legacy_resize_matches_hand_computed_example():
    x = torch.tensor([[0.0, 10.0, 20.0], [30.0, 40.0, 50.0]])[None, None]  # (1, 1, 2, 3)
    # src = dst * in / out: columns 0, .5, 1, 1.5, 2, 2.5 (clamped), rows 0, .5, 1, 1.5 (clamped)
    want = torch.tensor([[0, 5, 10, 15, 20, 20], [15, 20, 25, 30, 35, 35],
                         [30, 35, 40, 45, 50, 50], [30, 35, 40, 45, 50, 50]], dtype=torch.float32)
    torch.testing.assert_close(resize_bilinear_legacy(x, (4, 6))[0, 0], want)
    R = legacy_resize_matrix(3, 6)
    np.testing.assert_allclose(R @ np.array([0.0, 10, 20]), [0, 5, 10, 15, 20, 20])
    # downsizing 4 -> 2 samples columns 0 and 2; torch's half-pixel bilinear would not
    torch.testing.assert_close(resize_bilinear_legacy(torch.arange(4.0)[None, None, None], (1, 2)).flatten(),
                               torch.tensor([0.0, 2.0]))
    half_pixel = torch.nn.functional.interpolate(x, size=(4, 6), mode="bilinear", align_corners=False)
    assert not torch.allclose(half_pixel[0, 0], want)


# --- torch module vs numpy twin (tiny random network) ---------------------------------------------


@pytest.mark.parametrize("size", [(64, 128), (128, 64), (24, 40)])
def test_torch_matches_reference_on_tiny_network(tiny_file, size):
    net = PyDNet.load(tiny_file)
    assert net.multiple == 8
    image = np.random.default_rng(size[0]).uniform(0, 1, (*size, 3))
    with torch.no_grad():
        got = net(_nchw(image), clamp=False)[0, 0].double().numpy()
    want = reference_disparity(net.graph, image, clamp=False)
    assert got.shape == size and np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert (reference_disparity(net.graph, image) >= 0).all()


def test_gradients_match_finite_differences_in_float64():
    net = PyDNet(build_graph(PyDNetSpec(height=8, width=8, encoder=(2, 3), decoder=(3, 2)), seed=1)).double()
    x = torch.rand(1, 3, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net(t, clamp=False), (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_save_load_round_trip_keeps_fine_tuned_weights(tiny_file, tmp_path):
    net = PyDNet.load(tiny_file)
    with torch.no_grad():
        net.convs[0].weight.mul_(1.5)
    x = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(1))
    again = PyDNet.load(net.save(tmp_path / "pydnet_tuned.npz"))
    torch.testing.assert_close(again(x), net(x))
    fresh = PyDNet(build_graph(TINY, seed=5))
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh(x), net(x))
    with pytest.raises(ShapeError, match="multiples of 8"):
        net(torch.zeros(1, 3, 60, 128))


# --- file errors ----------------------------------------------------------------------------------


def test_bad_files_give_one_line_input_errors(tmp_path):
    (tmp_path / "notes.tflite").write_text("not a model\n")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    cases = [(tmp_path / "missing.tflite", "does not exist"), (tmp_path / "notes.tflite", "not a TFLite model"),
             (tmp_path / "other.npz", "neither a TFLite model nor")]
    for path, message in cases:
        with pytest.raises(InputError, match=message) as exc:
            load_graph(path)
        assert "\n" not in str(exc.value)
    g = build_graph(TINY)
    odd = Graph(g.input, g.output, g.shapes, (Op("ADD", (0, 0), (99,)),) + g.ops, g.constants)
    with pytest.raises(InputError, match="ADD.*not supported"):
        check_graph(odd)


@needs_real
def test_unsupported_op_in_a_tflite_file_is_named(tmp_path):
    from vid3d.optimizer.prior.pydnet.tflite_graph import _Table

    buf = bytearray(REAL.read_bytes())
    model = _Table(bytes(buf), int.from_bytes(buf[:4], "little"))
    # LEAKY_RELU (98) -> ADD (0); this 2020 file has only the int8 deprecated_builtin_code field
    code = next(c for c in model.tables(1) if max(c.scalar(0, "b"), c.scalar(3, "i")) == 98)
    buf[code.pos + code._offset(0)] = 0
    if code._offset(3):
        buf[code.pos + code._offset(3) : code.pos + code._offset(3) + 4] = bytes(4)
    (tmp_path / "patched.tflite").write_bytes(bytes(buf))
    with pytest.raises(InputError, match="op code 0 is not supported"):
        load_graph(tmp_path / "patched.tflite")


# --- the real file --------------------------------------------------------------------------------


@needs_real
def test_real_file_has_pydnet_v2_layout(real_net):
    ref = build_graph(PyDNetSpec())
    assert [op.kind for op in real_net.graph.ops] == [op.kind for op in ref.ops]
    assert [c.weight.shape for c in real_net.convs] == [c.weight.shape for c in PyDNet(ref).convs]
    assert real_net.input_size == (384, 640) and real_net.multiple == 64
    assert sum(p.numel() for p in real_net.parameters()) == 1_971_697


@needs_real
@pytest.mark.shared_data
def test_real_network_matches_reference_and_trains(real_net, shared_data):
    import cv2

    rgb, _ = _hololens_frame()
    image = cv2.resize(rgb, (192, 128), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    x = _nchw(image)
    with torch.no_grad():
        got = real_net(x)[0, 0].double().numpy()
    want = reference_disparity(real_net.graph, image)
    assert got.shape == (128, 192) and (got >= 0).all() and want.max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())
    real_net.zero_grad()
    real_net(x).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in real_net.parameters())


@needs_real
@pytest.mark.shared_data
def test_real_disparity_ranks_like_ground_truth_inverse_depth(shared_data):
    from scipy.stats import spearmanr

    frames = [_hololens_frame(i) for i in (0, 10)]  # Spearman 0.75, 0.91 (frame 20 is a hard one: 0.27)
    disp = pydnet_disparity(np.stack([f[0] for f in frames]), weights=REAL, device="cpu")
    assert disp.shape == (2, *frames[0][0].shape[:2]) and (disp >= 0).all()
    for d, (_, z) in zip(disp, frames):
        valid = z > 0
        assert spearmanr(d[valid], 1 / z[valid]).statistic > 0.5


# --- configuration, CLI, the prior stage ----------------------------------------------------------


def test_unknown_weights_path_is_a_one_line_error(capsys):
    from vid3d.cli import main

    with pytest.raises(InputError, match="do not exist"):
        PriorConfig(backend="pydnet", weights="/nonexistent/pydnet.tflite")
    with pytest.raises(SystemExit) as exc:
        main(["optimize", "a.mp4", "--prior", "pydnet", "--prior-weights", "/nonexistent/pydnet.tflite"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: ") and "do not exist" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_stage_runs_pydnet_through_the_weights_path(tiny_file, tmp_path, monkeypatch):
    from test_prior import poses_from_ground_truth

    from vid3d.optimizer.prior import learned
    from vid3d.synthetic import make_clip

    monkeypatch.setenv("VID3D_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ok, reason = available_backends()["pydnet"]
    assert not ok and "pydnet" in reason  # nothing found: auto keeps its plain default
    clip = make_clip("tiny_static")
    poses = poses_from_ground_truth(clip)
    result = estimate_prior(clip.rgb, poses, PriorConfig(backend="pydnet", weights=str(tiny_file)))
    assert result.backend == "pydnet" and result.depth.shape == clip.depth.shape
    assert (result.depth > 0).all() and np.isfinite(result.depth).all()
    # found in $VID3D_MODELS by its name: auto picks it when the bigger networks are not usable
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_file, tmp_path / "models" / "pydnet_tiny.tflite")  # loaded by content, not suffix
    monkeypatch.setattr(learned, "depth_anything_status", lambda allow=False: (False, "test"))
    monkeypatch.setattr(learned, "midas_status", lambda allow=False: (False, "test"))
    assert estimate_prior(clip.rgb, poses, PriorConfig()).backend == "pydnet"
