"""reports/literature.md: each literature experiment's test NLL at the literature's k and
at the k of the published figure beside it, the run-to-run spread of a recipe under
several seeds, and where runs cut short were heading."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from vaelab.config.params import PublishedFigure
from vaelab.report import projection
from vaelab.report.run_files import (
    TEST_CURVE,
    VALIDATION_CURVE,
    elbo_curve,
    fmt,
    iwae_at,
    read_json,
    trained_on,
    training_seconds,
)


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
                | {"seed": keys.get("seed", 0), "epochs of the recipe (kept)": "not run yet"}
                | {"published": reference.published if reference else "—"}
            )
            continue
        metrics = read_json(folder / name / "metrics.json")
        iwae, protocol = metrics.get("iwae", {}), metrics.get("protocol", {})
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
                    f"{_nll(iwae_at(metrics, published_k))} (k={published_k})"
                    if published_k
                    else "—"
                ),
                "epochs of the recipe (kept)": "{} of {} ({})".format(
                    protocol.get("epochs_run", "—"),
                    (reference.epochs if reference else None) or keys["epochs"],
                    protocol.get("kept_epoch", "—"),
                ),
                "train s": training_seconds(folder / name),
                "trained on": trained_on(folder / name),
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
    """Per seed group: each seed's best held-out ELBO up to the epoch all of them ran (on
    the validation split, or on the test split for a recipe that holds no images out, as
    the IWAE paper's), and their standard deviation: the run-to-run spread a gap to a
    published figure is judged against."""
    rows = []
    for names in seed_groups(experiments):
        epochs = min(experiments[name]["epochs"] for name in names)
        held_out = "validation" if experiments[names[0]].get("validation") else "test"
        best = {}
        for name in names:
            curve = folder / name / (VALIDATION_CURVE if held_out == "validation" else TEST_CURVE)
            if curve.exists():
                elbo = elbo_curve(curve)
                best[name] = elbo[elbo.index <= epochs].max()
        if len(best) < 2:
            continue
        values = pd.Series(best)
        rows.append(
            {
                "recipe of": names[0],
                "seeds": ", ".join(str(experiments[n].get("seed", 0)) for n in best),
                "up to epoch": epochs,
                "held out": held_out,
                "best held-out ELBO per seed": ", ".join(f"{v:.2f}" for v in values),
                "mean": f"{values.mean():.2f}",
                "sd": f"{values.std(ddof=1):.2f}",
            }
        )
    return pd.DataFrame(rows)


def cut_short(
    experiments: dict[str, dict], references: dict[str, PublishedFigure], folder: Path
) -> pd.DataFrame:
    """Runs whose epochs ran out before their recipe's end (early stopping had not ended
    them, or the recipe runs more epochs than they were given): what they reached, and
    where their held-out curve points."""
    rows = []
    for name, keys in experiments.items():
        reference = references.get(name)
        run = projection.cut_short(keys, folder / name, reference.epochs if reference else None)
        if run is None:
            continue
        rows.append(
            {
                "experiment": name,
                "epochs run": run.epochs_run,
                "held out": run.held_out,
                "best held-out ELBO": f"{run.best:.2f}",
                "its curve's asymptote": fmt(run.asymptote),
                "NLL now": f"{run.nll:.2f}",
                "NLL projected": fmt(run.projected_nll),
            }
        )
    return pd.DataFrame(rows)


def render(
    experiments: dict[str, dict],
    references: dict[str, PublishedFigure],
    *,
    folder: Path,
    link: Path,
    chart: str,
    left_out: list[str] = (),
) -> str:
    """The literature's Markdown page (`link`, to `folder`, is the references' page's)."""
    table = literature_table(experiments, references, folder)
    lines = [
        "# vaelab literature track",
        "",
        "Test negative log-likelihood in nats per image (lower is better): minus the "
        "importance-weighted bound with k samples on the full test split, ± its standard "
        "error across test images, at the literature's k and at the k of the published "
        "figure beside it (a smaller k reads higher). Each model is the epoch its recipe "
        "keeps: the best validation ELBO of those run where it holds training images out, "
        "else the last; `epochs of the recipe (kept)` says how many of the recipe's epochs "
        "ran, and which was kept. `binarized by` says whose Bernoulli draw the images are "
        "(the static papers used Larochelle & Murray's), `trained on` the processor of the "
        "run's last session.",
        "",
        table.to_markdown(index=False),
        "",
    ]
    if left_out:
        lines += [
            f"Not on this page (the report was asked for the others): {', '.join(left_out)}.",
            "",
        ]
    lines += _section(
        "Run-to-run spread",
        "One recipe under several seeds: each seed's best ELBO (single-sample MC, nats) on "
        "its held-out images (the validation split, or the test split where the recipe "
        "holds none out) up to the epoch every seed ran. A gap to a published figure "
        "smaller than a few sd is within what another seed could give.",
        seed_spread(experiments, folder),
    )
    lines += _section(
        "Runs cut short",
        "Runs whose epochs ran out before their recipe's end (early stopping had not "
        "ended them, or the recipe runs more epochs than they were given so far): the "
        "asymptote of a power law a - b t^-c fitted to the best held-out ELBO so far (the "
        "validation split, or the test split where the recipe holds none out) after the KL "
        "warm-up, and the NLL moved by the same gain. A projection, not a measurement: "
        "resume the run with more epochs to measure it.",
        cut_short(experiments, references, folder),
    )
    lines += [f"![every experiment's validation ELBO per epoch]({chart})", ""]
    return "\n".join(lines)


def _section(title: str, intro: str, table: pd.DataFrame) -> list[str]:
    """A titled table with its explanation, or nothing where the table has no row."""
    if not len(table):
        return []
    return [f"## {title}", "", intro, "", table.to_markdown(index=False), ""]
