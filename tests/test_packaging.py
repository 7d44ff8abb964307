"""The wheel holds every subpackage under the single root `vid3d` and nothing generic; import order is safe."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"vid3d": REPO / "src" / "vid3d", "vid3d.formats": REPO / "formats",
         "vid3d.optimizer": REPO / "optimizer", "vid3d.viewer": REPO / "viewer"}


def packages_in_tree() -> set[str]:
    found = set()
    for name, folder in ROOTS.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([name, *rel.parts]))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{r.stderr[-2000:]}")
    return next(out.glob("vid3d-*.whl"))


@pytest.mark.slow
def test_wheel_contains_every_package_and_nothing_generic(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vid3d"}, top
    in_wheel = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages_in_tree() <= in_wheel, packages_in_tree() - in_wheel


@pytest.mark.slow
def test_every_subpackage_imports_from_the_wheel(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = (
        "import importlib, pkgutil, vid3d, sys\n"
        f"assert vid3d.__file__.startswith({str(site)!r}), vid3d.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(vid3d.__path__, 'vid3d.') if m.ispkg]\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names)); print(' '.join(sorted(names)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    imported = set(r.stdout.split("\n")[1].split())
    assert {p for p in packages_in_tree() if p != "vid3d"} <= imported


def test_zlib_is_the_first_import():
    first = [line for line in (ROOTS["vid3d"] / "__init__.py").read_text().splitlines()
             if line.startswith(("import ", "from "))][0]
    assert first.startswith("import zlib")


def test_pycolmap_after_vid3d_does_not_break_zlib():
    pytest.importorskip("pycolmap")
    code = (
        "import vid3d, pycolmap, zlib, gzip, io\n"
        "import numpy as np, cv2\n"
        "zlib.compress(b'x' * 10000); gzip.compress(b'y' * 1000)\n"
        "np.savez_compressed(io.BytesIO(), a=np.zeros(1000))\n"
        "cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))\n"
        "import numba\n"
        "f = numba.njit(lambda x: x + 1)\n"
        "assert f(1) == 2\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-1000:]
