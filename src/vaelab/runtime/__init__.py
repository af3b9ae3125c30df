"""Where a run happens and what it starts from: the device (and a GPU claim per
process), the CPU cores it shares, torchrun's ranks, the library files it runs, its
dvclive log, and a trained experiment loaded for the stages after training.

May import: core, models, objectives, config, data.
"""
