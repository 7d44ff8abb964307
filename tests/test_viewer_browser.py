"""End to end in a real browser: headless Debian chromium (Playwright) opens `vid3d view`'s page,
the point cloud is drawn in the capture's colours, and moving the time slider changes the picture.

Skips (with the reason) only when playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import time

import numpy as np
import pytest

from vid3d.viewer.app.config import free_port

import vid3d  # noqa: F401  (zlib first)

CHROMIUM = os.environ.get("VID3D_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1000, "height": 640}




@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: browser test skipped")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium): browser test skipped")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    from vid3d.synthetic import SceneConfig, make_clip
    from vid3d.formats.bundle import write_bundle

    clip = make_clip(SceneConfig.preset("tiny_dynamic"))
    path = tmp_path_factory.mktemp("browser") / "tiny.vid3d.h5"
    write_bundle(path, rgb=clip.rgb, T_world_camera=clip.T_world_camera, K=clip.K, fps=clip.fps, source="tiny",
                 depth=clip.depth, dynamic_mask=clip.dynamic_mask)
    return clip, path


def _screenshot(page) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))


def _wait_for_picture(page, changed_from: np.ndarray | None, timeout_s: float) -> np.ndarray:
    """Screenshots until the scene region is not blank (and differs from ``changed_from``)."""
    deadline = time.time() + timeout_s
    while True:
        shot = _screenshot(page)
        region = _scene_region(shot)
        ready = region.std() > 20
        if changed_from is not None:
            ready = ready and np.abs(region.astype(float) - _scene_region(changed_from).astype(float)).mean() > 3
        if ready or time.time() > deadline:
            return shot
        page.wait_for_timeout(500)


def _scene_region(shot: np.ndarray) -> np.ndarray:
    # the 3-D canvas left of the control panel, below the "software WebGL" toast
    H, W = shot.shape[:2]
    return shot[int(0.3 * H):int(0.95 * H), int(0.05 * W):int(0.55 * W)]


def _fraction_in_palette(region: np.ndarray, rgb: np.ndarray, tol: float) -> float:
    from scipy.spatial import cKDTree

    palette = np.unique(rgb.reshape(-1, 3), axis=0).astype(float)
    d, _ = cKDTree(palette).query(region.reshape(-1, 3).astype(float), k=1)
    return float((d <= tol).mean())


def test_page_draws_the_cloud_and_the_slider_moves_time(browser, capture):
    from vid3d.viewer.app import ViewerConfig, ViewerSession

    clip, path = capture
    session = ViewerSession(path, ViewerConfig(port=free_port(), device="cpu"))  # defaults: frustums on
    session.start()
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(session.url)
        page.wait_for_selector("canvas", timeout=30_000)
        page.get_by_text("Connected").first.wait_for(timeout=30_000)
        shot0 = _wait_for_picture(page, None, timeout_s=20)
        region0 = _scene_region(shot0)
        # drawn: the view through frame 0's camera is covered by points in the capture's colours
        assert region0.std() > 20, "the scene is blank: no point cloud drawn"
        white = (region0.min(axis=-1) > 235).mean()
        assert white < 0.05, f"{white:.0%} of the view is background: the cloud does not fill it"
        in_palette = _fraction_in_palette(region0, clip.rgb[0], tol=24.0)
        assert in_palette > 0.7, f"only {in_palette:.0%} of pixels have the capture's colours"

        # move the time slider through its number box (arrow keys would move the camera)
        box = next(i for i in page.locator("input:visible").all() if i.input_value() == "0")
        box.fill(str(clip.rgb.shape[0] - 1))
        box.press("Enter")
        deadline = time.time() + 15
        while session.stats.frame != clip.rgb.shape[0] - 1 and time.time() < deadline:
            time.sleep(0.05)
        assert session.stats.frame == clip.rgb.shape[0] - 1, "the slider did not reach the server"
        shot1 = _wait_for_picture(page, shot0, timeout_s=20)
        diff = np.abs(_scene_region(shot1).astype(float) - region0.astype(float)).mean(axis=-1)
        assert (diff > 30).mean() > 0.05, "the picture did not change with the frame"
        assert _fraction_in_palette(_scene_region(shot1), clip.rgb[-1], tol=24.0) > 0.6

        # "follow the recorded camera" moves the browser's camera to the current frame's pose
        session.gui.follow.value = True
        target = clip.T_world_camera[-1][:3, 3]
        client = next(iter(session.server.get_clients().values()))
        deadline = time.time() + 15
        while time.time() < deadline and not np.allclose(client.camera.position, target, atol=1e-3):
            time.sleep(0.05)
        np.testing.assert_allclose(client.camera.position, target, atol=1e-3)
        session.gui.follow.value = False

        # an effect: rendered on the server from this browser's camera, shown as the background image
        fx = session.effects
        fx.aperture.value = 30.0
        fx.focus.value = fx.focus.min  # everything far behind the focus: strongly blurred
        shot_sharp = _screenshot(page)
        fx.effect.value = "Bokeh"
        assert fx.renderer_loaded, fx.renderer_error
        assert not session.cloud.visible
        deadline = time.time() + 30
        while fx.last_image is None and time.time() < deadline:
            time.sleep(0.1)
        assert fx.last_image is not None, "no effect render reached the browser"
        h, w = fx.last_image.shape[:2]
        assert w / h == pytest.approx(client.camera.aspect, rel=0.05)  # rendered for this browser's view
        shot_fx = _wait_for_picture(page, shot_sharp, timeout_s=20)
        if os.environ.get("VID3D_SAVE_SCREENSHOTS"):
            from PIL import Image

            for name, img in (("sharp", shot_sharp), ("bokeh", shot_fx), ("frame0", shot0), ("frame_last", shot1)):
                Image.fromarray(img).save(os.path.join(os.environ["VID3D_SAVE_SCREENSHOTS"], f"viewer_{name}.png"))
        region = _scene_region(shot_fx).astype(float)
        sharpness = np.abs(np.diff(region, axis=1)).mean()
        assert region.std() > 10, "the effect image is blank"
        assert sharpness < 0.7 * np.abs(np.diff(_scene_region(shot_sharp).astype(float), axis=1)).mean()
    finally:
        page.close()
        session.stop()
