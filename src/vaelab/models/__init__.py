"""The architectures, one file each with its config, the layers they share, the log
densities of their priors, batched inference over many inputs, and model.pt (a trained
model saved with the config it is rebuilt from). The registry is `vaelab.models.registry`.

May import: core.
"""
