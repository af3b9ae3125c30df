"""Training: a step, an epoch, an evaluation, and the driver that runs them.

Batches are drawn by index from tensors already on the device, shuffled by a seeded
generator, and a step never waits for the device: losses add up on the device and are
checked for NaN every few hundred steps. Everything that is not training (checkpoints,
logs, pictures) happens in the `on_epoch_end` hook the caller passes in.

One loop serves one process and torchrun's N ranks: the run's partition
(vaelab.training.distributed), chosen once when it starts, says which rows of a batch this
process takes, where its noise comes from and how sums are reduced, and the objective runs
as the forward of a module that DistributedDataParallel wraps when there are ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from vaelab.config.experiments import ExperimentSpec
from vaelab.core.errors import ParamsError, TrainingDiverged
from vaelab.core.progress import bar
from vaelab.models.base import LatentModel
from vaelab.models.registry import build_model
from vaelab.objectives.losses import Terms, mc_elbo, mean_terms
from vaelab.objectives.registry import ScheduledKnobs, bound_knobs, objective_for
from vaelab.runtime import cores
from vaelab.runtime.device import uses_bf16
from vaelab.training.distributed import SINGLE, Partition, Ranks, Share, WholeBatch
from vaelab.training.optimizers import make_optimizer, make_schedule

FINITE_CHECK_EVERY = 200


@dataclass
class TrainState:
    """Everything that an epoch changes, so a run can continue where an epoch ended."""

    model: LatentModel
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler  # stepped after every epoch
    shuffle: torch.Generator  # orders the training images each epoch
    noise: torch.Generator  # draws the reparameterisation noise
    binarizer: torch.Generator  # draws each batch's pixels, for dynamically binarized data
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    # with a validation split: the epoch with the best validation ELBO, and its weights
    best_epoch: int = 0
    best_score: float = float("-inf")
    best_weights: dict | None = None

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "shuffle_rng": self.shuffle.get_state(),
            "noise_rng": self.noise.get_state(),
            "binarizer_rng": self.binarizer.get_state(),
            "history": self.history,
            "seconds": self.seconds,
            "best": {"epoch": self.best_epoch, "score": self.best_score},
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.shuffle.set_state(state["shuffle_rng"])
        self.noise.set_state(state["noise_rng"])  # generator states are CPU tensors anywhere
        self.binarizer.set_state(state["binarizer_rng"])
        self.epoch, self.history, self.seconds = state["epoch"], state["history"], state["seconds"]
        self.best_epoch, self.best_score = state["best"]["epoch"], state["best"]["score"]
        self.best_weights = state["best_weights"]

    def keep_if_best(self, score: float) -> None:
        if score > self.best_score:
            self.best_epoch, self.best_score = self.epoch, score
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}


EpochEndHook = Callable[[TrainState, dict], None]


def initial_state(
    spec: ExperimentSpec, image_size: int, device: torch.device, resume: dict | None = None
) -> TrainState:
    """A run's state at its start: seeded, or as the checkpoint state `resume` left it."""
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, image_size, spec.model_knobs).to(device)
    optimizer = make_optimizer(spec, model)
    state = TrainState(
        model=model,
        optimizer=optimizer,
        schedule=make_schedule(spec, optimizer),
        shuffle=torch.Generator().manual_seed(spec.seed),
        noise=torch.Generator(device=device).manual_seed(spec.seed + 1),
        binarizer=torch.Generator(device=device).manual_seed(spec.seed + 2),
    )
    if resume is not None:
        state.load_state_dict(resume)
    return state


@dataclass
class Totals:
    """Sums over an epoch's images, kept on the device so that no step waits for it."""

    loss: torch.Tensor
    reconstruction_nll: torch.Tensor
    kl: torch.Tensor

    @classmethod
    def zeros(cls, device: torch.device) -> Totals:
        return cls(*(torch.zeros((), device=device, dtype=torch.float64) for _ in range(3)))

    def add(self, terms: Terms, count: int) -> None:
        if count:  # a rank's share of a batch smaller than the world can be empty
            self.loss += terms.loss.detach() * count
        self.reconstruction_nll += -terms.reconstruction.detach().sum()
        if terms.kl is not None:
            self.kl += terms.kl.detach().sum()

    def reduce(self, partition: Partition) -> None:
        for value in vars(self).values():
            partition.reduce_(value)

    def means(self, count: int) -> dict[str, float]:
        return {key: (value / count).item() for key, value in vars(self).items()}


class ObjectiveStep(nn.Module):
    """The objective as a module's forward, so that DistributedDataParallel can wrap it (it
    syncs gradients of calls through forward only). Its one child is the model, whose own
    state dict, with its plain keys, is what checkpoints and model.pt keep. The objective
    is built (and compiled) once per run; `knobs`, keywords it is called with, carry what
    changes between epochs, as the KL warm-up's weight does."""

    def __init__(self, model: LatentModel, objective: Callable[..., Terms], knobs=None):
        super().__init__()
        self.model, self.objective, self.knobs = model, objective, knobs or {}

    def forward(self, x: torch.Tensor, noise, labels: torch.Tensor | None = None) -> Terms:
        return self.objective(self.model.given(labels), x, noise, **self.knobs)


def train_step(
    state: TrainState,
    step: nn.Module,
    x: torch.Tensor,
    *,
    autocast: AbstractContextManager,
    share: WholeBatch | Share,
    labels: torch.Tensor | None = None,
) -> Terms:
    """One optimizer step on `x` (of class `labels`), this process's `share` of the batch."""
    with autocast:
        terms = step(x, share.noise, labels)
    state.optimizer.zero_grad(set_to_none=True)
    share.backward(terms.loss)
    state.optimizer.step()
    return terms


def train_epoch(
    state: TrainState,
    images: torch.Tensor,
    step: nn.Module,
    *,
    spec: ExperimentSpec,
    name: str,
    partition: Partition,
    dynamic: bool = False,
    labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """One pass over `images` (of class `labels`, for a class-conditional model) in a fresh
    seeded order; returns per-image mean terms.

    With `dynamic`, the images are grey levels and each batch is a fresh seeded Bernoulli
    draw of them (the literature's dynamic binarization)."""
    state.model.train()
    device = images.device
    steps = -(-len(images) // spec.batch_size)
    bf16 = uses_bf16(spec.amp, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    step_losses = torch.zeros(steps, device=device)
    totals = Totals.zeros(device)
    order = torch.randperm(len(images), generator=state.shuffle).to(device)
    epoch, checked = state.epoch + 1, 0
    desc = f"{name} epoch {epoch}/{spec.epochs}"
    # one bar for the run, not one per rank
    progress_bar = (
        bar(total=steps, desc=desc, unit="step") if partition.main else tqdm(disable=True)
    )
    with progress_bar as progress:
        for index in range(steps):
            cores.rebalance()  # other vaelab processes on this CPU may have come or gone
            batch = order[index * spec.batch_size : (index + 1) * spec.batch_size]
            share = partition.share(len(batch))
            x = share.take(images, batch)
            y = None if labels is None else share.take(labels, batch)
            if dynamic:  # refused with processes > 1 (see vaelab.training.experiment)
                x = torch.bernoulli(x, generator=state.binarizer)
            terms = train_step(state, step, x, autocast=autocast, share=share, labels=y)
            step_losses[index] = share.portion(terms.loss).detach()  # summed in the check
            totals.add(terms, len(x))
            progress.update(1)
            if (index + 1) % FINITE_CHECK_EVERY == 0 or index + 1 == steps:
                _check_finite(
                    step_losses[checked : index + 1],
                    start=checked,
                    name=name,
                    epoch=epoch,
                    partition=partition,
                )
                checked = index + 1
                progress.set_postfix(loss=f"{step_losses[index].item():.3f}")
    totals.reduce(partition)
    return totals.means(len(images))


def eval_epoch(
    model: LatentModel,
    images: torch.Tensor,
    objective,
    objective_name: str,
    labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """The training objective's loss on `images` and, for a VAE, the tutorial's MC ELBO."""
    test = mean_terms(model, images, objective, seed=0, labels=labels)
    result = {"loss": test["loss"]}
    if model.variational:
        mc = (
            test
            if objective_name == "mc_elbo"
            else mean_terms(model, images, mc_elbo, seed=0, labels=labels)
        )
        result["elbo_mc"] = mc["elbo"]
    return result


def check_batch_fits(spec: ExperimentSpec, name: str, images: int) -> None:
    if spec.batch_size > images:
        raise ParamsError(
            f"experiments.{name}.batch_size = {spec.batch_size} is invalid: "
            f"larger than the training set ({images} images)"
        )


def train(
    spec: ExperimentSpec,
    name: str,
    train_images: torch.Tensor,
    eval_images: torch.Tensor,
    *,
    on_epoch_end: EpochEndHook | None = None,
    resume: dict | None = None,
    dynamic: bool = False,
    ranks: Ranks = SINGLE,
    train_labels: torch.Tensor | None = None,
    eval_labels: torch.Tensor | None = None,
) -> TrainState:
    """Train experiment `name` on images (and a class-conditional model's labels) already
    on their device, from `resume` if given. Each epoch is scored on `eval_images`: the
    validation split when the experiment holds one out (records say `val/`, and the best
    epoch's weights are the model returned), else the test split, as the tutorials do.
    Under torchrun every rank calls this; rank 0 alone evaluates and runs `on_epoch_end`.
    """
    state = initial_state(spec, train_images.shape[-1], train_images.device, resume)
    partition = ranks.partition(state.noise)
    split = "val" if spec.validation else "test"
    scored = objective_for(spec.objective, spec.objective_knobs)  # final knob values
    step = ObjectiveStep(state.model, _compiled(scored, spec))
    wrapped = partition.wrap(step)
    scheduled = isinstance(spec.objective_knobs, ScheduledKnobs)  # e.g. the KL warm-up
    evaluate = eval_epoch if partition.main else _no_evaluation
    while state.epoch < spec.epochs and not _out_of_patience(state, spec):
        if scheduled:  # this epoch's values, over the final ones `scored` binds
            step.knobs = bound_knobs(spec.objective, spec.objective_knobs, state.epoch + 1)
        started = time.perf_counter()
        train_means = train_epoch(
            state,
            train_images,
            wrapped,
            spec=spec,
            name=name,
            partition=partition,
            dynamic=dynamic,
            labels=train_labels,
        )
        seconds = time.perf_counter() - started
        lr = state.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
        state.schedule.step()
        if not state.model.variational:
            del train_means["kl"]
        eval_means = evaluate(state.model, eval_images, scored, spec.objective, eval_labels)
        state.epoch += 1
        state.seconds += seconds
        record = _epoch_record(state.epoch, train_means, split, eval_means, seconds)
        if spec.lr_milestones:  # a scheduled rate is worth a curve; a constant one is flat
            record["lr"] = lr
        state.history.append(record)
        if spec.validation:  # single process only: experiments refuse it with processes > 1
            state.keep_if_best(eval_means.get("elbo_mc", -eval_means["loss"]))
        if on_epoch_end is not None:
            on_epoch_end(state, record)
    if spec.validation:
        state.model.load_state_dict(state.best_weights)
    return state


def _epoch_record(
    epoch: int, train_means: dict, split: str, eval_means: dict, seconds: float
) -> dict:
    """An epoch's row of the history (and of dvclive's logs)."""
    return {
        "epoch": epoch,
        **{f"train/{key}": value for key, value in train_means.items()},
        **{f"{split}/{key}": value for key, value in eval_means.items()},
        "epoch_seconds": seconds,
    }


def _no_evaluation(*args) -> dict[str, float]:
    """What ranks other than 0 score: nothing; rank 0 evaluates for the run."""
    return {}


def _compiled(objective, spec: ExperimentSpec):
    if spec.compile == "none":
        return objective
    # The objective, not the module, so the state dict keeps its plain keys; sampling with
    # our generator stays eager (a graph break), so the noise is eager's.
    return torch.compile(objective, mode=None if spec.compile == "default" else spec.compile)


def _out_of_patience(state: TrainState, spec: ExperimentSpec) -> bool:
    return spec.patience is not None and state.epoch - state.best_epoch >= spec.patience


def _check_finite(
    window: torch.Tensor, *, start: int, name: str, epoch: int, partition: Partition
) -> None:
    """Fail on the first loss in `window` (the steps from index `start` on) that is not
    finite; the check reads the losses to the host, so it runs only every few hundred steps."""
    # the ranks' parts sum to each step's batch loss, so all ranks judge the same numbers
    partition.reduce_(window)
    finite = torch.isfinite(window)
    if bool(finite.all()):
        return
    bad = int((~finite).nonzero()[0])
    kept = f"epoch {epoch - 1}" if epoch > 1 else "none yet"
    raise TrainingDiverged(
        f"experiments.{name}: loss became {window[bad].item()} at epoch {epoch}, step "
        f"{start + bad + 1}; last good checkpoint kept ({kept}); lower lr or set logvar_clamp"
    )
