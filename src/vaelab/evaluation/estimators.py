"""Batched, seeded, inference-mode passes over a whole split, and evaluate@EXP: every
estimator on an experiment's test split."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from vaelab.core.files import write_text
from vaelab.core.progress import bar, say
from vaelab.models.base import DiscreteCodes, LatentModel
from vaelab.models.inference import posterior_means
from vaelab.models.saved import SavedModel
from vaelab.objectives.losses import (
    analytic_elbo,
    bernoulli_log_likelihood,
    closed_form_kl,
    iwae_bound,
    mc_elbo,
    mean_terms,
)
from vaelab.runtime import cores
from vaelab.runtime.device import describe
from vaelab.runtime.trained import load_trained

ACTIVE_UNIT_THRESHOLD = 0.01
# what metrics.json says in place of the bounds of a model that has no q(z|x) density
NOT_DEFINED = (
    "not defined: the encoder gives a code, not a density q(z|x), so there is no ELBO "
    "and no importance-weighted bound"
)


def _given(model: LatentModel, labels: torch.Tensor | None, start: int, stop: int, device):
    """The model for rows [start, stop) of a split: given their labels, if it is conditional."""
    return model.given(None if labels is None else labels[start:stop].to(device))


@torch.inference_mode()
def reconstruction_errors(
    model: LatentModel,
    images: torch.Tensor,
    batch_size: int = 1000,
    labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """Per-pixel BCE and MSE of the decoded posterior mean, averaged over the split."""
    model.eval()
    bce = mse = torch.zeros((), dtype=torch.float64, device=images.device)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        given = _given(model, labels, start, start + batch_size, x.device)
        logits = given.decode(given.encode(x).mean).float()
        bce = bce - bernoulli_log_likelihood(logits, x).double().sum()
        mse = mse + ((torch.sigmoid(logits) - x) ** 2).sum().double()
    pixels = images.numel()
    return {"bce_per_pixel": (bce / pixels).item(), "mse_per_pixel": (mse / pixels).item()}


@torch.inference_mode()
def codebook_usage(
    model: DiscreteCodes, images: torch.Tensor, batch_size: int = 1000
) -> dict[str, float | int]:
    """How a codebook is used on `images`: the perplexity exp(H) of the codes' histogram
    over every position of every image (the codebook size when all codes are equally
    used, 1 when one code only) and the dead codes, which no position of any image uses."""
    model.eval()
    counts = torch.zeros(model.codebook_size, dtype=torch.float64, device=images.device)
    positions = 0
    for start in range(0, len(images), batch_size):
        codes = model.code_indices(images[start : start + batch_size])
        positions = codes.shape[1]
        counts += torch.bincount(codes.flatten(), minlength=model.codebook_size).double()
    share = counts / counts.sum()
    entropy = -(share[share > 0] * share[share > 0].log()).sum()
    return {
        "codebook_size": model.codebook_size,
        "positions_per_image": positions,
        "perplexity": entropy.exp().item(),
        "dead_codes": int((counts == 0).sum()),
    }


@torch.inference_mode()
def iwae(
    model: LatentModel,
    images: torch.Tensor,
    k: int,
    *,
    batch_size: int,
    seed: int,
    progress=None,
    labels: torch.Tensor | None = None,
) -> tuple[float, float]:
    """The k-sample importance-weighted bound (nats per image): its mean over the images,
    and the standard error of that mean across images.

    About `batch_size` decodes run at once, so memory stays bounded for any k.
    """
    model.eval()
    generator = torch.Generator(device=images.device).manual_seed(seed)
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    squares = torch.zeros((), dtype=torch.float64, device=images.device)
    per_batch = max(1, batch_size // max(1, min(k, 100)))
    with model.frozen_prior():
        for start in range(0, len(images), per_batch):
            cores.rebalance()  # an evaluation at k = 5000 runs for hours beside others
            x = images[start : start + per_batch]
            given = _given(model, labels, start, start + per_batch, x.device)
            bounds = iwae_bound(given, x, k, generator=generator).double()
            total = total + bounds.sum()
            squares = squares + (bounds**2).sum()
            if progress is not None:
                progress.update(len(x))
    n = len(images)
    mean = total / n
    variance = (squares / n - mean**2).clamp(min=0) * n / max(n - 1, 1)
    return mean.item(), (variance / n).sqrt().item()


def evaluate(
    model: LatentModel,
    images: torch.Tensor,
    *,
    iwae_samples: int,
    batch_size: int,
    seed: int,
    also_k: Sequence[int] = (),
    progress=None,
    labels: torch.Tensor | None = None,
) -> dict:
    """Every estimator on one split (of class `labels`, which a class-conditional model is
    given), keyed by what each number is. Values in nats per image unless the key says
    otherwise. Every key is a fixed name: a setting a number depends on (the active-unit
    threshold, the IWAE's k) is a field beside it, never part of a key. The IWAE bound is at
    `iwae_samples`, and at each of `also_k` too (`iwae_at_k`, one record per k, sorted by
    k). A model without a posterior density gets `not_defined` in place of the bounds; one
    with a codebook, its usage."""
    metrics: dict = {"test_images": len(images)}
    means, logvars = posterior_means(model, images, batch_size, labels=labels)
    variance = means.var(dim=0)
    metrics["latent"] = {
        "dims": means.shape[1],
        "active_units": int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
        "active_unit_threshold": ACTIVE_UNIT_THRESHOLD,  # of the posterior mean's variance
    }
    metrics["reconstruction"] = reconstruction_errors(model, images, batch_size, labels)
    if model.discrete:
        metrics["codebook"] = codebook_usage(model, images, batch_size)
    if not model.variational:
        metrics["not_defined"] = {"elbo": NOT_DEFINED, "iwae": NOT_DEFINED}
        return metrics
    metrics.update(elbo_estimates(model, images, batch_size=batch_size, seed=seed, labels=labels))
    bound, stderr = iwae(
        model,
        images,
        iwae_samples,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        labels=labels,
    )
    metrics["iwae"] = {
        "k": iwae_samples,
        "bound_nats": bound,
        "nll_nats": -bound,  # the literature's test NLL: minus the bound, an upper bound
        "stderr_nats": stderr,
    }
    if also_k:
        by_k = {iwae_samples: (bound, stderr)}
        for k in also_k:
            if k not in by_k:
                by_k[k] = iwae(model, images, k, batch_size=batch_size, seed=seed, labels=labels)
        metrics["iwae_at_k"] = [
            {"k": k, "nll_nats": -by_k[k][0], "stderr_nats": by_k[k][1]} for k in sorted(by_k)
        ]
    return metrics


def elbo_estimates(
    model: LatentModel, images: torch.Tensor, *, batch_size: int, seed: int, labels=None
) -> dict:
    """metrics.json's `kl_estimator` and `elbo`: the single-sample MC ELBO and the ELBO with
    the KL in closed form, where KL(q || p) has one. Where it has none (the VampPrior, a
    flow posterior, two levels) the "analytic" ELBO estimates it by Monte Carlo at the same
    sample, and `kl_estimator` says so."""
    with torch.inference_mode():
        q = _given(model, labels, 0, 1, images.device).encode(images[:1])
    closed = closed_form_kl(model, q)
    mc = mean_terms(model, images, mc_elbo, batch_size=batch_size, seed=seed, labels=labels)
    analytic = mean_terms(
        model, images, analytic_elbo, batch_size=batch_size, seed=seed, labels=labels
    )
    return {
        "kl_estimator": "closed_form" if closed else "monte_carlo_1sample",
        "elbo": {
            "mc_1sample_nats": mc["elbo"],
            "analytic_kl_nats": analytic["elbo"],
            "reconstruction_loglik_nats": analytic["reconstruction"],
            "kl_nats": analytic["kl"],
        },
    }


# Whose Bernoulli draw a binary test split is: the literature's static-MNIST figures are on
# Larochelle & Murray's, which vaelab's own seeded draw stands in for where it cannot be had.
BINARIZED_BY = {
    "binarized_mnist": "Larochelle & Murray 2011 (binarized_mnist .amat files)",
    "stochastic": "vaelab's seeded Bernoulli draw of MNIST's grey levels (prepare seed)",
    "dynamic": (
        "a fresh Bernoulli draw of every training batch; the test split one seeded draw "
        "(vaelab's, from the prepare seed), the same in every run"
    ),
}


def training_protocol(saved: SavedModel) -> dict:
    """How the evaluated model was trained: its data's binarization (and, for a Bernoulli
    draw, whose), the epochs run and the one kept, and how that one was chosen."""
    trained = saved.experiment
    protocol = {
        "binarization": trained.get("binarize", "unknown"),
        "epochs_run": trained.get("epochs_run", len(saved.history)),
        "kept_epoch": trained.get("kept_epoch", len(saved.history)),
        "model_selection": "best validation ELBO" if trained.get("validation") else "last epoch",
    }
    drawn_by = BINARIZED_BY.get(trained.get("dataset")) or BINARIZED_BY.get(
        protocol["binarization"]
    )
    if drawn_by:
        protocol["binarized_by"] = drawn_by
    return protocol


def evaluate_experiment(
    name: str,
    *,
    params: Path,
    model: Path,
    data: Path,
    out: Path,
    track: str,
    limit: int | None = None,
) -> dict:
    """evaluate@EXP: every estimator on the test split of `data` for experiment NAME of
    `track`, with the settings of the track's `evaluate` section, and the model's training
    protocol; written to `out` (metrics.json) and returned."""
    run = load_trained(name, params=params, model=model, data=data, track=track, limit=limit)
    settings = run.params.track(track).evaluate
    k = settings.iwae_samples
    also = "".join(f", k={extra}" for extra in settings.also_k)
    say(
        f"evaluate {name}: {len(run.test)} test images, IWAE k={k}{also}, on {describe(run.device)}"
    )
    with bar(total=len(run.test), desc=f"{name} IWAE k={k}", unit="img") as progress:
        metrics = evaluate(
            run.model,
            run.test.images.to(run.device),
            iwae_samples=k,
            batch_size=settings.batch_size,
            seed=settings.seed,
            also_k=settings.also_k,
            progress=progress,
            labels=run.test.labels,
        )
    metrics["protocol"] = training_protocol(run.saved)
    write_text(out, json.dumps(metrics, indent=2) + "\n")
    say(f"evaluate {name}: " + json.dumps(metrics))
    return metrics
