"""The chart of every experiment's ELBO per epoch, one line each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vaelab.core.files import atomic_path


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
