"""The TensorFlow CVAE tutorial's own training code, timed on the project's prepared MNIST.

    uv run --isolated --no-project --with tensorflow-cpu==2.21.0 --with numpy \\
        python benchmarks/tf_tutorial.py --data DIR [--steps 1875] [--seed 0] [--threads 0]

The "tf" way of `benchmarks.train_speed`, which runs it like this, in a fresh process.
CVAE, log_normal_pdf, compute_loss and the @tf.function train_step are the tutorial's
(TensorFlow, "Convolutional Variational Autoencoder", reference 000 of the cvae
experiment) as written there, but for ruff's formatting (indents, quotes, 0.5 for .5),
with its Adam(1e-4) and its input pipeline
`Dataset.from_tensor_slices(train).shuffle(train_size).batch(32)`. `train` is the first
steps x 32 prepared training images and `train_size` their number, as the torch ways
train on: 60000, the tutorial's own value, for one epoch (1875 steps). The tutorial's
image saving, sampling and plotting are left out; they are not training. tf.keras is
Keras 3 from TensorFlow 2.16, which still takes the tutorial's `InputLayer(input_shape=)`.

The data: DIR holds train.npy and test.npy, the prepared mnist_binary splits as
`vaelab.data.splits.load_split` reads them (float32 in [0, 1]), in the tutorial's NHWC layout
(N, 28, 28, 1). `python -m benchmarks.train_speed --export DIR` writes them, once per
benchmark run and outside every clock. They are .npy rather than the .pt files so that
this process imports only numpy, TensorFlow and the standard library: reading .pt needs
torch, whose import would bring a second framework's thread pools and allocator into the
timed process (and a large install into this throwaway environment), which a user of the
tutorial does not have.

The clock covers exactly `steps` training steps, the tf.data iteration included (the
shuffle buffer fills at the first batch, as the plain loop's DataLoader draws its
permutation inside its clock), and stops once the last update has finished (read back).
The torch ways are timed the same way: from their first step, which is included, to
their last. What eager torch does not pay is TF's one-off tracing and graph optimization
of train_step; so before the clock one step on the first batch traces and runs
train_step, and its update is undone (weights and Adam's slots restored), so that the
timed run starts from the initial weights and makes exactly `steps` updates with a
function traced once. That warm-up is reported apart, as `warmup` seconds.

The initial weights are Keras's (glorot uniform, zero biases), not the torch ways' shared
ones: this way is the tutorial as its user runs it.

The test ELBO is the tutorial's estimate, the single-sample MC of -compute_loss over the
whole test split, here as a mean per image, as the torch ways' `mean_terms` takes it (the
tutorial averages its 32-image batch means, which weighs each image of the last batch,
of 16, double).

Prints one JSON line: way, device, rate (steps per second), seconds, warmup, elbo.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

# ---- the tutorial's code, as written there ------------------------------------------


class CVAE(tf.keras.Model):
    """Convolutional variational autoencoder."""

    def __init__(self, latent_dim):
        super(CVAE, self).__init__()  # noqa: UP008 (the tutorial's spelling)
        self.latent_dim = latent_dim
        self.encoder = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(input_shape=(28, 28, 1)),
                tf.keras.layers.Conv2D(
                    filters=32, kernel_size=3, strides=(2, 2), activation="relu"
                ),
                tf.keras.layers.Conv2D(
                    filters=64, kernel_size=3, strides=(2, 2), activation="relu"
                ),
                tf.keras.layers.Flatten(),
                # No activation
                tf.keras.layers.Dense(latent_dim + latent_dim),
            ]
        )

        self.decoder = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(input_shape=(latent_dim,)),
                tf.keras.layers.Dense(units=7 * 7 * 32, activation=tf.nn.relu),
                tf.keras.layers.Reshape(target_shape=(7, 7, 32)),
                tf.keras.layers.Conv2DTranspose(
                    filters=64, kernel_size=3, strides=2, padding="same", activation="relu"
                ),
                tf.keras.layers.Conv2DTranspose(
                    filters=32, kernel_size=3, strides=2, padding="same", activation="relu"
                ),
                # No activation
                tf.keras.layers.Conv2DTranspose(
                    filters=1, kernel_size=3, strides=1, padding="same"
                ),
            ]
        )

    @tf.function
    def sample(self, eps=None):
        if eps is None:
            eps = tf.random.normal(shape=(100, self.latent_dim))
        return self.decode(eps, apply_sigmoid=True)

    def encode(self, x):
        mean, logvar = tf.split(self.encoder(x), num_or_size_splits=2, axis=1)
        return mean, logvar

    def reparameterize(self, mean, logvar):
        eps = tf.random.normal(shape=mean.shape)
        return eps * tf.exp(logvar * 0.5) + mean

    def decode(self, z, apply_sigmoid=False):
        logits = self.decoder(z)
        if apply_sigmoid:
            probs = tf.sigmoid(logits)
            return probs
        return logits


def log_normal_pdf(sample, mean, logvar, raxis=1):
    log2pi = tf.math.log(2.0 * np.pi)
    return tf.reduce_sum(
        -0.5 * ((sample - mean) ** 2.0 * tf.exp(-logvar) + logvar + log2pi), axis=raxis
    )


def compute_loss(model, x):
    mean, logvar = model.encode(x)
    z = model.reparameterize(mean, logvar)
    x_logit = model.decode(z)
    cross_ent = tf.nn.sigmoid_cross_entropy_with_logits(logits=x_logit, labels=x)
    logpx_z = -tf.reduce_sum(cross_ent, axis=[1, 2, 3])
    logpz = log_normal_pdf(z, 0.0, 0.0)
    logqz_x = log_normal_pdf(z, mean, logvar)
    return -tf.reduce_mean(logpx_z + logpz - logqz_x)


@tf.function
def train_step(model, x, optimizer):
    """Executes one training step and returns the loss.

    This function computes the loss and gradients, and uses the latter to
    update the model's parameters.
    """
    with tf.GradientTape() as tape:
        loss = compute_loss(model, x)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # noqa: B905


# ---- the benchmark around it ----------------------------------------------------------

BATCH_SIZE, LATENT_DIM, LEARNING_RATE = 32, 2, 1e-4


def describe() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
        return f"gpu ({name or gpus[0].name})"
    threads = tf.config.threading.get_intra_op_parallelism_threads() or len(
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count())
    )  # TF's default: the CPUs this process may run on
    return f"cpu ({threads} threads)"


def warm_up(model, optimizer, x) -> float:
    """Trace, optimize and run train_step once on `x`, then undo its update."""
    started = time.perf_counter()
    optimizer.build(model.trainable_variables)  # Adam's slots exist, so they can be restored
    variables = model.variables + optimizer.variables
    saved = [v.numpy() for v in variables]
    train_step(model, x, optimizer)
    for variable, value in zip(variables, saved, strict=True):
        variable.assign(value)
    return time.perf_counter() - started


def test_elbo(model, test_images: np.ndarray, batch_size: int = 1000) -> float:
    total = 0.0
    for x in tf.data.Dataset.from_tensor_slices(test_images).batch(batch_size):
        total += float(compute_loss(model, x)) * len(x)
    return -total / len(test_images)


def run(data: Path, steps: int, seed: int) -> dict:
    train_images = np.load(data / "train.npy")[: steps * BATCH_SIZE]
    test_images = np.load(data / "test.npy")
    if len(train_images) < steps * BATCH_SIZE:
        raise SystemExit(f"{data}/train.npy holds fewer than {steps} x {BATCH_SIZE} images")
    tf.keras.utils.set_random_seed(seed)
    train_size = len(train_images)
    train_dataset = (
        tf.data.Dataset.from_tensor_slices(train_images).shuffle(train_size).batch(BATCH_SIZE)
    )
    model = CVAE(LATENT_DIM)
    optimizer = tf.keras.optimizers.Adam(LEARNING_RATE)
    warmup = warm_up(model, optimizer, tf.constant(train_images[:BATCH_SIZE]))

    started = time.perf_counter()
    for train_x in train_dataset:
        train_step(model, train_x, optimizer)
    int(optimizer.iterations.numpy())  # the last update has finished
    seconds = time.perf_counter() - started

    done = int(optimizer.iterations.numpy())
    traces = train_step.experimental_get_tracing_count()
    if done != steps or traces != 1:
        raise SystemExit(f"tf: {done} steps and {traces} traces, expected {steps} and 1")
    return {
        "way": "tf",
        "device": describe(),
        "rate": steps / seconds,
        "seconds": seconds,
        "warmup": warmup,
        "elbo": test_elbo(model, test_images),
        "tensorflow": tf.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/test.npy")
    parser.add_argument("--steps", type=int, default=1875, help="1875 = one epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads; 0: TF's")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    print(json.dumps(run(args.data, args.steps, args.seed)))


if __name__ == "__main__":
    main()
