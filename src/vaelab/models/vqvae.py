"""van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning":
the VQ-VAE, whose code is a grid of vectors each snapped to the nearest of K learned
codebook vectors.

    z_e = encoder(x) [B, D, 4, 4]      k = argmin_j ||z_e - e_j||      z_q = e_k
    loss = -log p(x | z_q) + ||sg[z_e] - e_k||^2 + beta ||z_e - sg[e_k]||^2

The decoder reads z_q but its gradient goes to z_e unchanged (the straight-through
estimator, z_e + sg[z_q - z_e]). The codebook learns from the second term, or, with
`ema_decay` set, from exponential moving averages of the encodings each code is chosen for
(the paper's appendix), and then that term has no gradient. The `vq` objective is the loss.

The paper's MNIST-sized model is a conv encoder and decoder with a PixelCNN fitted on the
codes afterwards; here the encoder is Conv(32, 4, s2), Conv(64, 4, s2), Conv(64, 3, s2)
(relu; 28 -> 14 -> 7 -> 4) and a 1x1 Conv(latent_dim), the decoder its mirror image to
Bernoulli logits, and the prior fitted on the training codes is vaelab's `codebook`
sampler (each position's histogram), apart from the model. A code as the rest of vaelab
sees it (`encode(x).mean`, what `decode` takes) is z_q flattened, 16 positions of
`latent_dim`; `decode` snaps any such vector to the codebook first.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from vaelab.models.base import LatentModel, ModelConfig, Posterior, Quantised


class VqVaeConfig(ModelConfig):
    latent_dim: int = Field(default=8, ge=1, le=65_536)  # D: the width of one codebook vector
    codebook_size: int = Field(default=128, ge=2, le=65_536)  # K
    # None: the codebook learns by gradient; else the decay of its moving averages
    ema_decay: float | None = Field(default=None, gt=0, lt=1)


def nearest(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The index of the codebook row [K, D] nearest each vector [..., D] in L2."""
    flat = vectors.reshape(-1, vectors.shape[-1]).float()
    book = codebook.float()
    distances = (flat * flat).sum(1, keepdim=True) - 2 * flat @ book.T + (book * book).sum(1)
    return distances.argmin(1).view(vectors.shape[:-1])


class VqVae(LatentModel):
    Config = VqVaeConfig
    variational = False  # q(z|x) is a point mass on a code: no density to bound log p(x) by
    image_sizes = (28,)
    discrete = True

    def __init__(self, config: VqVaeConfig, image_size: int = 28):
        super().__init__(config, image_size)
        d, k = config.latent_dim, config.codebook_size
        self.codebook_size = k
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),  # 14
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),  # 7
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),  # 4
            nn.ReLU(inplace=True),
            nn.Conv2d(64, d, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(d, 64, 1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1),  # 7
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # 14
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 28
        )
        self.grid = 4
        # the paper's code: uniform in [-1/K, 1/K]
        book = torch.empty(k, d).uniform_(-1.0 / k, 1.0 / k)
        self.ema = config.ema_decay
        if self.ema is None:
            self.codebook = nn.Parameter(book)
        else:
            self.register_buffer("codebook", book)
            self.register_buffer("ema_counts", torch.ones(k))
            self.register_buffer("ema_sums", book.clone())

    def _encodings(self, x: torch.Tensor) -> torch.Tensor:
        """z_e as [B, P, D], P = 16 positions."""
        return self.encoder(x).flatten(2).transpose(1, 2)

    def quantise(self, x: torch.Tensor) -> Quantised:
        encoded = self._encodings(x)
        indices = nearest(encoded.detach(), self.codebook)
        if self.ema is not None and self.training:
            self._ema_update(encoded.detach(), indices)
        chosen = self.codebook[indices]
        straight = encoded + (chosen - encoded).detach()
        return Quantised(encoded, chosen, indices, straight.flatten(1))

    @torch.no_grad()
    def _ema_update(self, encoded: torch.Tensor, indices: torch.Tensor) -> None:
        one_hot = nn.functional.one_hot(indices.flatten(), self.codebook_size).float()
        flat = encoded.reshape(-1, encoded.shape[-1]).float()
        decay = self.ema
        self.ema_counts.mul_(decay).add_(one_hot.sum(0), alpha=1 - decay)
        self.ema_sums.mul_(decay).add_(one_hot.T @ flat, alpha=1 - decay)
        # Laplace smoothing keeps a code that lost its encodings from dividing by zero
        total = self.ema_counts.sum()
        counts = (self.ema_counts + 1e-5) / (total + self.codebook_size * 1e-5) * total
        self.codebook.copy_(self.ema_sums / counts[:, None])

    def code_indices(self, x: torch.Tensor) -> torch.Tensor:
        return nearest(self._encodings(x), self.codebook)

    def encode(self, x: torch.Tensor) -> Posterior:
        return Posterior(self.codebook[self.code_indices(x)].flatten(1), None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        rows = z.reshape(len(z), -1, self.latent_dim)
        snapped = rows + (self.codebook[nearest(rows.detach(), self.codebook)] - rows).detach()
        grid = snapped.transpose(1, 2).reshape(len(z), self.latent_dim, self.grid, self.grid)
        return self.decoder(grid)
