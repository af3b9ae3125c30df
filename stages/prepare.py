"""prepare@NAME: raw IDX to scaled, binarized, padded tensors in data/prepared/NAME/."""

from pathlib import Path

import typer

from vaelab.cli import ParamsFile, stage_app, user_errors
from vaelab.manifest import DEFAULT_MANIFEST, load_manifest
from vaelab.params import load_params
from vaelab.prepare import prepare
from vaelab.progress import say

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: str = typer.Argument(..., help="A key of data.prepared in params."),
    params: ParamsFile = Path("params.yaml"),
    manifest: Path = typer.Option(DEFAULT_MANIFEST, help="Expected checksums and shapes."),
    raw: Path = typer.Option(Path("data/raw"), help="Folder holding data/raw/DATASET."),
    out: Path = typer.Option(None, help="Output folder [default: data/prepared/NAME]."),
) -> None:
    """Prepare one (dataset, transform) pair named in data.prepared."""
    spec = load_params(params).prepared(name)
    say(f"prepare {name}: {spec.dataset}, binarize={spec.binarize}, {spec.size}x{spec.size}")
    prepare(
        raw / spec.dataset,
        load_manifest(spec.dataset, manifest),
        spec,
        out or Path("data/prepared") / name,
    )


if __name__ == "__main__":
    app()
