"""Import direction: formats <- optimizer, formats <- viewer; the viewer never imports the optimizer."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = {"formats": REPO / "formats", "optimizer": REPO / "optimizer", "viewer": REPO / "viewer"}
FORBIDDEN = {"formats": {"vid3d.optimizer", "vid3d.viewer", "vid3d.cli"},
             "optimizer": {"vid3d.viewer", "vid3d.cli"},
             "viewer": {"vid3d.optimizer", "vid3d.cli"}}


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_import_direction():
    bad = []
    for comp, folder in COMPONENTS.items():
        for py in folder.rglob("*.py"):
            for name in imports_of(py):
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[comp]):
                    bad.append(f"{py.relative_to(REPO)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_generic_top_level_imports():
    # components import each other through the vid3d root, never as `import formats`
    bad = []
    for folder in [*COMPONENTS.values(), REPO / "src", REPO / "tests", REPO / "benchmarks"]:
        for py in folder.rglob("*.py"):
            for name in imports_of(py):
                if name.split(".")[0] in ("formats", "optimizer", "viewer"):
                    bad.append(f"{py.relative_to(REPO)} imports {name}")
    assert not bad, "\n".join(bad)
