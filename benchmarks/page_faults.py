"""Page faults per cvae training step, with glibc's defaults and with kept memory.

    python -m benchmarks.page_faults [--steps 10]

Each mode runs in a fresh process: warm-up steps, then the minor page faults per step
over `--steps` more. A step frees and reallocates tens of MB of activations; with glibc's
defaults the large blocks can go back to the kernel and fault in again on the next step,
which `vaelab.runtime.device.keep_freed_memory` prevents. The counts depend on the machine's
allocator and kernel, which is why this is a benchmark and not a test.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import typer

STEPS = """
import resource, sys, torch
from vaelab.runtime.device import keep_freed_memory
from vaelab.models.registry import build_model
from vaelab.objectives.losses import mc_elbo
if sys.argv[1] == "kept":
    assert keep_freed_memory()
steps = int(sys.argv[2])
torch.manual_seed(0)
model = build_model("cvae", 28, latent_dim=2)
optimizer = torch.optim.Adam(model.parameters())
x = (torch.rand(32, 1, 28, 28) > 0.5).float()
def step():
    loss = mc_elbo(model, x).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(steps):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps)
"""


def faults_per_step(mode: str, steps: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode, str(steps)], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def main(steps: int = typer.Option(10, min=1, help="Measured steps after 10 warm-up steps.")):
    if platform.libc_ver()[0] != "glibc":
        raise SystemExit("keep_freed_memory tunes glibc only; nothing to measure here")
    for mode in ("default", "kept"):
        print(f"{mode:8s}: {faults_per_step(mode, steps):8.0f} minor page faults per step")


if __name__ == "__main__":
    typer.run(main)
