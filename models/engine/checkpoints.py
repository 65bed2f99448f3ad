"""Checkpoint and result I/O shared by training, CV, export and release (a leaf: it imports only models.networks).

Checkpoints are plain dicts of tensors, numbers and strings that load with torch.load(weights_only=True); every
write goes to a temporary file first and is renamed into place, so a killed run never leaves half a file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from app.durable import replacing, write_json  # noqa: F401 (write_json: the run files of every trainer)
from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.networks.faer import build_embedder
from models.networks.fan import ResNet18Embedder


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not one of ours; the message is one line for the user."""


def save_checkpoint(path: Path, obj: dict) -> None:
    with replacing(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Checkpoints hold tensors, numbers and strings only: loaded with weights_only=True (no pickle code)."""
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, corrupt or a foreign pickle: one line, no traceback
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: {first})") from None
    if not isinstance(ck, dict) or "embedder" not in ck:
        raise CheckpointError(f"{path} is not a FAN Live checkpoint (no 'embedder' weights)")
    return ck


def load_embedder(path: str | Path) -> tuple[ResNet18Embedder, Preprocess, dict]:
    """The stage-1 embedder of a checkpoint (eval mode), its Preprocess and the whole checkpoint dict."""
    ck = load_checkpoint(path)
    try:
        pre = Preprocess.from_dict(json.loads(ck["preprocess"]))
        # the architecture options a stage-1 run used (models.networks.faer: a CC or SE block); none for older checkpoints
        model = build_embedder(pre.channels, len(EMOTIONS), **json.loads(ck.get("embedder_arch", "{}")))
        model.load_state_dict(ck["embedder"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # RuntimeError: mismatched state-dict shapes
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path} does not hold a usable embedder ({type(e).__name__}: {first})") from None
    return model.eval(), pre, ck
