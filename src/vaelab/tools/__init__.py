"""Commands, not library: `vaelab artifacts` keeps models/dvc.yaml in
step with params.yaml, `vaelab profile NAME` shrinks params.yaml for quick
runs, `vaelab schema` writes params.schema.json. Nothing in the library
imports them.

May import: every layer.
"""
