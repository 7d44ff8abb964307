"""Import rules between components (ARCHITECTURE.md), checked on every import, lazy ones included."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "vid3d"

# component -> (folder, the other components it may import); None = anything
ALLOWED: dict[str, tuple[Path, set[str] | None]] = {
    "formats": (REPO / "formats", set()),
    "runtime": (SRC / "runtime", {"formats"}),
    "synthetic": (SRC / "synthetic", {"formats"}),
    "eval": (SRC / "eval", {"formats", "synthetic"}),
    "optimizer": (REPO / "optimizer", {"formats", "runtime"}),
    "viewer": (REPO / "viewer", {"formats", "runtime"}),
    "cli": (SRC / "cli", None),
}
TOP_LEVEL_COMPONENTS = ("formats", "optimizer", "viewer")  # the user's folders beside src/


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):  # walks function bodies too
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def component_of(module: str) -> str | None:
    """``vid3d.optimizer.flow`` -> ``optimizer``; the root package ``vid3d`` itself -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "vid3d" and len(parts) > 1 else None


def test_every_component_is_listed():
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders | set(TOP_LEVEL_COMPONENTS) == set(ALLOWED)
    for name, (folder, _) in ALLOWED.items():
        assert (folder / "__init__.py").is_file(), f"{name}: {folder} is not a package"


def test_import_direction():
    bad = []
    for comp, (folder, allowed) in ALLOWED.items():
        if allowed is None:
            continue
        for py in folder.rglob("*.py"):
            for name in imports_of(py):
                other = component_of(name)
                if other is not None and other != comp and other not in allowed:
                    bad.append(f"{py.relative_to(REPO)} imports {name} ({comp} may import "
                               f"{', '.join(sorted(allowed)) or 'no other component'})")
    assert not bad, "\n".join(bad)


def test_imports_name_known_components():
    # a vid3d.<x> import that names no component (a typo, a removed package) is caught here
    bad = []
    for folder in [*(f for f, _ in ALLOWED.values()), REPO / "tests", REPO / "benchmarks"]:
        for py in folder.rglob("*.py"):
            for name in imports_of(py):
                other = component_of(name)
                if other is not None and other not in ALLOWED and other != "__main__":
                    bad.append(f"{py.relative_to(REPO)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_generic_top_level_imports():
    # components import each other through the vid3d root, never as `import formats`
    bad = []
    for folder in [REPO / "formats", REPO / "optimizer", REPO / "viewer", REPO / "src", REPO / "tests",
                   REPO / "benchmarks"]:
        for py in folder.rglob("*.py"):
            for name in imports_of(py):
                if name.split(".")[0] in TOP_LEVEL_COMPONENTS:
                    bad.append(f"{py.relative_to(REPO)} imports {name}")
    assert not bad, "\n".join(bad)
