"""Fixtures shared by the training and CK+ CV tests: one tiny real stage-1 run per test session (it takes
seconds on FER+ Train, but every module that needs an embedder would otherwise train its own)."""
from pathlib import Path

import pytest
import torch

from models.train import FramesConfig, train_frames


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """Aligned-crop cache shared by the session (detection runs once per image)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_run(shared_data, cache_dir, tmp_path_factory) -> Path:
    """A 2-epoch stage-1 run on 192 FER+ Train images. Read-only: tests that resume it copy it first."""
    out = tmp_path_factory.mktemp("frames")
    cfg = FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(out), epochs=2, batch_size=32,
                       limit_train=192, limit_valid=64, lr=0.05, seed=0)
    train_frames(cfg)
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Modules that run the identity teachers use one torch thread (the CPU is shared), then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
