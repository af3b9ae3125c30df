"""pythae's VAE recipe, trained and scored by the pythae package itself, on a prepared set.

benchmarks/README.md (`pythae_vae`) says what it measures and how to read it.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import typer
from pythae.data.preprocessors import DataProcessor
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback
from torch import nn

from vaelab.core.files import write_text
from vaelab.data.splits import hold_out, load_split
from vaelab.evaluation.estimators import iwae
from vaelab.models.registry import build_model

PIXELS, HIDDEN, LATENT = 784, 400, 40


class Encoder(BaseEncoder):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(PIXELS, HIDDEN), nn.ReLU())
        self.embedding = nn.Linear(HIDDEN, LATENT)
        self.log_var = nn.Linear(HIDDEN, LATENT)

    def forward(self, x):
        h = self.hidden(x.reshape(-1, PIXELS))
        return ModelOutput(embedding=self.embedding(h), log_covariance=self.log_var(h))


class Decoder(BaseDecoder):
    def __init__(self):
        super().__init__()
        self.first = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU())
        self.last = nn.Linear(HIDDEN, PIXELS)

    def forward(self, z):
        probabilities = torch.sigmoid(self.last(self.first(z)))
        return ModelOutput(reconstruction=probabilities.reshape(-1, 1, 28, 28))


class Curve(TrainingCallback):
    """Keeps each epoch's losses and prints one line every `every` epochs."""

    def __init__(self, every: int):
        self.every, self.rows, self.started = every, [], time.perf_counter()

    def on_log(self, training_config, logs, **kwargs):
        row = {
            "epoch": len(self.rows) + 1,
            "train_loss": logs["train_epoch_loss"],
            "val_loss": logs["eval_epoch_loss"],
        }
        self.rows.append(row)
        if row["epoch"] % self.every == 0 or row["epoch"] == training_config.num_epochs:
            elapsed = time.perf_counter() - self.started
            print(
                f"epoch {row['epoch']}: train {row['train_loss']:.3f}, "
                f"val {row['val_loss']:.3f} ({elapsed / row['epoch']:.2f} s/epoch)",
                flush=True,
            )


def as_vaelab(encoder: Encoder, decoder: Decoder) -> nn.Module:
    """pythae's trained network as vaelab's vae_mlp (same layers; vaelab decodes logits)."""
    ours = build_model("vae_mlp", 28, hidden_dim=HIDDEN, latent_dim=LATENT)
    pairs = [
        (ours.hidden[1], encoder.hidden[0]),
        (ours.mean, encoder.embedding),
        (ours.logvar, encoder.log_var),
        (ours.decoder[0], decoder.first[0]),
        (ours.decoder[2], decoder.last),
    ]
    with torch.no_grad():
        for target, source in pairs:
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    return ours.eval()


def main(
    data: Path = typer.Option(..., help="a prepared folder, e.g. data/prepared/mnist_static"),
    epochs: int = typer.Option(500, help="pythae's script: 500"),
    validation: int = typer.Option(10000, help="the last N training images held out"),
    seed: int = typer.Option(123, help="pythae's script: torch.manual_seed(123)"),
    k: int = typer.Option(200, help="importance samples of the NLL (pythae's figure: 200)"),
    rounds: int = typer.Option(5, help="pythae's get_nll rounds averaged (its script: 5)"),
    threads: int = typer.Option(1, help="torch intra-op threads"),
    every: int = typer.Option(25, help="print the losses every N epochs"),
    out: Path = typer.Option(None, help="write the figures and the curve here as JSON"),
) -> None:
    torch.set_num_threads(threads)
    train, held = hold_out(load_split(data, "train"), validation)
    test = load_split(data, "test")
    if train.dynamic:
        raise typer.BadParameter(f"{data} is dynamically binarized; give a static set")

    torch.manual_seed(seed)
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    model = VAE(model_config=config, encoder=Encoder(), decoder=Decoder())
    curve = Curve(every)
    with tempfile.TemporaryDirectory() as scratch:
        training = BaseTrainerConfig(
            output_dir=scratch,
            per_device_train_batch_size=100,
            per_device_eval_batch_size=100,
            num_epochs=epochs,
            learning_rate=1e-4,
            scheduler_cls="MultiStepLR",
            scheduler_params={"milestones": [200, 350, 500, 750, 1000], "gamma": 10 ** (-1 / 5)},
            no_cuda=True,
            seed=seed,
        )
        processor = DataProcessor()
        trainer = BaseTrainer(
            model=model,
            train_dataset=processor.to_dataset(train.images),
            eval_dataset=processor.to_dataset(held.images),
            training_config=training,
            callbacks=[curve],
        )
        started = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - started
    best = trainer._best_model.eval()
    kept = min(curve.rows, key=lambda row: row["val_loss"])

    with torch.no_grad():
        pythae_nll = [-best.get_nll(test.images, n_samples=k) for _ in range(rounds)]
    ours = as_vaelab(best.encoder, best.decoder)
    bound, stderr = iwae(ours, test.images, k, batch_size=500, seed=0)

    figures = {
        "data": str(data),
        "epochs": epochs,
        "seed": seed,
        "train_seconds": round(train_seconds, 1),
        "kept_epoch": kept["epoch"],
        "kept_val_loss": kept["val_loss"],
        "k": k,
        "pythae_get_nll": {"rounds": pythae_nll, "mean": float(np.mean(pythae_nll))},
        "vaelab_iwae": {"nll_nats": -bound, "stderr_nats": stderr},
        "curve": curve.rows,
    }
    print(
        f"pythae on {data}: kept epoch {kept['epoch']} of {epochs} "
        f"(validation loss {kept['val_loss']:.3f}); NLL at k = {k}: "
        f"{figures['pythae_get_nll']['mean']:.2f} by pythae's get_nll "
        f"({rounds} rounds), {-bound:.2f} ± {stderr:.2f} by vaelab's iwae"
    )
    if out is not None:
        write_text(out, json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
