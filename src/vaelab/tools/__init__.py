"""Commands, not library: `python -m vaelab.tools.artifacts` keeps models/dvc.yaml in
step with params.yaml, `python -m vaelab.tools.profiles NAME` shrinks params.yaml for quick
runs, `python -m vaelab.tools.schema` writes params.schema.json. Nothing in the library
imports them.

May import: every layer.
"""
