"""The literature track's own pipeline file, end to end on the tiny profile. Apart from
tests/test_pipeline.py, as it needs none of the default run: it runs beside that module's
long build instead of after it."""

import json

import pytest
import yaml
from conftest import dvc, edit_params, offline_project, stages_run

pytestmark = pytest.mark.slow


def test_literature_track_runs_from_its_own_pipeline_file(tmp_path, real_mnist_mirror):
    """`dvc repro literature/dvc.yaml`: the literature experiments only, then their page;
    one of them on (synthetic) Larochelle files, downloaded by the track's own stage. From
    a project where nothing ran yet: of the default pipeline, only the MNIST download it
    shares runs."""
    project, env = offline_project(tmp_path, real_mnist_mirror)
    edit_params(
        project,
        lambda p: p["literature"]["experiments"]["vamp_static"].update(data="mnist_larochelle"),
    )
    run = dvc(["repro", "literature/dvc.yaml"], project, env)
    literature = yaml.safe_load((project / "params.yaml").read_text())["literature"]
    published = yaml.safe_load((project / "params.yaml").read_text())["published"]
    names = set(literature["experiments"])
    assert stages_run(run.stdout) == {
        *(
            f"literature/dvc.yaml:{stage}@{name}"
            for stage in ("train", "evaluate")
            for name in names
        ),
        *(f"literature/dvc.yaml:prepare@{name}" for name in literature["prepared"]),
        "literature/dvc.yaml:download@binarized_mnist",
        "literature/dvc.yaml:report",
        "download@mnist",
    }
    page = (project / "reports/literature.md").read_text()
    for name in names:
        metrics = json.loads((project / f"reports/literature/{name}/metrics.json").read_text())
        iwae = metrics["iwae"]
        assert iwae["k"] == literature["evaluate"]["iwae_samples"]
        assert iwae["nll_nats"] == -iwae["bound_nats"] and iwae["stderr_nats"] > 0
        keys = literature["experiments"][name]
        prepared = literature["prepared"][keys["data"]]
        drawn_by = {  # whose draw the images are, by the prepared set's protocol
            "binarized_mnist": "Larochelle & Murray",
            "stochastic": "vaelab's seeded Bernoulli draw",
            "dynamic": "a fresh Bernoulli draw of every training batch; the test split one",
        }
        protocol = metrics["protocol"]
        kind = (
            "binarized_mnist" if prepared["dataset"] == "binarized_mnist" else prepared["binarize"]
        )
        assert protocol["binarized_by"].startswith(drawn_by[kind])
        selection = "best validation ELBO" if keys.get("validation") else "last epoch"
        assert protocol["model_selection"] == selection
        row = next(line for line in page.splitlines() if line.startswith(f"| {name} "))
        assert f"{iwae['nll_nats']:.2f} ± {iwae['stderr_nats']:.2f}" in row
        at_k = {record["k"]: record for record in metrics["iwae_at_k"]}
        assert list(at_k) == sorted({iwae["k"], *literature["evaluate"]["also_k"]})
        if name in published:  # the figure, and our NLL at its own k, in the same row
            k = published[name]["k"]  # vae_static's 200 is evaluated; the profile's k is not 5000
            record = at_k.get(k)
            nll = f"{record['nll_nats']:.2f} ± {record['stderr_nats']:.2f}" if record else "—"
            assert f"{nll} (k={k})" in row
            assert published[name]["published"] in row
    assert "## Run-to-run spread" in page and "| vae_static " in page.split("## Run-to-run")[1]
    # the tiny profile's one epoch runs out before vamp_static's patience could end it
    assert "| vamp_static " in page.split("## Runs cut short")[1]
    # the download both pipelines share is left as the default pipeline recorded it
    assert json.loads(dvc(["status", "--json", "download@mnist"], project, env).stdout) == {}
