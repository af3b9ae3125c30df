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
PACKAGES = ["src/vaelab/models"]  # a folder dep: every module in it is loaded together

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
    for package in PACKAGES:
        inside = {f for f in files if f.startswith(package + "/")}
        if inside:
            every = {str(p.relative_to(ROOT)) for p in (ROOT / package).glob("*.py")}
            assert inside == every, f"{script} loads only part of {package}: {sorted(inside)}"
            files = (files - inside) | {package}
    return frozenset(files | {script})


def declared_code(name: str, path: str = "dvc.yaml") -> set[str]:
    deps = stage_definition(name, path)["deps"]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in deps]
    return {d for d in deps if d.endswith(".py") or d in PACKAGES}


@pytest.mark.parametrize(("path", "name"), sorted(ALL_STAGES))
def test_code_deps_are_exactly_the_modules_the_stage_loads(path, name):
    assert declared_code(name, path) == loaded_code(script_of(name, path))


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
