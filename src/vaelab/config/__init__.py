"""params.yaml: the schema of every section, and an experiment's keys checked against
its model's and its objective's knobs.

May import: core, models, objectives.
"""
