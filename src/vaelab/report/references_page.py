"""reports/summary.md: every reference experiment's figures beside its tutorial's
published one, its samples' scores, the chart of every test ELBO per epoch, and the key
pictures, linked relatively so that the page reads well on GitHub.

Nothing here names an experiment: the rows come from params.yaml's `experiments`, the
published figures from its `published` table, the numbers from each experiment's folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vaelab.config.params import PublishedFigure
from vaelab.core.errors import DataError
from vaelab.report.run_files import fmt, iwae_at, read_json, training_seconds

PICTURES = (
    ("latent_scatter.png", "latent scatter"),
    ("manifold_quantiles.png", "manifold over Gaussian quantiles 0.05..0.95"),
    ("epochs.gif", "reconstructions per epoch"),
    ("samples.png", "samples"),
)
# render@EXP's latent paths; whichever the model has
PATHS = (
    ("paths/interpolations_linear.png", "linear interpolations between test images"),
    ("paths/interpolations_spherical.png", "spherical interpolations between test images"),
    ("paths/traversals.png", "a traversal of each latent dimension"),
)
QUALITY = "sample_quality.json"  # samples@EXP's scores; its grids are sampler_grids/NAME.png


def bound(metrics: dict, section: str, value) -> str:
    """A bound's cell: the number, or "not defined" where evaluate says it has none."""
    if value is None and section in metrics.get("not_defined", {}):
        return "not defined"
    return fmt(value)


def lookup(sources: dict, dotted: str, k: int | None = None):
    """`evaluate.elbo.mc_1sample_nats` -> sources["evaluate"]["elbo"]["mc_1sample_nats"].

    With the published figure's `k`, `evaluate.iwae.X` is X of the IWAE figure at that k:
    `iwae` when it was evaluated at k, else the `iwae_at_k` record of k."""
    node = sources
    parts = dotted.split(".")
    if k is not None and parts[:2] == ["evaluate", "iwae"]:
        node = iwae_at(sources["evaluate"], k)
        if node is None:
            raise DataError(
                f"published: {dotted!r} at k={k}: metrics.json has no IWAE figure at k={k} "
                "(add it to the track's evaluate.also_k)"
            )
        parts = parts[2:]
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise DataError(f"published: {dotted!r} names no figure (no {part!r} there)")
        node = node[part]
    return node


def summary_table(
    experiments: dict[str, dict], references: dict[str, PublishedFigure], folder: Path
) -> pd.DataFrame:
    rows = []
    for name, keys in experiments.items():
        sources = {
            "evaluate": read_json(folder / name / "metrics.json"),
            "last_epoch": read_json(folder / name / "train" / "metrics.json"),
        }
        metrics = sources["evaluate"]
        elbo, iwae = metrics.get("elbo", {}), metrics.get("iwae", {})
        k, latent = iwae.get("k"), metrics["latent"]
        reference = references.get(name)
        ours = (
            ", ".join(f"{lookup(sources, path, reference.k):.4g}" for path in reference.ours)
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
                "train s": training_seconds(folder / name),
                "test ELBO, MC (nats)": bound(metrics, "elbo", elbo.get("mc_1sample_nats")),
                "test ELBO, analytic KL": bound(metrics, "elbo", elbo.get("analytic_kl_nats")),
                "IWAE bound": (
                    f"{fmt(iwae.get('bound_nats'))} (k={k})" if k else bound(metrics, "iwae", None)
                ),
                "KL": fmt(elbo.get("kl_nats")),
                "active units": f"{latent['active_units']}/{latent['dims']}",
                "BCE/pixel": fmt(metrics["reconstruction"]["bce_per_pixel"], 4),
                "ours, as the reference measures it": ours,
                "reference's published figure": reference.published if reference else "—",
            }
        )
    return pd.DataFrame(rows)


def sampler_scores(quality: dict) -> dict[str, dict]:
    """The samplers in a sample_quality.json: its entries that hold a distance."""
    return {k: v for k, v in quality.items() if isinstance(v, dict) and "fid" in v}


def samples_table(experiments: dict[str, dict], folder: Path) -> pd.DataFrame:
    """Each experiment's bound beside its samples' Fréchet distance per sampler (with class
    coverage H and mean confidence c), and the floors real data reaches."""
    qualities = {name: read_json(folder / name / QUALITY) for name in experiments}
    samplers = list(dict.fromkeys(s for q in qualities.values() for s in sampler_scores(q)))
    rows = []
    for name, quality in qualities.items():
        metrics = read_json(folder / name / "metrics.json")
        elbo = metrics.get("elbo", {})
        row = {
            "experiment": name,
            "test ELBO, analytic KL": bound(metrics, "elbo", elbo.get("analytic_kl_nats")),
            "samples": quality["samples"],
        }
        for sampler in samplers:
            scores = sampler_scores(quality).get(sampler)
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


def pictures_of(name: str, folder: Path) -> list[tuple[str, str]]:
    """(file, label) of every picture experiment `name` has, in reading order: render's,
    then one grid per sampler that samples@NAME scored, then the latent paths."""
    grids = tuple(
        (f"sampler_grids/{sampler}.png", scores.get("description", f"{sampler} samples"))
        for sampler, scores in sampler_scores(read_json(folder / name / QUALITY)).items()
    )
    return [(f, label) for f, label in PICTURES + grids + PATHS if (folder / name / f).exists()]


def render(
    experiments: dict[str, dict],
    references: dict[str, PublishedFigure],
    *,
    folder: Path,
    link: Path,
    chart: str,
    left_out: list[str] = (),
) -> str:
    """The references' Markdown page; `link` leads from the page to `folder`, `chart` to
    the chart."""
    table = summary_table(experiments, references, folder)
    lines = [
        "# vaelab summary",
        "",
        "Test-set figures in nats per image on the full test split; the ELBO estimators "
        "and the IWAE bound are defined in docs/metrics.md. `—` means not applicable (an "
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
            for file, label in pictures_of(name, folder)
        ]
        lines.append("")
    return "\n".join(lines)
