"""The optimisers an experiment names: `optimizer` in params.yaml, with its settings.

Unset settings are Keras's, which the reference tutorials trained with (epsilon 1e-7,
RMSprop rho 0.9); the literature's scripts set PyTorch's own with `optimizer_eps` and
`rmsprop_alpha`.
"""

from __future__ import annotations

import torch

from vaelab.config.experiments import ExperimentSpec
from vaelab.models.base import LatentModel


class AdamNormGrad(torch.optim.Adam):
    """Adam on gradients scaled to unit L2 norm per parameter tensor, as the VampPrior
    paper's code trains (Tomczak & Welling 2018, utils/optimizer.py there): no one layer's
    large gradient dominates a step, whatever the batch's loss scale."""

    @torch.no_grad()
    def step(self, closure=None):
        grads = [
            p.grad for group in self.param_groups for p in group["params"] if p.grad is not None
        ]
        if grads:
            norms = torch._foreach_norm(grads)
            torch._foreach_add_(norms, 1e-7)  # the paper's guard against a zero gradient
            torch._foreach_div_(grads, norms)
        return super().step(closure)


def make_optimizer(spec: ExperimentSpec, model: LatentModel) -> torch.optim.Optimizer:
    # One fused kernel for all parameters instead of a dozen small ops per tensor.
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    if spec.optimizer in ("adam", "adam_normgrad"):
        adam = torch.optim.Adam if spec.optimizer == "adam" else AdamNormGrad
        return adam(
            model.parameters(), lr=spec.lr, betas=(0.9, 0.999), eps=spec.optimizer_eps, fused=fused
        )
    alpha = 0.9 if spec.rmsprop_alpha is None else spec.rmsprop_alpha
    return torch.optim.RMSprop(model.parameters(), lr=spec.lr, alpha=alpha, eps=spec.optimizer_eps)


def make_schedule(
    spec: ExperimentSpec, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning rate per epoch (stepped after each): MultiStepLR, which without
    milestones never changes it."""
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=spec.lr_milestones, gamma=spec.lr_gamma or 1.0
    )
