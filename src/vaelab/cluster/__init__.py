"""Sweeps on a SLURM cluster: one array task per point of a `dvc exp run -S` grid, each
point an experiment pushed to the git and DVC remotes, where the others meet it.

May import: core (it drives the other layers through `dvc exp run`, never by import).
"""
