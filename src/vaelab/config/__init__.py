"""params.yaml: the schema of every section, an experiment's keys checked against its
model's and its objective's knobs, and the JSON Schema built from both for editors.

May import: core, models, objectives.
"""
