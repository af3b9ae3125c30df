"""`vaelab`: the one command of the project's tools (the stages are dvc.yaml's to run).

    vaelab --help
    vaelab profile tiny               # rewrite params.yaml for a quick run
    vaelab review main                # review.md and review.html of the workspace against main
    vaelab schema --check             # params.schema.json in step with the params' classes
    vaelab artifacts --check          # models/dvc.yaml in step with params.yaml
    vaelab locks                      # dvc.lock holds today's code and params
    vaelab checkpoint adopt PATH      # resume a checkpoint set aside for changed code
    vaelab sweep submit NAME -S ...   # a grid as a SLURM job array (status, resume, collect)

Each command is the `main` of its module, with that module's --help and one-line errors.
"""

from __future__ import annotations

import typer

from vaelab.report import review
from vaelab.tools import artifacts, checkpoint, locks, profiles, schema, sweep

app = typer.Typer(
    help=__doc__.split("\n\n")[0],
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)
for name, module in {
    "profile": profiles,
    "review": review,
    "schema": schema,
    "artifacts": artifacts,
    "locks": locks,
}.items():
    app.command(name, help=module.main.__doc__)(module.main)
app.add_typer(checkpoint.app, name="checkpoint", help="Checkpoints set aside by a training.")
app.add_typer(sweep.app, name="sweep", help="Sweeps on a SLURM cluster.")
