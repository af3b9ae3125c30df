"""The op profile's other formulations compute the same function as the trainer's layers.

benchmarks/op_profile.py times them against ConvTranspose2d, Flatten + Linear and the
Conv2d last layer; a timing means nothing unless the function is the same. These check
it on random tensors: the output, and the gradients to the weight, the bias and the
input, in float64 (where the formulations agree with ConvTranspose2d to rounding) and in
float32 channels_last, as the trainer runs them. No TensorFlow needed.
"""

from __future__ import annotations

import pytest
import torch
from conftest import benchmark_module
from torch import nn


@pytest.fixture(scope="module")
def same_function():
    return benchmark_module("same_function")


def gradients(layer: nn.Module, x: torch.Tensor, dy: torch.Tensor, params) -> list:
    x = x.detach().requires_grad_()
    y = layer(x)
    return [y.detach(), *torch.autograd.grad(y, [x, *params], dy)]


def assert_close(got, want, rtol):
    for name, a, b in zip(
        ("output", "input grad", "weight grad", "bias grad"), got, want, strict=True
    ):
        assert a.shape == b.shape, name
        error = (a - b).abs().max() / b.abs().max()
        assert error < rtol, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("form", ["sub-pixel", "4 phases", "zero-insertion"])
@pytest.mark.parametrize(
    "dtype, layout, rtol, cin, cout, size",
    [
        (torch.float64, torch.contiguous_format, 1e-12, 5, 3, 4),
        (torch.float64, torch.channels_last, 1e-12, 6, 4, 5),
        # the cvae's two, as the trainer runs them
        (torch.float32, torch.channels_last, 1e-5, 32, 64, 7),
        (torch.float32, torch.channels_last, 1e-5, 64, 32, 14),
    ],
)
def test_stride2_forms_match_conv_transpose(
    same_function, form, dtype, layout, rtol, cin, cout, size
):
    torch.manual_seed(0)
    reference = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
    reference = reference.to(dtype=dtype, memory_format=layout)
    x = torch.randn(4, cin, size, size, dtype=dtype).contiguous(memory_format=layout)
    dy = torch.randn(4, cout, 2 * size, 2 * size, dtype=dtype)
    params = [reference.weight, reference.bias]
    want = gradients(reference, x, dy, params)
    got = gradients(same_function.STRIDE2_FORMS[form](reference), x, dy, params)
    assert_close(got, want, rtol)


def test_stride2_forms_refuse_other_shapes(same_function):
    with pytest.raises(ValueError, match="stride=2"):
        same_function.SubPixelConvTranspose(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1))


def test_last_layer_as_the_tutorials_transposed_convolution(same_function):
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 1, 3, padding=1).double()
    x = torch.randn(4, 32, 9, 9, dtype=torch.float64)
    transposed = same_function.conv_transpose_s1(conv)
    assert torch.allclose(transposed(x), conv(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 5, 7, 6), (2, 32, 28, 28), (1, 1, 1, 1)])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_last_layer_as_nine_taps(same_function, shape, layout):
    # non-square planes would show rows and columns swapped; 1x1 planes read only padding
    torch.manual_seed(0)
    conv = nn.Conv2d(shape[1], 1, 3, padding=1).double().to(memory_format=layout)
    x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=layout)
    dy = torch.randn(shape[0], 1, *shape[2:], dtype=torch.float64)
    params = [conv.weight, conv.bias]
    want = gradients(conv, x, dy, params)
    assert_close(gradients(same_function.NineTapConv(conv), x, dy, params), want, 1e-12)


def test_nine_taps_under_bf16_autocast_sum_in_fp32(same_function):
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 1, 3, padding=1)
    x = torch.randn(4, 32, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = same_function.NineTapConv(conv)(x)
    assert out.dtype == torch.float32
    reference = conv(x)
    # bf16 inputs to the 1x1 convolution: about three significant digits, not more
    assert (out - reference).abs().max() < 0.02 * reference.abs().max()


def test_nine_taps_refuse_other_layers(same_function):
    with pytest.raises(ValueError, match="padding=1"):
        same_function.NineTapConv(nn.Conv2d(4, 2, 3, padding=1))


def test_dense_layers_in_nhwc_order(same_function):
    torch.manual_seed(0)
    chw = (6, 3, 3)
    x = torch.randn(4, *chw, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    encoder_head = nn.Linear(54, 4).double()
    want = encoder_head(x.flatten(1))
    assert torch.allclose(same_function.FlattenNHWC(encoder_head, chw)(x), want, rtol=0, atol=1e-12)

    z = torch.randn(4, 2, dtype=torch.float64)
    decoder_head = nn.Linear(2, 54).double()
    want = nn.Unflatten(1, chw)(decoder_head(z))
    permuted = same_function.rows_in_hwc_order(decoder_head, chw)
    got = same_function.UnflattenNHWC(chw)(permuted(z))
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
