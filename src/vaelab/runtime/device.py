"""Choose where tensors live: cuda, then mps, then cpu for `auto`; clear errors otherwise.

On a machine with several GPUs each process claims one that no other vaelab process holds
(vaelab.runtime.gpus), so that `dvc queue start -j N` spreads N experiments over N GPUs with no
setting per worker; on the CPU the processes divide its cores (vaelab.runtime.cores). Also
tunes the host for the many short-lived tensors of training (see keep_freed_memory).
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
from pathlib import Path

import torch

from vaelab.core.errors import ParamsError
from vaelab.runtime.cores import share_cores
from vaelab.runtime.gpus import claim_gpu


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_UP_TO = 1 << 30


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks (up to 1 GiB) for reuse rather than hand them back.

    Each training step frees and reallocates tens of MB of activations. With glibc's
    defaults the large blocks can go back to the kernel, and their pages fault in again on
    the next step (docs/training-speed.md has what that cost a cvae step). Returns False
    where the C library is not glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_UP_TO)
        and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_UP_TO)
    )


def _gpu_keys(count: int) -> list[str]:
    """Names that stay the same whatever CUDA_VISIBLE_DEVICES renumbers: the GPUs' UUIDs."""
    try:
        return [str(torch.cuda.get_device_properties(i).uuid) for i in range(count)]
    except Exception:  # an older torch or a simulated device: the visible index
        return [str(i) for i in range(count)]


_claimed: torch.device | None = None


def _cuda(local_rank: int | None) -> torch.device:
    """Under torchrun, the rank's own GPU; otherwise one claimed for this process."""
    global _claimed
    if local_rank is not None:
        return torch.device("cuda", local_rank)
    count = torch.cuda.device_count()
    if count <= 1:
        return torch.device("cuda")
    if _claimed is None:
        index, _ = claim_gpu(_gpu_keys(count))
        _claimed = torch.device("cuda", index)
        torch.cuda.set_device(_claimed)  # so that a bare "cuda" anywhere means this GPU too
    return _claimed


def resolve_device(name: str, threads: int = 0, local_rank: int | None = None) -> torch.device:
    """The device for `name`; `local_rank` is torchrun's, which picks the GPU instead of a
    claim. On the CPU, `threads` threads, or with 0 this process's share of the cores
    (vaelab.runtime.cores)."""
    keep_freed_memory()
    device = _device(name, local_rank)
    if threads:  # the user's count wins, and fixes the run's bits
        torch.set_num_threads(threads)
    elif device.type == "cpu":
        share_cores()
    return device


def _device(name: str, local_rank: int | None) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return _cuda(local_rank)
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
    return _cuda(local_rank) if name == "cuda" else torch.device(name)


def uses_bf16(amp: bool | str, device: torch.device) -> bool:
    """Whether `amp` (true, false or "auto") trains in bf16 autocast on `device`.

    auto takes bf16 where it has native arithmetic: GPUs that report bf16 support, and CPUs
    with AMX or AVX512-BF16. Elsewhere autocast would emulate bf16 in fp32 registers and
    run slower than plain fp32, so auto keeps fp32."""
    if amp != "auto":
        return bool(amp)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        capabilities = torch.cpu.get_capabilities()
        return bool(capabilities.get("amx_bf16") or capabilities.get("avx512_bf16"))
    return False


def training_precision(amp: bool | str, device: torch.device) -> str:
    """What `amp` trains in on `device`, as the stages print and record it."""
    return "bf16 autocast" if uses_bf16(amp, device) else "fp32"


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({processor(device)})"
    if device.type == "cpu":
        return f"cpu ({processor(device)}, {torch.get_num_threads()} threads)"
    return device.type


def processor(device: torch.device) -> str:
    """What computes on `device`, by name: the GPU's, or the CPU's model name (timings and
    the last digits of results depend on it)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type != "cpu":
        return device.type
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "an unnamed CPU"
