"""Pictures of models and their latent spaces: image grids, plots, manifolds, GIFs
and paths through latent space.

May import: core, models, objectives, config, data, runtime.
"""
