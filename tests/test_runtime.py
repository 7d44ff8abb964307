"""The shared runtime helpers: one device resolver, one weights lookup, one frame-range parser."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vid3d  # noqa: F401
from vid3d.formats.errors import InputError
from vid3d.runtime import (
    WeightsMissingError,
    find_weights,
    model_dirs,
    parse_frame_range,
    resolve_device,
    weights_status,
)


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_device_name_does_not_import_torch_without_a_gpu_node(tmp_path):
    code = ("import sys, os, vid3d.runtime as r\n"
            "gpu = any(os.path.exists(p) for p in ('/dev/nvidiactl', '/dev/nvidia0'))\n"
            "name = r.device_name('auto')\n"
            "assert gpu or (name == 'cpu' and 'torch' not in sys.modules), (name, gpu)\n"
            "assert r.device_name('cpu') == 'cpu'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _tiny_checkpoint(path):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 1, 3)  # a tiny randomly initialised "model"
    torch.save(net.state_dict(), path)
    return net


def test_find_weights_search_order(tmp_path, monkeypatch):
    import torch

    env, cache = tmp_path / "env", tmp_path / "xdg"
    monkeypatch.setenv("VID3D_MODELS", str(env))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert model_dirs() == [env, cache / "vid3d" / "models"]
    with pytest.raises(WeightsMissingError) as err:
        find_weights("midas")
    message = str(err.value)
    assert str(env) in message and str(cache / "vid3d" / "models") in message and "\n" not in message
    # user cache, in the model's own sub-folder
    (cache / "vid3d" / "models" / "midas").mkdir(parents=True)
    in_cache = cache / "vid3d" / "models" / "midas" / "dpt_hybrid_384.pt"
    net = _tiny_checkpoint(in_cache)
    assert find_weights("midas") == in_cache
    # $VID3D_MODELS comes first
    env.mkdir()
    _tiny_checkpoint(env / "dpt_hybrid_384.pt")
    assert find_weights("midas") == env / "dpt_hybrid_384.pt"
    # an explicit path wins, and what is found loads
    assert find_weights("midas", in_cache) == in_cache
    state = torch.load(find_weights("midas", in_cache.parent), map_location="cpu")
    assert torch.equal(state["weight"], net.state_dict()["weight"])
    with pytest.raises(WeightsMissingError, match="not found at"):
        find_weights("midas", tmp_path / "nowhere.pt")
    with pytest.raises(InputError, match="unknown model"):
        find_weights("nope")


def test_weights_status_names_missing_packages(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    usable, reason = weights_status("midas")
    assert not usable and "timm" in reason


@pytest.mark.parametrize("text, expect", [
    (None, [0, 1, 2, 3, 4]), ("", [0, 1, 2, 3, 4]), ("1:4", [1, 2, 3]), ("::2", [0, 2, 4]), ("3", [3]),
    ("-1", [4]), ("2:", [2, 3, 4]),
])
def test_parse_frame_range(text, expect):
    assert parse_frame_range(text, 5) == expect


@pytest.mark.parametrize("text, message", [
    ("a:b", "START:END"), ("9:12", "selects no frame"), ("1:2:0", "positive STEP"), ("7", "out of range"),
    ("1:2:3:4", "START:END"),
])
def test_parse_frame_range_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_frame_range(text, 5)
