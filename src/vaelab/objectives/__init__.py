"""The losses and bounds, one function each, shared by training and evaluation,
and the registry of training objectives.

May import: core, models.
"""
