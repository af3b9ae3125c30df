"""Where a literature run that its epochs cut short was heading: the asymptote of a power
law fitted to its validation curve, and its NLL moved by the same gain. Computed here,
from the run's files, and only shown by the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vaelab.report.run_files import VALIDATION_CURVE, elbo_curve, read_json


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
    """A run that early stopping would have ended but whose epochs ran out first."""

    epochs_run: int
    best: float  # its best validation ELBO
    asymptote: float | None  # where its curve points; None when no fit converged
    nll: float  # its test NLL now

    @property
    def projected_nll(self) -> float | None:
        return self.nll - (self.asymptote - self.best) if self.asymptote else None


def cut_short(keys: dict, run: Path) -> CutShort | None:
    """The projection for the experiment of `keys` in folder `run`, or None when it is not
    a run cut short (no patience, not evaluated, or early stopping ended it)."""
    curve_path = run / VALIDATION_CURVE
    if not keys.get("patience") or not (run / "metrics.json").exists():
        return None
    metrics = read_json(run / "metrics.json")
    protocol, iwae = metrics.get("protocol", {}), metrics.get("iwae")
    if not iwae or not curve_path.exists():
        return None
    if protocol.get("epochs_run", 0) < keys["epochs"]:
        return None  # early stopping ended it: it finished as its recipe does
    curve = elbo_curve(curve_path)
    asymptote = projection(curve, start=keys.get("warmup_epochs", 0) + 1)
    return CutShort(protocol["epochs_run"], curve.max(), asymptote, iwae["nll_nats"])
