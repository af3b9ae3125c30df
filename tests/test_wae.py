"""WAE-MMD (wae_mlp, the wae_mmd objective): the MMD estimate against a direct double sum,
near 0 for a sample and itself or two samples of one law, growing with a shift."""

import pytest
import torch

from vaelab.evaluation.estimators import evaluate
from vaelab.models.registry import build_model
from vaelab.objectives.losses import mmd, wae_mmd


def by_hand(a, b, kernel, c):
    """Gretton et al.'s unbiased MMD^2, summed pair by pair."""

    def k(u, v):
        d = float(((u - v) ** 2).sum())
        return c / (c + d) if kernel == "imq" else torch.exp(torch.tensor(-d / c)).item()

    n, m = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    bb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    ab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return aa + bb - 2 * ab


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_matches_the_pairwise_sum(kernel):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 3, generator=g), torch.randn(5, 3, generator=g) + 0.5
    expected = by_hand(a.double(), b.double(), kernel, 2.0 * 3 * 0.5)
    assert mmd(a.double(), b.double(), kernel=kernel, scale=0.5).item() == pytest.approx(expected)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_is_near_zero_for_one_law_and_grows_with_a_shift(kernel):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(400, 4, generator=g), torch.randn(400, 4, generator=g)
    # a sample with itself: the unbiased estimate leaves out k(x_i, x_i) within but not
    # across, so it sits within 2/n of 0
    assert abs(mmd(x, x, kernel=kernel).item()) <= 2 / len(x) + 1e-6
    assert abs(mmd(x, y, kernel=kernel).item()) < 0.01
    shifted = [mmd(x, y + s, kernel=kernel).item() for s in (0.25, 0.5, 1.0, 2.0)]
    assert shifted == sorted(shifted) and shifted[0] > 0.01


def test_the_wae_loss_is_reconstruction_plus_weighted_mmd_and_evaluate_has_no_bound():
    torch.manual_seed(0)
    model = build_model("wae_mlp", 28, latent_dim=2, hidden_dim=16)
    x = (torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    knobs = dict(kernel="imq", kernel_scale=1.0)
    light = wae_mmd(model, x, torch.Generator().manual_seed(3), mmd_weight=1.0, **knobs)
    heavy = wae_mmd(model, x, torch.Generator().manual_seed(3), mmd_weight=11.0, **knobs)
    codes = model.encode(x).mean
    prior = torch.randn(codes.shape, generator=torch.Generator().manual_seed(3))
    expected = mmd(codes, prior, kernel="imq")
    assert (heavy.loss - light.loss).item() == pytest.approx(10 * expected.item(), rel=1e-4)
    assert model.has_prior and not model.variational
    metrics = evaluate(model, x, iwae_samples=2, batch_size=4, seed=0)
    assert set(metrics["not_defined"]) == {"elbo", "iwae"} and "elbo" not in metrics
