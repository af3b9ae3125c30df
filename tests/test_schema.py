"""params.schema.json is what the code generates, and checks params.yaml as pydantic does:
the shipped file passes, a misspelt key, another model's knob or a bad value fails."""

import copy
import json

import pytest
import yaml
from conftest import ROOT, with_change
from jsonschema import Draft7Validator
from typer.testing import CliRunner

from vaelab.config.experiments import TrainingSpec, parse_experiment
from vaelab.core.errors import ParamsError
from vaelab.models.registry import MODELS
from vaelab.objectives.registry import OBJECTIVES
from vaelab.tools.command import app
from vaelab.tools.params_schema import SCHEMA_FILE, params_schema, render_schema
from vaelab.tools.profiles import PROFILES, apply_profile

SCHEMA = json.loads((ROOT / SCHEMA_FILE).read_text(encoding="utf-8"))
VALIDATOR = Draft7Validator(SCHEMA)
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def messages(raw) -> list[str]:
    """Every error of `raw`, those inside each failed anyOf alternative included."""
    found, pending = [], list(VALIDATOR.iter_errors(raw))
    while pending:
        error = pending.pop()
        found.append(f"{'.'.join(map(str, error.absolute_path))}: {error.message}")
        pending += error.context
    return found


def test_the_committed_schema_is_the_generated_one():
    assert (ROOT / SCHEMA_FILE).read_text(encoding="utf-8") == render_schema()
    assert (
        CliRunner().invoke(app, ["schema", "--check", "--out", str(ROOT / SCHEMA_FILE)]).exit_code
        == 0
    )


def test_check_fails_in_one_line_when_the_file_differs_and_the_command_rewrites_it(tmp_path):
    out = tmp_path / SCHEMA_FILE
    out.write_text(render_schema().replace('"minimum": 1', '"minimum": 2', 1))
    check = CliRunner().invoke(app, ["schema", "--check", "--out", str(out)])
    assert check.exit_code != 0
    assert check.stderr.splitlines() == [
        f"error: {out} is out of date: run `vaelab schema` and commit it"
    ]
    assert CliRunner().invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    assert out.read_text() == render_schema()
    assert CliRunner().invoke(app, ["schema", "--check", "--out", str(out)]).exit_code == 0


def test_it_is_a_draft_07_schema_that_params_yaml_names():
    Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    # pydantic's 2020-12 spellings that draft-07 would silently ignore
    text = json.dumps(SCHEMA)
    for keyword in ("$defs", "prefixItems", "unevaluatedProperties", "dependentRequired"):
        assert keyword not in text
    first = (ROOT / "params.yaml").read_text().splitlines()[0]
    assert first == f"# yaml-language-server: $schema={SCHEMA_FILE}"


def test_the_shipped_params_and_their_profiles_are_valid():
    assert messages(DEFAULTS) == []
    for name in PROFILES:
        assert messages(apply_profile(copy.deepcopy(DEFAULTS), name)) == [], name


def test_every_section_is_closed_to_unknown_keys():
    sections = {"": SCHEMA, **SCHEMA["definitions"]}
    objects = [n for n, s in sections.items() if s.get("type") == "object" and "properties" in s]
    # an experiment is one of the pairs, each closed: its own enums only name them
    assert [n for n in objects if sections[n].get("additionalProperties") is not False] == [
        "Experiment"
    ]
    assert set(SCHEMA["properties"]) == {
        "device",
        "threads",
        "data",
        "experiments",
        "evaluate",
        "render",
        "literature",
        "classifier",
        "samples",
        "published",
    }


def test_each_pair_takes_exactly_the_keys_parse_experiment_takes():
    pairs = {
        (name.split(".")[1], name.split(".")[2]): schema
        for name, schema in SCHEMA["definitions"].items()
        if name.startswith("Experiment.")
    }
    assert set(pairs) == {
        (m, o)
        for m, model in MODELS.items()
        for o, objective in OBJECTIVES.items()
        if objective.trains(model)  # variational, codebook and prior-matching alike
    }
    for (m, o), schema in pairs.items():
        keys = TrainingSpec.keys() + MODELS[m].Config.keys() + OBJECTIVES[o].Knobs.keys()
        assert sorted(schema["properties"]) == sorted(keys), (m, o)
    assert SCHEMA["definitions"]["Experiment"]["properties"] == {
        "model": {"enum": list(MODELS)},
        "objective": {"enum": list(OBJECTIVES)},
    }


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "experiments.cvae.latent_dm",
            2,
            "experiments.cvae: Additional properties are not allowed ('latent_dm' was unexpected)",
        ),
        (  # a knob of another model: vae_mlp's
            "experiments.cvae.hidden_dim",
            256,
            "experiments.cvae: Additional properties are not allowed ('hidden_dim' was unexpected)",
        ),
        (  # a knob of another objective: weighted's
            "literature.experiments.vae_static.recon_weight",
            784,
            "literature.experiments.vae_static: Additional properties are not allowed "
            "('recon_weight' was unexpected)",
        ),
        (
            "experiments.cvae.model",
            "cvea",
            f"experiments.cvae.model: 'cvea' is not one of {list(MODELS)}",
        ),
        (  # an autoencoder's objective for a VAE: no pair has both
            "experiments.cvae.objective",
            "bce",
            "experiments.cvae.model: 'ae_conv' was expected",
        ),
        (
            "experiments.cvae.optimizer",
            "sgd",
            "experiments.cvae.optimizer: 'sgd' is not one of ['adam', 'adam_normgrad', 'rmsprop']",
        ),
        ("experiments.cvae.epochs", 0, "experiments.cvae.epochs: 0 is less than the minimum of 1"),
        ("device", "gpu", "device: 'gpu' is not one of ['auto', 'cpu', 'cuda', 'mps']"),
        (
            "data.prepared.mnist_binary.binarize",
            "thresh",
            "data.prepared.mnist_binary.binarize: 'thresh' is not one of "
            "['threshold', 'stochastic', 'dynamic', 'none']",
        ),
        (
            "literature.evaluate.iwae_sample",
            5000,
            "literature.evaluate: Additional properties are not allowed "
            "('iwae_sample' was unexpected)",
        ),
        (
            "published.cvae.ourz",
            ["evaluate.elbo.mc_1sample_nats"],
            "published.cvae: Additional properties are not allowed ('ourz' was unexpected)",
        ),
        (
            "references",
            {},
            ": Additional properties are not allowed ('references' was unexpected)",
        ),
    ],
)
def test_a_bad_key_or_value_is_flagged(path, value, message):
    raw = with_change(path, value)
    assert message in messages(raw)


def test_the_schema_and_pydantic_agree_on_a_misspelt_experiment_key():
    raw = with_change("experiments.cvae.latent_dm", 2)
    with pytest.raises(ParamsError, match="latent_dm: unknown key"):
        parse_experiment("experiments.cvae", raw["experiments"]["cvae"])
    # the error sits in the alternative of the entry's own model and objective
    pair = Draft7Validator({**SCHEMA["definitions"]["Experiment.cvae.mc_elbo"], "definitions": {}})
    assert [e.message for e in pair.iter_errors(raw["experiments"]["cvae"])] == [
        "Additional properties are not allowed ('latent_dm' was unexpected)"
    ]


def test_generating_twice_gives_the_same_text():
    assert render_schema() == render_schema()
    assert json.loads(render_schema()) == params_schema()
