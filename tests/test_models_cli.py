"""``vid3d models``: listing (text, JSON), fetch from a local HTTP server (atomic, checksums, offline
message), import (by file name, by --name, --link), refusals; a tiny random Depth Anything model loaded
through the prior's loading code. Never a download: every URL points at 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading
import urllib.parse
import urllib.request

import numpy as np
import pytest

import vid3d  # noqa: F401
from vid3d.cli import main
from vid3d.runtime import weights
from vid3d.runtime.download import MANIFEST, MIRROR_ENV
from vid3d.runtime.weights import SOURCES, find_weights, install_path

DA_PATH = "/depth-anything/Depth-Anything-V2-Small-hf/resolve/main/"
RAFT_PATH = "/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth"


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache; no $VID3D_MODELS, no torch hub or Hugging Face cache hits."""
    import torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VID3D_MODELS", raising=False)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "_hf_snapshot", lambda repo: None)
    return tmp_path / "xdg" / "vid3d" / "models"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("this command must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


class _Server:
    """A local HTTP server in a thread: ``files`` path -> bytes; paths in ``cut`` announce their full size
    but send half of it and close the connection (a server dying mid-way)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.cut:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    s = _Server()
    monkeypatch.setenv(MIRROR_ENV, s.url)
    yield s
    s.close()


def _serve_model(server, monkeypatch, name: str, contents: dict[str, bytes]) -> None:
    """Serve ``contents`` (file name -> bytes) at the model's origin paths, with their SHA-256 pinned."""
    source = SOURCES[name]
    files = []
    for remote in source.files:
        data = contents[remote.name]
        server.files[urllib.parse.urlsplit(remote.url).path] = data
        files.append(dataclasses.replace(remote, sha256=_sha(data), size=len(data)))
    monkeypatch.setitem(SOURCES, name, dataclasses.replace(source, files=tuple(files)))


FAKE_DA = {"config.json": b'{"model_type": "depth_anything"}', "preprocessor_config.json": b"{}",
           "model.safetensors": bytes(range(256)) * 64}


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


# --- listing --------------------------------------------------------------------------------------------


def test_list_says_what_is_usable_and_how_to_get_the_rest(cache, no_network, capsys):
    (cache / "pydnet").mkdir(parents=True)
    (cache / "pydnet" / "pydnet_v2.tflite").write_bytes(b"tflite")
    code, out, err = _run(["models"], capsys)
    assert code == 0, err
    for name in weights.MODELS:
        assert name in out
    assert "vid3d models fetch depth_anything" in out and "vid3d models import PATH" in out
    assert "research use only" in out
    pydnet_line = next(line for line in out.splitlines() if line.startswith("pydnet"))
    assert "not usable" not in pydnet_line and str(cache / "pydnet" / "pydnet_v2.tflite") in out
    assert "--prior auto picks pydnet" in out

    code, out, _ = _run(["models", "--json"], capsys)
    assert code == 0
    listing = json.loads(out)
    assert listing == json.loads(_run(["models", "list", "--json"], capsys)[1])
    models = {m["name"]: m for m in listing["models"]}
    assert list(models) == list(weights.MODELS)
    assert models["pydnet"]["usable"] and models["pydnet"]["weights"].endswith("pydnet_v2.tflite")
    assert not models["pydnet"]["fetchable"] and models["depth_anything"]["fetchable"]
    da = models["depth_anything"]
    assert not da["usable"] and da["weights"] is None and "vid3d models fetch depth_anything" in da["reason"]
    assert listing["prior_auto"]["backend"] == "pydnet" and listing["user_cache"] == str(cache)


def test_list_names_the_pip_line_of_a_missing_package(cache, no_network, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "transformers" else real(name, *a))
    code, out, _ = _run(["models"], capsys)
    assert code == 0 and "needs transformers: pip install 'vid3d[learned]'" in out
    assert "--prior auto picks geometric: no learned depth model is usable here" in out


# --- fetch ------------------------------------------------------------------------------------------------


def test_fetch_downloads_into_the_cache_from_a_local_server(cache, server, monkeypatch, capsys):
    _serve_model(server, monkeypatch, "depth_anything", FAKE_DA)
    code, out, err = _run(["models", "fetch", "depth-anything", "-q"], capsys)
    assert code == 0, err
    folder = cache / "depth_anything_v2_small"
    assert folder == install_path("depth_anything") and str(folder) in out
    for name, data in FAKE_DA.items():
        assert (folder / name).read_bytes() == data
    manifest = json.loads((folder / MANIFEST).read_text())
    assert {f["file"]: f["sha256"] for f in manifest["files"]} == {n: _sha(d) for n, d in FAKE_DA.items()}
    assert manifest["files"][0]["url"].startswith(server.url)
    assert find_weights("depth_anything") == folder
    assert _leftovers(cache) == []
    server.files.clear()  # already there: no request at all
    code, out, _ = _run(["models", "fetch", "depth_anything"], capsys)
    assert code == 0 and "already at" in out


def test_fetch_of_a_file_model(cache, server, monkeypatch, capsys):
    _serve_model(server, monkeypatch, "raft", {"raft_large_C_T_SKHT_V2-ff5fadd5.pth": b"raft weights"})
    code, out, err = _run(["models", "fetch", "raft", "-q", "--url", server.url], capsys)
    assert code == 0, err
    path = cache / "raft" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    assert path.read_bytes() == b"raft weights" and str(path) in out


@pytest.mark.parametrize("model, path, contents", [
    ("depth_anything", DA_PATH + "model.safetensors", FAKE_DA),
    ("raft", RAFT_PATH, {"raft_large_C_T_SKHT_V2-ff5fadd5.pth": b"r" * 5000}),
])
def test_a_server_dying_mid_way_leaves_nothing(cache, server, monkeypatch, capsys, model, path, contents):
    _serve_model(server, monkeypatch, model, contents)
    server.cut.add(path)
    code, _, err = _run(["models", "fetch", model, "-q"], capsys)
    assert code == 2 and err.startswith("error: could not download") and err.count("\n") == 1, err
    assert "vid3d models import PATH" in err
    assert not install_path(model).exists() and _leftovers(cache) == []


def test_fetch_checks_the_pinned_size_and_sha256(cache, server, monkeypatch, capsys):
    pinned = SOURCES["depth_anything"].files[-1]
    assert pinned.name == "model.safetensors" and len(pinned.sha256) == 64
    for name, data in FAKE_DA.items():
        server.files[DA_PATH + name] = data
    code, _, err = _run(["models", "fetch", "depth_anything", "-q"], capsys)
    assert code == 2 and "error: could not download" in err
    assert f"got {len(FAKE_DA['model.safetensors'])} bytes, expected {pinned.size}" in err
    assert not install_path("depth_anything").exists() and _leftovers(cache) == []
    unsized = dataclasses.replace(pinned, size=None)  # the size unknown: the SHA-256 still catches it
    source = SOURCES["depth_anything"]
    monkeypatch.setitem(SOURCES, "depth_anything", dataclasses.replace(source, files=(*source.files[:2], unsized)))
    code, _, err = _run(["models", "fetch", "depth_anything", "-q"], capsys)
    assert code == 2 and f"differs from the expected {pinned.sha256}" in err
    assert not install_path("depth_anything").exists() and _leftovers(cache) == []


def test_offline_is_one_line(cache, monkeypatch, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")
    code, out, err = _run(["models", "fetch", "raft", "-q"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: could not download http://127.0.0.1:{port}{RAFT_PATH}: ")
    assert err.rstrip().endswith("download it elsewhere and run vid3d models import PATH")
    assert not install_path("raft").exists()


@pytest.mark.parametrize("model, message", [("pydnet", "research use only"), ("midas", "torch.hub"),
                                            ("nope", "unknown model")])
def test_fetch_refuses_what_vid3d_does_not_download(cache, no_network, capsys, model, message):
    code, _, err = _run(["models", "fetch", model], capsys)
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1


# --- import -----------------------------------------------------------------------------------------------


def test_import_by_file_name_and_by_name(cache, no_network, tmp_path, capsys):
    raft = tmp_path / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    raft.write_bytes(b"raft")
    code, out, err = _run(["models", "import", str(raft)], capsys)
    assert code == 0, err
    assert find_weights("raft") == cache / "raft" / raft.name and (cache / "raft" / raft.name).read_bytes() == b"raft"

    midas = tmp_path / "my_weights.pt"  # a name vid3d cannot tell: --name, stored under a name it finds
    midas.write_bytes(b"midas")
    code, _, err = _run(["models", "import", str(midas)], capsys)
    assert code == 2 and "cannot tell which model" in err and "--name NAME" in err
    code, out, err = _run(["models", "import", str(midas), "--name", "midas"], capsys)
    assert code == 0, err
    assert find_weights("midas").read_bytes() == b"midas"
    code, _, err = _run(["models", "import", str(midas), "--name", "midas"], capsys)
    assert code == 2 and "--force" in err
    midas.write_bytes(b"midas 2")
    assert _run(["models", "import", str(midas), "--name", "midas", "--force"], capsys)[0] == 0
    assert find_weights("midas").read_bytes() == b"midas 2"
    assert _leftovers(cache) == []


def test_import_a_folder_and_link(cache, no_network, tmp_path, capsys):
    snapshot = tmp_path / "snapshots" / "0123abcd"  # a Hugging Face snapshot: told by its config.json
    snapshot.mkdir(parents=True)
    for name, data in FAKE_DA.items():
        (snapshot / name).write_bytes(data)
    code, out, err = _run(["models", "import", str(snapshot), "--link"], capsys)
    assert code == 0, err
    folder = cache / "depth_anything_v2_small"
    assert folder.is_symlink() and folder.resolve() == snapshot.resolve()
    assert find_weights("depth_anything") == folder
    code, _, err = _run(["models", "import", str(snapshot), "--force"], capsys)  # a copy replaces the link
    assert code == 0, err
    assert not folder.is_symlink() and (folder / "model.safetensors").read_bytes() == FAKE_DA["model.safetensors"]

    pydnet = tmp_path / "pydnet_v2_2020.tflite"
    pydnet.write_bytes(b"tflite")
    assert _run(["models", "import", str(pydnet), "--link"], capsys)[0] == 0
    assert find_weights("pydnet").resolve() == pydnet.resolve()


@pytest.mark.parametrize("make, argv, message", [
    (lambda p: p.write_bytes(b"x"), ["--name", "depth_anything"], "is a file"),
    (lambda p: p.mkdir(), ["--name", "raft"], "is a folder"),
    (lambda p: p.mkdir(), ["--name", "depth_anything"], "needs config.json"),
    (lambda p: p.write_bytes(b"x"), ["--name", "what"], "unknown model"),
    (lambda p: None, [], "does not exist"),
])
def test_import_refusals_are_one_line(cache, no_network, tmp_path, capsys, make, argv, message):
    path = tmp_path / "thing"
    make(path)
    code, _, err = _run(["models", "import", str(path), *argv], capsys)
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1


def test_import_refuses_a_file_that_looks_like_another_model(cache, tmp_path, capsys):
    raft = tmp_path / "raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    raft.write_bytes(b"raft")
    code, _, err = _run(["models", "import", str(raft), "--name", "maskrcnn"], capsys)
    assert code == 2 and "looks like raft" in err


# --- optimize --download-models ---------------------------------------------------------------------------


def test_download_models_flag_sets_allow_download(monkeypatch, tmp_path, capsys):
    from vid3d.formats.errors import InputError
    from vid3d.optimizer import pipeline

    seen = []

    def fake_run(video, output, config, **kwargs):
        seen.append(config.prior.allow_download)
        raise InputError("stop here")

    monkeypatch.setattr(pipeline, "run_optimize", fake_run)
    clip = tmp_path / "a.mp4"
    assert _run(["optimize", str(clip), "--download-models", "-q"], capsys)[0] == 2
    assert _run(["optimize", str(clip), "-q"], capsys)[0] == 2
    assert seen == [True, False]


# --- the loading code, on a tiny randomly initialised Depth Anything ----------------------------------------


def _tiny_depth_anything(folder):
    """A randomly initialised Depth Anything (Dinov2 backbone of width 16) saved in from_pretrained layout."""
    transformers = pytest.importorskip("transformers")
    import torch

    backbone = transformers.Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                         intermediate_size=32, patch_size=14, image_size=28,
                                         out_features=["stage1", "stage2", "stage3", "stage4"],
                                         reshape_hidden_states=False)
    config = transformers.DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=16,
                                              neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=8,
                                              head_hidden_size=8)
    torch.manual_seed(0)
    transformers.DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    transformers.DPTImageProcessor(size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=14,
                                   do_pad=False).save_pretrained(folder)
    return folder


def _frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)


def test_tiny_depth_anything_loads_from_vid3d_models(cache, no_network, tmp_path, monkeypatch):
    from vid3d.optimizer.prior import learned

    _tiny_depth_anything(tmp_path / "models" / "depth_anything_v2_small")
    monkeypatch.setenv("VID3D_MODELS", str(tmp_path / "models"))
    usable, where = learned.depth_anything_status()
    assert usable and where == str(tmp_path / "models" / "depth_anything_v2_small")
    disp = learned.depth_anything_disparity(_frames(), device="cpu", allow_download=False)
    assert disp.shape == (2, 20, 30) and disp.dtype == np.float32
    assert np.isfinite(disp).all() and (disp >= 0).all()


def test_tiny_depth_anything_is_fetched_on_first_use(cache, server, tmp_path, monkeypatch):
    from vid3d.optimizer.prior import learned
    from vid3d.runtime.weights import WeightsMissingError

    made = _tiny_depth_anything(tmp_path / "made")
    assert not learned.depth_anything_status()[0] and learned.depth_anything_status(allow_download=True)[0]
    with pytest.raises(WeightsMissingError):
        learned.depth_anything_disparity(_frames(), device="cpu", allow_download=False)
    _serve_model(server, monkeypatch, "depth_anything", {p.name: p.read_bytes() for p in made.iterdir()})
    disp = learned.depth_anything_disparity(_frames(), device="cpu", allow_download=True)
    assert disp.shape == (2, 20, 30) and disp.dtype == np.float32 and (disp >= 0).all()
    assert find_weights("depth_anything") == cache / "depth_anything_v2_small"
