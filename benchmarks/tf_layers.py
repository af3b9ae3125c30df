"""The TensorFlow side of benchmarks/op_profile.py: the tutorial's layers, one at a time.

    uv run --isolated --no-project --with tensorflow-cpu==2.21.0 --with numpy \\
        python benchmarks/tf_layers.py [--threads 2] [--inter-op 0] [--no-remap]

`python -m benchmarks.op_profile` starts this as a long-lived worker and drives it with one
JSON command a line on stdin, so that its rounds interleave with the torch rounds while
TensorFlow is imported, traced and optimized once; each answer is one JSON line on stdout.
It imports only TensorFlow and the standard library (and the tutorial's model from
tf_tutorial.py beside it), for the reasons given in that module.

The layers are those of the tutorial's own Keras model (tf_tutorial.CVAE, latent 2),
grouped as the torch rows are: conv1, conv2, dense_enc (Flatten + Dense), dense_dec
(Dense + Reshape), convT1, convT2, last, and the whole encoder and decoder. Each group has
two tf.functions, timed as the tutorial runs them, inside a traced graph:

    fwd(x)       the forward pass
    fb(x, dy)    the forward pass under a GradientTape, then the gradients of the output
                 (given the output gradient dy) to the group's variables and to x; conv1's
                 and the encoder's x is the image, whose gradient training never asks for.
                 It returns the output too, as training uses it.

and backward is the difference fb - fwd, taken within a round. A call of a tf.function
from Python costs a fixed overhead that the tutorial pays once per training step, not once
per layer; a round times an empty tf.function of the same arguments and subtracts its time
from fwd and fb.

Commands (answers are JSON objects):

    {"cmd": "graphs"}              the ops of each group's fb after Grappler and the oneDNN
                                   layout pass: what the CPU actually runs, fusions included
    {"cmd": "round", "calls": N}   seconds per call of fwd and fb per group, N calls each
    {"cmd": "ops", "calls": N}     per group, milliseconds per fb call of each op, from TF's
                                   profiler (ops on different threads can overlap)
    {"cmd": "steps", "steps": N}   the tutorial's own train_step, N steps under TF's
                                   profiler: milliseconds per step of each op type
    {"cmd": "quit"}

--no-remap turns Grappler's remapper off, the pass that fuses a convolution or matmul with
its BiasAdd and activation, so that op_profile can show what that fusion is worth.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.tsl.profiler.protobuf import xplane_pb2
from tf_tutorial import CVAE, train_step  # beside this file: the script's folder is on the path

BATCH, LATENT = 32, 2
# each group's layers, by position in the tutorial's encoder and decoder
GROUPS = {
    "conv1": ("encoder", [0]),
    "conv2": ("encoder", [1]),
    "dense_enc": ("encoder", [2, 3]),
    "dense_dec": ("decoder", [0, 1]),
    "convT1": ("decoder", [2]),
    "convT2": ("decoder", [3]),
    "last": ("decoder", [4]),
    "encoder": ("encoder", None),
    "decoder": ("decoder", None),
}
# ops that move no data: left out of the graph listings
PLUMBING = {"Const", "_Arg", "_Retval", "Identity", "NoOp", "ReadVariableOp", "_DeviceArg"}


class Group:
    """One row: its layers, an input like the one it gets in training, and fwd and fb."""

    def __init__(self, name: str, model: CVAE, inputs: dict[str, tf.Tensor]):
        part, positions = GROUPS[name]
        sequential = getattr(model, part)
        self.layers = (
            sequential.layers if positions is None else [sequential.layers[i] for i in positions]
        )
        self.x = inputs[name]
        self.needs_input_grad = part == "decoder" or positions not in (None, [0])
        y = self.apply(self.x)
        self.dy = tf.random.normal(y.shape, seed=1)
        self.variables = [v for layer in self.layers for v in layer.trainable_variables]
        self.fwd = tf.function(self.apply)
        self.fb = tf.function(self.forward_backward)

    def apply(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_backward(self, x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = self.apply(x)
        sources = ([x] if self.needs_input_grad else []) + self.variables
        # y too: else Grappler prunes the forward of a layer whose gradients do not need it
        return y, tape.gradient(y, sources, output_gradients=dy)


def build(seed: int = 0) -> tuple[CVAE, dict[str, Group]]:
    """The tutorial's model and each group's input: a binary image batch and its path
    through the layers for the encoder, a normal z and its path for the decoder."""
    tf.keras.utils.set_random_seed(seed)
    model = CVAE(LATENT)
    images = tf.cast(tf.random.uniform((BATCH, 28, 28, 1)) < 0.13, tf.float32)
    z = tf.random.normal((BATCH, LATENT))
    inputs = {"encoder": images, "decoder": z}
    for part, x in (("encoder", images), ("decoder", z)):
        layers = getattr(model, part).layers
        for name, (group_part, positions) in GROUPS.items():
            if group_part == part and positions is not None:
                h = x
                for layer in layers[: positions[0]]:
                    h = layer(h)
                inputs[name] = h
    return model, {name: Group(name, model, inputs) for name in GROUPS}


def seconds_per_call(fn, args, calls: int) -> float:
    fn(*args)  # warm: caches, and oneDNN's primitives for these shapes (cached per shape)
    started = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    tf.nest.flatten(out)[-1].numpy()  # eager calls block already; this makes sure
    return (time.perf_counter() - started) / calls


@tf.function
def empty(x, dy):
    return x


def timing_round(groups: dict[str, Group], calls: int) -> dict:
    probe = groups["convT2"]
    # more calls than the layers get: it is cheap, and a noisy estimate skews every row
    overhead = seconds_per_call(empty, (probe.x, probe.dy), max(calls, 200))
    fwd, fb = {}, {}
    for name, group in groups.items():
        fwd[name] = seconds_per_call(group.fwd, (group.x,), calls) - overhead
        fb[name] = seconds_per_call(group.fb, (group.x, group.dy), calls) - overhead
    return {"fwd": fwd, "fb": fb, "overhead": overhead}


def optimized_graphs(groups: dict[str, Group]) -> dict[str, list[str]]:
    """Per group, the op types of its fb as executed (after Grappler and oneDNN's layout
    pass), with the ops a fused kernel absorbed in brackets, in the graph's order."""
    listing = {}
    context.enable_run_metadata()
    context.enable_graph_collection()
    try:
        for name, group in groups.items():
            # a fresh function, so that its instantiation (and graph) is collected here
            fb = tf.function(group.forward_backward)
            fb(group.x, group.dy)
            metadata = context.export_run_metadata()
            ops = []
            for function_graph in metadata.function_graphs:
                for graph in function_graph.partition_graphs:
                    for node in graph.node:
                        if node.op in PLUMBING:
                            continue
                        fused = [s.decode() for s in node.attr["fused_ops"].list.s]
                        ops.append(node.op + (f"[{'+'.join(fused)}]" if fused else ""))
            listing[name] = ops
    finally:
        context.disable_graph_collection()
        context.disable_run_metadata()
    return listing


def profiled_ops(run) -> list[tuple[str, float]]:
    """(op type, ms) of every op execution inside `run()`, from TF's profiler, whose trace
    names each one "node:OpType" (on an executor thread, or inline on the caller's)."""
    logdir = Path(tempfile.mkdtemp(prefix="tf_layers_"))
    try:
        tf.profiler.experimental.start(str(logdir))
        try:
            run()
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(logdir.rglob("*.xplane.pb")).read_bytes())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    events = []
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            for event in line.events:
                label = plane.event_metadata[event.metadata_id].name
                # the runtime's own events read "Class::Method" or "Phase: function"
                if ":" in label and "::" not in label and " " not in label:
                    events.append((label.rpartition(":")[2], event.duration_ps / 1e9))
    return events


def op_times(groups: dict[str, Group], calls: int) -> dict[str, dict[str, float]]:
    """Per layer group, ms per fb call of each op type; a profiler session per group, as
    the graphs' node names do not say reliably which layer a node belongs to."""
    times = {}
    for name, group in groups.items():
        if GROUPS[name][1] is None:
            continue

        def run(group=group):
            for _ in range(calls):
                group.fb(group.x, group.dy)

        counter = collections.Counter()
        for op, ms in profiled_ops(run):
            counter[op] += ms / calls
        times[name] = dict(counter.most_common())
    return times


def step_profile(steps: int) -> dict:
    """The tutorial's train_step on random binary batches: ms per step of each op type."""
    tf.keras.utils.set_random_seed(0)
    model = CVAE(LATENT)
    optimizer = tf.keras.optimizers.Adam(1e-4)
    batches = [tf.cast(tf.random.uniform((BATCH, 28, 28, 1)) < 0.13, tf.float32) for _ in range(8)]
    for x in batches:  # traced once, and warm
        train_step(model, x, optimizer)

    def run():
        for step in range(steps):
            train_step(model, batches[step % len(batches)], optimizer)
        optimizer.iterations.numpy()

    started = time.perf_counter()
    totals = collections.Counter()
    counts = collections.Counter()
    for op, ms in profiled_ops(run):
        totals[op] += ms / steps
        counts[op] += 1
    wall = (time.perf_counter() - started) / steps * 1e3
    rows = [(op, ms, counts[op] / steps) for op, ms in totals.most_common()]
    return {"ops": rows, "ms_per_step_profiled": wall}


def serve(groups: dict[str, Group]) -> None:
    for line in sys.stdin:
        command = json.loads(line)
        cmd = command["cmd"]
        if cmd == "quit":
            return
        if cmd == "graphs":
            answer = optimized_graphs(groups)
        elif cmd == "round":
            answer = timing_round(groups, command["calls"])
        elif cmd == "ops":
            answer = op_times(groups, command["calls"])
        elif cmd == "steps":
            answer = step_profile(command["steps"])
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads; 0: TF's")
    parser.add_argument("--inter-op", type=int, default=0, help="inter-op threads; 0: TF's")
    parser.add_argument("--no-remap", action="store_true", help="turn Grappler's remapper off")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    if args.no_remap:
        tf.config.optimizer.set_experimental_options({"remapping": False})
    _, groups = build()
    for group in groups.values():  # trace and optimize now, outside every clock
        group.fwd(group.x)
        group.fb(group.x, group.dy)
    hello = {
        "tensorflow": tf.__version__,
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "remapping": not args.no_remap,
    }
    print(json.dumps(hello), flush=True)
    serve(groups)


if __name__ == "__main__":
    main()
