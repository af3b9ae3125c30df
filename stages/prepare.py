"""prepare@NAME: raw IDX to scaled, binarized, padded tensors in OUT/."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import OutDir, ParamsFile, stage_app, user_errors
from vaelab.data.prepare import prepare_from_params
from vaelab.data.raw.manifest import DEFAULT_MANIFEST

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Annotated[
        str, typer.Argument(help="A key of data.prepared (or literature.prepared) in params.")
    ],
    raw: Annotated[Path, typer.Option(help="The dataset's verified raw files.")],
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    manifest: Path = typer.Option(DEFAULT_MANIFEST, help="Expected checksums and shapes."),
) -> None:
    """Prepare one (dataset, transform) pair named in data.prepared or literature.prepared."""
    prepare_from_params(name, params=params, manifest=manifest, raw=raw, out=out)


if __name__ == "__main__":
    app()
