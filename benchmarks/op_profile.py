"""Where PyTorch loses to TensorFlow on the cvae: layer by layer, forward and backward.

    python -m benchmarks.op_profile [--rounds 7] [--calls 50] [--steps 100] [--threads 2]
                                    [--no-compile] [--no-tf] [--no-tf-unfused]

Times each layer of the cvae reference (batch 32, fp32) alone, forward and backward, on
both sides: torch's layers as `vaelab.models.build_model` makes them for the trainer
(channels_last weights, in-place ReLUs, the Conv2d last layer), and the TensorFlow
tutorial's own Keras layers, inside tf.functions with a GradientTape
(benchmarks/tf_layers.py, run in a throwaway environment as benchmarks/train_speed.py runs
the tutorial). Rows: conv1, conv2, dense_enc (Flatten + Dense), dense_dec (Dense + ReLU +
Unflatten/Reshape), convT1, convT2, the last layer, and the whole encoder and decoder.

Each row gets its input as in training (the activations a random binary batch, or a
normal z, produces) and a random output gradient, on the torch side laid out as a
training step's backward hands it to that layer. Forward is a call of the layer with
autograd recording (torch) or of a traced function (TF); forward+backward adds the
gradients to the layer's weights and to its input, and backward is their difference
within a round. conv1's and the encoder's input is the image, whose gradient training
never asks for: their backward is the weight gradients only. The TF side subtracts the
fixed cost of calling a tf.function from Python, which the tutorial pays once a step, not
once a layer; torch's per-op dispatch is part of what eager training pays, and stays.
A layer timed alone finds its tensors still in the caches, as it does not within a step:
memory-bound ops (ReLU, its backward, layout copies) cost more in the step profiles below.

Beside the trainer's layers, torch formulations that compute the same function
(benchmarks/same_function.py, which tests/test_op_profile.py checks; the largest output
difference to the trainer's layer is printed): every row in NCHW (contiguous) layout,
the dense layers in NHWC feature order (no flatten/unflatten copy, and gradients that
come back channels_last), the stride-2 transposed convolutions as sub-pixel, four-phase
and zero-insertion convolutions, the last layer as the tutorial's stride-1
ConvTranspose2d and as nine taps (a 1x1 convolution to 9 channels, then a shifted sum);
for the whole encoder and decoder, those dense layers and that last
layer in place, so that their effect on the neighbouring layers counts, and
torch.compile (forward and backward; --no-compile leaves it out, as compiling takes a
while). With --tf-unfused (the default), a second TF worker runs
with Grappler's remapper off, the pass that fuses a convolution or matmul with its bias
and ReLU, to show what that fusion is worth to TF.

The rounds interleave the sides (torch, TF, TF unfused, torch, ...), each side timing
every row once per round, `calls` calls per timing; the tables print medians over the
rounds, and each ratio is the median of the rounds' ratios, taken within a round, as a
shared machine's speed drifts. Both sides use --threads intra-op threads; TF's inter-op
pool is TF's default unless --tf-inter-op says otherwise, as in the tutorial.

Below the tables: what each side runs, op by op, per layer (torch.profiler, and TF's
profiler, per forward+backward call); then torch.profiler's top 15 ops by self CPU time
over --steps trainer-like steps (vaelab.training.loop.train_step with mc_elbo on random binary
batches, as train_epoch runs it), and TF's profiler's top 15 op types over as many of the
tutorial's own train_steps. Profilers add their own cost to every op, the small ones most.
"""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import typer
from torch import nn
from torch.profiler import ProfilerActivity, profile

from benchmarks.same_function import (
    STRIDE2_FORMS,
    FlattenNHWC,
    NineTapConv,
    UnflattenNHWC,
    conv_transpose_s1,
    rows_in_hwc_order,
)
from benchmarks.train_speed import TF_REQUIREMENT, tf_missing, tf_python
from vaelab.config.experiments import load_experiment
from vaelab.models.registry import build_model
from vaelab.objectives.losses import mc_elbo
from vaelab.runtime.device import describe, resolve_device
from vaelab.training.distributed import SINGLE
from vaelab.training.loop import ObjectiveStep, Totals, initial_state, train_step

TF_LAYERS = Path(__file__).with_name("tf_layers.py")
BATCH = 32
ROWS = {
    "conv1": "conv1 1->32 s2 +ReLU",
    "conv2": "conv2 32->64 s2 +ReLU",
    "dense_enc": "flatten+dense 2304->4",
    "dense_dec": "dense 2->1568 +ReLU",
    "convT1": "convT1 32->64 s2 +ReLU",
    "convT2": "convT2 64->32 s2 +ReLU",
    "last": "last 32->1 s1",
    "encoder": "encoder, all",
    "decoder": "decoder, all",
}
NO_INPUT_GRAD = ("conv1", "encoder")  # their input is the image
TF, TF_UNFUSED = "TF", "TF unfused"


def row_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The rows as slices of the model's own Sequentials: the same modules, not copies."""
    enc, dec = model.encoder, model.decoder
    return {
        "conv1": enc[0:2],
        "conv2": enc[2:4],
        "dense_enc": enc[4:6],
        "dense_dec": dec[0:3],
        "convT1": dec[3:5],
        "convT2": dec[5:7],
        "last": dec[7:],
        "encoder": enc,
        "decoder": dec,
    }


def row_inputs(model: nn.Module, images: torch.Tensor, z: torch.Tensor) -> dict:
    rows, inputs = row_modules(model), {"encoder": images, "decoder": z}
    with torch.no_grad():
        encoder, decoder = (
            ["conv1", "conv2", "dense_enc"],
            ["dense_dec", "convT1", "convT2", "last"],
        )
        for h, names in ((images, encoder), (z, decoder)):
            for name in names:
                inputs[name] = h
                h = rows[name](h)
    return inputs


def gradient_strides(model: nn.Module, images: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """The strides of the gradient each row's output gets in a training step: a layer's
    backward runs faster or slower with the layout its neighbour's backward hands it
    (the flatten's gradient, for one, comes back NCHW to conv2's channels_last ReLU)."""
    strides, handles = {}, []
    for name, module in row_modules(model).items():

        def keep(_module, _input, output, name=name):
            def note(grad):
                strides.setdefault(name, grad.stride())

            output.register_hook(note)

        handles.append(module[-1].register_forward_hook(keep))
    try:
        mc_elbo(model, images).loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    model.zero_grad(set_to_none=True)
    return strides


@dataclass
class Case:
    """One layer in one formulation, with its input and output gradient."""

    module: nn.Module
    x: torch.Tensor
    dy: torch.Tensor
    y: torch.Tensor  # its output, to check against the trainer's layer
    input_grad: bool

    @classmethod
    def of(cls, module: nn.Module, x: torch.Tensor, dy_strides, input_grad: bool) -> Case:
        x = x.detach().clone().requires_grad_(input_grad)  # clone keeps the layout
        y = module(x)  # with autograd on, so that torch.compile builds its training graph
        dy = torch.empty_strided(y.shape, dy_strides).normal_()
        return cls(module, x, dy, y.detach(), input_grad)

    def forward(self):
        return self.module(self.x)

    def forward_backward(self):
        sources = ([self.x] if self.input_grad else []) + list(self.module.parameters())
        return torch.autograd.grad(self.module(self.x), sources, self.dy)


def torch_cases(model: nn.Module, images, z, compile_: bool) -> dict[tuple[str, str], Case]:
    """(row, way) -> Case: "trainer" is the layer as the trainer runs it. The other ways
    get the trainer's output gradient layout, but for NCHW, which gets its own."""
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    rows, inputs = row_modules(model), row_inputs(model, images, z)
    rows_nchw, inputs_nchw = row_modules(nchw), row_inputs(nchw, images, z)
    strides, strides_nchw = gradient_strides(model, images), gradient_strides(nchw, images)
    cases = {}

    def add(row: str, way: str, module: nn.Module) -> None:
        grad = row not in NO_INPUT_GRAD
        cases[row, way] = Case.of(module, inputs[row], strides[row], grad)

    for name in ROWS:
        add(name, "trainer", rows[name])
        grad = name not in NO_INPUT_GRAD
        cases[name, "NCHW"] = Case.of(rows_nchw[name], inputs_nchw[name], strides_nchw[name], grad)
    enc, dec = model.encoder, model.decoder
    flatten_nhwc = FlattenNHWC(enc[5], tuple(inputs["dense_enc"].shape[1:]))
    add("dense_enc", "NHWC flatten", flatten_nhwc)
    chw = tuple(dec[2].unflattened_size)
    dense_nhwc = [rows_in_hwc_order(dec[0], chw), nn.ReLU(inplace=True), UnflattenNHWC(chw)]
    add("dense_dec", "NHWC unflatten", nn.Sequential(*dense_nhwc))
    for name, index in (("convT1", 3), ("convT2", 5)):
        for form, cls in STRIDE2_FORMS.items():
            add(name, form, nn.Sequential(cls(dec[index]), nn.ReLU(inplace=True)))
    last_transposed = conv_transpose_s1(dec[7])
    add("last", "ConvT s1 (tutorial's)", last_transposed)
    last_taps = NineTapConv(dec[7])
    add("last", "nine taps", last_taps)
    # the dense layers' layouts change their neighbours' inputs and gradients too
    add("encoder", "NHWC flatten", nn.Sequential(*enc[0:4], flatten_nhwc))
    add("decoder", "NHWC unflatten", nn.Sequential(*dense_nhwc, *dec[3:]))
    add("decoder", "ConvT s1 last", nn.Sequential(*dec[:7], last_transposed))
    add("decoder", "nine-tap last", nn.Sequential(*dec[:7], last_taps))
    if compile_:
        for name in ("encoder", "decoder"):
            try:
                add(name, "compiled", torch.compile(rows[name]))
                cases[name, "compiled"].forward_backward()  # compiles the backward
            except Exception as error:  # e.g. no C++ compiler for inductor here
                print(f"torch.compile of the {name} failed, left out: {error}".splitlines()[0])
                cases.pop((name, "compiled"), None)
    return cases


def output_difference(cases: dict) -> dict[tuple[str, str], float]:
    """max |y - y_trainer| / max |y_trainer| of each way's output."""
    differences = {}
    for (row, way), case in cases.items():
        reference = cases[row, "trainer"].y
        differences[row, way] = float((case.y - reference).abs().max() / reference.abs().max())
    return differences


def seconds_per_call(fn, calls: int) -> float:
    fn()  # warm: oneDNN builds (and caches) its primitives for these shapes
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def torch_round(cases: dict, calls: int) -> dict:
    sample = {}
    for (row, way), case in cases.items():
        sample[way, row, "fwd"] = seconds_per_call(case.forward, calls)
        sample[way, row, "fb"] = seconds_per_call(case.forward_backward, calls)
    return sample


class TFWorker:
    """benchmarks/tf_layers.py in TensorFlow's throwaway environment, one JSON command a
    line; it stays up for all rounds, so that TF is imported and traced once."""

    def __init__(self, requirement: str, threads: int, inter_op: int, remap: bool):
        self.log = tempfile.TemporaryFile(mode="w+")
        flags = ["--threads", str(threads), "--inter-op", str(inter_op)]
        command = [*tf_python(requirement), str(TF_LAYERS), *flags]
        self.process = subprocess.Popen(
            command + ([] if remap else ["--no-remap"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,  # TF's logging, shown only if the worker dies
            text=True,
        )
        self.hello = self.read()

    def read(self) -> dict:
        while line := self.process.stdout.readline():
            if line.startswith("{"):  # a library may print to stdout too
                return json.loads(line)
        self.process.wait()
        self.log.seek(0)
        tail = self.log.read()[-3000:]
        raise SystemExit(f"the TF worker stopped (exit {self.process.returncode}):\n{tail}")

    def ask(self, cmd: str, **args) -> dict:
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):  # it may have died meanwhile
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.close()
            self.process.wait()
        self.log.close()


def tf_round(worker: TFWorker, column: str, calls: int) -> dict:
    answer = worker.ask("round", calls=calls)
    sample = {(column, row, d): answer[d][row] for d in ("fwd", "fb") for row in ROWS}
    sample[column, "", "overhead"] = answer["overhead"]
    return sample


def with_backward(sample: dict) -> dict:
    for column, row, direction in list(sample):
        if direction == "fwd" and (column, row, "fb") in sample:
            sample[column, row, "bwd"] = sample[column, row, "fb"] - sample[column, row, "fwd"]
    return sample


def median(samples: list[dict], key) -> float:
    return statistics.median(sample[key] for sample in samples)


def median_ratio(samples: list[dict], key, reference) -> float:
    return statistics.median(sample[key] / sample[reference] for sample in samples)


def top_ops(times: dict[str, float], count: int = 6, floor: float = 0.01) -> str:
    """The `count` largest of op -> ms, leaving out those under `floor` of the total."""
    total = sum(times.values()) or 1.0
    kept = sorted(times.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{op} {ms:.3f}" for op, ms in kept if ms >= floor * total)


def torch_ops(case: Case, calls: int) -> dict[str, float]:
    """ms of self CPU time per forward+backward call, per aten op, from torch.profiler."""
    case.forward_backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            case.forward_backward()
    return {e.key: e.self_cpu_time_total / 1e3 / calls for e in prof.key_averages()}


def with_fusions(times: dict[str, float], graph: list[str]) -> dict[str, float]:
    """TF's op types named with the ops their kernel fused, as the graph lists them."""
    fused = {entry.split("[")[0]: entry for entry in graph if "[" in entry}
    return {fused.get(op, op): ms for op, ms in times.items() if op != "ReadVariableOp"}


def trainer_profile(spec, device: torch.device, steps: int) -> str:
    """torch.profiler over `steps` steps as train_epoch runs them, on random binary data."""
    state = initial_state(spec, 28, device)
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(64 * BATCH, 1, 28, 28, generator=generator) < 0.13).float()
    order = torch.randperm(len(images), generator=generator)
    losses, totals = torch.zeros(steps + 10), Totals.zeros(device)
    autocast = torch.autocast(device.type, enabled=False)
    objective = ObjectiveStep(state.model, mc_elbo)
    share = SINGLE.partition(state.noise).share(BATCH)

    def step(i: int) -> None:
        start = i * BATCH % len(images)
        x = images[order[start : start + BATCH]]
        terms = train_step(state, objective, x, autocast=autocast, share=share)
        losses[i] = terms.loss.detach()
        totals.add(terms, len(x))

    for i in range(10):
        step(i)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(10 + i)
    per_step = (time.perf_counter() - started) / steps * 1e3
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return f"{per_step:.2f} ms per step under the profiler\n{table}"


def print_tables(samples, differences, cases, columns) -> None:
    rounds = len(samples)
    heading = f"{'':24s}{'forward':^26s}{'backward':^26s}{'fwd+bwd':^10s}"
    subheading = f"{'layer':24s}" + f"{'torch':>8s}{'TF':>8s}{'torch/TF':>10s}" * 2
    subheading += f"{'torch/TF':>10s}"
    if TF_UNFUSED in columns:
        heading += f"{'TF remapper off':>17s}"
        subheading += f"{'vs TF':>17s}"
    if TF in columns:
        print(f"\nPer layer: ms per call (median of {rounds}); backward = (fwd+bwd) - forward")
        print(heading)
        print(subheading)
        for row, label in ROWS.items():
            mark = "*" if row in NO_INPUT_GRAD else ""
            line = f"{label + mark:24s}"
            for d in ("fwd", "bwd"):
                torch_ms = median(samples, ("trainer", row, d)) * 1e3
                tf_ms = median(samples, (TF, row, d)) * 1e3
                ratio = median_ratio(samples, ("trainer", row, d), (TF, row, d))
                line += f"{torch_ms:8.3f}{tf_ms:8.3f}{ratio:9.2f}x"
            line += f"{median_ratio(samples, ('trainer', row, 'fb'), (TF, row, 'fb')):9.2f}x"
            if TF_UNFUSED in columns:
                unfused = median_ratio(samples, (TF_UNFUSED, row, "fb"), (TF, row, "fb"))
                line += f"{unfused:16.2f}x"
            print(line)
        print("* backward: the weight gradients only (the image's gradient is never needed)")
    print(
        f"\nTorch formulations of the same function: ms per call (median of {rounds}); "
        "vs trainer: the median of the rounds' fwd+bwd ratios to the trainer's layer"
    )
    print(
        f"{'layer':24s}{'way':24s}{'fwd':>8s}{'bwd':>8s}{'fwd+bwd':>9s}{'vs trainer':>12s}  max|dy|"
    )
    for row, label in ROWS.items():
        for (case_row, way), _ in cases.items():
            if case_row != row:
                continue
            ms = [median(samples, (way, row, d)) * 1e3 for d in ("fwd", "bwd", "fb")]
            ratio = median_ratio(samples, (way, row, "fb"), ("trainer", row, "fb"))
            print(
                f"{label if way == 'trainer' else '':24s}{way:24s}"
                + "".join(f"{value:8.3f}" for value in ms[:2])
                + f"{ms[2]:9.3f}{ratio:11.2f}x  {differences[row, way]:.1e}"
            )


def main(
    rounds: int = typer.Option(7, min=1, help="Rounds; each times every row on each side."),
    calls: int = typer.Option(50, min=1, help="Calls per timing of a row, per round."),
    steps: int = typer.Option(100, min=1, help="Training steps each side's profile covers."),
    threads: int = typer.Option(2, min=1, help="Intra-op threads, each side."),
    compile_: bool = typer.Option(
        True, "--compile/--no-compile", help="Also time torch.compile of encoder and decoder."
    ),
    tf: bool = typer.Option(True, "--tf/--no-tf", help="Also time the tutorial's TF layers."),
    tf_unfused: bool = typer.Option(
        True, "--tf-unfused/--no-tf-unfused", help="Also time TF with its remapper off."
    ),
    tf_inter_op: int = typer.Option(0, min=0, help="TF's inter-op threads; 0: TF's default."),
    tf_requirement: str = typer.Option(TF_REQUIREMENT, help="The TensorFlow to run."),
) -> None:
    _, spec = load_experiment("params.yaml", "cvae", track="references")
    device = resolve_device("cpu", threads)  # the trainer's host tuning, on the CPU
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, 28, spec.model_knobs)
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(BATCH, 1, 28, 28, generator=generator) < 0.13).float()
    z = torch.randn(BATCH, model.latent_dim, generator=generator)
    cases = torch_cases(model, images, z, compile_)
    differences = output_difference(cases)

    workers: dict[str, TFWorker] = {}
    with contextlib.ExitStack() as stack:
        missing = tf_missing(tf_requirement) if tf else None
        if missing:
            print(f"TF side skipped: {missing}")
        elif tf:
            for column, remap in ((TF, True), (TF_UNFUSED, False)):
                if remap or tf_unfused:
                    workers[column] = TFWorker(tf_requirement, threads, tf_inter_op, remap)
                    stack.callback(workers[column].close)
        samples = []
        for round_ in range(rounds):
            sample = torch_round(cases, calls)
            for column, worker in workers.items():
                sample.update(tf_round(worker, column, calls))
            samples.append(with_backward(sample))
            print(f"round {round_ + 1}/{rounds} done", flush=True)

        header = f"torch {torch.__version__} {describe(device)}"
        if workers:
            hello = workers[TF].hello
            inter = hello["inter_op"] or "TF's default"
            overhead = median(samples, (TF, "", "overhead")) * 1e3
            header += (
                f"; TensorFlow {hello['tensorflow']} cpu ({hello['intra_op']} intra-op threads, "
                f"inter-op {inter}; a tf.function call's {overhead:.3f} ms subtracted)"
            )
        print(f"\n{header}\ncvae, batch 32, fp32; {rounds} rounds x {calls} calls")
        print_tables(samples, differences, cases, list(workers))

        print(
            "\nOp by op: ms per forward+backward call (profiler overhead included). TF's op\n"
            "names show what its kernels fused; its ops on different threads may overlap.\n"
            "torch's aten::_convolution self time is the transposed convolution's kernel,\n"
            "which ATen calls from inside it rather than as an aten op of its own."
        )
        graphs = {column: worker.ask("graphs") for column, worker in workers.items()}
        tf_times = {column: worker.ask("ops", calls=calls) for column, worker in workers.items()}
        for row, label in ROWS.items():
            if row in ("encoder", "decoder"):
                continue
            print(f"{label}\n  torch:      {top_ops(torch_ops(cases[row, 'trainer'], calls))}")
            for column in workers:
                times = with_fusions(tf_times[column][row], graphs[column][row])
                print(f"  {column + ':':11s} {top_ops(times)}")

        print(f"\ntorch.profiler: {steps} trainer-like steps, top 15 ops by self CPU time")
        print(trainer_profile(spec, device, steps))
        if workers:
            answer = workers[TF].ask("steps", steps=steps)
            print(f"\nTF profiler: {steps} steps of the tutorial's train_step, top 15 op types")
            print(f"{answer['ms_per_step_profiled']:.2f} ms per step under the profiler")
            print(f"{'op':40s}{'ms/step':>9s}{'calls/step':>12s}")
            for op, ms, count in answer["ops"][:15]:
                print(f"{op:40s}{ms:9.3f}{count:12.1f}")


if __name__ == "__main__":
    typer.run(main)
