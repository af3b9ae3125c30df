"""dvc.yaml's code deps are exactly the code each stage runs: its script and every vaelab
module it imports. A missing dep leaves stale results; an extra one reruns work for
nothing (a plotting change must never retrain a model)."""

import ast
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC_YAML["stages"]
# every pipeline file: the references' dvc.yaml and the literature track's
PIPELINES = {
    path: yaml.safe_load((ROOT / path).read_text()) for path in ("dvc.yaml", "literature/dvc.yaml")
}
ALL_STAGES = {
    (path, name): body for path, doc in PIPELINES.items() for name, body in doc["stages"].items()
}
SOURCES = [*sorted((ROOT / "src/vaelab").rglob("*.py")), *sorted((ROOT / "stages").glob("*.py"))]
LIBRARY = ROOT / "src/vaelab"

LOADED = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("stage", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()
                        if (n == "vaelab" or n.startswith("vaelab.")) and m.__file__)))
"""


def stage_definition(name, path: str = "dvc.yaml") -> dict:
    stage = PIPELINES[path]["stages"][name]
    return stage.get("do", stage)


def script_of(name: str, path: str = "dvc.yaml") -> str:
    return re.match(r"python (stages/\w+\.py)", stage_definition(name, path)["cmd"]).group(1)


def runs_no_code(module: Path) -> bool:
    """A package __init__ that holds only its docstring: no stage result can depend on it."""
    if module.name != "__init__.py":
        return False
    body = ast.parse(module.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def as_deps(loaded: set[str]) -> set[str]:
    """The shortest exact dep list of a set of loaded modules: a package folder where every
    file of it (data files such as manifest.yaml included) is loaded or runs no code, its
    modules one by one elsewhere, and never an __init__ that runs no code."""
    deps = {f for f in loaded if not runs_no_code(ROOT / f)}
    folders = sorted({p.parent for p in LIBRARY.rglob("__init__.py")}, key=lambda p: len(p.parts))
    for folder in folders:
        files = {str(f.relative_to(ROOT)) for f in folder.rglob("*") if f.is_file()}
        files = {f for f in files if "__pycache__" not in f}
        needed = {f for f in files if not (f.endswith(".py") and runs_no_code(ROOT / f))}
        if needed and needed <= deps:
            deps = (deps - files) | {str(folder.relative_to(ROOT))}
    return deps


@functools.cache  # a fresh interpreter per script: the same answer every time it is asked
def loaded_code(script: str) -> frozenset[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, str(ROOT / script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    files = {str(Path(f).resolve().relative_to(ROOT)) for f in json.loads(done.stdout)}
    return frozenset(as_deps(files) | {script})


def declared_code(name: str, path: str = "dvc.yaml") -> set[str]:
    deps = stage_definition(name, path)["deps"]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in deps]
    return {d for d in deps if d.startswith(("stages/", "src/vaelab"))}


def expected_code(name: str, path: str = "dvc.yaml") -> set[str]:
    """What the stage loads, with the library files its command names (the manifest)."""
    script = script_of(name, path)
    named = set(re.findall(r"src/vaelab/\S+", stage_definition(name, path)["cmd"]))
    loaded = {*loaded_code(script), *named} - {script}
    # fold again: a named data file can complete its package's folder
    return as_deps(expand(loaded)) | {script}


def expand(deps: set[str]) -> set[str]:
    files = set()
    for dep in deps:
        folder = ROOT / dep
        found = folder.rglob("*") if folder.is_dir() else [folder]
        files |= {str(f.relative_to(ROOT)) for f in found if f.is_file() and f.suffix != ".pyc"}
    return files


@pytest.mark.parametrize(("path", "name"), sorted(ALL_STAGES))
def test_code_deps_are_exactly_the_modules_the_stage_loads(path, name):
    assert sorted(declared_code(name, path)) == sorted(expected_code(name, path))


def _function_level_imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("vaelab"):
                    yield f"{path.relative_to(ROOT)}:{inner.lineno}"
                if isinstance(inner, ast.Import) and any(
                    a.name.startswith("vaelab") for a in inner.names
                ):
                    yield f"{path.relative_to(ROOT)}:{inner.lineno}"


def test_no_vaelab_import_hides_inside_a_function():
    """An import inside a function would not show when the stage is imported above."""
    hidden = [hit for path in SOURCES for hit in _function_level_imports(path)]
    assert hidden == []


def test_stage_scripts_take_their_paths_from_the_command():
    """Every data, model and report path a stage touches is written in dvc.yaml's cmd."""
    for script in sorted((ROOT / "stages").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.match(r"(data|models|reports)/", node.value), (script, node.value)


def test_no_experiment_is_named_in_a_pipeline_file():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    names = [*params["experiments"], *params.get("literature", {}).get("experiments", {})]
    for path, doc in PIPELINES.items():
        text = (ROOT / path).read_text()
        for name in names:
            assert not re.search(rf"\b{name}\b", text), (path, name)
        assert "metrics" not in doc and "plots" not in doc
