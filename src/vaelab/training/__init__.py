"""Training: the step, the epoch and the driver, the epoch checkpoint, the per-epoch
log, and data parallelism on torchrun.

May import: core, models, objectives, config, data, runtime, pictures.
"""
