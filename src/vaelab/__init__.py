"""vaelab: reproducible autoencoder and VAE experiments, orchestrated by DVC."""

__version__ = "0.1.0"
