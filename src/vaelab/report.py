"""reports/summary.md: every experiment's figures beside its reference's published one,
a chart of every experiment's test ELBO per epoch, and the key pictures, linked relatively
so that the page reads well on GitHub.

Nothing here names an experiment: the rows come from params.yaml's `experiments`, the
published figures from its `references`, the numbers from each experiment's folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from vaelab.atomic import atomic_path
from vaelab.errors import DataError
from vaelab.params import ReferenceFigure

PICTURES = (
    ("latent_scatter.png", "latent scatter"),
    ("manifold_quantiles.png", "manifold over Gaussian quantiles 0.05..0.95"),
    ("epochs.gif", "reconstructions per epoch"),
    ("samples.png", "samples"),
)
# samples@EXP's pictures, and render@EXP's latent paths; whichever the model has
SAMPLER_GRIDS = (
    ("sampler_grids/prior.png", "samples from the prior"),
    ("sampler_grids/box.png", "samples from the training codes' bounding box"),
    ("sampler_grids/mixture.png", "samples from a Gaussian mixture fitted on the training codes"),
    ("paths/interpolations_linear.png", "linear interpolations between test images"),
    ("paths/interpolations_spherical.png", "spherical interpolations between test images"),
    ("paths/traversals.png", "a traversal of each latent dimension"),
)
SAMPLERS = ("prior", "box", "mixture")
CURVE = Path("train/plots/metrics/test/elbo_mc.tsv")  # dvclive's per-epoch test ELBO
SECONDS = Path("train/plots/metrics/epoch_seconds.tsv")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun its stage") from None


def _read_tsv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is missing or unreadable ({exc}); rerun its stage") from None


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def lookup(sources: dict, dotted: str):
    """`evaluate.elbo.mc_1sample_nats` -> sources["evaluate"]["elbo"]["mc_1sample_nats"]."""
    node = sources
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise DataError(f"references: {dotted!r} names no figure (no {part!r} there)")
        node = node[part]
    return node


def summary_table(
    experiments: dict[str, dict], references: dict[str, ReferenceFigure], folder: Path
) -> pd.DataFrame:
    rows = []
    for name, keys in experiments.items():
        sources = {
            "evaluate": _read_json(folder / name / "metrics.json"),
            "last_epoch": _read_json(folder / name / "train" / "metrics.json"),
        }
        metrics = sources["evaluate"]
        elbo, iwae = metrics.get("elbo", {}), metrics.get("iwae", {})
        k = iwae.get("k")
        active = next(v for key, v in metrics["latent"].items() if key.startswith("active"))
        reference = references.get(name)
        ours = (
            ", ".join(f"{lookup(sources, path):.4g}" for path in reference.ours)
            if reference
            else "—"
        )
        rows.append(
            {
                "experiment": name,
                "data": keys["data"],
                "model": keys["model"],
                "latent": keys["latent_dim"],
                "epochs": keys["epochs"],
                "train s": _fmt(_read_tsv(folder / name / SECONDS)["epoch_seconds"].sum(), 0),
                "test ELBO, MC (nats)": _fmt(elbo.get("mc_1sample_nats")),
                "test ELBO, analytic KL": _fmt(elbo.get("analytic_kl_nats")),
                "IWAE bound": f"{_fmt(iwae.get(f'bound_k{k}_nats'))} (k={k})" if k else "—",
                "KL": _fmt(elbo.get("kl_nats")),
                "active units": f"{active}/{metrics['latent']['dims']}",
                "BCE/pixel": _fmt(metrics["reconstruction"]["bce_per_pixel"], 4),
                "ours, as the reference measures it": ours,
                "reference's published figure": reference.published if reference else "—",
            }
        )
    return pd.DataFrame(rows)


def samples_table(experiments: dict[str, dict], folder: Path) -> pd.DataFrame:
    """Each experiment's bound beside its samples' Fréchet distance per sampler (with class
    coverage H and mean confidence c), and the floors real data reaches."""
    rows = []
    for name in experiments:
        quality = _read_json(folder / name / "sample_quality.json")
        elbo = _read_json(folder / name / "metrics.json").get("elbo", {})
        row = {
            "experiment": name,
            "test ELBO, analytic KL": _fmt(elbo.get("analytic_kl_nats")),
            "samples": quality["samples"],
        }
        for sampler in SAMPLERS:
            scores = quality.get(sampler)
            row[f"FID {sampler} (H, c)"] = (
                f"{scores['fid']:.2f} ({scores['class_entropy_nats']:.2f}, "
                f"{scores['mean_confidence']:.2f})"
                if scores
                else "—"
            )
        floor = quality["floor"]
        row["floor: test halves, train vs test"] = (
            f"{floor['fid_test_halves']:.2f}, {floor['fid_train_vs_test']:.2f}"
        )
        row["classifier accuracy"] = f"{quality['classifier']['test_accuracy']:.4f}"
        rows.append(row)
    return pd.DataFrame(rows)


def elbo_curves(experiments: dict[str, dict], folder: Path) -> pd.DataFrame:
    """Test ELBO per epoch, one column per variational experiment (an AE has none)."""
    columns = {
        name: _read_tsv(folder / name / CURVE).set_index("step")["elbo_mc"]
        for name in experiments
        if (folder / name / CURVE).exists()
    }
    table = pd.DataFrame(columns)
    table.index.name = "epoch"
    return table


def draw_curves(curves: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for name in curves:
        ax.plot(curves.index, curves[name], marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test ELBO, single-sample MC (nats per image)")
    ax.set_title("Every experiment's test ELBO per epoch (higher is better)", fontsize=10)
    ax.grid(alpha=0.3)
    if len(curves.columns):
        ax.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def render_summary(
    experiments: dict[str, dict],
    references: dict[str, ReferenceFigure],
    folder: Path,
    out: Path,
    chart: str,
) -> str:
    """The summary's Markdown; pictures are linked relative to `out`."""
    table = summary_table(experiments, references, folder)
    link = Path(os.path.relpath(folder, out))
    lines = [
        "# vaelab summary",
        "",
        "Test-set figures in nats per image on the full test split; the ELBO estimators "
        "and the IWAE bound are defined in the README. `—` means not applicable (an "
        "autoencoder has no posterior) or not published.",
        "",
        table.to_markdown(index=False),
        "",
        f"![every experiment's test ELBO per epoch]({chart})",
        "",
        "## Samples",
        "",
        "The Fréchet distance (FID) between each sampler's decoded samples and the test "
        "images, in the penultimate features of a small CNN trained on the experiment's "
        "prepared data (lower is better; the floor is what real data reaches). H is the "
        "entropy of the classifier's label histogram of the samples in nats (ln 10 = 2.30 "
        "when every digit is drawn equally often), c their mean top-class probability. "
        "`—`: the sampler does not apply (an autoencoder has no prior).",
        "",
        samples_table(experiments, folder).to_markdown(index=False),
        "",
    ]
    for name in experiments:
        lines += [f"## {name}", ""]
        lines += [
            f"![{name}: {label}]({(link / name / file).as_posix()})"
            for file, label in PICTURES + SAMPLER_GRIDS
            if (folder / name / file).exists()
        ]
        lines.append("")
    return "\n".join(lines)
