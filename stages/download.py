"""download@DATASET: fetch and verify the four raw IDX files into data/raw/DATASET/."""

from pathlib import Path

import typer

from vaelab.cli import ParamsFile, stage_app, user_errors
from vaelab.download import download_dataset, mirrors_for
from vaelab.errors import ParamsError
from vaelab.manifest import DEFAULT_MANIFEST, load_manifest
from vaelab.params import load_params

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    dataset: str = typer.Argument(..., help="Dataset name, a key of data.mirrors in params."),
    params: ParamsFile = Path("params.yaml"),
    manifest: Path = typer.Option(DEFAULT_MANIFEST, help="Expected checksums and shapes."),
    out: Path = typer.Option(None, help="Output folder [default: data/raw/DATASET]."),
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
        out or Path("data/raw") / dataset,
    )


if __name__ == "__main__":
    app()
