"""Package layout: three top-level component folders import under one root, ``vid3d``.

The package list is *computed* from the folders, so a new subpackage can never be silently
missing from the wheel (tests/test_packaging.py builds the wheel and imports every one).
"""

from setuptools import find_packages, setup

# import name -> folder in the repository
ROOTS = {
    "vid3d": "src/vid3d",
    "vid3d.formats": "formats",
    "vid3d.optimizer": "optimizer",
    "vid3d.viewer": "viewer",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in ROOTS.items():
        package_dir[name] = folder
        packages.append(name)
        for sub in find_packages(folder):
            packages.append(f"{name}.{sub}")
            package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={name: ["*.json", "*.md", "static/*"] for name in PACKAGES},
)
