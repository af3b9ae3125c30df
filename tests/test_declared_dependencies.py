"""Every package the code imports is declared in pyproject.toml: the library's and the
stages' in [project].dependencies, the tests' and benchmarks' there or in the dev group. A
package that arrives only as another one's dependency can vanish with that one's next
release, and the import fails on a fresh install only."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from conftest import ROOT

# the standard library's from Python 3.11; the project still allows 3.10
tomllib = pytest.importorskip("tomllib")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The TensorFlow workers of benchmarks.train_speed run in an environment of their own
# (`uv run --isolated --no-project --with tensorflow-cpu==... --with numpy`), never in the
# project's, so that TensorFlow stays out of uv.lock: what they import is that command's
# business, not pyproject's.
ISOLATED = {"benchmarks/tf_tutorial.py"}
# Scripts run beside the project with one more package (`uv run --isolated --with X`), so
# that X stays out of uv.lock: only X's import is exempt, the rest is checked as usual.
WITH = {"benchmarks/pythae_vae.py": "pythae"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def names_of(requirements: list) -> set[str]:
    """The distribution names of requirement strings ("torch>=2.3" -> "torch")."""
    return {
        normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r)[0])
        for r in requirements
        if isinstance(r, str)  # not an {include-group = ...}
    }


DEPENDENCIES = names_of(PYPROJECT["project"]["dependencies"])
DEV = names_of(PYPROJECT["dependency-groups"]["dev"])


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def is_local(module: str, path: Path) -> bool:
    """A module of the project itself: vaelab, a package at the root (benchmarks), or a
    module beside the importing file (conftest, synthetic, tf_tutorial)."""
    return (
        module == "vaelab"
        or (ROOT / module / "__init__.py").exists()
        or (path.parent / f"{module}.py").exists()
    )


def third_party_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every import of another project's code, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return [
        (line, module)
        for line, module in found
        if module not in sys.stdlib_module_names and not is_local(module, path)
    ]


def undeclared(paths: list[Path], declared: set[str], exempt: dict | None = None) -> list[str]:
    """'file:line imports module (distribution)' for each import that `declared` lacks,
    but for the module `exempt` names for that file."""
    providers = packages_distributions()
    bad = []
    for path in paths:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for line, module in third_party_imports(path):
            if module == (exempt or {}).get(str(shown)):
                continue
            distributions = sorted({normalized(d) for d in providers.get(module, [])})
            if not distributions:
                bad.append(f"{shown}:{line} imports {module}, which no installed package provides")
            elif not set(distributions) & declared:
                bad.append(f"{shown}:{line} imports {module} ({', '.join(distributions)})")
    return bad


def test_the_library_and_the_stages_import_only_declared_dependencies():
    assert undeclared(python_files("src", "stages"), DEPENDENCIES) == []


def test_tests_and_benchmarks_import_only_dependencies_and_the_dev_group():
    paths = [
        p for p in python_files("tests", "benchmarks") if str(p.relative_to(ROOT)) not in ISOLATED
    ]
    assert undeclared(paths, DEPENDENCIES | DEV, exempt=WITH) == []


def test_the_isolated_files_are_the_tensorflow_workers_and_the_pythae_run():
    """The exclusions above hold only for files that import the package they are run with,
    and only while the project does not declare it."""
    for name, package in {**dict.fromkeys(ISOLATED, "tensorflow"), **WITH}.items():
        modules = {module for _, module in third_party_imports(ROOT / name)}
        assert package in modules, name
        assert package not in DEPENDENCIES | DEV, package


def test_an_undeclared_import_is_caught(tmp_path):
    module = tmp_path / "plots.py"
    module.write_text(
        "import os\n"
        "import numpy as np\n"
        "from sklearn.mixture import GaussianMixture\n"
        "from vaelab.core.files import write_text\n"
        "def f():\n"
        "    import yaml.constructor\n"
    )
    assert undeclared([module], {"numpy"}) == [
        "plots.py:3 imports sklearn (scikit-learn)",
        "plots.py:6 imports yaml (pyyaml)",
    ]
    assert undeclared([module], {"numpy", "scikit-learn", "pyyaml"}) == []
    assert undeclared([module], {"numpy", "pyyaml"}, exempt={"plots.py": "sklearn"}) == []
