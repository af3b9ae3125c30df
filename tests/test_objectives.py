import math

import pytest
import torch
from torch import nn

from vaelab.models.base import LatentModel, Posterior, VariationalConfig
from vaelab.models.densities import log_normal_pdf
from vaelab.models.registry import build_model
from vaelab.objectives.losses import (
    ElboKnobs,
    analytic_elbo,
    autoencoder_bce,
    bernoulli_log_likelihood,
    iwae,
    kl_to_standard_normal,
    mc_elbo,
    weighted_loss,
)
from vaelab.objectives.registry import OBJECTIVES, ScheduledKnobs, objective_for


def test_kl_of_standard_normal_to_itself_is_zero():
    q = Posterior(torch.zeros(5, 3), torch.zeros(5, 3))
    assert torch.equal(kl_to_standard_normal(q), torch.zeros(5))


def test_kl_hand_computed():
    # KL(N(1, e^1) || N(0, 1)) in one dimension = 1/2 (e + 1 - 1 - 1) = (e - 1) / 2
    q = Posterior(torch.tensor([[1.0]]), torch.tensor([[1.0]]))
    assert kl_to_standard_normal(q).item() == pytest.approx((math.e - 1) / 2)


def test_log_normal_pdf_matches_torch_distributions():
    z, mean, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert torch.allclose(log_normal_pdf(z, mean, logvar), expected, atol=1e-5)
    assert log_normal_pdf(torch.zeros(1, 2), 0.0, 0.0).item() == pytest.approx(
        -math.log(2 * math.pi)
    )


def test_bernoulli_log_likelihood_hand_computed():
    logits = torch.zeros(2, 1, 2, 2)
    x = torch.tensor([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 2, 2).expand(2, 1, 2, 2)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), torch.full((2,), -4 * math.log(2)))
    confident = torch.full((1, 1, 1, 1), 20.0)
    assert bernoulli_log_likelihood(confident, torch.ones(1, 1, 1, 1)).item() == pytest.approx(
        -math.log1p(math.exp(-20)), rel=1e-4
    )


class FixedPosterior(LatentModel):
    """q(z|x) = N(mu, sigma^2) and p(x|z) with logits a*z, so expectations are checkable."""

    def __init__(self, mean=0.5, logvar=-1.0):
        super().__init__(VariationalConfig(latent_dim=1), image_size=1)
        self.mu, self.lv = mean, logvar
        self.a = nn.Parameter(torch.tensor(1.3))

    def encode(self, x):
        n = len(x)
        return Posterior(torch.full((n, 1), self.mu), torch.full((n, 1), self.lv))

    def decode(self, z):
        return (self.a * z).reshape(-1, 1, 1, 1)


def test_mc_elbo_averages_to_the_analytic_elbo():
    model = FixedPosterior()
    x = torch.ones(200_000, 1, 1, 1)
    generator = torch.Generator().manual_seed(0)
    mc = mc_elbo(model, x, generator).elbo.mean().item()
    analytic = analytic_elbo(model, x, generator).elbo.mean().item()
    assert mc == pytest.approx(analytic, abs=0.01)
    # and the KL estimate inside the MC ELBO averages to the closed form
    mc_kl = mc_elbo(model, x, generator).kl.mean().item()
    assert mc_kl == pytest.approx(kl_to_standard_normal(model.encode(x[:1])).item(), abs=0.01)


def test_weighted_with_pixel_count_is_the_negative_analytic_elbo():
    model = build_model("vae_mlp", 28, latent_dim=2)
    x = torch.rand(8, 1, 28, 28)
    generator = torch.Generator().manual_seed(1)
    weighted = weighted_loss(model, x, generator, recon_weight=784, kl_weight=1.0)
    analytic = analytic_elbo(model, x, torch.Generator().manual_seed(1))
    assert weighted.loss.item() == pytest.approx(analytic.loss.item(), rel=1e-5)


def test_reference003_weighting_against_torch_formulas():
    """500 x mean-pixel BCE + 0.5 x KL, computed with torch's own BCE and distributions."""
    torch.manual_seed(0)
    model = build_model("vae_conv", 32, latent_dim=2)
    x = torch.rand(4, 1, 32, 32)
    terms = weighted_loss(
        model, x, torch.Generator().manual_seed(2), recon_weight=500, kl_weight=0.5
    )
    with torch.no_grad():
        h = model.body.features(x)
        mean, logvar = model.mean(h), model.logvar(h)
        eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(2))
        z = mean + torch.exp(0.5 * logvar) * eps
        probs = torch.sigmoid(model.body.decoder(z))
        bce = torch.nn.functional.binary_cross_entropy(probs, x, reduction="none")
        q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
        kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
        expected = (500 * bce.mean(dim=(1, 2, 3)) + 0.5 * kl).mean()
    assert terms.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_autoencoder_bce_is_mean_per_pixel():
    model = build_model("ae_conv", 32, latent_dim=2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.rand(3, 1, 32, 32)
    assert autoencoder_bce(model, x).loss.item() == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize(
    ("name", "knobs"),
    [("vae_mlp", {}), ("hvae_vamp", {"pseudo_inputs": 5})],  # one level; two, VampPrior
)
def test_iwae_objective_with_one_sample_is_the_mc_elbo_on_the_same_noise(name, knobs):
    torch.manual_seed(0)
    model = build_model(name, 28, latent_dim=3, hidden_dim=16, **knobs)
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    one = iwae(model, x, torch.Generator().manual_seed(5), k=1)
    mc = mc_elbo(model, x, torch.Generator().manual_seed(5))
    assert torch.allclose(one.elbo, mc.elbo, atol=1e-4)
    assert one.loss.item() == pytest.approx(mc.loss.item(), abs=1e-4)
    # more samples: a tighter bound on average, and still finite gradients
    many = iwae(model, x, torch.Generator().manual_seed(5), k=64)
    assert many.elbo.mean() > one.elbo.mean()
    many.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_vampprior_log_prior_is_the_mixture_of_the_pseudo_inputs_posteriors():
    torch.manual_seed(0)
    model = build_model("vae_mlp", 28, latent_dim=3, hidden_dim=16, prior="vamp", pseudo_inputs=7)
    z = torch.randn(5, 3)
    with torch.no_grad():
        u = model.pseudo_inputs()
        assert u.shape == (7, 1, 28, 28) and u.min() >= 0 and u.max() <= 1
        q = model.encode(u)
        components = torch.distributions.Independent(
            torch.distributions.Normal(q.mean, torch.exp(0.5 * q.logvar)), 1
        )
        mixture = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(torch.ones(7)), components
        )
        assert torch.allclose(model.log_prior(z), mixture.log_prob(z), atol=1e-5)
    assert not model.standard_prior and build_model("vae_mlp", 28, latent_dim=3).standard_prior


def test_vampprior_components_are_cached_only_while_the_weights_are_frozen():
    torch.manual_seed(0)
    model = build_model("vae_mlp", 28, latent_dim=3, hidden_dim=16, prior="vamp", pseudo_inputs=7)
    encodes = []
    model.hidden.register_forward_hook(lambda *_: encodes.append(1))
    z = torch.randn(5, 3)
    with torch.inference_mode(), model.frozen_prior():
        before = model.log_prior(z)
        assert torch.equal(model.log_prior(z), before) and len(encodes) == 1
    # a fused step does not bump the parameters' versions; outside the context the prior
    # is encoded afresh, so validation between training epochs sees the new weights
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    model.log_prior(z).sum().backward()
    optimizer.step()
    with torch.inference_mode():
        after = model.log_prior(z)
    assert len(encodes) == 3 and not torch.allclose(after, before)
    with torch.no_grad():
        q = model.encode(model.pseudo_inputs())
        squared = (z[:, None] - q.mean) ** 2 / q.logvar.exp() + q.logvar + math.log(2 * math.pi)
        direct = torch.logsumexp(-0.5 * squared.sum(-1), dim=-1) - math.log(7)
    assert torch.allclose(after, direct, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("cvae", {"prior": "vamp", "pseudo_inputs": 4}),
        # two levels: no closed form even under a standard top prior, p(z1|z2) is learned
        ("hvae_vamp", {"prior": "standard", "hidden_dim": 16}),
    ],
)
def test_kl_without_a_closed_form_is_estimated_at_the_sample(name, knobs):
    torch.manual_seed(0)
    model = build_model(name, 28, latent_dim=2, **knobs)
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    analytic = analytic_elbo(model, x, torch.Generator().manual_seed(1))
    mc = mc_elbo(model, x, torch.Generator().manual_seed(1))
    # the same z: the two estimators agree term by term when the KL is estimated at it
    assert torch.allclose(analytic.elbo, mc.elbo, atol=1e-4)


def test_kl_warm_up_rises_linearly_then_stays():
    knobs = ElboKnobs(kl_weight=0.5, warmup_epochs=4)
    weights = [objective_for("analytic_elbo", knobs, e).keywords["kl_weight"] for e in (1, 3, 5, 9)]
    assert weights == [0.0, 0.25, 0.5, 0.5]
    assert objective_for("analytic_elbo", knobs).keywords["kl_weight"] == 0.5


def test_only_knobs_with_a_schedule_are_scheduled_knobs():
    scheduled = [name for name, o in OBJECTIVES.items() if isinstance(o.Knobs(), ScheduledKnobs)]
    assert scheduled == ["analytic_elbo"]
    # knobs without one pass their fields straight through
    assert objective_for("weighted").keywords == {"recon_weight": 1.0, "kl_weight": 1.0}


def _two_level_parts(model, x, z):
    """The hierarchical model's Gaussians, straight from its layers: q(z2|x), q(z1|x, z2)
    and p(z1|z2) at the z2 inside z = concat(z1, z2), as torch.distributions.Normal."""
    dims = model.latent_dim
    z2 = z[..., dims:]
    flat = x.flatten(1)
    h = model.q_z2_hidden(flat)
    q_z2 = torch.distributions.Normal(model.q_z2_mean(h), torch.exp(0.5 * model.q_z2_logvar(h)))
    from_z2 = model.q_z1_from_z2(z2)
    from_x = model.q_z1_from_x(flat).expand_as(from_z2)
    h = model.q_z1_joint(torch.cat([from_x, from_z2], dim=-1))
    q_z1 = torch.distributions.Normal(model.q_z1_mean(h), torch.exp(0.5 * model.q_z1_logvar(h)))
    h = model.p_z1_hidden(z2)
    p_z1 = torch.distributions.Normal(model.p_z1_mean(h), torch.exp(0.5 * model.p_z1_logvar(h)))
    return q_z2, q_z1, p_z1


def test_two_level_posterior_and_prior_are_their_gaussians_at_the_drawn_z():
    torch.manual_seed(0)
    model = build_model("hvae_vamp", 28, latent_dim=3, hidden_dim=16, pseudo_inputs=7)
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        q = model.encode(x)
        draw = q.draw(torch.Generator().manual_seed(3))
        z = draw.z
        q_z2, q_z1, p_z1 = _two_level_parts(model, x, z)
        # ancestral reparameterisation: z2's noise first, then z1's given that z2
        noise = torch.Generator().manual_seed(3)
        eps2, eps1 = torch.randn(4, 3, generator=noise), torch.randn(4, 3, generator=noise)
        torch.testing.assert_close(z[:, 3:], q_z2.loc + q_z2.scale * eps2)
        torch.testing.assert_close(z[:, :3], q_z1.loc + q_z1.scale * eps1)
        log_q = q_z1.log_prob(z[:, :3]).sum(-1) + q_z2.log_prob(z[:, 3:]).sum(-1)
        torch.testing.assert_close(draw.log_prob(z), log_q)
        torch.testing.assert_close(q.log_prob(z), log_q)
        # n draws per image: each image's own features beside each of its draws
        stacked = torch.stack([z, torch.randn(4, 6)])
        q_z2, q_z1, _ = _two_level_parts(model, x, stacked)
        expected = q_z1.log_prob(stacked[..., :3]).sum(-1) + q_z2.log_prob(stacked[..., 3:]).sum(-1)
        torch.testing.assert_close(q.expand(2).log_prob(stacked), expected)
        # log p(z) = log p(z1|z2) + the VampPrior on z2: the pseudo-inputs' q(z2|u_k)
        u = model.pseudo_inputs().flatten(1)
        h = model.q_z2_hidden(u)
        components = torch.distributions.Independent(
            torch.distributions.Normal(model.q_z2_mean(h), torch.exp(0.5 * model.q_z2_logvar(h))),
            1,
        )
        vamp = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(torch.ones(7)), components
        )
        log_p = p_z1.log_prob(z[:, :3]).sum(-1) + vamp.log_prob(z[:, 3:])
        torch.testing.assert_close(model.log_prior(z), log_p)
        with model.frozen_prior():
            torch.testing.assert_close(model.log_prior(z), log_p)
