import math

import pytest
import torch
from torch import nn

from vaelab.models.layers import NarrowConv2d
from vaelab.models.registry import MODELS, build_model

CASES = [
    ("cvae", 28),
    ("cvae", 32),
    ("vae_mlp", 28),
    ("vae_mlp", 32),
    ("ae_conv", 32),
    ("vae_conv", 32),
]


@pytest.mark.parametrize(("name", "size"), CASES)
@pytest.mark.parametrize("latent_dim", [1, 2, 8])
def test_output_shapes(name, size, latent_dim):
    model = build_model(name, size, latent_dim=latent_dim)
    x = torch.rand(3, 1, size, size)
    q = model.encode(x)
    assert q.mean.shape == (3, latent_dim)
    if model.variational:
        assert q.logvar.shape == (3, latent_dim)
    else:
        assert q.logvar is None
    assert model.decode(q.sample()).shape == (3, 1, size, size)


@pytest.mark.parametrize("size", [28, 32])
def test_hierarchical_code_is_both_levels_at_their_means(size):
    torch.manual_seed(0)
    model = build_model("hvae_vamp", size, latent_dim=2, hidden_dim=8, pseudo_inputs=3)
    x = torch.rand(3, 1, size, size)
    with torch.no_grad():
        q = model.encode(x)
        assert q.mean.shape == q.logvar.shape == q.sample().shape == (3, 4)
        flat = x.flatten(1)
        h = model.q_z2_hidden(flat)
        z2_mean, z2_logvar = model.q_z2_mean(h), model.q_z2_logvar(h)
        h = model.q_z1_joint(torch.cat([model.q_z1_from_x(flat), model.q_z1_from_z2(z2_mean)], 1))
        torch.testing.assert_close(q.mean, torch.cat([model.q_z1_mean(h), z2_mean], 1))
        torch.testing.assert_close(q.logvar, torch.cat([model.q_z1_logvar(h), z2_logvar], 1))
        assert model.decode(q.sample()).shape == (3, 1, size, size)
        assert model.prior_components()[0].shape == (3, 2)  # the VampPrior is on z2 alone
    assert not model.standard_prior


def test_registry_says_what_each_model_is():
    assert not MODELS["ae_conv"].variational and MODELS["ae_conv"].image_sizes == (32,)
    for name in ("cvae", "vae_mlp", "vae_conv"):
        assert build_model(name, 32, latent_dim=2).variational
    with pytest.raises(ValueError, match=r"ae_conv takes image sizes \(32,\), got 28"):
        build_model("ae_conv", 28, latent_dim=2)


def test_cvae_matches_the_tutorials_layer_sizes():
    model = build_model("cvae", 28, latent_dim=2)
    dense = [m for m in model.encoder if isinstance(m, nn.Linear)][0]
    assert dense.in_features == 2304 and dense.out_features == 4
    assert model.decoder[0].out_features == 7 * 7 * 32


def test_reference003_flattens_to_2048_features():
    model = build_model("vae_conv", 32, latent_dim=2)
    assert model.body.feature_count == 2048
    assert model.body.features(torch.zeros(1, 1, 32, 32)).shape == (1, 2048)


# vamp_mlp follows its paper's He initialisation instead
@pytest.mark.parametrize("name", ["cvae", "vae_mlp", "ae_conv", "vae_conv", "iwae_mlp"])
def test_keras_initialisation(name):
    torch.manual_seed(0)
    model = build_model(name, 32, latent_dim=2)
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            assert torch.count_nonzero(layer.bias) == 0
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            assert layer.weight.abs().max() <= bound + 1e-6
            assert layer.weight.abs().max() > 0.8 * bound


@pytest.mark.parametrize("name", ["vae_mlp", "iaf_mlp"])
def test_init_torch_keeps_pytorchs_own_initialisation(name):
    torch.manual_seed(0)
    model = build_model(name, 28, latent_dim=4, init="torch")
    torch.manual_seed(0)
    glorot = build_model(name, 28, latent_dim=4)
    assert torch.count_nonzero(model.mean.bias) > 0  # nn.Linear's uniform biases, not zeros
    fan_in = model.mean.weight.shape[1]
    assert model.mean.weight.abs().max() <= 1 / math.sqrt(fan_in) + 1e-7
    assert not torch.equal(model.mean.weight, glorot.mean.weight)
    torch.manual_seed(0)
    assert torch.equal(
        build_model(name, 28, latent_dim=4, init="torch").mean.weight, model.mean.weight
    )


def test_logvar_clamp_bounds_the_posterior():
    model = build_model("vae_mlp", 28, latent_dim=2, logvar_clamp=1.5)
    with torch.no_grad():
        model.logvar.bias.fill_(100.0)
    assert model.encode(torch.rand(4, 1, 28, 28)).logvar.max() <= 1.5


@pytest.mark.parametrize(
    ("channels", "out_channels", "kernel", "bias", "layout"),
    [
        (32, 1, 3, True, torch.channels_last),  # the cvae's and reference 003's last layer
        (4, 3, 5, True, torch.contiguous_format),
        (5, 2, 1, False, torch.channels_last),
    ],
)
def test_narrow_conv_infers_what_its_conv2d_computes(channels, out_channels, kernel, bias, layout):
    torch.manual_seed(0)
    layer = NarrowConv2d(channels, out_channels, kernel).double()
    if not bias:
        layer.bias = None
    plain = nn.Conv2d(channels, out_channels, kernel, padding=kernel // 2, bias=bias).double()
    plain.load_state_dict(layer.state_dict())  # the same parameters under the same names
    x = torch.randn(3, channels, 9, 7, dtype=torch.float64).contiguous(memory_format=layout)
    with torch.inference_mode():
        inferred, expected = layer(x), plain(x)
    assert inferred.shape == expected.shape == (3, out_channels, 9, 7)
    torch.testing.assert_close(inferred, expected, rtol=0, atol=1e-12)
    trained = layer(x)  # with a gradient it is nn.Conv2d's own computation
    assert trained.grad_fn is not None
    torch.testing.assert_close(trained, expected, rtol=0, atol=0)


def test_narrow_conv_refuses_an_even_kernel():
    with pytest.raises(ValueError, match="kernel_size = 4 is invalid: a same padding needs it odd"):
        NarrowConv2d(8, 1, 4)


@pytest.mark.parametrize(("name", "size"), [("cvae", 28), ("ae_conv", 32), ("vae_conv", 32)])
def test_decoding_without_a_gradient_matches_the_training_decode(name, size):
    torch.manual_seed(0)
    model = build_model(name, size, latent_dim=2)
    assert any(isinstance(layer, NarrowConv2d) for layer in model.modules())
    z = torch.randn(64, 2)
    with torch.inference_mode():
        inferred = model.decode(z)
    torch.testing.assert_close(inferred, model.decode(z), rtol=1e-5, atol=1e-5)
