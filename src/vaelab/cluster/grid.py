"""A sweep's points: the grid that `dvc exp run --queue -S` would queue, by DVC's own code."""

from __future__ import annotations

from vaelab.core.errors import VaelabError

DEFAULT_PARAMS_FILE = "params.yaml"


def expand(sets: list[str]) -> list[list[str]]:
    """Every combination of the `-S` values in `sets`, in DVC's order: one list of `-S`
    arguments per point (`experiments.cvae.latent_dim=2,8` is two points)."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps

    if not sets:
        raise VaelabError("a sweep needs at least one -S KEY=VALUES (for example -S 'a.b=1,2')")
    try:
        sweeps = get_hydra_sweeps(to_path_overrides(sets))
    except Exception as exc:  # DVC's and hydra's parse errors share no base class
        reason = str(exc).splitlines()[0]
        raise VaelabError(f"-S {' '.join(sets)} is not a grid DVC can expand: {reason}") from None
    return [
        [
            value if path == DEFAULT_PARAMS_FILE else f"{path}:{value}"
            for path, values in point.items()
            for value in values
        ]
        for point in sweeps
    ]
