"""reports/summary.md: one table of every experiment beside the seeds' published figures,
then the key pictures, linked relatively so that it reads well on GitHub."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from vaelab.errors import DataError

# What each seed printed, and which of our numbers measures the same thing.
SEED_FIGURES = {
    "cvae": (
        "test ELBO -156.50 at epoch 10 (seeds 000/004, single-sample MC)",
        lambda m, t: f"{m['elbo']['mc_1sample_nats']:.2f}",
    ),
    "vae_mlp": ("none printed (seed 001)", lambda m, t: f"test loss {t['test']['loss']:.2f}"),
    "vae_mlp_seed002": (
        "loss 153.22, val 153.53 at epoch 5 (seed 002, KL weighted 0.1)",
        lambda m, t: f"{t['train']['loss']:.2f}, val {t['test']['loss']:.2f}",
    ),
    "ae_conv": (
        "val loss 0.2518 at epoch 5 (seed 003, BCE per pixel)",
        lambda m, t: f"{m['reconstruction']['bce_per_pixel']:.4f}",
    ),
    "vae_conv": (
        "train loss 131.15 = 125.90 + KL 5.25 at epoch 5 (seed 003)",
        lambda m, t: f"{t['train']['loss']:.2f}, KL {t['train']['kl']:.2f}",
    ),
}
PICTURES = (
    ("latent_scatter.png", "latent scatter"),
    ("manifold_quantiles.png", "manifold over Gaussian quantiles 0.05..0.95"),
    ("epochs.gif", "reconstructions per epoch"),
    ("samples.png", "samples"),
)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun its stage") from None


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def training_seconds(reports: Path, name: str) -> float:
    path = reports / name / "train" / "plots" / "metrics" / "epoch_seconds.tsv"
    try:
        return float(pd.read_csv(path, sep="\t")["epoch_seconds"].sum())
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun train@{name}") from None


def summary_table(experiments: dict, reports: Path) -> pd.DataFrame:
    rows = []
    for name, spec in experiments.items():
        metrics = _read_json(reports / name / "metrics.json")
        train = _read_json(reports / name / "train" / "metrics.json")
        elbo, iwae = metrics.get("elbo", {}), metrics.get("iwae", {})
        k = iwae.get("k")
        seed_figure, ours = SEED_FIGURES.get(name, ("—", lambda m, t: "—"))
        active = next(v for key, v in metrics["latent"].items() if key.startswith("active"))
        rows.append(
            {
                "experiment": name,
                "dataset": spec["dataset"],
                "model": spec["model"],
                "latent": spec["latent_dim"],
                "epochs": spec["epochs"],
                "train s": _fmt(training_seconds(reports, name), 0),
                "test ELBO, MC (nats)": _fmt(elbo.get("mc_1sample_nats")),
                "test ELBO, analytic KL": _fmt(elbo.get("analytic_kl_nats")),
                "IWAE bound": f"{_fmt(iwae.get(f'bound_k{k}_nats'))} (k={k})" if k else "—",
                "KL": _fmt(elbo.get("kl_nats")),
                "active units": f"{active}/{metrics['latent']['dims']}",
                "BCE/pixel": _fmt(metrics["reconstruction"]["bce_per_pixel"], 4),
                "ours, as the seed measures it": ours(metrics, train),
                "seed's published figure": seed_figure,
            }
        )
    return pd.DataFrame(rows)


def render_summary(experiments: dict, reports: Path) -> str:
    table = summary_table(experiments, reports)
    lines = [
        "# vaelab summary",
        "",
        "Test-set figures in nats per image on the full test split; the ELBO estimators "
        "and the IWAE bound are defined in the README. `—` means not applicable (an "
        "autoencoder has no posterior).",
        "",
        table.to_markdown(index=False),
        "",
    ]
    for name in experiments:
        lines += [f"## {name}", ""]
        lines += [
            f"![{name}: {label}]({name}/{file})"
            for file, label in PICTURES
            if (reports / name / file).exists()
        ]
        lines.append("")
    return "\n".join(lines)
