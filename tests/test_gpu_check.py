"""benchmarks/gpu_check.py's CPU fallback: on this machine, without CUDA, it must still run
and say what it skipped; its GPU ways run on a CUDA machine only."""

import pytest
import torch
from conftest import ROOT, benchmark_module

from vaelab.config.experiments import experiments_of
from vaelab.config.params import load_params
from vaelab.data.splits import load_split


def test_gpu_check_runs_its_cpu_way_without_cuda(prepared_data, monkeypatch, capsys):
    gpu_check = benchmark_module("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(ROOT)
    gpu_check.main(steps=3, only="cvae", data=prepared_data / "binary28", rtol=2e-3)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no CUDA device: only the CPU way runs")
    name, way, rate, unit = out[1].split()[:4]
    assert (name, way, unit) == ("cvae", "cpu", "steps/s") and float(rate) > 0
    # the whole recipe: its epochs of steps over the whole training split, at that rate
    spec = experiments_of(load_params(ROOT / "params.yaml"), track="references")["cvae"]
    images = len(load_split(prepared_data / "binary28", "train"))
    steps = -(-images // spec.batch_size) * spec.epochs
    hours = float(out[1].split("whole recipe ")[1].split()[0])
    assert hours == pytest.approx(steps / float(rate) / 3600, rel=0.01)
    assert len(out[1].split("train loss per epoch ")[1].split(", ")) == 2
    assert len(out) == 2  # nothing failed, nothing else ran


def test_the_ways_share_the_cpu_generators_noise_stream():
    """The noise the ways share is the CPU generator's stream, moved to the device."""
    gpu_check = benchmark_module("gpu_check")
    noise = gpu_check.CpuDrawnNoise(seed=7)
    mean = torch.zeros(4, 3)
    cpu = torch.Generator().manual_seed(7)
    for _ in range(2):
        assert torch.equal(noise.normal_like(mean), torch.randn(4, 3, generator=cpu))
