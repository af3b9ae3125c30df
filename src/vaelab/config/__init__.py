"""params.yaml: the schema of every section, and an experiment's keys checked against its
model's and its objective's knobs. (The JSON Schema built from both for editors is a
tool's: vaelab.tools.params_schema.)

May import: core, models, objectives.
"""
