import pytest
import torch
from conftest import experiment, fit

from vaelab.data.splits import load_split
from vaelab.evaluation.estimators import evaluate, iwae
from vaelab.models.base import LatentModel, Posterior, VariationalConfig
from vaelab.models.registry import build_model
from vaelab.objectives.losses import analytic_elbo, iwae_bound, mc_elbo, mean_terms


@pytest.fixture(scope="module")
def trained_cvae(prepared_data):
    run = fit(experiment(epochs=2, batch_size=32), prepared_data / "binary28")
    return run.model.eval(), load_split(prepared_data / "binary28", "test").images


def test_iwae_is_at_least_the_elbo_and_grows_with_k(trained_cvae):
    model, images = trained_cvae
    elbo = mean_terms(model, images, analytic_elbo, seed=0)["elbo"]
    bounds = [iwae(model, images, k, batch_size=500, seed=0)[0] for k in (1, 10, 100)]
    # with k = 1 the bound is the single-sample MC ELBO, drawn here from the same noise
    mc = mean_terms(model, images, mc_elbo, seed=0)["elbo"]
    assert bounds[0] == pytest.approx(mc, abs=1e-3)
    assert bounds[1] > elbo
    assert bounds[0] < bounds[1] < bounds[2]


def test_iwae_standard_error_is_that_of_the_per_image_bounds(trained_cvae):
    model, images = trained_cvae
    mean, stderr = iwae(model, images, 7, batch_size=700, seed=3)
    generator = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        per_image = torch.cat(
            [
                iwae_bound(model, images[i : i + 100], 7, generator=generator)
                for i in range(0, len(images), 100)
            ]
        )
    assert mean == pytest.approx(per_image.double().mean().item(), abs=1e-4)
    assert stderr == pytest.approx((per_image.double().std() / len(images) ** 0.5).item(), rel=1e-3)


def test_a_two_level_model_is_evaluated_on_its_whole_code_and_cached_prior():
    torch.manual_seed(0)
    model = build_model("hvae_vamp", 28, latent_dim=3, hidden_dim=16, pseudo_inputs=5).eval()
    images = (torch.rand(4, 1, 28, 28) > 0.5).float()
    metrics = evaluate(model, images, iwae_samples=6, batch_size=6, seed=2)
    assert metrics["latent"]["dims"] == 6 and metrics["kl_estimator"] == "monte_carlo_1sample"
    # the bound under the frozen VampPrior is the one with the prior encoded on every call
    generator = torch.Generator().manual_seed(2)
    with torch.inference_mode():
        bounds = torch.cat([iwae_bound(model, x[None], 6, generator=generator) for x in images])
    assert metrics["iwae"]["k"] == 6
    assert metrics["iwae"]["bound_nats"] == pytest.approx(bounds.double().mean().item(), abs=1e-4)


class IgnoresZ(LatentModel):
    """Posterior equal to the prior and a decoder that ignores z: every bound is log p(x)."""

    def __init__(self):
        super().__init__(VariationalConfig(latent_dim=3), image_size=4)
        self.logits = torch.nn.Parameter(torch.linspace(-2, 2, 16).reshape(1, 1, 4, 4))

    def encode(self, x):
        zeros = torch.zeros(len(x), 3)
        return Posterior(zeros, zeros.clone())

    def decode(self, z):
        return self.logits.expand(len(z), 1, 4, 4)


def test_bounds_agree_when_the_decoder_ignores_z():
    model = IgnoresZ()
    images = torch.bernoulli(
        torch.full((50, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(0)
    )
    metrics = evaluate(model, images, iwae_samples=64, batch_size=20, seed=0)
    exact = (
        -torch.nn.functional.binary_cross_entropy_with_logits(
            model.logits.expand(50, 1, 4, 4), images, reduction="sum"
        ).item()
        / 50
    )
    elbo, k64 = metrics["elbo"], metrics["iwae"]["bound_nats"]
    assert elbo["kl_nats"] == 0.0
    for value in (elbo["mc_1sample_nats"], elbo["analytic_kl_nats"], k64):
        assert value == pytest.approx(exact, abs=1e-4)


class OneDeadUnit(LatentModel):
    """A 2-d posterior whose first mean follows the image and whose second is held at 0."""

    def __init__(self):
        super().__init__(VariationalConfig(latent_dim=2), image_size=4)
        self.scale = torch.nn.Parameter(torch.tensor(3.0))

    def encode(self, x):
        live = self.scale * (x.flatten(1).mean(1) - 0.5)
        mean = torch.stack([live, torch.zeros_like(live)], dim=1)
        return Posterior(mean, torch.full_like(mean, -2.0))

    def decode(self, z):
        return z[:, :1].reshape(-1, 1, 1, 1).expand(len(z), 1, 4, 4)


def test_active_units_count_only_the_dimensions_that_move():
    images = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    images = (images > torch.linspace(0.1, 0.9, 200).reshape(200, 1, 1, 1)).float()
    metrics = evaluate(OneDeadUnit(), images, iwae_samples=2, batch_size=50, seed=0)
    assert metrics["latent"] == {"dims": 2, "active_units": 1, "active_unit_threshold": 0.01}


def test_metrics_keys_say_what_they_are(trained_cvae):
    model, images = trained_cvae
    metrics = evaluate(model, images[:40], iwae_samples=7, batch_size=20, seed=0)
    assert metrics["test_images"] == 40
    assert set(metrics["elbo"]) == {
        "mc_1sample_nats",
        "analytic_kl_nats",
        "reconstruction_loglik_nats",
        "kl_nats",
    }
    assert list(metrics["iwae"]) == ["k", "bound_nats", "nll_nats", "stderr_nats"]
    assert (
        metrics["iwae"]["k"] == 7 and metrics["iwae"]["nll_nats"] == -metrics["iwae"]["bound_nats"]
    )
    assert list(metrics["latent"]) == ["dims", "active_units", "active_unit_threshold"]
    assert set(metrics["reconstruction"]) == {"bce_per_pixel", "mse_per_pixel"}


def key_paths(node, prefix=""):
    """Every dotted key path of a metrics dict, a list's records under `[]`."""
    if isinstance(node, list):
        return set().union(*(key_paths(item, f"{prefix}[].") for item in node))
    if not isinstance(node, dict):
        return {prefix.removesuffix(".")}
    return set().union(*(key_paths(value, f"{prefix}{key}.") for key, value in node.items()))


def test_metrics_keys_are_fixed_names_whatever_the_settings(trained_cvae):
    """A setting a number depends on (k, the threshold) is a field, never part of a key:
    `dvc metrics diff` and the report's paths find the same keys at any k."""
    model, images = trained_cvae
    seven = evaluate(model, images[:40], iwae_samples=7, also_k=[3], batch_size=20, seed=0)
    two = evaluate(model, images[:40], iwae_samples=2, also_k=[5, 9], batch_size=20, seed=0)
    assert key_paths(seven) == key_paths(two)
    assert "iwae.bound_nats" in key_paths(seven) and "iwae_at_k.[].k" in key_paths(seven)


def test_autoencoder_metrics_have_no_elbo(prepared_data):
    run = fit(experiment(model="ae_conv", objective="bce"), prepared_data / "fashion32")
    images = load_split(prepared_data / "fashion32", "test").images
    metrics = evaluate(run.model, images, iwae_samples=5, batch_size=50, seed=0)
    assert "elbo" not in metrics and "iwae" not in metrics
    assert (
        0 < metrics["reconstruction"]["mse_per_pixel"] < metrics["reconstruction"]["bce_per_pixel"]
    )


def test_the_bound_at_each_also_k_matches_its_own_evaluation(trained_cvae):
    model, images = trained_cvae
    metrics = evaluate(model, images[:40], iwae_samples=7, also_k=[3, 7], batch_size=20, seed=0)
    at_k = metrics["iwae_at_k"]  # one record per k, sorted by k (the evaluated k came first)
    assert [record["k"] for record in at_k] == [3, 7]
    assert at_k[1] == {
        "k": 7,
        "nll_nats": metrics["iwae"]["nll_nats"],
        "stderr_nats": metrics["iwae"]["stderr_nats"],
    }
    three = evaluate(model, images[:40], iwae_samples=3, batch_size=20, seed=0)["iwae"]
    assert at_k[0] == {"k": 3, "nll_nats": three["nll_nats"], "stderr_nats": three["stderr_nats"]}
    assert "iwae_at_k" not in evaluate(model, images[:40], iwae_samples=3, batch_size=20, seed=0)
