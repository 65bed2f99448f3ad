"""A neutral baseline per face: the mean probabilities over the first seconds, between two markers or in a separate
recording, which the study subtracts for its `p_<class>_corrected` columns. Stdlib only."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from app.emotions import EMOTIONS
from app.study.options import BaselineSpec, Marker, StudyError, check_baseline_recording
from app.timeline.files import ExportError
from app.timeline.formats import read_session
from app.timeline.rows import TimelineRow


@dataclass(frozen=True)
class Baseline:
    """Per-face mean probabilities over the baseline span. `means[None]`, when present, applies to every face
    (a separate recording); otherwise a face without rows in the span has no baseline (its corrected cells are
    empty): a face the tracker lost and found again comes back under a new id, without one."""
    spec: BaselineSpec
    means: dict[int | None, tuple[float, ...]]
    n_rows: dict[int | None, int]
    span: tuple[float, float] | None            # media times of the span (None for a separate recording)

    def mean_for(self, face_id) -> tuple[float, ...] | None:
        return self.means.get(face_id, self.means.get(None))

    def to_json(self) -> dict:
        return {**self.spec.to_json(), "span_s": None if self.span is None else list(self.span),
                "faces": {("all" if k is None else str(k)): {"n_rows": self.n_rows[k], "mean_probs": dict(zip(EMOTIONS, v))}
                          for k, v in self.means.items()}}


def face_id_of(row) -> int | None:
    """The row's face id, or None for a row of a frame without a face (--all-frames): nothing to average."""
    fid = getattr(row, "face_id", None)
    return fid if fid is not None and getattr(row, "face_found", True) and row.probs else None


def compute_baseline(spec: BaselineSpec, markers: Iterable[Marker], rows: Iterable[TimelineRow]) -> Baseline:
    """The baseline means, in one pass over the session's rows (a separate recording reads its own file).
    Raises StudyError when the span cannot be found or holds no face."""
    sums: dict[int | None, list[float]] = {}
    counts: Counter = Counter()

    def add(key, probs) -> None:
        s = sums.setdefault(key, [0.0] * len(EMOTIONS))
        for i, p in enumerate(probs):
            s[i] += p
        counts[key] += 1

    span = None
    if spec.kind == "file":
        try:
            _, file_rows = read_session(check_baseline_recording(spec.path))
        except ExportError as e:  # changed or gone since it was chosen
            raise StudyError(f"baseline recording {e}") from None
        for r in file_rows:
            if face_id_of(r) is not None:
                add(None, r.probs)
    elif spec.kind == "between":
        ordered = sorted(markers, key=lambda m: m.time_s)
        start = next((m for m in ordered if m.label == spec.start_label), None)
        if start is None:
            raise StudyError(f"baseline: no marker labelled {spec.start_label!r}")
        end = next((m for m in ordered if m.label == spec.end_label and m.time_s > start.time_s), None)
        if end is None:
            raise StudyError(f"baseline: no marker labelled {spec.end_label!r} after {spec.start_label!r} "
                             f"at {start.time_s:g} s")
        span = (start.time_s, end.time_s)
        for r in rows:
            if face_id_of(r) is not None and span[0] <= r.time_s <= span[1]:
                add(r.face_id, r.probs)
    else:
        t0 = None
        for r in rows:
            if face_id_of(r) is None:
                continue
            if t0 is None:
                t0 = r.time_s
            if r.time_s < t0 + spec.seconds:
                add(r.face_id, r.probs)
        span = None if t0 is None else (t0, t0 + spec.seconds)
    if not counts:
        raise StudyError(f"baseline ({spec.describe()}): no face in that span")
    return Baseline(spec, {k: tuple(s / counts[k] for s in v) for k, v in sums.items()}, dict(counts), span)
