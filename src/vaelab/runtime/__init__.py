"""Where a run happens and what it starts from: the device (and a GPU claim per
process), and a trained experiment loaded for the stages after training.

May import: core, models, objectives, config, data.
"""
