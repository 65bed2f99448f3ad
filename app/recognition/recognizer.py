"""ONNX Runtime inference: aligned face crops -> per-track FAN predictions. Qt-free and torch-free.

    Embedder        crops of one frame -> (N, 512) features, one batched run per frame
    FeatureWindow   one track's last N (frame index, feature, crop): a deque(maxlen=N)
    FanHeadRunner   a window's (T, 512) features -> probs (7,), alpha (T,), final weight (T,)
    Recognizer      the per-stream state: windows by track id, the head run every `stride` frames

Everything the graphs need to be fed (input size, colour, mean/std, labels, window) comes from the model card.
Providers are always passed explicitly and the ones a session actually came up with are reported: onnxruntime-gpu
lists CUDAExecutionProvider as available even where its libraries are missing, and then silently runs on the CPU.

CPU threads: onnxruntime's worker threads spin-wait by default, and a spinning thread fights whatever else shares
the cores (capture, the face mesh, the UI), which a live app always has. So the embedder runs on min(2, cores) threads
with spinning off, and the tiny head graph on one (docs/benchmark.md has the measurements behind this).
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app import paths
from app.native import captured_fd2
from app.recognition.card import CARD_FORMAT, DEVICES, PRECISIONS, ModelCard, ModelError, load_card, temperature_scale
from app.emotions import EMOTIONS
from app.recognition.heads import HeadRunner
from app.faces.align import to_network_input

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEFAULT_THREADS = min(2, os.cpu_count() or 1)

def select_providers(device: str) -> list:
    """Execution providers to ask for, in order: auto -> CUDA first when onnxruntime lists it, then CPU;
    cuda -> CUDA then CPU (raises ModelError when this onnxruntime has no CUDA provider); cpu -> CPU only."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {device!r}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA not in available:
        if device == "cuda":
            raise ModelError(f"CUDA requested but this onnxruntime ({ort.__version__}) has no CUDA provider "
                             f"(it has: {', '.join(available)}); install onnxruntime-gpu or use --device cpu")
        return [CPU]
    # HEURISTIC: the default EXHAUSTIVE cuDNN search re-benchmarks convolutions for every new batch size, a stall
    # each time another face appears.
    return [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _cuda_reason(log: str) -> str:
    """onnxruntime's log of a failed CUDA provider -> one line: which library is missing and what it needs."""
    log = _ANSI.sub("", log)
    missing = re.search(r"with error: ([^\n]+)", log)
    needs = re.search(r"Require ([^\n]*?CUDA [0-9.*]+)", log)
    parts = [missing.group(1).strip() if missing else "onnxruntime could not start its CUDA provider"]
    if needs:
        parts.append(f"onnxruntime {ort.__version__} needs {needs.group(1).rstrip('.')}")
    return "; ".join(parts)


def _session_options(threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see the module docstring
    return so


def _start(path: Path, providers: list, threads: int) -> tuple[ort.InferenceSession, str | None]:
    """One InferenceSession on `providers` -> (session, why CUDA did not come up although it was asked for, or
    None). A missing, corrupt or non-ONNX file raises ModelError with one line."""
    wants_cuda = providers[0] != CPU
    log = [""]
    try:
        if wants_cuda:
            with captured_fd2() as log:
                session = ort.InferenceSession(str(path), _session_options(threads), providers=providers)
        else:
            session = ort.InferenceSession(str(path), _session_options(threads), providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind classes (InvalidProtobuf, Fail, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load {Path(path).name} with onnxruntime: {first}") from None
    finally:
        if log and log[0]:
            _reemit_unrelated(log[0])
    if wants_cuda and CUDA not in session.get_providers():
        return session, _cuda_reason(log[0] if log else "")
    return session, None


@functools.cache
def cuda_failure(probe: Path) -> str | None:
    """Why ONNX Runtime's CUDA provider cannot start in this process, or None when it starts. Learnt by opening
    `probe` (a small graph) on it once per process and graph: a machine without working CUDA libraries pays for the
    failed start once, and no later session retries it. Call only where select_providers lists CUDA."""
    return _start(Path(probe), select_providers("auto"), 1)[1]


def open_session(path: Path, device: str = "auto", threads: int = DEFAULT_THREADS, probe: Path | None = None
                 ) -> tuple[ort.InferenceSession, str | None]:
    """An InferenceSession on the requested device -> (session, why CUDA is not used or None).

    Where CUDA is wanted, `cuda_failure(probe)` first says whether it starts here (`probe` defaults to `path`; pass
    a small graph of the same model to learn it cheaply). auto falls back to the CPU (with the reason); cuda raises
    ModelError when CUDA cannot run the session; a missing, corrupt or non-ONNX file raises ModelError with one
    line."""
    providers = select_providers(device)
    known = cuda_failure(Path(probe or path)) if providers[0] != CPU else None
    if known is not None and device == "cuda":
        raise ModelError(f"CUDA requested but it cannot start here: {known}")
    session, reason = _start(path, [CPU] if known is not None else providers, threads)
    if reason is not None and device == "cuda":  # started on the probe but not on this graph
        raise ModelError(f"CUDA requested but it cannot start here: {reason}")
    return session, known or reason


def _reemit_unrelated(log: str) -> None:
    """Pass on captured native log lines except the CUDA-provider failure, which is reported as one line instead."""
    keep = [ln for ln in log.splitlines()
            if _ANSI.sub("", ln).strip() and not re.search(r"cuda|cudnn|cublas|provider_bridge", ln, re.IGNORECASE)]
    if keep:
        print("\n".join(keep), file=sys.stderr)


def _dim(value) -> int | None:
    return value if isinstance(value, int) else None


def _color_name(channels: int | None) -> str:
    return {1: "gray", 3: "rgb"}.get(channels, f"{channels}-channel")


class Embedder:
    """The embedder graph: aligned uint8 crops -> (N, embed_dim) float32 features, one batched run per call.

    precision: "fp32" the float graph; "int8" the card's quantized graph (models.release.quantize), on the CPU; "auto" (the
    default) the int8 graph when the embedder runs on the CPU and the card has one, else the float graph (on CUDA the
    int8 graph's quantize/dequantize nodes would cost more than they save). `precision` says what runs."""

    def __init__(self, card: ModelCard, device: str = "auto", threads: int | None = None, precision: str = "auto"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "int8" and card.embedder_int8_file is None:
            raise ModelError(f"model {card.name!r} has no int8 embedder (make one with python -m models.release.quantize)")
        self.card = card
        self.preprocess = card.preprocess
        threads = threads or DEFAULT_THREADS
        int8 = card.embedder_int8_file
        # Whether CUDA starts here is learnt on the model's smallest graph, so that a machine without it does not
        # load the float embedder only to drop it for the int8 one.
        probe = card.head_file()
        wants_cuda = select_providers(device)[0] != CPU
        cuda_down = cuda_failure(probe) if wants_cuda else None
        on_cpu = not wants_cuda or cuda_down is not None
        if precision == "int8" or (precision == "auto" and int8 is not None and on_cpu):
            if device == "cuda":
                raise ModelError("the int8 embedder runs on the CPU only: use --precision fp32 (or auto) with CUDA")
            self.session, _ = open_session(int8, "cpu", threads)
            self.fallback_reason = cuda_down if device == "auto" else None
            self.precision, self.file = "int8", int8
        else:
            self.session, self.fallback_reason = open_session(card.embedder_file, device, threads, probe=probe)
            self.precision, self.file = "fp32", card.embedder_file
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        name = self.file.name
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1 or len(outputs[0].shape) != 2:
            raise ModelError(f"{name} is not an embedder graph (expected crops (B, C, S, S) -> features (B, D))")
        _, c, h, w = (_dim(v) for v in inputs[0].shape)
        pre = self.preprocess
        if (c, h, w) != (pre.channels, pre.input_size, pre.input_size):
            raise ModelError(f"{name}: card says {pre.input_size}x{pre.input_size} {pre.color} but graph expects "
                             f"{h}x{w} {_color_name(c)}")
        dim = _dim(outputs[0].shape[1])
        if dim != card.embed_dim:
            raise ModelError(f"{name}: card says {card.embed_dim}-d features but graph outputs {dim}")
        self._input, self._output = inputs[0].name, outputs[0].name

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Aligned uint8 crops (S, S, 3) BGR or (S, S[, 1]) gray, as app.faces.align makes them -> (N, D) float32."""
        if len(crops) == 0:
            return np.zeros((0, self.card.embed_dim), np.float32)
        s = self.preprocess.input_size
        for i, crop in enumerate(crops):
            if crop.shape[:2] != (s, s):
                raise ValueError(f"crop {i} is {crop.shape[1]}x{crop.shape[0]} but the model takes {s}x{s} "
                                 f"(align with the card's preprocess)")
        x = to_network_input(list(crops), self.preprocess)  # (N, C, S, S) float32
        return self.session.run([self._output], {self._input: x})[0]


class FanHeadRunner:
    """One FAN head graph: a window's features (T, D) -> probs (K,), alpha (T,), normalised weight (T,)."""

    def __init__(self, card: ModelCard, key: str | None = None, device: str = "cpu", threads: int = 1):
        self.card = card
        self.key = key or card.default_head
        path = card.head_file(self.key)
        self.session, self.fallback_reason = open_session(path, device, threads, probe=card.head_file())
        inputs = self.session.get_inputs()
        outputs = {o.name: o for o in self.session.get_outputs()}
        if len(inputs) != 1 or len(inputs[0].shape) != 3 or set(outputs) != {"probs", "alpha", "weight"}:
            raise ModelError(f"{path.name} is not a FAN head graph (expected features (B, T, D) -> probs, alpha, "
                             f"weight)")
        dim = _dim(inputs[0].shape[2])
        if dim != card.embed_dim:
            raise ModelError(f"{path.name}: card says {card.embed_dim}-d features but the head takes {dim}")
        k = _dim(outputs["probs"].shape[-1])
        if k != len(card.labels):
            raise ModelError(f"{path.name}: card has {len(card.labels)} labels but the head outputs {k} classes")
        self._input = inputs[0].name

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """features (T, D) -> probs (K,), alpha (T,), weight (T,), all float32."""
        x = np.ascontiguousarray(features, np.float32)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != self.card.embed_dim:
            raise ValueError(f"features must be (T>=1, {self.card.embed_dim}), got {x.shape}")
        probs, alpha, weight = self.session.run(["probs", "alpha", "weight"], {self._input: x[None]})
        return probs[0], alpha[0], weight[0]


class FeatureWindow:
    """One track's sliding window of its newest `length` frames: (frame index, feature (D,), aligned crop)."""

    def __init__(self, length: int):
        if length < 1:
            raise ValueError("window length must be >= 1")
        self._items: deque[tuple[int, np.ndarray, np.ndarray | None]] = deque(maxlen=length)

    def push(self, frame_index: int, feature: np.ndarray, crop: np.ndarray | None = None) -> None:
        self._items.append((int(frame_index), np.asarray(feature, np.float32), crop))

    def features(self) -> np.ndarray:
        """(T, D) float32, oldest first."""
        return np.stack([f for _, f, _ in self._items])

    @property
    def frames(self) -> np.ndarray:
        return np.array([i for i, _, _ in self._items], np.int64)

    @property
    def crops(self) -> list[np.ndarray | None]:
        return [c for _, _, c in self._items]

    @property
    def maxlen(self) -> int:
        return self._items.maxlen

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Prediction:
    """One track's FAN output over its window (raw: any smoothing for display is the UI's). Arrays are oldest
    frame first; crops are the window's aligned crops for the attention strip."""

    track_id: int
    probs: np.ndarray            # (K,) sums to 1
    label: str
    confidence: float
    alpha: np.ndarray            # (T,) self-attention weights in (0, 1)
    weight: np.ndarray           # (T,) final normalised weights (alpha, or alpha*beta), sum to 1
    frame_indices: np.ndarray    # (T,)
    crops: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        normalised = dict(probs=np.asarray(self.probs, np.float32).reshape(-1),
                          alpha=np.asarray(self.alpha, np.float32).reshape(-1),
                          weight=np.asarray(self.weight, np.float32).reshape(-1),
                          frame_indices=np.asarray(self.frame_indices, np.int64).reshape(-1),
                          confidence=float(self.confidence), track_id=int(self.track_id))
        for name, value in normalised.items():  # frozen: normalised here, once
            object.__setattr__(self, name, value)
        if self.probs.shape != (len(EMOTIONS),) or not np.all(np.isfinite(self.probs)):
            raise ValueError(f"probs must be {len(EMOTIONS)} finite values, got {self.probs}")
        if abs(float(self.probs.sum()) - 1.0) > 1e-3:
            raise ValueError(f"probs must sum to 1, got {self.probs.sum():.4f}")
        if self.label not in EMOTIONS:
            raise ValueError(f"unknown label {self.label!r}")
        t = len(self.frame_indices)
        if t < 1 or self.alpha.shape != (t,) or self.weight.shape != (t,):
            raise ValueError(f"alpha {self.alpha.shape}, weight {self.weight.shape} and frame_indices ({t},) "
                             f"must be one value per window frame")
        if self.crops and len(self.crops) != t:
            raise ValueError(f"{len(self.crops)} crops for a window of {t} frames")


@dataclass(frozen=True)
class RecognizerStep:
    """What one `Recognizer.step` computed: one prediction per face (in the faces' order) and its timings in ms
    (embed: the batched embedder run; head: the FAN heads)."""

    predictions: list[Prediction]
    timings: dict[str, float]


class Recognizer:
    """Per-stream recognition state: embed each frame's faces in one batch, keep a window per track, run the FAN
    head per track every `stride` frames of that track (the last prediction is reused in between). Probabilities
    are calibrated with the card's temperature for the head (calibrated=False: the head's raw output)."""

    def __init__(self, card_path: str | Path, device: str = "auto", head: str | None = None,
                 window_length: int | None = None, stride: int | None = None, threads: int | None = None,
                 precision: str = "auto", calibrated: bool = True):
        self.card = load_card(card_path)
        # the head by name (app.recognition.heads: fan/relation, self, fusion, gru, gru-causal, transformer, ensemble); ModelError
        # when the model has no such head. The head is ~0.03-0.3 ms on one CPU thread; on a GPU its copies and
        # launches would cost more than that.
        self.head = HeadRunner(self.card, head, lambda card, key: FanHeadRunner(card, key, device="cpu"))
        self.head_key = self.head.key  # the card's key of the head that runs (relation for fan)
        # 1.0 (raw) when asked, or when the card has no temperature for this head
        self.temperature = float(self.card.temperatures.get(self.head_key, 1.0)) if calibrated else 1.0
        self.window_length = int(window_length or self.card.window_length)
        self.stride = int(stride or self.card.window_stride)
        if self.window_length < 1 or self.stride < 1:
            raise ValueError("window length and stride must be >= 1")
        self.embedder = Embedder(self.card, device, threads, precision)
        self.windows: dict[int, FeatureWindow] = {}
        self._last: dict[int, Prediction] = {}
        self._pushed: dict[int, int] = {}  # frames pushed to a track's window since its head last ran

    @property
    def providers(self) -> list[str]:
        """The providers the embedder session actually runs on (the head always runs on the CPU)."""
        return self.embedder.providers

    @property
    def fallback_reason(self) -> str | None:
        """Why CUDA is not used although it was listed (None when it is, or when the CPU was asked for)."""
        return self.embedder.fallback_reason

    def step(self, frame_index: int, faces: Sequence) -> RecognizerStep:
        """This frame's faces (app.faces.detect.Face with .crop and .track_id set) -> one prediction per face, in order,
        with the step's timings."""
        ids = [int(f.track_id) for f in faces]
        if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
            raise ValueError(f"every face needs its own track id >= 0, got {ids}")
        if any(f.crop is None for f in faces):
            raise ValueError("every face needs its aligned crop (face.crop) before recognition")
        t0 = time.perf_counter()
        feats = self.embedder.embed([f.crop for f in faces])  # (N, D): one run for all faces of the frame
        t1 = time.perf_counter()
        out = []
        for face, tid, feat in zip(faces, ids, feats):
            window = self.windows.get(tid)
            if window is None:
                window = self.windows[tid] = FeatureWindow(self.window_length)
            window.push(frame_index, feat, face.crop)
            self._pushed[tid] = self._pushed.get(tid, 0) + 1
            if tid not in self._last or self._pushed[tid] >= self.stride:
                self._last[tid] = self._predict(tid, window)
                self._pushed[tid] = 0
            out.append(self._last[tid])
        t2 = time.perf_counter()
        return RecognizerStep(out, {"embed": (t1 - t0) * 1e3, "head": (t2 - t1) * 1e3})

    def _predict(self, track_id: int, window: FeatureWindow) -> Prediction:
        probs, alpha, weight = self.head.run(window.features())
        probs = temperature_scale(probs, self.temperature)
        k = int(np.argmax(probs))
        return Prediction(track_id=track_id, probs=probs, label=self.card.labels[k], confidence=float(probs[k]),
                          alpha=alpha, weight=weight, frame_indices=window.frames, crops=window.crops)

    def drop(self, track_ids: Iterable[int]) -> None:
        """Forget ended tracks."""
        for tid in track_ids:
            self.windows.pop(int(tid), None)
            self._last.pop(int(tid), None)
            self._pushed.pop(int(tid), None)

    def reset(self) -> None:
        self.windows.clear()
        self._last.clear()
        self._pushed.clear()


def find_default_model(weights_dir: str | Path | None = None) -> Path:
    """The shipped model: the embedder card of the newest model in weights_dir (default app.paths.WEIGHTS_DIR) whose
    card is not marked "random_init". Raises ModelError when there is none; never returns random weights."""
    weights_dir = Path(weights_dir) if weights_dir is not None else paths.WEIGHTS_DIR
    found = []
    for path in weights_dir.glob("*.json") if weights_dir.is_dir() else ():
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if (isinstance(d, dict) and d.get("format") == CARD_FORMAT and d.get("role") == "embedder"
                and not d.get("random_init")):
            found.append((str(d.get("created", "")), path.stat().st_mtime, path))
    if not found:
        raise ModelError(f"no trained weights in {weights_dir.name}/: train with `python -m models.train frames ...` "
                         "then export, or pass --weights")
    return max(found)[2]
