"""How fast the IWAE evaluation decodes, against the CPU's (or GPU's) own matmul rate.

    python -m benchmarks.decode_speed [--experiments cvae,vae_conv] [--batch 500] [--rounds 3]
    python -m benchmarks.decode_speed --batch 100,250,500     (how the rate depends on it)

benchmarks/README.md (`decode_speed`) says what it measures and how to read it.
"""

from __future__ import annotations

import copy
import functools
import statistics
import time

import pandas as pd
import torch
import typer
from torch.utils.flop_counter import FlopCounterMode

from vaelab.config.experiments import load_experiment
from vaelab.models.layers import NarrowConv2d
from vaelab.models.registry import build_model
from vaelab.runtime.device import describe, resolve_device

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class Decoder(torch.nn.Module):
    """A model's decode as a module of its own, for tracing and compiling."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decode(z)


def seconds_per_call(fn, x: torch.Tensor, min_seconds: float = 2.0) -> float:
    for _ in range(3):
        fn(x)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        fn(x)
        calls += 1
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    return elapsed / calls


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / seconds_per_call(lambda _: a @ b, a) / 1e9


def flops_of(fn, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        fn(x)
    return counter.get_total_flops()


def with_plain_convs(decoder: torch.nn.Module) -> torch.nn.Module:
    """A copy whose NarrowConv2d layers run as plain nn.Conv2d, with the same weights."""
    plain = copy.deepcopy(decoder)
    for module in plain.modules():
        if isinstance(module, NarrowConv2d):
            module.forward = functools.partial(torch.nn.Conv2d.forward, module)
    return plain


def formulations(decoder: torch.nn.Module, z: torch.Tensor) -> dict:
    contiguous = copy.deepcopy(decoder).to(memory_format=torch.contiguous_format)
    ways = {"eager": decoder, "conv2d-last": with_plain_convs(decoder), "contiguous": contiguous}
    with torch.no_grad():
        traced = torch.jit.trace(copy.deepcopy(decoder).eval(), z)
        ways["traced-frozen"] = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    import torch._inductor.config as inductor

    inductor.freezing = True
    ways["compiled"] = torch.compile(copy.deepcopy(decoder))
    return ways


@app.command()
def main(
    experiments: str = typer.Option("cvae,vae_conv", help="Comma-separated experiment names."),
    batch: str = typer.Option(
        "500", help="Decodes per call (evaluate's batch_size); a comma list sweeps it."
    ),
    rounds: int = typer.Option(3, min=1),
    device: str = typer.Option("auto"),
    seconds: float = typer.Option(2.0, help="Minimum timed seconds per measurement."),
) -> None:
    where = resolve_device(device)
    batches = [int(size) for size in batch.split(",")]
    print(f"device: {describe(where)}; torch {torch.__version__}; decode batch {batch}")
    subjects = {}
    for name in experiments.split(","):
        config, spec = load_experiment("params.yaml", name, track="references")
        image_size = config.prepared(spec.data).size
        model = build_model(spec.model, image_size, spec.model_knobs).to(where).eval()
        for size in batches:
            z = torch.randn(size, model.config.latent_dim, device=where)
            with torch.inference_mode():
                decoder = Decoder(model).eval()
                ways = formulations(decoder, z)
                gflop = flops_of(decoder, z) / 1e9
            subject = name if len(batches) == 1 else f"{name} x{size}"
            subjects[subject] = (ways, z, gflop)
        print(f"{name}: {spec.model} on {image_size}px, {gflop / size * 1e3:.2f} MFLOP a decode")

    rows = []
    for round_ in range(rounds):
        for dtype in (torch.float32, torch.bfloat16):
            rate = matmul_gflops(dtype, where)
            rows.append(dict(round=round_, subject="matmul 2048", way=str(dtype)[6:], gflops=rate))
        for name, (ways, z, gflop) in subjects.items():
            for way, decoder in ways.items():
                with torch.inference_mode():
                    per_call = seconds_per_call(decoder, z, seconds)
                rows.append(dict(round=round_, subject=name, way=way, gflops=gflop / per_call))
        print(f"round {round_ + 1}/{rounds} done")
    table = pd.DataFrame(rows).groupby(["subject", "way"], sort=False)["gflops"]
    medians = table.median().rename("GFLOP/s (median)").to_frame()
    medians["min"] = table.min()
    medians["max"] = table.max()
    fp32 = statistics.median(r["gflops"] for r in rows if r["way"] == "float32")
    medians["vs fp32 matmul"] = medians["GFLOP/s (median)"] / fp32
    print(medians.round(2).to_string())


if __name__ == "__main__":
    app()
