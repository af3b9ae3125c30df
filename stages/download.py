"""download@DATASET: fetch and verify the four raw IDX files into OUT/."""

from pathlib import Path
from typing import Annotated

import typer

from vaelab.config.params import load_params
from vaelab.core.cli import OutDir, ParamsFile, stage_app, user_errors
from vaelab.core.errors import ParamsError
from vaelab.data.download import download_dataset, mirrors_for
from vaelab.data.raw.manifest import DEFAULT_MANIFEST, load_manifest

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
    config = load_params(params)
    if dataset not in config.data.mirrors:
        raise ParamsError(
            f"dataset {dataset!r} is not in data.mirrors; allowed: {', '.join(config.data.mirrors)}"
        )
    download_dataset(
        load_manifest(dataset, manifest),
        mirrors_for(dataset, config.data.mirrors[dataset]),
        out,
    )


if __name__ == "__main__":
    app()
