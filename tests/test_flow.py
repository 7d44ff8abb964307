"""Optical flow stage: pairs, forward-backward validity (fast vs slow twin), DIS against synthetic GT."""

from __future__ import annotations

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.formats.errors import InputError, ShapeError
from vid3d.optimizer.flow import (
    FlowConfig,
    forward_backward_validity,
    forward_backward_validity_reference,
    frame_pairs,
    gaps_that_fit,
    make_backend,
    resize_flow,
    warp_bilinear,
    warp_bilinear_reference,
)
from vid3d.optimizer.flow import run as compute_flow


@pytest.fixture(scope="module")
def tiny_dynamic():
    from vid3d.synthetic import make_clip

    return make_clip("tiny_dynamic")


def test_pairs_cover_every_gap_both_directions():
    pairs = frame_pairs(5, (1, 2, 4))
    assert len(pairs) == 2 * (4 + 3 + 1)
    assert (0, 4) in pairs and (4, 0) in pairs and (3, 4) in pairs
    assert all((j, i) in pairs for i, j in pairs)


def test_short_clip_keeps_the_gaps_that_fit():
    assert gaps_that_fit(5, (1, 2, 4, 6, 8)) == ((1, 2, 4), (6, 8))
    assert gaps_that_fit(9, (1, 2, 4, 6, 8)) == ((1, 2, 4, 6, 8), ())
    with pytest.raises(InputError, match="needs at least 5"):
        gaps_that_fit(4, (4, 6))
    with pytest.raises(InputError, match="--gaps"):
        FlowConfig(gaps=(0, 1))


def test_warp_matches_slow_twin():
    rng = np.random.default_rng(0)
    img = rng.random((12, 16, 2)).astype(np.float32)
    flow = rng.normal(0, 3, (12, 16, 2)).astype(np.float32)
    # cv2.remap quantises the bilinear weights to 1/32: differences stay below 1/32 of the value range
    np.testing.assert_allclose(warp_bilinear(img, flow), warp_bilinear_reference(img, flow), atol=1 / 32)


def test_forward_backward_validity_matches_slow_twin_and_hand_case():
    rng = np.random.default_rng(1)
    f = rng.normal(0, 2, (10, 14, 2)).astype(np.float32)
    b = (-f + rng.normal(0, 0.8, f.shape)).astype(np.float32)
    fast = forward_backward_validity(f, b, 1.0)
    slow = forward_backward_validity_reference(f, b, 1.0)
    assert (fast == slow).mean() > 0.97  # cv2.remap's fixed-point weights flip a few borderline pixels
    # hand case: a uniform shift of +3 px in x, exactly undone: valid except where it leaves the image
    shift = np.zeros((4, 8, 2), np.float32)
    shift[..., 0] = 3
    valid = forward_backward_validity(shift, -shift, 1.0)
    assert valid[:, :5].all() and not valid[:, 5:].any()
    assert not forward_backward_validity(shift, np.zeros_like(shift), 1.0).any()  # 3 px inconsistent


def test_resize_flow_rescales_vectors():
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    out = resize_flow(flow, 20, 60)
    assert out.shape == (20, 60, 2)
    np.testing.assert_allclose(out[..., 0], 6.0)
    np.testing.assert_allclose(out[..., 1], -2.0)


def test_dis_flow_against_ground_truth(tiny_dynamic):
    clip = tiny_dynamic
    fs = compute_flow(clip.rgb, FlowConfig(gaps=(1, 2, 4)))
    assert len(fs.pairs) == 2 * (7 + 6 + 4) and fs.flow.shape[1:] == (64, 96, 2)
    medians, agree, inv_occ, inv_vis = [], [], [], []
    for k, (i, j) in enumerate(fs.pairs):
        gt, gt_valid = clip.optical_flow(int(i), int(j))
        err = np.linalg.norm(fs.flow[k] - gt, axis=-1)
        medians.append(np.median(err[gt_valid]))
        agree.append((fs.valid[k] == gt_valid).mean())
        inv_occ.append((~fs.valid[k][~gt_valid]).mean())
        inv_vis.append((~fs.valid[k][gt_valid]).mean())
    assert np.mean(medians) < 0.6  # px, at 96x64 with gaps up to 4
    assert np.mean(agree) > 0.8
    assert np.mean(inv_occ) > 3 * np.mean(inv_vis)  # occluded pixels are flagged far more often
    flows = fs.as_dict()
    f01, v01 = flows[(0, 1)]
    assert f01.shape == (64, 96, 2) and v01.dtype == bool


def test_raft_without_local_weights_is_a_clear_error_or_falls_back():
    with pytest.raises(InputError, match="raft is unavailable"):
        make_backend(FlowConfig(backend="raft"))
    assert make_backend(FlowConfig(backend="auto")).name.startswith("dis")


def test_bad_clip_shape():
    with pytest.raises(ShapeError):
        compute_flow(np.zeros((3, 8, 8), np.uint8))
