"""Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep Conditional
Generative Models": the class-conditional VAE, as Kingma, Rezende, Mohamed & Welling 2014
("Semi-supervised Learning with Deep Generative Models") write their M2 when every label is
observed (its labelled term, without the unlabelled part or the classifier q(y|x)):

    q(z | x, y) = N(mu(x, y), diag sigma^2(x, y))      p(x, z | y) = p(x | y, z) N(z; 0, I)

so every bound is one of log p(x | y). The label enters both networks as a one-hot vector
beside their input: the encoder Dense(hidden, relu) over [x, onehot(y)] with Dense(latent)
heads for the mean and log-variance, the decoder Dense(hidden, relu), Dense(pixels) over
[z, onehot(y)] giving Bernoulli logits. M2's MLP has one hidden layer of 500 softplus
units on each side and a 50-d latent; here relu units and Glorot-uniform init, as vae_mlp.
Not `cvae`, which is the TensorFlow tutorial's convolutional VAE: here "conditional" means
decoded given the digit asked for.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from vaelab.models.base import LatentModel, Posterior, VariationalConfig
from vaelab.models.layers import keras_init


class CondVaeMlpConfig(VariationalConfig):
    hidden_dim: int = Field(default=500, ge=1, le=65_536)
    # the one-hot label's width (not `classes`: model.pt keeps the data's class names there)
    num_classes: int = Field(default=10, ge=2, le=1000)
    # the VampPrior's pseudo-inputs have no labels to encode them given
    prior: Literal["standard"] = "standard"


class CondVaeMLP(LatentModel):
    Config = CondVaeMlpConfig
    conditional = True

    def __init__(self, config: CondVaeMlpConfig, image_size: int = 28):
        super().__init__(config, image_size)
        pixels, hidden, latent = image_size * image_size, config.hidden_dim, config.latent_dim
        self.classes = config.num_classes
        self.hidden = nn.Sequential(nn.Linear(pixels + self.classes, hidden), nn.ReLU(inplace=True))
        self.mean = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent + self.classes, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, pixels),
            nn.Unflatten(1, (1, image_size, image_size)),
        )
        keras_init(self)

    def _one_hot(self, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels.long(), self.classes).to(like.dtype)

    def encode(self, x: torch.Tensor, labels: torch.Tensor) -> Posterior:
        flat = x.flatten(1)
        h = self.hidden(torch.cat([flat, self._one_hot(labels, flat)], dim=1))
        return self.posterior(self.mean(h), self.logvar(h))

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, self._one_hot(labels, z)], dim=1))
