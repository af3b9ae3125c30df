"""Judging trained models: the estimators (ELBOs, the importance-weighted bound),
the classifier whose features score samples, the samplers, and sample quality.

May import: core, models, objectives, config, data, runtime, pictures, training.
"""
