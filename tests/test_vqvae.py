"""The VQ-VAE (vqvae): its quantiser picks the nearest codebook row, as torch.cdist's
argmin does, and passes the decoder's gradient straight through to the encoder; the `vq`
loss trains the codebook; evaluate reports the codebook's usage and no bound; its sampler
is fitted per code position on the training codes."""

import numpy as np
import torch

from vaelab.evaluation.estimators import NOT_DEFINED, evaluate
from vaelab.evaluation.samplers import fit_sampler, samplers_for
from vaelab.models.registry import build_model
from vaelab.models.vqvae import nearest
from vaelab.objectives.losses import vq_loss


def model(**knobs):
    torch.manual_seed(0)
    return build_model("vqvae", 28, latent_dim=3, codebook_size=12, **knobs)


def images(n: int = 6) -> torch.Tensor:
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_the_quantiser_picks_the_nearest_code_as_cdist_does():
    generator = torch.Generator().manual_seed(0)
    vectors, codebook = (
        torch.randn(7, 5, 3, generator=generator),
        torch.randn(12, 3, generator=generator),
    )
    by_cdist = torch.cdist(vectors.reshape(-1, 3), codebook).argmin(1).view(7, 5)
    assert torch.equal(nearest(vectors, codebook), by_cdist)
    vq = model()
    q = vq.quantise(images())
    rows = q.encoded.detach().reshape(-1, 3)
    assert torch.equal(q.indices.flatten(), torch.cdist(rows, vq.codebook.detach()).argmin(1))
    assert torch.equal(q.chosen.detach(), vq.codebook.detach()[q.indices])
    assert torch.allclose(q.straight_through.view_as(q.chosen), q.chosen, atol=1e-6)


def test_the_gradient_goes_straight_through_the_quantiser():
    vq = model()
    q = vq.quantise(images())
    upstream = torch.randn_like(q.straight_through)
    (grad,) = torch.autograd.grad((q.straight_through * upstream).sum(), q.encoded)
    assert torch.equal(grad, upstream.view_as(q.encoded))  # d z_q / d z_e = identity
    # and through decode's own snap, as the loss uses it
    z = q.straight_through.detach().requires_grad_()
    (through_decode,) = torch.autograd.grad(vq.decode(z).sum(), z)
    rows = vq.codebook.detach()[q.indices].flatten(1).requires_grad_()
    grid = rows.view(len(z), -1, 3).transpose(1, 2).reshape(len(z), 3, 4, 4)
    (direct,) = torch.autograd.grad(vq.decoder(grid).sum(), rows)
    assert torch.allclose(through_decode, direct, atol=1e-5)


def test_the_loss_trains_encoder_and_codebook_and_ema_moves_the_codebook_without_gradient():
    vq = model()
    vq_loss(vq, images(), commitment_weight=0.25).loss.backward()
    assert vq.encoder[0].weight.grad.abs().sum() > 0 and vq.codebook.grad.abs().sum() > 0
    ema = model(ema_decay=0.9).train()
    before = ema.codebook.clone()
    vq_loss(ema, images(), commitment_weight=0.25).loss.backward()
    assert not ema.codebook.requires_grad and not torch.equal(ema.codebook, before)


def test_evaluate_reports_codebook_usage_and_says_the_bounds_are_not_defined():
    vq = model()
    x = images(8)
    metrics = evaluate(vq, x, iwae_samples=3, batch_size=4, seed=0)
    assert metrics["not_defined"] == {"elbo": NOT_DEFINED, "iwae": NOT_DEFINED}
    assert "elbo" not in metrics and "iwae" not in metrics
    counts = np.bincount(vq.code_indices(x).flatten().numpy(), minlength=12)
    share = counts[counts > 0] / counts.sum()
    usage = metrics["codebook"]
    assert usage["dead_codes"] == int((counts == 0).sum())
    assert np.isclose(usage["perplexity"], np.exp(-(share * np.log(share)).sum()))


def test_the_codebook_sampler_draws_each_position_from_its_training_rows():
    assert samplers_for(prior=False, discrete=True) == ("box", "codebook")
    rows = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    rng = np.random.default_rng(0)
    # position 0 holds rows 0 and 1 (3:1), position 1 only row 2
    first = rows[rng.choice([0, 0, 0, 1], size=400)]
    codes = np.concatenate([first, np.repeat(rows[2:], 400, axis=0)], axis=1)
    z = fit_sampler("codebook", codes, components=1, seed=0, width=2).sample(2000, seed=1).numpy()
    assert (z[:, 2:] == rows[2]).all()
    is_row0 = (z[:, :2] == rows[0]).all(1)
    assert ((z[:, :2] == rows[1]).all(1) | is_row0).all()
    assert abs(is_row0.mean() - (first == rows[0]).all(1).mean()) < 0.04
