"""embed@EXP: encode the test split -> OUT/latents.csv and a labelled scatter."""

from pathlib import Path

from vaelab.core.cli import (
    DataDir,
    Experiment,
    Limit,
    ModelFile,
    OutDir,
    ParamsFile,
    TrackName,
    stage_app,
    user_errors,
)
from vaelab.pictures.embedding import embed_test_split

app = stage_app(__doc__)


@app.command()
@user_errors
def main(
    name: Experiment,
    model: ModelFile,
    data: DataDir,
    out: OutDir,
    params: ParamsFile = Path("params.yaml"),
    track: TrackName = "references",
    limit: Limit = None,
) -> None:
    """Write the posterior mean and log-variance of every test image, and their scatter."""
    embed_test_split(name, params=params, model=model, data=data, out=out, track=track, limit=limit)


if __name__ == "__main__":
    app()
