"""Where the project finds things: the repo root, shipped weights, the shared datasets and third-party models
(configurable)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = ROOT / "weights"


def data_root() -> Path:
    """The shared datasets: $FANLIVE_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("FANLIVE_DATA")
    return Path(env).expanduser() if env else ROOT.parent / "shared" / "data"


def models_root() -> Path:
    """Third-party pretrained networks (teachers, the MediaPipe task): $FANLIVE_MODELS, else `models` beside the
    data root (../shared/models)."""
    env = os.environ.get("FANLIVE_MODELS")
    return Path(env).expanduser() if env else data_root().parent / "models"
