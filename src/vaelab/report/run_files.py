"""What the report reads from an experiment's folder: its JSON and TSV files, the seconds
it trained and its per-epoch ELBO, each a one-line error when missing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from vaelab.core.errors import DataError

# dvclive's per-epoch ELBO: on the test split, or on the validation split when held out
CURVES = (Path("train/plots/metrics/test/elbo_mc.tsv"), Path("train/plots/metrics/val/elbo_mc.tsv"))
TEST_CURVE, VALIDATION_CURVE = CURVES
SECONDS = Path("train/plots/metrics/epoch_seconds.tsv")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun its stage") from None


def read_tsv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun its stage") from None


def iwae_at(metrics: dict, k: int) -> dict | None:
    """The IWAE figure of an experiment's metrics.json at `k` (`nll_nats`, `stderr_nats`,
    and `bound_nats` where it is the main one): `iwae` when it is at that k, else the
    `iwae_at_k` record of that k; None where the bound was not computed at k."""
    main = metrics.get("iwae") or {}
    if main.get("k") == k:
        return main
    return next((r for r in metrics.get("iwae_at_k", []) if r.get("k") == k), None)


def fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def training_seconds(run: Path) -> str:
    """The seconds the experiment in folder `run` trained, summed over its epochs."""
    return fmt(read_tsv(run / SECONDS)["epoch_seconds"].sum(), 0)


def trained_on(run: Path) -> str:
    """The processor the experiment in folder `run` trained on (in its last session), as
    its training log's params record it; runs logged before vaelab recorded it say "—"."""
    path = run / "train" / "params.yaml"
    try:
        logged = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun its stage") from None
    return logged.get("hardware", "—")


def elbo_curve(path: Path) -> pd.Series:
    """A dvclive ELBO table as a series indexed by epoch."""
    return read_tsv(path).set_index("step")["elbo_mc"]


def elbo_curves(experiments: dict[str, dict], folder: Path) -> pd.DataFrame:
    """ELBO per epoch, one column per variational experiment (an AE has none)."""
    columns = {
        name: elbo_curve(folder / name / curve)
        for name in experiments
        for curve in CURVES
        if (folder / name / curve).exists()
    }
    table = pd.DataFrame(columns)
    table.index.name = "epoch"
    return table
