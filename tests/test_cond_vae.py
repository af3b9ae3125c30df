"""The class-conditional VAE (cond_vae_mlp) and the labels that reach a model: its decoder
draws the class it is asked for, as a nearest-template classifier reads it back."""

import pytest
import torch

from vaelab.models.inference import decode_probs, posterior_means
from vaelab.models.registry import build_model
from vaelab.objectives.losses import analytic_elbo, mean_terms

CLASSES = 4


def templates() -> torch.Tensor:
    """One random binary 28x28 picture per class: the 'digits' of a toy data set."""
    return (
        torch.rand(CLASSES, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5
    ).float()


def nearest_template(images: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """The classifier: the class whose template is nearest in squared distance."""
    return torch.cdist(images.flatten(1), shapes.flatten(1)).argmin(1)


@pytest.fixture(scope="module")
def trained():
    """A small cond_vae_mlp fitted for 150 steps on noisy copies of the class templates."""
    threads = torch.get_num_threads()
    # ops this small run faster on one thread, and far faster beside another busy process
    torch.set_num_threads(1)
    try:
        return fit_on_templates()
    finally:
        torch.set_num_threads(threads)


def fit_on_templates():
    torch.manual_seed(0)
    model = build_model("cond_vae_mlp", 28, latent_dim=2, hidden_dim=32, num_classes=CLASSES)
    shapes = templates()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(2)
    for _ in range(150):
        labels = torch.randint(CLASSES, (64,), generator=generator)
        flips = torch.rand(64, 1, 28, 28, generator=generator) < 0.05
        x = (shapes[labels] + flips.float()) % 2
        # a KL weight of 4 leaves z no room to repeat what the label says
        loss = analytic_elbo(model.given(labels), x, generator, kl_weight=4.0).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), shapes


def test_the_decoder_draws_the_class_it_is_asked_for(trained):
    model, shapes = trained
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(3))  # codes from the prior
    asked = torch.arange(40) % CLASSES
    read_back = nearest_template(decode_probs(model, z, labels=asked), shapes)
    assert torch.equal(read_back, asked)
    # the same codes given other labels draw those other classes: the label, not z, decides
    other = (asked + 1) % CLASSES
    assert torch.equal(nearest_template(decode_probs(model, z, labels=other), shapes), other)


def test_a_wrong_label_makes_the_bound_of_an_image_worse(trained):
    model, shapes = trained
    x, labels = shapes, torch.arange(CLASSES)
    right = mean_terms(model, x, analytic_elbo, labels=labels)["elbo"]
    wrong = mean_terms(model, x, analytic_elbo, labels=(labels + 1) % CLASSES)["elbo"]
    assert right > wrong + 50


def test_labels_are_sliced_with_the_batches_they_belong_to(trained):
    model, shapes = trained
    labels = torch.arange(CLASSES).repeat(3)
    x = shapes[labels]
    whole, _ = posterior_means(model, x, labels=labels)
    in_batches, _ = posterior_means(model, x, batch_size=5, labels=labels)
    by_hand = torch.cat(
        [model.given(labels[i : i + 1]).encode(x[i : i + 1]).mean for i in range(12)]
    )
    assert torch.allclose(whole, by_hand, atol=1e-6) and torch.allclose(
        in_batches, by_hand, atol=1e-6
    )


def test_a_conditional_model_needs_labels_and_the_others_ignore_them():
    conditional = build_model("cond_vae_mlp", 28, latent_dim=2, hidden_dim=8)
    with pytest.raises(ValueError, match="class-conditional"):
        conditional.given(None)
    plain = build_model("vae_mlp", 28, latent_dim=2, hidden_dim=8)
    assert plain.given(torch.zeros(3, dtype=torch.long)) is plain
