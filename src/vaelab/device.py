"""Choose where tensors live: cuda, then mps, then cpu for `auto`; clear errors otherwise.

Also tunes the host for the many short-lived tensors of training (see keep_freed_memory).
"""

from __future__ import annotations

import ctypes
import platform

import torch

from vaelab.errors import ParamsError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_UP_TO = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks (up to 1 GiB) for reuse rather than hand them back.

    Each training step frees and reallocates tens of MB of activations. With glibc's
    defaults the large blocks can go back to the kernel, and their pages fault in again on
    the next step. `python -m benchmarks.page_faults` counts them per cvae step, with
    and without this setting. Returns False where the C library is not glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_UP_TO)
        and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO)
    )


def resolve_device(name: str, threads: int = 0) -> torch.device:
    keep_freed_memory()
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
