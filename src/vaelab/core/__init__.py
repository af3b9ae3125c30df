"""The ground floor: one-line user errors, atomic and durable file writes, progress
output, typed knobs on pydantic, and the typer setup every stage shares.

May import: nothing of vaelab.
"""
