"""Layers the architectures share: Keras's initialisation (or PyTorch's, as a knob), the
"same"-padded stride-2 transposed convolution, and the decoders' last layer with its CPU
inference path."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from vaelab.core.knobs import Knobs


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, Keras's defaults for Dense and Conv layers.

    The TF/Keras seeds train from this initialisation; PyTorch's default (Kaiming-uniform
    with a = sqrt(5)) gives visibly different 10-epoch figures.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class InitKnob(Knobs):
    """The `init` knob of a model that can start either way: "glorot" (keras_init, what the
    Keras seeds train from) or "torch" (the layers as PyTorch builds them: Kaiming-uniform
    weights with a = sqrt(5) and uniform biases, what pythae's networks start from)."""

    init: Literal["glorot", "torch"] = "glorot"


def initialise(module: nn.Module, init: Literal["glorot", "torch"]) -> None:
    if init == "glorot":
        keras_init(module)


class NarrowConv2d(nn.Conv2d):
    """A stride-1, zero-padded "same" convolution to few output channels (a decoder's last
    layer), whose inference runs as one matrix product and k*k shifted sums.

    oneDNN's convolution to one output channel runs far below the CPU's arithmetic rate; in
    an evaluation's decodes it took a third of the time (benchmarks.decode_speed, way
    "conv2d-last"). Without a gradient, on the CPU, this layer instead multiplies every
    pixel's channels by each tap of the kernel (one GEMM, [out * k * k, C] x [C, pixels])
    and adds the taps' planes at their offsets. With a gradient it runs as nn.Conv2d, whose
    backward oneDNN does well, and on GPUs, where nothing says cuDNN needs the help. The
    parameters are nn.Conv2d's, so weights and state dicts are unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size = {kernel_size} is invalid: a same padding needs it odd")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu":
            return super().forward(x)
        n, channels, height, width = x.shape
        out_channels, size, pad = self.out_channels, self.kernel_size[0], self.padding[0]
        # out[h, w] = sum over taps (i, j) of tap_ij[h + i - pad, w + j - pad]
        taps = self.weight.permute(0, 2, 3, 1).reshape(-1, channels)
        planes = torch.matmul(taps, x.flatten(2)).view(n, out_channels, size, size, height, width)
        padded = x.new_zeros(n, out_channels, height + 2 * pad, width + 2 * pad)
        for i in range(size):
            rows = slice(2 * pad - i, 2 * pad - i + height)
            for j in range(size):
                padded[:, :, rows, 2 * pad - j : 2 * pad - j + width] += planes[:, :, i, j]
        out = padded[:, :, pad : pad + height, pad : pad + width]
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def transpose_same(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """Keras Conv2DTranspose(k=3, strides=2, padding='same'): doubles height and width."""
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
