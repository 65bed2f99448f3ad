"""The export schema: one `TimelineRow` per (frame, face), its CSV columns and JSON fields, and the conversion of a
pipeline result into rows (the sink owns it: the per-frame core knows nothing of files). Documented in
docs/export-format.md. Stdlib only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from app.emotions import EMOTIONS
from app.signals.names import BLENDSHAPE_NAMES


V1_COLUMNS: tuple[str, ...] = (
    "time_s", "frame_index", "face_id", "x0", "y0", "x1", "y1", "label", "confidence",
    *(f"p_{name}" for name in EMOTIONS), "alpha", "weight",
)


BLENDSHAPE_COLUMNS: tuple[str, ...] = tuple(f"bs_{name}" for name in BLENDSHAPE_NAMES)
SIGNAL_COLUMNS: tuple[str, ...] = ("face_found", "reliability", "yaw", "pitch", "roll", *BLENDSHAPE_COLUMNS)
LIVE_COLUMNS: tuple[str, ...] = ("latency_ms",)
# a version 1 file has V1_COLUMNS only, a version 2 file V1_COLUMNS + SIGNAL_COLUMNS
CSV_COLUMNS: tuple[str, ...] = (*V1_COLUMNS, *SIGNAL_COLUMNS, *LIVE_COLUMNS)
_PROB_SUM_TOL = 1e-2  # softmax output in float16/32 sums to 1 within ~1e-3; logits or scores would be far off


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"TimelineRow.{name} must be finite, got {value!r}")
    return v


def _optional(name: str, value) -> float | None:
    """None for a missing value (a version 1 file, an empty CSV cell, a pose that could not be solved)."""
    if value is None or value == "":
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One face on one processed frame: the head's output for the window ending at this frame, and the face's
    signals. With --all-frames a frame without a face is a row too: face_found False, face_id None, and every
    face field empty (box (), label "", probs (), confidence/alpha/weight NaN); `TimelineRow.no_face` makes one."""
    time_s: float                                   # seconds from the start of the source (video position / capture)
    frame_index: int                                # index of the frame in the source, from 0
    face_id: int                                    # tracker id, stable while the face stays tracked
    box: tuple[float, float, float, float]          # x0, y0, x1, y1 in pixels of the source frame
    label: str                                      # one of EMOTIONS (the model's decision for this window)
    confidence: float                               # probability of `label`
    probs: tuple[float, ...]                        # (7,) in EMOTIONS order, sums to 1
    alpha: float                                    # self-attention alpha of the newest frame in the window, (0, 1)
    weight: float                                   # normalised final weight (alpha, or alpha*beta) of the newest frame
    face_found: bool = True                         # False: a frame without a face (--all-frames)
    reliability: float | None = None                # [0, 1], app.signals.reliability; None in version 1 files
    yaw: float | None = None                        # degrees, app.signals.pose's signs; None: unknown
    pitch: float | None = None
    roll: float | None = None
    blendshapes: tuple[float, ...] | None = None    # (52,) in BLENDSHAPE_NAMES order, [0, 1]; None: unknown
    latency_ms: float | None = None                 # live sources: capture to result, ms; None for a file's frame

    @classmethod
    def no_face(cls, time_s: float, frame_index: int, latency_ms: float | None = None) -> TimelineRow:
        nan = float("nan")
        return cls(time_s=time_s, frame_index=frame_index, face_id=None, box=(), label="", confidence=nan, probs=(),
                   alpha=nan, weight=nan, face_found=False, latency_ms=latency_ms)

    def __post_init__(self) -> None:
        # Coerce numpy scalars/lists to plain Python so the exports and == comparisons are exact and JSON-able.
        set_ = object.__setattr__
        set_(self, "face_found", bool(self.face_found))
        rel = _optional("reliability", self.reliability)
        if rel is not None and not 0.0 <= rel <= 1.0:
            raise ValueError(f"TimelineRow.reliability must be in [0, 1], got {rel}")
        set_(self, "reliability", rel)
        for k in ("yaw", "pitch", "roll", "latency_ms"):
            set_(self, k, _optional(k, getattr(self, k)))
        if self.blendshapes is not None:
            bs = tuple(_finite("blendshapes", v) for v in self.blendshapes)
            if len(bs) != len(BLENDSHAPE_NAMES):
                raise ValueError(f"TimelineRow.blendshapes must have {len(BLENDSHAPE_NAMES)} values, got {len(bs)}")
            set_(self, "blendshapes", bs)
        if not self.face_found:
            nan = float("nan")
            set_(self, "time_s", _finite("time_s", self.time_s))
            set_(self, "frame_index", int(self.frame_index))
            for k, v in (("face_id", None), ("box", ()), ("label", ""), ("confidence", nan), ("probs", ()),
                         ("alpha", nan), ("weight", nan), ("reliability", None), ("yaw", None), ("pitch", None),
                         ("roll", None), ("blendshapes", None)):
                set_(self, k, v)
            return
        box = tuple(_finite("box", v) for v in self.box)
        if len(box) != 4:
            raise ValueError(f"TimelineRow.box must be (x0, y0, x1, y1), got {len(box)} values")
        probs = tuple(_finite("probs", v) for v in self.probs)
        if len(probs) != len(EMOTIONS):
            raise ValueError(f"TimelineRow.probs must have {len(EMOTIONS)} values (EMOTIONS order), got {len(probs)}")
        if min(probs) < 0.0 or abs(sum(probs) - 1.0) > _PROB_SUM_TOL:
            raise ValueError(f"TimelineRow.probs must be probabilities summing to 1, got sum {sum(probs):.4f}")
        if self.label not in EMOTIONS:
            raise ValueError(f"TimelineRow.label {self.label!r} is not one of {', '.join(EMOTIONS)}")
        set_(self, "box", box)
        set_(self, "probs", probs)
        set_(self, "time_s", _finite("time_s", self.time_s))
        set_(self, "frame_index", int(self.frame_index))
        set_(self, "face_id", int(self.face_id))
        set_(self, "confidence", _finite("confidence", self.confidence))
        set_(self, "alpha", _finite("alpha", self.alpha))
        set_(self, "weight", _finite("weight", self.weight))

    def csv_values(self) -> list:
        """The row under CSV_COLUMNS; unknown and face-less values are empty cells."""
        def cell(v):
            return "" if v is None else v
        if not self.face_found:
            return [self.time_s, self.frame_index, *[""] * (len(V1_COLUMNS) - 2), 0,
                    *[""] * (len(SIGNAL_COLUMNS) - 1), cell(self.latency_ms)]
        bs = self.blendshapes if self.blendshapes is not None else ("",) * len(BLENDSHAPE_NAMES)
        return [self.time_s, self.frame_index, self.face_id, *self.box, self.label, self.confidence, *self.probs,
                self.alpha, self.weight, 1, cell(self.reliability), cell(self.yaw), cell(self.pitch), cell(self.roll),
                *bs, cell(self.latency_ms)]

    def to_json(self) -> dict:
        live = {} if self.latency_ms is None else {"latency_ms": self.latency_ms}  # only live sessions have it
        if not self.face_found:
            return {"time_s": self.time_s, "frame_index": self.frame_index, "face_found": False, **live}
        return {"time_s": self.time_s, "frame_index": self.frame_index, "face_id": self.face_id, "box": list(self.box),
                "label": self.label, "confidence": self.confidence, "probs": list(self.probs), "alpha": self.alpha,
                "weight": self.weight, "face_found": True, "reliability": self.reliability, "yaw": self.yaw,
                "pitch": self.pitch, "roll": self.roll,
                "blendshapes": list(self.blendshapes) if self.blendshapes is not None else None, **live}

    @classmethod
    def from_csv(cls, rec: dict[str, str]) -> TimelineRow:
        """A row of a version 3, 2 or 1 CSV (whose later columns are absent: None)."""
        if rec.get("face_found", "1") in ("0", "False", "false"):
            return cls.no_face(float(rec["time_s"]), int(rec["frame_index"]), rec.get("latency_ms"))
        bs = None
        if rec.get(BLENDSHAPE_COLUMNS[0], "") != "":
            bs = tuple(float(rec[c]) for c in BLENDSHAPE_COLUMNS)
        return cls(time_s=float(rec["time_s"]), frame_index=int(rec["frame_index"]), face_id=int(rec["face_id"]),
                   box=tuple(float(rec[k]) for k in ("x0", "y0", "x1", "y1")), label=rec["label"],
                   confidence=float(rec["confidence"]), probs=tuple(float(rec[f"p_{n}"]) for n in EMOTIONS),
                   alpha=float(rec["alpha"]), weight=float(rec["weight"]), reliability=rec.get("reliability"),
                   yaw=rec.get("yaw"), pitch=rec.get("pitch"), roll=rec.get("roll"), blendshapes=bs,
                   latency_ms=rec.get("latency_ms"))

    @classmethod
    def from_json(cls, rec: dict) -> TimelineRow:
        """A row of a version 3, 2 or 1 JSON export."""
        if rec.get("face_found", True) is False:
            return cls.no_face(rec["time_s"], rec["frame_index"], rec.get("latency_ms"))
        bs = rec.get("blendshapes")
        return cls(time_s=rec["time_s"], frame_index=rec["frame_index"], face_id=rec["face_id"], box=tuple(rec["box"]),
                   label=rec["label"], confidence=rec["confidence"], probs=tuple(rec["probs"]), alpha=rec["alpha"],
                   weight=rec["weight"], reliability=rec.get("reliability"), yaw=rec.get("yaw"),
                   pitch=rec.get("pitch"), roll=rec.get("roll"), blendshapes=tuple(bs) if bs is not None else None,
                   latency_ms=rec.get("latency_ms"))


def rows_from_result(result, all_frames: bool = False) -> list[TimelineRow]:
    """One row per face with a prediction on an app.pipeline.FrameResult (raw outputs, the newest frame's attention,
    the face's signals); with all_frames, a frame without one gives a face_found=False row (a uniform time base)."""
    out = []
    signals = getattr(result, "signals", None) or {}
    latency = getattr(result, "latency_ms", None)
    latency = None if latency is None else round(float(latency), 2)
    for face in result.faces:
        p = result.predictions.get(face.track_id)
        if p is None:
            continue
        s = signals.get(face.track_id)
        out.append(TimelineRow(
            time_s=float(result.frame.time_s), frame_index=int(result.frame.index), face_id=int(face.track_id),
            box=tuple(round(float(v), 1) for v in face.box), label=p.label, confidence=float(p.confidence),
            probs=tuple(float(v) for v in p.probs), alpha=float(p.alpha[-1]), weight=float(p.weight[-1]),
            reliability=None if s is None else round(float(s.reliability), 4),
            yaw=None if s is None else round(float(s.yaw), 2), pitch=None if s is None else round(float(s.pitch), 2),
            roll=None if s is None else round(float(s.roll), 2),
            blendshapes=None if s is None or not all(math.isfinite(float(v)) for v in s.blendshapes)
            else tuple(round(float(v), 4) for v in s.blendshapes), latency_ms=latency))
    if not out and all_frames:
        out.append(TimelineRow.no_face(float(result.frame.time_s), int(result.frame.index), latency))
    return out
