"""Moving objects get the depth of where they stand, never the depth of the wall behind them."""

import numpy as np
import pytest

from vid3d.optimizer.prior.movers import mover_depth, mover_depth_reference


def _room(H=96, W=128, f=100.0, cam_height=0.6, wall=6.0):
    """Camera looking horizontally at a wall ``wall`` m away over a floor ``cam_height`` m below:
    z-depth (H, W) of each pixel (pixel centres at +0.5)."""
    cy = H / 2
    y = np.arange(H)[:, None] + 0.5
    z_floor = np.where(y > cy, f * cam_height / np.maximum(y - cy, 1e-9), np.inf)
    return np.broadcast_to(np.minimum(z_floor, wall), (H, W)).astype(np.float32), f, cy


def _person(depth, f, cy, z, x0, x1, cam_height=0.6, height=1.7):
    """Mask and true depth of an upright plane at depth z standing on the floor, columns x0:x1."""
    H, W = depth.shape
    foot = int(np.floor(cy + f * cam_height / z))
    head = int(np.ceil(cy - f * (height - cam_height) / z))
    mask = np.zeros((H, W), bool)
    mask[max(head, 0):foot, x0:x1] = True
    truth = depth.copy()
    truth[mask] = z
    return mask, truth


def test_a_person_on_the_floor_gets_the_floor_depth_where_they_stand():
    bg, f, cy = _room()
    mask, truth = _person(bg, f, cy, z=2.5, x0=40, x1=60)
    conf = np.where(mask, 0.0, 1.0).astype(np.float32)
    out, regions = mover_depth(bg, conf, mask)
    assert len(regions) == 1 and regions[0].how == "contact"
    rel = np.abs(out[mask] - truth[mask]) / truth[mask]
    assert rel.max() < 0.1, rel.max()
    # the filled-in background (the wall behind) would have been off by more than 100 %
    assert (np.abs(bg[mask] - truth[mask]) / truth[mask]).mean() > 1.0
    assert np.array_equal(out[~mask], bg[~mask])  # static pixels untouched


def test_two_people_each_get_their_own_depth():
    bg, f, cy = _room()
    m1, t1 = _person(bg, f, cy, z=2.0, x0=10, x1=30)
    m2, t2 = _person(bg, f, cy, z=4.0, x0=80, x1=95)
    mask = m1 | m2
    truth = np.where(m1, t1, np.where(m2, t2, bg))
    out, regions = mover_depth(bg, np.where(mask, 0.0, 1.0).astype(np.float32), mask)
    assert sorted(r.how for r in regions) == ["contact", "contact"]
    assert np.abs(out[mask] - truth[mask]).max() / truth[mask].min() < 0.1


def test_a_mover_without_visible_contact_is_in_front_of_what_it_hides():
    bg, f, cy = _room()
    mask = np.zeros(bg.shape, bool)
    mask[60:, 50:70] = True  # runs off the bottom of the image: no ground visible below it
    out, regions = mover_depth(bg, np.where(mask, 0.0, 1.0).astype(np.float32), mask)
    assert regions[0].how == "in_front"
    assert (out[mask] < bg[mask]).all()
    assert (out[mask] > 0).all()


def test_untrusted_pixels_below_are_not_contact():
    bg, f, cy = _room()
    mask, _ = _person(bg, f, cy, z=2.5, x0=40, x1=60)
    conf = np.where(mask, 0.0, 1.0).astype(np.float32)
    conf[mask.any(1).nonzero()[0].max():, :] = 0.0  # nothing below the feet is confident
    _, regions = mover_depth(bg, conf, mask)
    assert regions[0].how == "in_front"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_path_matches_reference_twin(seed):
    rng = np.random.default_rng(seed)
    H, W = 24, 32
    depth = rng.uniform(1, 5, (H, W)).astype(np.float32)
    conf = rng.uniform(0, 1, (H, W)).astype(np.float32)
    mask = np.zeros((H, W), bool)
    for _ in range(3):
        y, x = rng.integers(0, H - 6), rng.integers(0, W - 6)
        mask[y:y + rng.integers(2, 10), x:x + rng.integers(2, 8)] = True
    fast, _ = mover_depth(depth, conf, mask)
    slow = mover_depth_reference(depth, conf, mask)
    np.testing.assert_allclose(fast, slow, rtol=1e-6)


def test_shapes_are_checked():
    from vid3d.formats.errors import ShapeError

    with pytest.raises(ShapeError):
        mover_depth(np.ones((4, 4)), np.ones((4, 4)), np.zeros((4, 5), bool))


def test_a_learned_mover_at_the_walls_depth_is_brought_in_front_of_what_it_hides():
    """A network's soft edge leaves a mover's rim at the wall's depth; place_in_front caps every
    moving pixel at 0.97 x its nearest static pixel's depth, and leaves the static pixels alone."""
    from vid3d.optimizer.prior.movers import FRONT_MARGIN, place_in_front

    bg, f, cy = _room()
    mask, truth = _person(bg, f, cy, z=2.5, x0=40, x1=60)
    learned = truth.copy()
    import cv2

    rim = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # a 2-pixel rim
    learned[rim] = bg[rim]  # ... at the depth of the wall behind it
    depth = np.stack([learned, truth])
    moving = np.stack([mask, mask])
    out, frac = place_in_front(depth, moving)
    assert np.array_equal(out[~moving], depth[~moving])  # static pixels untouched
    for t in range(2):
        assert (out[t][:, 40][mask[:, 40]] < out[t][:, 39][mask[:, 40]]).all()
        assert (out[t][:, 59][mask[:, 59]] < out[t][:, 60][mask[:, 59]]).all()
    assert out[0][rim].max() <= FRONT_MARGIN * bg[rim].max() + 1e-6  # the rim came forward
    # a mover already in front keeps its depth, but near its feet, where the floor just below is nearer
    rel = np.abs(out[1][mask] - truth[mask]) / truth[mask]
    assert np.median(rel) == 0.0 and rel.max() < 0.06
    assert 0 < frac < 0.5
    with pytest.raises(Exception, match="place_in_front"):
        place_in_front(depth[0], moving[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hidden_depth_matches_reference_twin(seed):
    from vid3d.optimizer.prior.movers import hidden_depth, hidden_depth_reference

    rng = np.random.default_rng(seed)
    depth = rng.uniform(1, 5, (12, 17)).astype(np.float32)
    moving = np.zeros((12, 17), bool)
    moving[3:9, 4:12] = True
    moving[rng.uniform(size=moving.shape) < 0.1] = True
    fast, slow = hidden_depth(depth, moving), hidden_depth_reference(depth, moving)
    assert np.array_equal(fast[~moving], depth[~moving])
    # ties between equally near static pixels may go either way: compare with the distance checked
    ys, xs = np.nonzero(~moving)
    for y, x in zip(*np.nonzero(moving)):
        d2 = (ys - y) ** 2 + (xs - x) ** 2
        assert fast[y, x] in depth[ys[d2 == d2.min()], xs[d2 == d2.min()]]
    assert np.mean(fast == slow) > 0.8


def test_trained_movers_without_signal_are_placed_again_on_the_refined_floor():
    """Under a plane-sweep prior the movers' trained depth is a by-product of the depth net; after
    training, place_on_contact gives each region the depth of its contact on the refined static depth:
    the floor scaled by 1.1 in training moves the person by the same 1.1, whatever was left on it."""
    from vid3d.optimizer.prior.movers import place_on_contact

    bg, f, cy = _room()
    mask, truth = _person(bg, f, cy, z=2.5, x0=40, x1=60)
    tiny = np.zeros_like(mask)
    tiny[5:7, 100:102] = True  # below MIN_REGION_FRACTION: left as it was
    trained = 1.1 * truth
    trained[mask] = 1.1 * bg[mask]  # the wall's depth leaked onto the person
    trained[tiny] = 7.0
    moving = mask | tiny
    conf = np.where(moving, 0.0, 1.0).astype(np.float32)
    depth = np.stack([trained, 1.1 * truth])
    out, frac = place_on_contact(depth, np.stack([moving, moving]), np.stack([conf, conf]))
    assert np.array_equal(out[:, ~moving], depth[:, ~moving])  # static pixels untouched
    for t in range(2):
        rel = np.abs(out[t][mask] - 1.1 * truth[mask]) / (1.1 * truth[mask])
        assert rel.max() < 0.1, rel.max()
        assert out[t][tiny].tolist() == depth[t][tiny].tolist()
    assert 0.9 < frac < 1.0
    with pytest.raises(Exception, match="place_on_contact"):
        place_on_contact(depth[0], moving, conf)
