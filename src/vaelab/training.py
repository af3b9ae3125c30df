"""The training loop: batches drawn from tensors already on the device, seeded shuffling,
no host-device synchronisation inside a step, a checkpoint after every epoch.

An interrupted run resumes from its checkpoint when the experiment, the data and the
library code are unchanged (their fingerprint matches); otherwise it starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaelab.atomic import atomic_path
from vaelab.errors import DataError, ParamsError, TrainingDiverged
from vaelab.evaluation import mean_terms
from vaelab.models import LatentModel, build_model
from vaelab.objectives import mc_elbo, objective_for
from vaelab.params import ExperimentSpec, as_dict
from vaelab.prepare import load_split, read_meta
from vaelab.progress import bar, say

GRID_IMAGES = 16
_FINITE_CHECK_EVERY = 200
_SOURCE_DIR = Path(__file__).parent


@dataclass
class TrainingRun:
    """What a training run produces, besides the files it writes."""

    model: LatentModel
    history: list[dict] = field(default_factory=list)
    grids: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0


def fingerprint(spec: ExperimentSpec, meta: dict, limits: tuple) -> str:
    """Changes whenever a resumed run could differ from an uninterrupted one."""
    digest = hashlib.sha256(
        json.dumps([as_dict(spec), meta, list(limits)], sort_keys=True).encode()
    )
    for source in sorted(_SOURCE_DIR.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def make_optimizer(spec: ExperimentSpec, model: LatentModel) -> torch.optim.Optimizer:
    """Keras's defaults, which the seeds trained with: epsilon 1e-7, RMSprop rho 0.9."""
    if spec.optimizer == "adam":
        # One fused kernel for all parameters instead of a dozen small ops per tensor.
        fused = next(model.parameters()).device.type in ("cpu", "cuda")
        return torch.optim.Adam(
            model.parameters(), lr=spec.lr, betas=(0.9, 0.999), eps=1e-7, fused=fused
        )
    return torch.optim.RMSprop(model.parameters(), lr=spec.lr, alpha=0.9, eps=1e-7)


def reconstruction_grid(model: LatentModel, images: torch.Tensor) -> torch.Tensor:
    """Decoded posterior means of the fixed test images, as one uint8 [H, W] grid."""
    from torchvision.utils import make_grid  # imported late: it costs seconds at start-up

    with torch.inference_mode():
        was_training = model.training
        model.eval()
        probs = torch.sigmoid(model.decode(model.encode(images).mean)).float().cpu()
        model.train(was_training)
    grid = make_grid(probs, nrow=4, padding=2, pad_value=1.0)[0]
    return (grid * 255).round().to(torch.uint8)


class Checkpoint:
    """Everything needed to continue exactly where an epoch ended, written atomically."""

    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key

    def save(
        self,
        run: TrainingRun,
        optimizer,
        shuffle: torch.Generator,
        noise: torch.Generator,
        epoch: int,
    ) -> None:
        state = {
            "fingerprint": self.key,
            "epoch": epoch,
            "model": run.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle_rng": shuffle.get_state(),
            "noise_rng": noise.get_state(),
            "history": run.history,
            "grids": run.grids,
            "seconds": run.seconds,
        }
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=True, map_location="cpu")
        except Exception as exc:  # a damaged checkpoint is never worth a crash: start over
            say(f"  checkpoint {self.path} unreadable ({type(exc).__name__}); starting afresh")
            return None
        if state.get("fingerprint") != self.key:
            say(f"  checkpoint {self.path} is from other params, data or code; starting afresh")
            return None
        return state


def train(
    spec: ExperimentSpec,
    name: str,
    prepared_dir: Path,
    device: torch.device,
    checkpoint_path: Path,
    live=None,
    limit: int | None = None,
) -> TrainingRun:
    """Train one experiment; log each epoch to `live` (a dvclive.Live) when given.

    `limit` keeps only the first images of each split (tests and tiny profiles).
    """
    meta = read_meta(prepared_dir)
    train_split = load_split(prepared_dir, "train", limit)
    test_split = load_split(prepared_dir, "test", limit)
    if spec.batch_size > len(train_split):
        raise ParamsError(
            f"experiments.{name}.batch_size = {spec.batch_size} is invalid: "
            f"larger than the training set ({len(train_split)} images)"
        )

    torch.manual_seed(spec.seed)
    model = build_model(
        spec.model, spec.latent_dim, meta["size"], spec.hidden_dim, spec.logvar_clamp
    ).to(device)
    optimizer = make_optimizer(spec, model)
    objective = objective_for(spec.objective, spec.recon_weight, spec.kl_weight)
    step_objective = objective
    if spec.compile != "none":
        # The training step's objective, not the module: the state dict keeps its plain keys.
        # Sampling with our generator stays eager (a graph break): the same noise as eager.
        mode = None if spec.compile == "default" else spec.compile
        step_objective = torch.compile(objective, mode=mode)
    shuffle = torch.Generator().manual_seed(spec.seed)
    noise = torch.Generator(device=device).manual_seed(spec.seed + 1)
    run = TrainingRun(model=model)

    checkpoint = Checkpoint(checkpoint_path, fingerprint(spec, meta, (limit,)))
    state = checkpoint.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle_rng"])
        noise.set_state(state["noise_rng"])  # generator states are CPU tensors on any device
        run.history, run.grids, run.seconds = state["history"], state["grids"], state["seconds"]
        run.resumed_from = state["epoch"]
        say(f"  resuming from the checkpoint after epoch {run.resumed_from}")
    if live is not None:
        for record, grid in zip(run.history, run.grids, strict=True):
            _log_epoch(live, record, grid)

    train_x = train_split.images.to(device)
    test_x = test_split.images.to(device)
    grid_x = test_x[:GRID_IMAGES]
    steps = -(-len(train_x) // spec.batch_size)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.amp)

    for epoch in range(run.resumed_from + 1, spec.epochs + 1):
        model.train()
        started = time.perf_counter()
        step_losses = torch.zeros(steps, device=device)
        sums = torch.zeros(3, device=device, dtype=torch.float64)
        order = torch.randperm(len(train_x), generator=shuffle).to(device)
        checked = 0
        with bar(total=steps, desc=f"{name} epoch {epoch}/{spec.epochs}", unit="step") as pbar:
            for step in range(steps):
                x = train_x[order[step * spec.batch_size : (step + 1) * spec.batch_size]]
                with autocast:
                    terms = step_objective(model, x, noise)
                optimizer.zero_grad(set_to_none=True)
                terms.loss.backward()
                optimizer.step()
                step_losses[step] = terms.loss.detach()
                sums += torch.stack(
                    [
                        terms.loss.detach() * len(x),
                        -terms.reconstruction.detach().sum(),
                        terms.kl.detach().sum() if terms.kl is not None else x.new_zeros(()),
                    ]
                )
                pbar.update(1)
                if (step + 1) % _FINITE_CHECK_EVERY == 0 or step + 1 == steps:
                    _check_finite(step_losses, checked, step + 1, name, epoch)
                    checked = step + 1
                    pbar.set_postfix(loss=f"{step_losses[step].item():.3f}")
        train_loss, train_nll, train_kl = (sums / len(train_x)).tolist()
        seconds = time.perf_counter() - started
        run.seconds += seconds

        test = mean_terms(model, test_x, objective, seed=0)
        record = {
            "epoch": epoch,
            "train/loss": train_loss,
            "train/reconstruction_nll": train_nll,
            "test/loss": test["loss"],
            "epoch_seconds": seconds,
        }
        if model.variational:
            record["train/kl"] = train_kl
            record["test/elbo_mc"] = (
                test if spec.objective == "mc_elbo" else mean_terms(model, test_x, mc_elbo, seed=0)
            )["elbo"]
        run.history.append(record)
        run.grids.append(reconstruction_grid(model, grid_x))
        if live is not None:
            _log_epoch(live, record, run.grids[-1])
        checkpoint.save(run, optimizer, shuffle, noise, epoch)
        say(
            f"  epoch {epoch}/{spec.epochs}: "
            + ", ".join(f"{key} {value:.4f}" for key, value in record.items() if key != "epoch")
        )
    return run


def _check_finite(step_losses: torch.Tensor, start: int, stop: int, name: str, epoch: int) -> None:
    window = step_losses[start:stop]
    finite = torch.isfinite(window)
    if bool(finite.all()):
        return
    bad = start + int((~finite).nonzero()[0])
    kept = f"epoch {epoch - 1}" if epoch > 1 else "none yet"
    raise TrainingDiverged(
        f"experiments.{name}: loss became {step_losses[bad].item()} at epoch {epoch}, step "
        f"{bad + 1}; last good checkpoint kept ({kept}); lower lr or set logvar_clamp"
    )


def _log_epoch(live, record: dict, grid: torch.Tensor) -> None:
    live.step = record["epoch"]
    for key, value in record.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.log_image(f"epoch_{record['epoch']:04d}.png", grid.numpy())


def save_model(run: TrainingRun, spec: ExperimentSpec, name: str, meta: dict, path: Path) -> None:
    """The final model with everything needed to rebuild it, written atomically."""
    config = {
        "name": name,
        **as_dict(spec),
        "image_size": meta["size"],
        "dataset": meta["dataset"],
        "classes": meta["classes"],
    }
    state = {
        "config": config,
        "state_dict": {k: v.cpu() for k, v in run.model.state_dict().items()},
        "history": run.history,
        "train_seconds": run.seconds,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[LatentModel, dict]:
    """Rebuild a saved model; returns it in eval mode with its config."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        config = state["config"]
    except FileNotFoundError:
        raise DataError(f"model {path} not found; run its train stage first") from None
    except Exception as exc:
        raise DataError(
            f"model {path} is corrupt or truncated ({type(exc).__name__}); rerun its train stage"
        ) from None
    model = build_model(
        config["model"],
        config["latent_dim"],
        config["image_size"],
        config["hidden_dim"],
        config["logvar_clamp"],
    )
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), {
        **config,
        "history": state["history"],
        "train_seconds": state["train_seconds"],
    }
