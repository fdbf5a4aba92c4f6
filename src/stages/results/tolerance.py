"""How closely the live slice must match a pack: by the float32 kernels that computed both.

The same code on the same kernels (processor, torch's CPU instruction set, thread count; or the
same GPU) gives the same bits, so a pack's rows recomputed there must match to :data:`RTOL`.
Other kernels sum in another order and round otherwise: differences in the last bits of float32
grow through the residual stream and through the KL of a perturbed run to a few parts in 10,000
(measured below), so rows computed on other kernels, or on kernels the manifest does not record
(packs built before it recorded them), are compared at :data:`CROSS_KERNEL_RTOL`.
A change of code that changes a result moves it by far more.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

RTOL = 1e-6
"""Relative tolerance of the slice check on the kernels that computed the pack's rows."""

CROSS_KERNEL_RTOL = 2e-3
"""Relative tolerance of the slice check on other (or unrecorded) kernels.

Measured 2026-12-05 (``stages pack verify MODEL`` with an empty result cache; figures in
``benchmarks/results/kernels.json``): the shipped packs, built on another 2-core x86-64 machine,
against this code on an Intel Xeon (family 6, model 167) with torch's AVX512 kernels, and again
with ``ATEN_CPU_CAPABILITY=avx2`` (MKL and oneDNN held to AVX2). Largest relative difference over
every part: gemma-3-270m 4.4e-4 and 5.8e-4 (the layer sweep and the "-ing" windows),
smollm2-135m-instruct 4.0e-4 and 1.6e-4. The tolerance keeps a factor of 3.5 above the worst.
"""


def _processor() -> str:
    """The processor's name with its family and model numbers (from /proc/cpuinfo on Linux)."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def kernels(device: str | torch.device = "cpu") -> str:
    """Which float32 kernels run here: processor, instruction set and threads, or the GPU.

    Example: ``"Intel(R) Xeon(R) Processor (family 6, model 167), torch AVX512, 2 threads"``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    if device.type != "cpu":
        return f"{device.type} device"
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{_processor()}, torch {capability}, {torch.get_num_threads()} threads"


def first_chunk_kernels(manifest: dict[str, Any], part: str) -> str | None:
    """The kernels that computed a part's first chunk (its live slice), None if unrecorded."""
    entry = manifest.get("parts", {}).get(part, {})
    names = sorted(entry.get("files", []))
    if not names:
        return None
    return entry.get("chunks", {}).get(names[0], {}).get("kernels")


def slice_rtol(manifest: dict[str, Any], part: str, here: str) -> float:
    """The tolerance for ``part``'s live slice computed on the kernels ``here``."""
    return RTOL if first_chunk_kernels(manifest, part) == here else CROSS_KERNEL_RTOL
