"""Joint bilateral upsampling of the training-resolution residual: its torch path against the slow
twin, and the point of it: no halo of the wrong correction across a depth edge the prior has sharp."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vid3d.optimizer.train.upsample import joint_bilateral_upsample, joint_bilateral_upsample_reference


@pytest.mark.parametrize("seed,size", [(0, (7, 9)), (1, (5, 6))])
def test_fast_path_matches_reference_twin(seed, size):
    rng = np.random.default_rng(seed)
    h, w = size
    H, W = 3 * h - 1, 2 * w + 3  # not an integer factor
    low = rng.normal(size=(h, w))
    guide_full = rng.normal(size=(H, W)) * 0.2
    guide_low = F.interpolate(torch.from_numpy(guide_full)[None, None], size=(h, w), mode="bilinear",
                              antialias=True, align_corners=False)[0, 0].numpy()
    fast = joint_bilateral_upsample(torch.from_numpy(low).float(), torch.from_numpy(guide_low).float(),
                                    torch.from_numpy(guide_full).float(), 0.1).numpy()
    slow = joint_bilateral_upsample_reference(low, guide_low, guide_full, 0.1)
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


def test_a_correction_stays_on_its_own_side_of_a_depth_edge():
    """Left half: a near surface (log depth 0) whose correction is +0.2; right half: a far one (log
    depth 1) corrected by 0. Bilinear upsampling smears +0.1 onto the far side of the edge; the guided
    one keeps each side's own value up to the edge."""
    H, W, f = 24, 32, 4
    guide_full = np.zeros((H, W), np.float32)
    guide_full[:, 15:] = 1.0  # the edge between two low-res pixels' footprints is not aligned
    g = torch.from_numpy(guide_full)
    guide_low = F.interpolate(g[None, None], size=(H // f, W // f), mode="bilinear", antialias=True,
                              align_corners=False)[0, 0]
    low = torch.where(guide_low < 0.5, 0.2, 0.0)
    up = joint_bilateral_upsample(low, guide_low, g, 0.1).numpy()
    bil = F.interpolate(low[None, None], size=(H, W), mode="bilinear", align_corners=False)[0, 0].numpy()
    near, far = guide_full < 0.5, guide_full >= 0.5
    assert np.abs(up[far]).max() < 0.03 and np.abs(up[near] - 0.2).max() < 0.05
    assert np.abs(bil[far]).max() > 0.05  # the halo the guide removes
    # away from the edge both agree
    np.testing.assert_allclose(up[:, :8], bil[:, :8], atol=1e-3)
    np.testing.assert_allclose(up[:, 24:], bil[:, 24:], atol=1e-3)


def test_a_guide_that_matches_nothing_keeps_the_bilinear_value():
    low = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    up = joint_bilateral_upsample(low, torch.zeros(3, 4), torch.full((6, 8), 50.0), 0.1)
    bil = F.interpolate(low[None, None], size=(6, 8), mode="bilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(up, bil)


def test_bad_inputs_are_refused():
    with pytest.raises(Exception, match="sigma"):
        joint_bilateral_upsample(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(4, 4), 0.0)
    with pytest.raises(Exception, match="joint_bilateral_upsample"):
        joint_bilateral_upsample(torch.zeros(2, 2), torch.zeros(3, 2), torch.zeros(4, 4), 0.1)
