"""The sample-quality pieces on tiny inputs: the Fréchet distance, class statistics, the
samplers, latent paths, and the classifier stage on a tiny profile."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, run_env

from vaelab.evaluation.sample_quality import class_statistics, frechet_distance
from vaelab.evaluation.samplers import SAMPLERS, fit_sampler, samplers_for
from vaelab.models.inference import decode_probs
from vaelab.models.registry import build_model
from vaelab.pictures.latent_paths import (
    interpolate,
    interpolation_grid,
    interpolation_paths,
    traversal_codes,
)
from vaelab.report.references_page import pictures_of, samples_table


def features(n=400, dims=8, seed=0):
    return torch.randn(n, dims, generator=torch.Generator().manual_seed(seed)) * 2 + 1


def test_frechet_distance_of_a_set_to_itself_is_zero():
    a = features()
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)


def test_frechet_distance_grows_as_one_set_is_shifted():
    a, b = features(seed=0), features(seed=1)
    distances = [frechet_distance(a, b + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances) and distances[0] < 1.0
    # a shift of every feature by s adds about dims * s^2 to the squared mean distance
    assert distances[-1] - distances[0] == pytest.approx(8 * 2.0**2, rel=0.15)


def test_class_statistics_see_a_model_that_draws_one_class():
    one_class = torch.nn.functional.one_hot(torch.full((50,), 7), 10).float()
    every_class = torch.nn.functional.one_hot(torch.arange(50) % 10, 10).float()
    assert class_statistics(one_class)["class_entropy_nats"] == 0
    assert class_statistics(every_class)["class_entropy_nats"] == pytest.approx(math.log(10))
    assert class_statistics(torch.full((4, 10), 0.1))["mean_confidence"] == pytest.approx(0.1)


CODES = np.random.default_rng(0).normal(size=(300, 3)) * [1.0, 2.0, 0.5] + [3.0, 0.0, -1.0]


@pytest.fixture(scope="module")
def fitted():
    model = build_model("vae_mlp", 28, latent_dim=3, hidden_dim=8)
    return {name: fit_sampler(name, CODES, components=4, seed=0, model=model) for name in SAMPLERS}


# three far-apart, narrow VampPrior components in 2-D, set by hand: draws of the model's
# prior must fall in them a third each, which N(0, I) draws never would
CENTRES = torch.tensor([[6.0, 0.0], [-6.0, 0.0], [0.0, 6.0]])
NARROW = torch.full((3, 2), math.log(0.1**2))  # sd 0.1


def nearest_centre(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    distance, index = torch.cdist(z, CENTRES).min(1)
    return index, distance


def test_the_prior_sampler_draws_a_standard_prior_as_before_and_a_vampprior_from_its_mixture(
    monkeypatch,
):
    standard = build_model("vae_mlp", 28, latent_dim=2, hidden_dim=8)
    z = fit_sampler("prior", CODES, 1, 0, model=standard).sample(500, seed=5)
    assert torch.equal(z, torch.randn(500, 2, generator=torch.Generator().manual_seed(5)))

    vamp = build_model("vamp_mlp", 28, latent_dim=2, hidden_dim=8, prior="vamp", pseudo_inputs=3)
    monkeypatch.setattr(vamp, "prior_components", lambda: (CENTRES, NARROW))
    z = fit_sampler("prior", CODES, 1, 0, model=vamp).sample(6000, seed=5)
    index, distance = nearest_centre(z)
    assert distance.max() < 0.6  # every draw within 6 sd of a component's mean
    assert torch.allclose(
        torch.bincount(index, minlength=3) / 6000.0, torch.full((3,), 1 / 3), atol=0.03
    )
    assert z.std(0).min() > 2.0  # spread over the three (sd 4.9 and 2.8), not one N(0, I) blob
    with pytest.raises(ValueError, match="pass the model"):
        fit_sampler("prior", CODES, 1, 0)


class Constant(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.full_like(h, self.value)


def test_the_prior_sampler_draws_a_hierarchy_ancestrally(monkeypatch):
    # p(z2) the three components above; p(z1 | z2) = N(z2, 0.1^2) with the networks replaced
    model = build_model("hvae_vamp", 28, latent_dim=2, hidden_dim=8, pseudo_inputs=3)
    monkeypatch.setattr(model, "prior_components", lambda: (CENTRES, NARROW))
    model.p_z1_hidden, model.p_z1_mean = torch.nn.Identity(), torch.nn.Identity()
    model.p_z1_logvar = Constant(math.log(0.1**2))
    z = fit_sampler("prior", CODES, 1, 0, model=model).sample(6000, seed=2)
    z1, z2 = z[:, :2], z[:, 2:]
    assert z.shape == (6000, 4)
    assert nearest_centre(z2)[1].max() < 0.6
    assert (z1 - z2).std(0).sub(0.1).abs().max() < 0.01  # z1 scattered around its own z2


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_returns_the_shape_and_count_asked(fitted, name):
    for count in (1, 7, 64):
        z = fitted[name].sample(count, seed=3)
        assert z.shape == (count, 3) and z.dtype == torch.float32
        assert torch.equal(z, fitted[name].sample(count, seed=3))  # seeded


def test_box_samples_stay_in_the_codes_box_and_an_autoencoder_has_no_prior(fitted):
    z = fitted["box"].sample(500, 0).numpy()
    assert (z >= CODES.min(0) - 1e-6).all() and (z <= CODES.max(0) + 1e-6).all()
    assert samplers_for(prior=False) == ("box", "mixture")


def test_mixture_samples_follow_the_codes(fitted):
    z = fitted["mixture"].sample(3000, 1).numpy()
    assert np.allclose(z.mean(0), CODES.mean(0), atol=0.15)


def test_spherical_interpolation_keeps_the_norm_of_equal_norm_ends():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    spherical = interpolate(z0, z1, 5, spherical=True)
    linear = interpolate(z0, z1, 5, spherical=False)
    assert torch.allclose(spherical.norm(dim=1), torch.full((5,), 3.0))
    assert linear[2].norm() < 2.2


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolation_endpoints_decode_the_two_chosen_images_codes(spherical):
    torch.manual_seed(0)
    model = build_model("cvae", 28, latent_dim=3).eval()
    images = torch.rand(4, 1, 28, 28)
    first, second = images[:2], images[2:]
    paths = interpolation_paths(model, first, second, steps=6, spherical=spherical)
    with torch.inference_mode():
        assert torch.equal(paths[:, 0], model.encode(first).mean)
        assert torch.equal(paths[:, -1], model.encode(second).mean)
    grid = interpolation_grid(model, first, second, steps=6, spherical=spherical)
    tile = 28 + 2  # each tile is followed by 2 pixels of padding
    ends = decode_probs(model, torch.cat([paths[:, 0], paths[:, -1]]))
    expected = (ends.clamp(0, 1) * 255).round().to(torch.uint8).numpy()[:, 0]
    for row in range(2):
        top = 2 + row * tile
        assert (grid[top : top + 28, 2 + tile : 2 + tile + 28] == expected[row]).all()
        assert (grid[top : top + 28, 2 + 6 * tile : 2 + 6 * tile + 28] == expected[2 + row]).all()


def test_a_traversal_moves_one_dimension_per_row():
    codes = traversal_codes(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0]), steps=5)
    rows = codes.reshape(3, 5, 3)
    for d in range(3):
        moved = (rows[d] != rows[d][0]).any(0)
        assert moved.tolist() == [i == d for i in range(3)]
    assert rows[2, 0, 2].item() == pytest.approx(3.0 - 2.5 * 2.0)


def test_the_classifier_stage_trains_on_a_tiny_profile(prepared_data, tmp_path):
    from vaelab.tools.profiles import apply_profile

    params = apply_profile(yaml.safe_load((ROOT / "params.yaml").read_text()), "tiny")
    params["data"]["prepared"]["binary28"] = dict(params["data"]["prepared"]["mnist_binary"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(ROOT / "stages/classifier.py"),
        "binary28",
        "--data",
        str(prepared_data / "binary28"),
        "--out",
        str(out / "classifier.pt"),
        "--metrics",
        str(out / "metrics.json"),
        "--params",
        str(tmp_path / "params.yaml"),
    ]
    done = subprocess.run(command, env=run_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_images"] == 128 and 0 <= metrics["test_accuracy"] <= 1
    assert sorted(p.name for p in out.iterdir()) == ["classifier.pt", "metrics.json"]

    command[2] = "nonesuch"
    failed = subprocess.run(command, env=run_env(), capture_output=True, text=True)
    assert failed.returncode != 0
    assert failed.stderr.startswith("error: data.prepared: unknown name 'nonesuch'")


def test_a_loaded_classifier_runs_channels_last_and_predicts_as_saved(tmp_path):
    from vaelab.evaluation.classifier import DigitCNN, load_classifier, predict, save_classifier

    torch.manual_seed(0)
    saved = DigitCNN(28, 10).eval()
    save_classifier(tmp_path / "classifier.pt", saved, {"test_accuracy": 0.5})
    loaded, info = load_classifier(tmp_path / "classifier.pt")
    assert info == {"test_accuracy": 0.5} and not loaded.training
    assert loaded.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(8, 1, 28, 28)
    for got, want in zip(predict(loaded, images), predict(saved, images), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_classifier_trains_in_bf16_only_where_amp_says_and_keeps_fp32_weights(monkeypatch):
    from vaelab.config.params import ClassifierSpec
    from vaelab.evaluation.classifier import train_classifier

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(96, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (96,), generator=generator)

    def trained(amp):
        knobs = ClassifierSpec(epochs=1, batch_size=32, lr=1e-3, seed=0, amp=amp)
        model = train_classifier(
            images, labels, classes=10, knobs=knobs, device=torch.device("cpu")
        )
        return model.state_dict()

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False})
    fp32, auto_without = trained(False), trained("auto")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    bf16, auto_with = trained(True), trained("auto")
    for name, weight in fp32.items():
        assert torch.equal(auto_without[name], weight), name
        assert torch.equal(auto_with[name], bf16[name]), name
        assert bf16[name].dtype == weight.dtype
    assert not torch.equal(bf16["conv2.weight"], fp32["conv2.weight"])
    assert fp32["conv2.weight"].dtype == torch.float32


def _translated(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`image` [1, H, W] moved down by dy and right by dx, zeros where nothing moved in."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_training_shifts_move_each_image_by_its_own_draw_within_the_bound():
    from vaelab.evaluation.classifier import shifted

    images = torch.rand(64, 1, 8, 8) + 0.1  # no zero pixel, so every shift is visible
    moved = shifted(images, 2, torch.Generator().manual_seed(0))
    offsets = []
    for image, out in zip(images, moved, strict=True):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out, _translated(image, dy, dx))
        ]
        assert len(found) == 1, found
        offsets += found
    assert len(set(offsets)) > 12  # a draw per image, not one for the batch
    again = shifted(images, 2, torch.Generator().manual_seed(0))
    assert torch.equal(again, moved)  # seeded
    assert shifted(images, 0, torch.Generator()) is images


def test_the_report_takes_its_samplers_from_what_each_experiment_scored(tmp_path):
    """A sampler added to SAMPLERS reaches the report with no list to edit there."""
    scored = {"fid": 12.5, "class_entropy_nats": 2.1, "mean_confidence": 0.9}
    runs = {
        "vae": {"prior": "the prior", "box": "the box", "flow": "a new sampler"},
        "ae": {"box": "the box"},
    }
    for name, samplers in runs.items():
        (tmp_path / name / "sampler_grids").mkdir(parents=True)
        quality = {
            "samples": 64,
            "floor": {"fid_test_halves": 1.0, "fid_train_vs_test": 0.5},
            "classifier": {"data": "d", "test_accuracy": 0.99},
        }
        for sampler, description in samplers.items():
            quality[sampler] = {**scored, "description": description}
            (tmp_path / name / "sampler_grids" / f"{sampler}.png").write_bytes(b"")
        (tmp_path / name / "sample_quality.json").write_text(json.dumps(quality))
        (tmp_path / name / "metrics.json").write_text(json.dumps({}))
    table = samples_table(dict.fromkeys(runs), tmp_path).set_index("experiment")
    columns = [c for c in table.columns if c.startswith("FID")]
    assert columns == ["FID prior (H, c)", "FID box (H, c)", "FID flow (H, c)"]
    assert table.loc["ae", "FID flow (H, c)"] == "—"
    assert table.loc["vae", "FID flow (H, c)"] == "12.50 (2.10, 0.90)"
    assert pictures_of("vae", tmp_path) == [
        ("sampler_grids/prior.png", "the prior"),
        ("sampler_grids/box.png", "the box"),
        ("sampler_grids/flow.png", "a new sampler"),
    ]
