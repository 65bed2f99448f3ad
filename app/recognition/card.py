"""Model cards: the JSON beside each ONNX file that tells the app how to feed the network.

A model is a set of ONNX graphs, the embedder (crops -> 512-d features, run once per new crop) and one or more heads
(a window of features -> probabilities, alpha, final weight): FAN's relation/self heads, and optionally score fusion
and the ABAW2021 GRU/transformer heads (HEAD_TYPES). Each ONNX file has a card of the same stem with
the same content except "role"; any of them (the .onnx or the .json) names the whole model. Preprocessing, labels,
window length and attention type are read from here, never from constants or file names.

A card may also list `files.embedder_int8`: the same embedder after post-training int8 quantization
(models.release.quantize), faster on a CPU (docs/benchmark.md) without changing the model's readings beyond what its card's "quantization"
record measures. app.recognition.recognizer runs it when the embedder runs on the CPU (precision "auto"), the float graph on CUDA.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.durable import write_json
from app.emotions import EMOTIONS
from app.faces.align import Preprocess

CARD_FORMAT = "fan-live-model-card/1"
ATTENTION_TYPES = ("relation", "self")  # the FAN heads (models.networks.fan.FanHead)
# every head a card may list (models.networks.heads.HEADS registers the same names): FAN's two, score fusion, the ABAW2021 GRU
# (bidirectional centre-frame, and causal newest-frame) and transformer heads
HEAD_TYPES = ATTENTION_TYPES + ("fusion", "gru", "gru-causal", "transformer")
# which embedder graph runs (app.recognition.recognizer.Embedder): auto = int8 on the CPU when the card lists one, else fp32
PRECISIONS = ("auto", "fp32", "int8")
# where the networks run: auto = CUDA when ONNX Runtime can start it, else the CPU
DEVICES = ("auto", "cuda", "cpu")


class ModelError(Exception):
    """Weights missing, corrupt, or not matching their card. The message is one line a user can act on."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    path: Path                      # the card file this was read from
    labels: tuple[str, ...]
    preprocess: Preprocess
    embedder_file: Path
    head_files: dict[str, Path]     # head type (HEAD_TYPES) -> head ONNX path
    default_head: str
    window_length: int
    window_stride: int
    embed_dim: int = 512
    embedder_int8_file: Path | None = None  # models.release.quantize's int8 embedder for the CPU, when the model has one
    sha256: dict[str, str] = field(default_factory=dict)
    # fitted temperature per head key (models.release.calibrate): the app reports softmax(log(p) / T) unless asked for raw
    temperatures: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # training data, metrics, command, date, hardware: shown, not used

    @property
    def head_types(self) -> tuple[str, ...]:
        return tuple(self.head_files)

    def head_file(self, attention: str | None = None) -> Path:
        attention = attention or self.default_head
        if attention not in self.head_files:
            raise ModelError(f"model {self.name!r} has no {attention!r} attention head "
                             f"(it has: {', '.join(self.head_files)})")
        return self.head_files[attention]


def _temperatures(calibration, cpath: Path) -> dict[str, float]:
    """The card's applied temperatures, {head key: T}; {} for a card without them (or whose temperature was only
    reported, `applied` false)."""
    if not isinstance(calibration, dict) or not calibration.get("applied"):
        return {}
    temps = calibration.get("temperatures")
    if not isinstance(temps, dict) or not temps:
        raise ModelError(f"{cpath}: calibration.applied needs a temperatures object (head -> T)")
    out = {str(k): float(v) for k, v in temps.items()}
    unknown = set(out) - set(HEAD_TYPES) - {"ensemble"}
    if unknown:
        raise ModelError(f"{cpath}: calibration temperatures for unknown heads {sorted(unknown)}")
    if not all(math.isfinite(t) and t > 0 for t in out.values()):
        raise ModelError(f"{cpath}: every calibration temperature must be a finite number > 0")
    return out


def temperature_scale(probs: np.ndarray, t: float) -> np.ndarray:
    """Temperature scaling of probabilities (..., K): softmax(log(p) / t) = softmax(logits / t); t = 1 is the
    identity, t < 1 sharpens, t > 1 softens. The top class never changes."""
    if t == 1.0:
        return probs
    z = np.log(np.clip(probs, 1e-12, None)) / t
    z -= z.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def card_path_for(path: str | Path) -> Path:
    p = Path(path)
    return p if p.suffix == ".json" else p.with_suffix(".json")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_card(path: str | Path, verify_hashes: bool = True) -> ModelCard:
    """Read and check a card (given its .json or any of its model's .onnx files). Raises ModelError."""
    cpath = card_path_for(path)
    if not cpath.is_file():
        raise ModelError(f"no model card at {cpath} (each .onnx in weights/ needs its .json card beside it)")
    try:
        d = json.loads(cpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"model card {cpath} is not valid JSON: {e}") from None
    if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
        raise ModelError(f"{cpath} is not a FAN Live model card (expected format {CARD_FORMAT!r})")
    try:
        labels = tuple(d["labels"])
        if labels != EMOTIONS:
            raise ModelError(f"{cpath}: labels {labels} differ from the app's classes {EMOTIONS}")
        pre = Preprocess.from_dict(d["preprocess"])
        files = d["files"]
        embedder = cpath.parent / files["embedder"]
        heads = {str(k): cpath.parent / v for k, v in files["heads"].items()}
        int8 = cpath.parent / files["embedder_int8"] if files.get("embedder_int8") else None
        bad = set(heads) - set(HEAD_TYPES)
        if bad or not heads:
            raise ModelError(f"{cpath}: unknown or missing heads {sorted(bad) or '[]'}")
        default = str(d.get("head", d.get("attention", next(iter(heads)))))  # "attention": cards before the rename
        window = d["window"]
        card = ModelCard(name=str(d["name"]), path=cpath, labels=labels, preprocess=pre, embedder_file=embedder,
                         head_files=heads, default_head=default, window_length=int(window["length"]),
                         window_stride=int(window.get("stride", 1)), embed_dim=int(d.get("embed_dim", 512)),
                         embedder_int8_file=int8,
                         sha256=dict(d.get("sha256", {})),
                         temperatures=_temperatures(d.get("calibration"), cpath),
                         extra={k: d[k] for k in ("training", "metrics", "command", "created", "hardware",
                                                  "licence", "random_init", "quantization") if k in d})
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"model card {cpath} is incomplete or malformed ({type(e).__name__}: {e})") from None
    if card.default_head not in card.head_files:
        raise ModelError(f"{cpath}: default attention {card.default_head!r} has no head file")
    if card.window_length < 1 or card.window_stride < 1:
        raise ModelError(f"{cpath}: window length and stride must be >= 1")
    for f in card_files(card):
        if not f.is_file():
            raise ModelError(f"weights file {f} named by {cpath.name} is missing")
        want = card.sha256.get(f.name)
        if verify_hashes and want and file_sha256(f) != want:
            raise ModelError(f"weights file {f} is corrupt or was replaced (its SHA-256 differs from the card's)")
    return card


def card_files(card: ModelCard) -> list[Path]:
    """Every ONNX file of the model: the embedder, its int8 version when there is one, the heads."""
    return [card.embedder_file, *([card.embedder_int8_file] if card.embedder_int8_file else []),
            *card.head_files.values()]


def content_files(content: dict) -> list[str]:
    """The same list from a card's JSON content (file names, as in its "files" and "sha256")."""
    files = content["files"]
    return [files["embedder"], *([files["embedder_int8"]] if files.get("embedder_int8") else []),
            *files["heads"].values()]


def role_of(content: dict, file_name: str) -> str:
    files = content["files"]
    return {files["embedder"]: "embedder", files.get("embedder_int8"): "embedder_int8"}.get(file_name, "head")


def write_model_cards(folder: Path, content: dict) -> Path:
    """One card per ONNX file of the model (content_files), the same content but for "role", each written
    atomically. Returns the embedder's card."""
    for f in content_files(content):
        write_card(folder / Path(f).with_suffix(".json"), {**content, "role": role_of(content, f)})
    return folder / Path(content["files"]["embedder"]).with_suffix(".json")


def write_card(path: Path, content: dict) -> None:
    """Write a card atomically (tmp file + rename), so a crash never leaves half a card."""
    content = {"format": CARD_FORMAT, **content}
    write_json(path, content)
