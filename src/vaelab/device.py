"""Choose where tensors live: cuda, then mps, then cpu for `auto`; clear errors otherwise."""

from __future__ import annotations

import torch

from vaelab.errors import ParamsError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str, threads: int = 0) -> torch.device:
    if threads:
        torch.set_num_threads(threads)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        raise ParamsError(
            f"device = 'cuda' but no CUDA GPU is visible to torch {torch.__version__}"
            f" ({build}); use device: auto or cpu"
        )
    if name == "mps" and not _mps_available():
        raise ParamsError(
            "device = 'mps' but Apple's Metal backend is not available here; "
            "use device: auto or cpu"
        )
    if name not in ("cpu", "cuda", "mps"):
        raise ParamsError(f"device = {name!r} is invalid: allowed values are auto, cpu, cuda, mps")
    return torch.device(name)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
