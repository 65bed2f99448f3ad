"""Device and schedule helpers shared by every training entry point (a leaf module: it imports no other models.*).

- resolve_device("auto"|"cpu"|"cuda"), hardware_string(device): where a run trains and what to record about it.
- DistInfo: torchrun's rank/world from the environment (a single process without them).
- lr_at: linear warm-up then cosine decay, the schedule of the frame, CK+ and head training.
"""
from __future__ import annotations

import math
import os
import platform

import torch
import torch.distributed as dist


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def set_threads(threads: int) -> None:
    """torch intra-op threads; 0 keeps torch's default."""
    if threads:
        torch.set_num_threads(threads)


def hardware_string(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()}, torch {torch.__version__}"


class DistInfo:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single process."""

    def __init__(self, device: torch.device):
        self.enabled = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.device = device
        if self.enabled:
            if device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def close(self):
        if self.enabled:
            dist.destroy_process_group()


def lr_at(step: int, total: int, warmup: int, base: float, floor: float = 0.0) -> float:
    """Linear warm-up, cosine decay from base to floor over `total` steps, then floor (the SWA phase)."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (base - floor) * (1 + math.cos(math.pi * t))
