"""Data intake: raw files and their verification (raw/), download from mirrors,
preparation (binarize, pad, limit) and loading a prepared split.

May import: core, models, objectives, config.
"""
