"""params.schema.json, the JSON Schema that editors check params.yaml against (its first
line names it), regenerated from the code: `vaelab schema` writes it,
`--check` fails when the committed file differs. Rerun it after changing a section, a
model's Config, an objective's Knobs or a registry (vaelab.tools.params_schema)."""

from __future__ import annotations

from pathlib import Path

import typer

from vaelab.core.cli import user_errors
from vaelab.core.errors import VaelabError
from vaelab.core.files import write_text
from vaelab.tools.params_schema import SCHEMA_FILE, render_schema


@user_errors
def main(
    out: Path = typer.Option(Path(SCHEMA_FILE), help="The schema file to write."),
    check: bool = typer.Option(False, "--check", help="Only report whether it is up to date."),
) -> None:
    """Write (or with --check, verify) the JSON Schema of params.yaml."""
    wanted = render_schema()
    try:
        current = out.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if check:
        if current != wanted:
            state = "missing" if current is None else "out of date"
            raise VaelabError(f"{out} is {state}: run `vaelab schema` and commit it")
        print(f"{out}: up to date")
        return
    if current == wanted:
        print(f"{out}: up to date, unchanged")
        return
    write_text(out, wanted)
    print(f"{out}: written")
