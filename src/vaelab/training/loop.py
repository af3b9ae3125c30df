"""Training: a step, an epoch, an evaluation, and the driver that runs them.

Batches are drawn by index from tensors already on the device, shuffled by a seeded
generator, and a step never waits for the device: losses add up on the device and are
checked for NaN every few hundred steps. Everything that is not training (checkpoints,
logs, pictures) happens in the `on_epoch_end` hook the caller passes in.

One loop serves one process and torchrun's N ranks: the run's slices
(vaelab.training.ddp) say which rows of a batch this process takes and where its noise
comes from, and the objective runs as the forward of a module that DistributedDataParallel
wraps when there are ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from vaelab.config.experiments import ExperimentSpec
from vaelab.core.errors import TrainingDiverged
from vaelab.core.progress import bar
from vaelab.models.base import LatentModel, NoiseSource
from vaelab.models.registry import build_model
from vaelab.objectives.losses import Terms, mc_elbo, mean_terms
from vaelab.objectives.registry import ScheduledKnobs, bound_knobs, objective_for
from vaelab.runtime import cores
from vaelab.runtime.device import uses_bf16
from vaelab.runtime.torchrun import SINGLE, Ranks
from vaelab.training.ddp import Slices
from vaelab.training.optimizers import make_optimizer, make_schedule

FINITE_CHECK_EVERY = 200


@dataclass(frozen=True)
class Run:
    """What a training is, apart from its images: the experiment, its name in messages,
    and where this process sits among torchrun's ranks."""

    spec: ExperimentSpec
    name: str
    ranks: Ranks = SINGLE
    # draws the noise in place of the seeded generator (the GPU check draws it on the CPU)
    noise: NoiseSource | None = None


@dataclass
class Images:
    """A run's images on its device: what it trains on and what each epoch is scored on,
    with their labels (a class-conditional model is given each image's)."""

    train_x: torch.Tensor
    eval_x: torch.Tensor
    train_y: torch.Tensor | None = None
    eval_y: torch.Tensor | None = None
    dynamic: bool = False  # grey levels, each batch a fresh seeded Bernoulli draw


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

    def reduce(self, slices: Slices) -> None:
        for value in vars(self).values():
            slices.reduce_(value)

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


def train_epoch(state: TrainState, step: nn.Module, slices: Slices, run: Run, images: Images):
    """One pass over the training images in a fresh seeded order; returns per-image mean
    terms. With `images.dynamic`, the images are grey levels and each batch is a fresh
    seeded Bernoulli draw of them (the literature's dynamic binarization)."""
    spec, labels = run.spec, images.train_y
    state.model.train()
    device = images.train_x.device
    steps = -(-len(images.train_x) // spec.batch_size)
    bf16 = uses_bf16(spec.amp, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    step_losses = torch.zeros(steps, device=device)
    totals = Totals.zeros(device)
    order = torch.randperm(len(images.train_x), generator=state.shuffle).to(device)
    epoch, checked = state.epoch + 1, 0
    desc = f"{run.name} epoch {epoch}/{spec.epochs}"
    # one bar for the run, not one per rank
    progress_bar = bar(total=steps, desc=desc, unit="step") if slices.main else tqdm(disable=True)
    with progress_bar as progress:
        for index in range(steps):
            cores.rebalance()  # other vaelab processes on this CPU may have come or gone
            batch = order[index * spec.batch_size : (index + 1) * spec.batch_size]
            share = slices.of(len(batch))  # this process's rows of the batch
            x = share.take(images.train_x, batch)
            y = None if labels is None else share.take(labels, batch)
            if images.dynamic:  # refused with processes > 1 (see vaelab.training.experiment)
                x = torch.bernoulli(x, generator=state.binarizer)
            with autocast:
                terms = step(x, share.noise, y)  # the objective's terms on the model
            state.optimizer.zero_grad(set_to_none=True)
            share.backward(terms.loss)
            state.optimizer.step()
            step_losses[index] = share.portion(terms.loss).detach()  # summed in the check
            totals.add(terms, len(x))
            progress.update(1)
            if (index + 1) % FINITE_CHECK_EVERY == 0 or index + 1 == steps:
                # the ranks' parts sum to each step's batch loss: all judge the same numbers
                window = slices.reduce_(step_losses[checked : index + 1])
                _check_finite(window, start=checked, epoch=epoch, name=run.name)
                checked = index + 1
                progress.set_postfix(loss=f"{step_losses[index].item():.3f}")
    totals.reduce(slices)
    return totals.means(len(images.train_x))


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


def train(
    run: Run,
    images: Images,
    *,
    on_epoch_end: EpochEndHook | None = None,
    resume: dict | None = None,
) -> TrainState:
    """Train `run` on `images` already on their device, from `resume` if given. Each epoch
    is scored on `images.eval_x`: the validation split when the experiment holds one out
    (records say `val/`, and the best epoch's weights are the model returned), else the
    test split, as the tutorials do. Under torchrun every rank calls this; rank 0 alone
    evaluates and runs `on_epoch_end`.
    """
    spec = run.spec
    state = initial_state(spec, images.train_x.shape[-1], images.train_x.device, resume)
    slices = Slices(run.noise or state.noise, run.ranks)
    split = "val" if spec.validation else "test"
    scored = objective_for(spec.objective, spec.objective_knobs)  # final knob values
    step = ObjectiveStep(state.model, _compiled(scored, spec))
    wrapped = slices.wrap(step)
    scheduled = isinstance(spec.objective_knobs, ScheduledKnobs)  # e.g. the KL warm-up
    evaluate = eval_epoch if slices.main else _no_evaluation
    while state.epoch < spec.epochs and not _out_of_patience(state, spec):
        if scheduled:  # this epoch's values, over the final ones `scored` binds
            step.knobs = bound_knobs(spec.objective, spec.objective_knobs, state.epoch + 1)
        started = time.perf_counter()
        train_means = train_epoch(state, wrapped, slices, run, images)
        seconds = time.perf_counter() - started
        lr = state.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
        state.schedule.step()
        if not state.model.variational:
            del train_means["kl"]
        eval_means = evaluate(state.model, images.eval_x, scored, spec.objective, images.eval_y)
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


def _check_finite(window: torch.Tensor, *, start: int, epoch: int, name: str) -> None:
    """Fail on the first loss in `window` (the steps from index `start` on) that is not
    finite; the check reads the losses to the host, so it runs only every few hundred steps."""
    finite = torch.isfinite(window)
    if bool(finite.all()):
        return
    bad = int((~finite).nonzero()[0])
    kept = f"epoch {epoch - 1}" if epoch > 1 else "none yet"
    raise TrainingDiverged(
        f"experiments.{name}: loss became {window[bad].item()} at epoch {epoch}, step "
        f"{start + bad + 1}; last good checkpoint kept ({kept}); lower lr or set logvar_clamp"
    )
