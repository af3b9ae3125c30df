"""The library's packages are layers: a module may import only from its own layer and the
layers below it (the order vaelab/__init__.py gives), and stages sit on top of them all."""

import ast
from pathlib import Path

import pytest
from conftest import ROOT

LIBRARY = ROOT / "src/vaelab"
LAYERS = [
    "core",
    "models",
    "objectives",
    "config",
    "data",
    "runtime",
    "pictures",
    "training",
    "evaluation",
    "report",
    "cluster",
    "tools",
]


def layer_of(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "vaelab" and len(parts) > 1, module
    return parts[1]


def vaelab_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every vaelab import in a file, at any depth of the code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "vaelab":
                found += [(node.lineno, f"vaelab.{alias.name}") for alias in node.names]
            elif node.module.startswith("vaelab."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("vaelab.")]
    return found


def upward_imports(path: Path, own: str) -> list[str]:
    rank = LAYERS.index(own)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [
        f"{shown}:{line} imports {module} (layer {layer_of(module)!r})"
        for line, module in vaelab_imports(path)
        if LAYERS.index(layer_of(module)) > rank
    ]


def test_every_package_is_a_layer_with_its_rule_in_the_docstring():
    packages = sorted(p.name for p in LIBRARY.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(LAYERS)
    assert not [p.name for p in LIBRARY.glob("*.py") if p.name != "__init__.py"]
    for name in LAYERS:
        doc = ast.get_docstring(ast.parse((LIBRARY / name / "__init__.py").read_text()))
        assert doc and "May import:" in doc, name


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_from_a_layer_above_its_own(layer):
    bad = [
        hit
        for path in sorted((LIBRARY / layer).rglob("*.py"))
        for hit in upward_imports(path, layer)
    ]
    assert bad == []


def test_the_rule_catches_an_upward_import(tmp_path):
    module = tmp_path / "grids.py"
    module.write_text(
        "import torch\n"
        "from vaelab.models.base import LatentModel\n"
        "from vaelab.pictures.plots import save_png\n"
        "def f():\n"
        "    from vaelab import training\n"
    )
    assert upward_imports(module, "pictures") == [
        "grids.py:5 imports vaelab.training (layer 'training')"
    ]
    assert upward_imports(module, "evaluation") == []
