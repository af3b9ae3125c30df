"""Where a literature run that its epochs cut short was heading: the asymptote of a power
law fitted to its validation curve, and its NLL moved by the same gain. Computed here,
from the run's files, and only shown by the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vaelab.report.run_files import TEST_CURVE, VALIDATION_CURVE, elbo_curve, read_json


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


@dataclass(frozen=True)
class CutShort:
    """A run whose epochs ran out before its recipe's end: early stopping would have ended
    it later, or the recipe runs more epochs than the run was given."""

    epochs_run: int
    held_out: str  # the curve projected: "validation", or "test" where none is held out
    best: float  # its best ELBO on that curve
    asymptote: float | None  # where its curve points; None when no fit converged
    nll: float  # its test NLL now

    @property
    def projected_nll(self) -> float | None:
        return self.nll - (self.asymptote - self.best) if self.asymptote else None


def cut_short(keys: dict, run: Path, recipe_epochs: int | None = None) -> CutShort | None:
    """The projection for the experiment of `keys` in folder `run`, or None when it is not
    a run cut short: not evaluated, ended by early stopping, or run to its recipe's
    `recipe_epochs` (the published figure's, where the experiment runs fewer)."""
    if not (run / "metrics.json").exists():
        return None
    metrics = read_json(run / "metrics.json")
    protocol, iwae = metrics.get("protocol", {}), metrics.get("iwae")
    epochs_run = protocol.get("epochs_run", 0)
    stopped_by_epochs = bool(keys.get("patience")) and epochs_run >= keys["epochs"]
    short_of_recipe = bool(recipe_epochs) and epochs_run < recipe_epochs
    held_out = "validation" if (run / VALIDATION_CURVE).exists() else "test"
    curve_path = run / (VALIDATION_CURVE if held_out == "validation" else TEST_CURVE)
    if not iwae or not curve_path.exists() or not (stopped_by_epochs or short_of_recipe):
        return None
    curve = elbo_curve(curve_path)
    asymptote = projection(curve, start=keys.get("warmup_epochs", 0) + 1)
    return CutShort(epochs_run, held_out, curve.max(), asymptote, iwae["nll_nats"])
