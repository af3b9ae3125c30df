"""reports/summary.md: every experiment's figures beside its reference's published one,
a chart of every experiment's test ELBO per epoch, and the key pictures, linked relatively
so that the page reads well on GitHub.

Nothing here names an experiment: the rows come from params.yaml's `experiments`, the
published figures from its `published` table, the numbers from each experiment's folder.
The report stage is `write_report`: a track's page and chart, the literature's included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vaelab.config.params import PublishedFigure, load_params
from vaelab.core.errors import DataError
from vaelab.core.files import atomic_path, write_text
from vaelab.core.progress import say

PICTURES = (
    ("latent_scatter.png", "latent scatter"),
    ("manifold_quantiles.png", "manifold over Gaussian quantiles 0.05..0.95"),
    ("epochs.gif", "reconstructions per epoch"),
    ("samples.png", "samples"),
)
# dvclive's per-epoch ELBO: on the test split, or on the validation split when held out
CURVES = (Path("train/plots/metrics/test/elbo_mc.tsv"), Path("train/plots/metrics/val/elbo_mc.tsv"))
# render@EXP's latent paths; whichever the model has
PATHS = (
    ("paths/interpolations_linear.png", "linear interpolations between test images"),
    ("paths/interpolations_spherical.png", "spherical interpolations between test images"),
    ("paths/traversals.png", "a traversal of each latent dimension"),
)
QUALITY = "sample_quality.json"  # samples@EXP's scores; its grids are sampler_grids/NAME.png
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


def _bound(metrics: dict, section: str, value) -> str:
    """A bound's cell: the number, or "not defined" where evaluate says it has none."""
    if value is None and section in metrics.get("not_defined", {}):
        return "not defined"
    return _fmt(value)


def lookup(sources: dict, dotted: str):
    """`evaluate.elbo.mc_1sample_nats` -> sources["evaluate"]["elbo"]["mc_1sample_nats"]."""
    node = sources
    for part in dotted.split("."):
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
                "test ELBO, MC (nats)": _bound(metrics, "elbo", elbo.get("mc_1sample_nats")),
                "test ELBO, analytic KL": _bound(metrics, "elbo", elbo.get("analytic_kl_nats")),
                "IWAE bound": (
                    f"{_fmt(iwae.get(f'bound_k{k}_nats'))} (k={k})"
                    if k
                    else _bound(metrics, "iwae", None)
                ),
                "KL": _fmt(elbo.get("kl_nats")),
                "active units": f"{active}/{metrics['latent']['dims']}",
                "BCE/pixel": _fmt(metrics["reconstruction"]["bce_per_pixel"], 4),
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
    qualities = {name: _read_json(folder / name / QUALITY) for name in experiments}
    samplers = list(dict.fromkeys(s for q in qualities.values() for s in sampler_scores(q)))
    rows = []
    for name, quality in qualities.items():
        metrics = _read_json(folder / name / "metrics.json")
        elbo = metrics.get("elbo", {})
        row = {
            "experiment": name,
            "test ELBO, analytic KL": _bound(metrics, "elbo", elbo.get("analytic_kl_nats")),
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
        for sampler, scores in sampler_scores(_read_json(folder / name / QUALITY)).items()
    )
    return [(f, label) for f, label in PICTURES + grids + PATHS if (folder / name / f).exists()]


def elbo_curves(experiments: dict[str, dict], folder: Path) -> pd.DataFrame:
    """ELBO per epoch, one column per variational experiment (an AE has none)."""
    columns = {
        name: _read_tsv(folder / name / curve).set_index("step")["elbo_mc"]
        for name in experiments
        for curve in CURVES
        if (folder / name / curve).exists()
    }
    table = pd.DataFrame(columns)
    table.index.name = "epoch"
    return table


def draw_curves(curves: pd.DataFrame, path: Path, *, track: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for name in curves:
        ax.plot(curves.index, curves[name], marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    split = "test" if track == "references" else "validation"
    ax.set_ylabel(f"{split} ELBO, single-sample MC (nats per image)")
    ax.set_title(f"Every experiment's {split} ELBO per epoch (higher is better)", fontsize=10)
    ax.grid(alpha=0.3)
    if len(curves.columns):
        ax.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)


def _nll(entry: dict | None) -> str:
    return f"{entry['nll_nats']:.2f} ± {entry['stderr_nats']:.2f}" if entry else "—"


def literature_table(
    experiments: dict[str, dict], references: dict[str, PublishedFigure], folder: Path
) -> pd.DataFrame:
    """Each NLL at the literature's k and at the k of the figure it is set beside, with its
    standard error, the data it used, its seed, epochs and seconds, beside the figure."""
    rows = []
    for name, keys in experiments.items():
        reference = references.get(name)
        if not (folder / name / "metrics.json").exists():  # `dvc repro -s` of the report alone
            rows.append(
                {"experiment": name, "model": keys["model"], "objective": keys["objective"]}
                | {"seed": keys.get("seed", 0), "epochs (kept)": "not run yet"}
                | {"published": reference.published if reference else "—"}
            )
            continue
        metrics = _read_json(folder / name / "metrics.json")
        iwae, protocol = metrics.get("iwae", {}), metrics.get("protocol", {})
        at_k = metrics.get("iwae_at_k", {})
        published_k = reference.k if reference and reference.k else None
        rows.append(
            {
                "experiment": name,
                "model": keys["model"] + (f" + {keys['prior']} prior" if "prior" in keys else ""),
                "objective": keys["objective"],
                "binarized by": protocol.get("binarized_by", protocol.get("binarization", "—")),
                "seed": keys.get("seed", 0),
                f"NLL (nats), k={iwae.get('k', '—')}": _nll(iwae),
                "NLL at the published k": (
                    f"{_nll(at_k.get(str(published_k)))} (k={published_k})" if published_k else "—"
                ),
                "epochs (kept)": "{} ({})".format(
                    protocol.get("epochs_run", "—"), protocol.get("kept_epoch", "—")
                ),
                "train s": _fmt(_read_tsv(folder / name / SECONDS)["epoch_seconds"].sum(), 0),
                "published": reference.published if reference else "—",
            }
        )
    return pd.DataFrame(rows).fillna("—")


def seed_groups(experiments: dict[str, dict]) -> list[list[str]]:
    """Experiments that are one recipe under several seeds: every key equal but the seed
    and the epochs (a shorter run of the same recipe is the same run cut early)."""
    groups: dict[str, list[str]] = {}
    for name, keys in experiments.items():
        recipe = {k: v for k, v in keys.items() if k not in ("seed", "epochs")}
        groups.setdefault(json.dumps(recipe, sort_keys=True, default=str), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def seed_spread(experiments: dict[str, dict], folder: Path) -> pd.DataFrame:
    """Per seed group: each seed's best validation ELBO up to the epoch all of them ran, and
    their standard deviation: the run-to-run spread a gap to a published figure is
    judged against."""
    rows = []
    for names in seed_groups(experiments):
        epochs = min(experiments[name]["epochs"] for name in names)
        best = {}
        for name in names:
            curve = folder / name / CURVES[1]
            if curve.exists():
                elbo = _read_tsv(curve).set_index("step")["elbo_mc"]
                best[name] = elbo[elbo.index <= epochs].max()
        if len(best) < 2:
            continue
        values = pd.Series(best)
        rows.append(
            {
                "recipe of": names[0],
                "seeds": ", ".join(str(experiments[n].get("seed", 0)) for n in best),
                "up to epoch": epochs,
                "best validation ELBO per seed": ", ".join(f"{v:.2f}" for v in values),
                "mean": f"{values.mean():.2f}",
                "sd": f"{values.std(ddof=1):.2f}",
            }
        )
    return pd.DataFrame(rows)


def power_law(epoch, asymptote, scale, rate):
    """A learning curve's usual shape: it approaches its asymptote as a power of the epoch."""
    return asymptote - scale * np.power(epoch, -rate)


def projection(curve: pd.Series, start: int) -> float | None:
    """The validation ELBO a run's curve is heading for: the asymptote of a power law fitted
    to its epochs from `start` on (after a KL warm-up, whose rising weight bends the curve);
    None when too few epochs are left to fit or the fit does not converge."""
    from scipy.optimize import curve_fit

    tail = curve[curve.index >= start].cummax()  # the best so far, as model selection keeps
    if len(tail) < 20:
        return None
    epochs, values = tail.index.to_numpy(dtype=float), tail.to_numpy(dtype=float)
    guess = (values[-1] + 1.0, values[-1] - values[0] + 1.0, 0.5)
    try:
        (asymptote, _, rate), _ = curve_fit(power_law, epochs, values, p0=guess, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return float(asymptote) if rate > 0 else None


def cut_short(
    experiments: dict[str, dict], references: dict[str, PublishedFigure], folder: Path
) -> pd.DataFrame:
    """Runs that early stopping would have ended but the epochs ran out first: what they
    reached, and where their validation curve points."""
    rows = []
    for name, keys in experiments.items():
        curve_path = folder / name / CURVES[1]
        if not keys.get("patience") or not (folder / name / "metrics.json").exists():
            continue
        metrics = _read_json(folder / name / "metrics.json")
        protocol, iwae = metrics.get("protocol", {}), metrics.get("iwae")
        if not iwae or not curve_path.exists():
            continue
        if protocol.get("epochs_run", 0) < keys["epochs"]:
            continue  # early stopping ended it: it finished as its recipe does
        curve = _read_tsv(curve_path).set_index("step")["elbo_mc"]
        asymptote = projection(curve, start=keys.get("warmup_epochs", 0) + 1)
        best = curve.max()
        rows.append(
            {
                "experiment": name,
                "epochs run": protocol["epochs_run"],
                "best validation ELBO": f"{best:.2f}",
                "its curve's asymptote": _fmt(asymptote),
                "NLL now": f"{iwae['nll_nats']:.2f}",
                "NLL projected": _fmt(iwae["nll_nats"] - (asymptote - best) if asymptote else None),
            }
        )
    return pd.DataFrame(rows)


def render_literature(
    experiments: dict[str, dict],
    references: dict[str, PublishedFigure],
    folder: Path,
    chart: str,
    left_out: list[str] = (),
) -> str:
    table = literature_table(experiments, references, folder)
    lines = [
        "# vaelab literature track",
        "",
        "Test negative log-likelihood in nats per image (lower is better): minus the "
        "importance-weighted bound with k samples on the full test split, ± its standard "
        "error across test images, at the literature's k and at the k of the published "
        "figure beside it (a smaller k reads higher). Each model is the epoch with the best "
        "validation ELBO of those run (the last 10,000 training images held out); `epochs "
        "(kept)` says how many ran. `binarized by` says whose Bernoulli draw the images are: "
        "the papers used Larochelle & Murray's.",
        "",
        table.to_markdown(index=False),
        "",
    ]
    if left_out:
        lines += [
            f"Not on this page (the report was asked for the others): {', '.join(left_out)}.",
            "",
        ]
    spread = seed_spread(experiments, folder)
    if len(spread):
        lines += [
            "## Run-to-run spread",
            "",
            "One recipe under several seeds: each seed's best validation ELBO (single-sample "
            "MC, nats) up to the epoch every seed ran. A gap to a published figure smaller "
            "than a few sd is within what another seed could give.",
            "",
            spread.to_markdown(index=False),
            "",
        ]
    unfinished = cut_short(experiments, references, folder)
    if len(unfinished):
        lines += [
            "## Runs cut short",
            "",
            "Runs whose epochs ran out while their validation ELBO still improved (early "
            "stopping had not ended them): the asymptote of a power law a - b t^-c fitted to "
            "the best validation ELBO so far after the KL warm-up, and the NLL moved by the "
            "same gain. A projection, not a measurement: resume the run with more epochs to "
            "measure it.",
            "",
            unfinished.to_markdown(index=False),
            "",
        ]
    lines += [f"![every experiment's validation ELBO per epoch]({chart})", ""]
    return "\n".join(lines)


def render_summary(
    experiments: dict[str, dict],
    references: dict[str, PublishedFigure],
    *,
    folder: Path,
    summary: Path,
    chart_path: Path,
    track: str,
    left_out: list[str] = (),
) -> str:
    """A track's Markdown page; pictures are linked relative to the page."""
    link = Path(os.path.relpath(folder, summary.parent))
    chart = Path(os.path.relpath(chart_path, summary.parent)).as_posix()
    if track != "references":
        return render_literature(experiments, references, folder, chart, left_out)
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


def write_report(
    *,
    params: Path,
    experiments: Path,
    summary: Path,
    chart: Path,
    track: str,
    only: list[str] | None = None,
) -> None:
    """report: the page `summary` and the per-epoch ELBO chart `chart` of every experiment
    of `track` in params (or of `only` these), from the folder `experiments` that holds one
    folder per experiment."""
    config = load_params(params)
    names = only or list(config.track(track).experiments)
    chosen = {name: config.experiment_keys(name, track=track) for name in names}
    draw_curves(elbo_curves(chosen, experiments), chart, track=track)
    page = render_summary(
        chosen,
        config.published,
        folder=experiments,
        summary=summary,
        chart_path=chart,
        track=track,
        left_out=[name for name in config.track(track).experiments if name not in chosen],
    )
    write_text(summary, page)
    say(f"report: {len(chosen)} experiments -> {summary}, {chart}")
