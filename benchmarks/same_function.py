"""Other formulations of the cvae's layers that compute the same function as the trainer's.

benchmarks/op_profile.py times them beside the layers `vaelab.models.build_model` makes,
and tests/test_op_profile.py checks that they agree with those layers. Each is built from
the trainer's layer: the transposed convolutions' formulations share its weight and bias
Parameters, so that their gradients land where ConvTranspose2d's do; the others hold a
rearranged copy of the weights, as the cvae's Conv2d last layer holds the tutorial's
ConvTranspose2d kernel flipped.

The stride-2 transposed convolution, ConvTranspose2d(k=3, stride=2, padding=1,
output_padding=1) (Keras's Conv2DTranspose(3, 2, "same")), sends input pixel i to output
pixels o = 2i - 1 + k for the kernel taps k = 0, 1, 2. Per axis, an even output 2m thus
reads input m through tap 1 only, and an odd output 2m + 1 reads input m through tap 2
and input m + 1 through tap 0. The four output phases (row even/odd x column even/odd)
are therefore ordinary stride-1 convolutions of the input with 1x1, 1x2, 2x1 and 2x2
kernels cut from the 3x3 one, the input padded by one zero row and column at the end:

    SubPixelConvTranspose   one 2x2 convolution to 4 x Cout channels (the phases' kernels,
                            zero-padded to 2x2: 16/9 of the multiply-adds), then
                            PixelShuffle(2) interleaves them (Shi et al. 2016)
    PhaseConvTranspose      the four convolutions with their exact kernels (no wasted
                            multiply-adds), interleaved by two stacks in NHWC order
    ZeroInsertionConvTranspose  the textbook form: zeros between the input pixels, then a
                            stride-1 3x3 convolution with the kernel flipped (4x the
                            multiply-adds, three quarters of them on zeros)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

# per output phase (0 even, 1 odd), the 3x3 kernel's tap read at input offsets 0 and 1
_TAPS = ((1, None), (2, 0))


def _subpixel_selection() -> torch.Tensor:
    """The 0/1 matrix (9, 16) taking a flattened 3x3 kernel to the sub-pixel kernels,
    indexed [phase row, phase column, offset row, offset column] in the 16."""
    selection = torch.zeros(9, 2, 2, 2, 2)
    for py in range(2):
        for px in range(2):
            for dy in range(2):
                for dx in range(2):
                    ky, kx = _TAPS[py][dy], _TAPS[px][dx]
                    if ky is not None and kx is not None:
                        selection[ky * 3 + kx, py, px, dy, dx] = 1.0
    return selection.reshape(9, 16)


def _check_stride2_same(layer: nn.ConvTranspose2d) -> None:
    shape = (layer.kernel_size, layer.stride, layer.padding, layer.output_padding)
    if shape != ((3, 3), (2, 2), (1, 1), (1, 1)) or layer.dilation != (1, 1) or layer.groups != 1:
        raise ValueError(f"not a ConvTranspose2d(3, stride=2, 'same') layer: {layer}")


def _like(tensor: torch.Tensor) -> dict:
    return {"device": tensor.device, "dtype": tensor.dtype}


def _layout(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


class SubPixelConvTranspose(nn.Module):
    """ConvTranspose2d(3, stride=2, padding=1, output_padding=1) as a 2x2 convolution to
    4 x Cout channels followed by PixelShuffle(2); shares `layer`'s weight and bias."""

    def __init__(self, layer: nn.ConvTranspose2d):
        super().__init__()
        _check_stride2_same(layer)
        self.weight, self.bias = layer.weight, layer.bias
        # a matmul rather than an index: its backward is one matmul, not a scatter-add
        self.register_buffer("selection", _subpixel_selection(), persistent=False)

    def kernel(self) -> torch.Tensor:
        cin, cout = self.weight.shape[:2]
        taps = self.weight.reshape(cin * cout, 9) @ self.selection.to(self.weight)
        # channel c * 4 + phase, the order PixelShuffle reads
        return taps.view(cin, cout, 4, 2, 2).permute(1, 2, 0, 3, 4).reshape(cout * 4, cin, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        return F.pixel_shuffle(F.conv2d(F.pad(x, (0, 1, 0, 1)), self.kernel(), bias), 2)


class PhaseConvTranspose(nn.Module):
    """ConvTranspose2d(3, stride=2, padding=1, output_padding=1) as four stride-1
    convolutions, one per output phase; shares `layer`'s weight and bias. The output is
    channels_last, whatever the input's layout."""

    def __init__(self, layer: nn.ConvTranspose2d):
        super().__init__()
        _check_stride2_same(layer)
        self.weight, self.bias = layer.weight, layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.transpose(0, 1)  # (Cout, Cin, 3, 3): as a convolution reads it
        n, _, h, w = x.shape
        even_even = F.conv2d(x, k[:, :, 1:2, 1:2], self.bias)
        even_odd = F.conv2d(F.pad(x, (0, 1)), k[:, :, 1:2, 0::2].flip(3), self.bias)
        odd_even = F.conv2d(F.pad(x, (0, 0, 0, 1)), k[:, :, 0::2, 1:2].flip(2), self.bias)
        odd_odd = F.conv2d(F.pad(x, (0, 1, 0, 1)), k[:, :, 0::2, 0::2].flip(2, 3), self.bias)
        # NHWC views, so that the interleaving writes the output once, in channels_last
        rows = [
            torch.stack([even.permute(0, 2, 3, 1), odd.permute(0, 2, 3, 1)], 3)
            for even, odd in ((even_even, even_odd), (odd_even, odd_odd))
        ]
        y = torch.stack(rows, 2)  # (N, H, 2, W, 2, C)
        return y.reshape(n, 2 * h, 2 * w, -1).permute(0, 3, 1, 2)


class ZeroInsertionConvTranspose(nn.Module):
    """ConvTranspose2d(3, stride=2, padding=1, output_padding=1) as zeros inserted between
    the input pixels, then a 3x3 convolution with the kernel flipped; shares `layer`'s
    weight and bias."""

    def __init__(self, layer: nn.ConvTranspose2d):
        super().__init__()
        _check_stride2_same(layer)
        self.weight, self.bias = layer.weight, layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        layout = _layout(x)
        spread = torch.empty(
            (n, c, 2 * h, 2 * w), dtype=x.dtype, device=x.device, memory_format=layout
        )
        spread.zero_()
        spread[:, :, 0::2, 0::2] = x  # the last row and column stay zero: output_padding
        kernel = self.weight.flip(2, 3).transpose(0, 1)
        return F.conv2d(spread, kernel, self.bias, padding=1)


STRIDE2_FORMS = {
    "sub-pixel": SubPixelConvTranspose,
    "4 phases": PhaseConvTranspose,
    "zero-insertion": ZeroInsertionConvTranspose,
}


class FlattenNHWC(nn.Module):
    """Flatten + Linear over a (C, H, W) input taken in H, W, C order, as Keras's Flatten
    of an NHWC tensor: free for a channels_last input, whose memory is in that order.
    Holds `linear`'s weight with its columns reordered to match."""

    def __init__(self, linear: nn.Linear, chw: tuple[int, int, int]):
        super().__init__()
        c, h, w = chw
        self.linear = nn.Linear(
            linear.in_features, linear.out_features, linear.bias is not None, **_like(linear.weight)
        )
        with torch.no_grad():
            weight = (
                linear.weight.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape_as(linear.weight)
            )
            self.linear.weight.copy_(weight)
            if linear.bias is not None:
                self.linear.bias.copy_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.permute(0, 2, 3, 1).flatten(1))


def rows_in_hwc_order(linear: nn.Linear, chw: tuple[int, int, int]) -> nn.Linear:
    """`linear` with its output features reordered from (C, H, W) to (H, W, C), for
    UnflattenNHWC; a copy."""
    c, h, w = chw
    permuted = nn.Linear(
        linear.in_features, linear.out_features, linear.bias is not None, **_like(linear.weight)
    )
    with torch.no_grad():
        permuted.weight.copy_(
            linear.weight.reshape(c, h, w, -1).permute(1, 2, 0, 3).reshape_as(linear.weight)
        )
        if linear.bias is not None:
            permuted.bias.copy_(linear.bias.reshape(c, h, w).permute(1, 2, 0).flatten())
    return permuted


class UnflattenNHWC(nn.Module):
    """Features in (H, W, C) order viewed as a channels_last (N, C, H, W) tensor: no copy,
    where nn.Unflatten(1, (C, H, W)) gives NCHW that the next channels_last layer copies."""

    def __init__(self, chw: tuple[int, int, int]):
        super().__init__()
        self.chw = chw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.chw
        return x.view(x.shape[0], h, w, c).permute(0, 3, 1, 2)


def conv_transpose_s1(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """The tutorial's ConvTranspose2d(stride 1, 'same') computing what `conv` (3x3,
    padding 1) computes: a stride-1 transposed convolution is a convolution with the
    kernel flipped and its channel axes swapped. A copy, in `conv`'s memory format."""
    layer = nn.ConvTranspose2d(
        conv.in_channels, conv.out_channels, 3, stride=1, padding=1, **_like(conv.weight)
    )
    with torch.no_grad():
        layer.weight.copy_(conv.weight.flip(2, 3).transpose(0, 1))
        layer.bias.copy_(conv.bias)
    return layer.to(memory_format=_layout(conv.weight))


def _padded_planes(planes: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """[B, C, H, W] -> [B, C, (H + 2) * (W + 2)], NCHW with one zero row and column all
    round, and its row and plane lengths."""
    flat = F.pad(planes.contiguous(), (1, 1, 1, 1)).flatten(2)
    return flat, planes.shape[-1] + 2, flat.shape[-1]


class _ShiftedSum(torch.autograd.Function):
    """out[b, 0, i, j] = sum over dy, dx of taps[b, 3 dy + dx, i + dy - 1, j + dx - 1]."""

    @staticmethod
    def forward(ctx, taps: torch.Tensor) -> torch.Tensor:
        batch, nine, height, width = taps.shape
        flat, row, plane = _padded_planes(taps)
        # In padded coordinates out[i, j] reads tap (dy, dx) at flat index
        # i * row + j + dy * row + dx: one view over [B, dy, dx, i * row + j]. Its last two
        # positions would run past the plane; they are padding columns, cut off below.
        span = height * row - 2
        view = flat.as_strided(
            (batch, 3, 3, span),
            (nine * plane, 3 * plane + row, plane + 1, 1),
            flat.storage_offset(),
        )
        summed = view.sum(dim=(1, 2), dtype=torch.promote_types(taps.dtype, torch.float32))
        out = F.pad(summed, (0, 2)).view(batch, height, row)[:, :, :width]
        ctx.shape, ctx.dtype = taps.shape, taps.dtype
        return out.unsqueeze(1).contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        batch, nine, height, width = ctx.shape
        flat, row, plane = _padded_planes(grad)
        # tap (dy, dx) at (i, j) feeds out at padded (i + 2 - dy, j + 2 - dx): read the view
        # in (2 - dy, 2 - dx) order, then flip it into tap order (the one copy)
        view = flat.as_strided(
            (batch, 3, 3, height, width), (plane, row, 1, row, 1), flat.storage_offset()
        )
        return view.flip(1, 2).reshape(batch, nine, height, width).to(ctx.dtype)


class NineTapConv(nn.Module):
    """What `conv` (Cin -> 1, 3x3, padding 1) computes, in two steps that avoid oneDNN's
    single-output-channel kernels: a 1x1 convolution to the 9 taps (a blocked kernel), then
    the sum of the nine shifted tap planes as one reduction over a strided view. Shares
    `conv`'s Parameters, so that its gradients land where Conv2d's do."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.out_channels != 1 or conv.kernel_size != (3, 3) or conv.padding != (1, 1):
            raise ValueError(f"not a Conv2d(C, 1, 3, padding=1) layer: {conv}")
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.conv.weight, self.conv.bias
        channels = weight.shape[1]
        per_tap = weight.reshape(channels, 9).t().reshape(9, channels, 1, 1)
        out = _ShiftedSum.apply(F.conv2d(x, per_tap))
        return out if bias is None else out + bias.view(1, 1, 1, 1)
