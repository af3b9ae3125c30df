"""The IAF posterior (iaf_mlp): its log-determinant against torch's Jacobian, its density
against a numerical integral, and its bounds: the IWAE bound at least the ELBO."""

import math

import pytest
import torch

from vaelab.evaluation.estimators import evaluate
from vaelab.models.registry import build_model
from vaelab.objectives.losses import iwae_bound, mc_elbo, mean_terms


def iaf(latent_dim: int = 3, std: float = 1.0):
    torch.manual_seed(0)
    model = build_model(
        "iaf_mlp",
        28,
        latent_dim=latent_dim,
        hidden_dim=16,
        flow_steps=3,
        flow_hidden=8,
        context_dim=4,
    )
    for step in model.flow.steps:  # steps far from the identity, so the test sees them
        for layer in (step.hidden, step.m, step.s, step.context):
            torch.nn.init.normal_(layer.weight, std=std)
    return model.eval()


def images(n: int = 4) -> torch.Tensor:
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_the_log_determinant_matches_the_jacobian():
    model = iaf()
    h = model.context(model.hidden(images(1)))[0]
    z0 = torch.randn(3, generator=torch.Generator().manual_seed(2))
    jacobian = torch.autograd.functional.jacobian(lambda z: model.flow(z, h)[0], z0)
    # each step alone is triangular (lower in its order, upper when reversed), its
    # diagonal the gates s: what makes the log-determinant a sum of log s
    for step in model.flow.steps:
        one = torch.autograd.functional.jacobian(lambda z, step=step: step(z, h)[0], z0)
        off = torch.triu(one, 1) if not step.reverse else torch.tril(one, -1)
        assert torch.allclose(off, torch.zeros(3, 3), atol=1e-7)
    _, log_det = model.flow(z0, h)
    assert log_det.item() == pytest.approx(
        torch.linalg.slogdet(jacobian).logabsdet.item(), abs=1e-5
    )


def test_the_posterior_density_integrates_to_one_and_the_draw_knows_it():
    model = iaf(latent_dim=2, std=0.5)  # smooth enough for a 0.05 grid to integrate
    q = model.encode(images(1))
    draw = q.draw(torch.Generator().manual_seed(3))
    assert torch.allclose(draw.log_prob(draw.z), q.log_prob(draw.z), atol=1e-4)
    centre = q.mean[0].detach()
    ticks = torch.linspace(-6, 6, 241)
    grid = torch.stack(torch.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 1, 2)
    with torch.no_grad():
        density = q.expand(len(grid)).log_prob(grid + centre).exp()
    cell = (ticks[1] - ticks[0]).item() ** 2
    assert density.sum().item() * cell == pytest.approx(1.0, abs=1e-3)


def test_the_iwae_bound_is_at_least_the_elbo_and_evaluate_says_the_kl_is_monte_carlo():
    model = iaf()
    x = images(4)
    elbo = mean_terms(model, x, mc_elbo, seed=0)["elbo"]
    bound = iwae_bound(model, x, 200, generator=torch.Generator().manual_seed(4)).mean().item()
    assert bound >= elbo
    metrics = evaluate(model, x, iwae_samples=50, batch_size=4, seed=0)
    assert metrics["kl_estimator"] == "monte_carlo_1sample"
    assert metrics["iwae"]["bound_nats"] >= metrics["elbo"]["mc_1sample_nats"] - 1.0
    assert math.isfinite(metrics["elbo"]["analytic_kl_nats"])
