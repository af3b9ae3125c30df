"""download@DATASET: fetch and verify the four raw IDX files into OUT/."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.core.cli import OutDir, ParamsFile, stage_app, user_errors
from vaelab.data.download import download_from_params
from vaelab.data.raw.manifest import DEFAULT_MANIFEST

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    dataset: Annotated[str, typer.Argument(help="Dataset name, a key of data.mirrors in params.")],
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    manifest: Path = typer.Option(DEFAULT_MANIFEST, help="Expected checksums and shapes."),
) -> None:
    """Download DATASET from the first mirror whose files verify (VAELAB_MIRROR overrides)."""
    download_from_params(dataset, params=params, manifest=manifest, out=out)


if __name__ == "__main__":
    app()
