"""Stable ids for faces across frames: `FaceTracker.update(faces) -> TrackUpdate(faces, ended)` returns this frame's
faces with their track ids and says which tracks ended on this frame.

Matching is greedy, frame to frame: first by IoU between a track's box and a detection (best pairs first, at least
`iou_threshold`); what is left is matched by centre distance measured in face sizes, which catches fast motion where
the boxes no longer overlap. A track's box is also extrapolated with its recent velocity so a moving face is found
where it should be now. A track survives up to `max_missed` consecutive frames without a match (a missed detection,
a blink of occlusion), then ends; the update returns the tracks that ended with it so the inference stage can drop
their feature windows. Ids are ints from 1 and never reused by one tracker, not even after `reset()`, so a
timeline never mixes two faces under one id.

Pure python/numpy on `app.faces.detect.Face` boxes: no detector, no thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from app.faces.detect import Face


@dataclass(frozen=True)
class TrackUpdate:
    """What one `FaceTracker.update` computed: this frame's faces (new Face objects, in the order given, each with its
    track id) and the ids that ended on it."""

    faces: list[Face]
    ended: list[int]


@dataclass
class Track:
    """One tracked face. box is the last matched (x0, y0, x1, y1); velocity the smoothed centre motion per frame."""

    id: int
    box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    missed: int = 0      # consecutive updates without a match
    hits: int = 1        # updates with a match, the first one included

    def predicted_box(self) -> np.ndarray:
        """Where the face should be on the coming frame, assuming it keeps moving as it did."""
        shift = self.velocity * (self.missed + 1)
        return self.box + np.concatenate([shift, shift])

    def matched(self, box: np.ndarray) -> None:
        # Per-frame displacement over the gap, smoothed: a jittery detector must not fling the prediction.
        step = (_centre(box) - _centre(self.box)) / (self.missed + 1)
        self.velocity = (0.5 * self.velocity + 0.5 * step).astype(np.float32)
        self.box = box.astype(np.float32, copy=True)
        self.missed = 0
        self.hits += 1


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) * 0.5, (box[1] + box[3]) * 0.5], np.float32)


def _side(box: np.ndarray) -> float:
    """Face size in pixels: the geometric mean of width and height (0 for a degenerate box)."""
    w, h = max(float(box[2] - box[0]), 0.0), max(float(box[3] - box[1]), 0.0)
    return float(np.sqrt(w * h))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 when either is empty."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = float(iw * ih)
    union = _side(a) ** 2 + _side(b) ** 2 - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Greedy IoU + centre-distance tracker. One per stream; not thread-safe.

    max_centre_distance: the furthest a face's centre may move between matches, in face sizes (the mean of the two
    boxes' sizes), for the fallback match; max_size_ratio: how much bigger or smaller the face may get in that
    match, so a different face nearby is not taken for it.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, max_centre_distance: float = 1.0,
                 max_size_ratio: float = 2.0):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.max_centre_distance = float(max_centre_distance)
        self.max_size_ratio = float(max_size_ratio)
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """The live tracks (matched on the last update or coasting through a miss)."""
        return list(self._tracks)

    @property
    def active_ids(self) -> list[int]:
        """Ids of the live tracks, including those missing from the last frame but not ended yet."""
        return [t.id for t in self._tracks]

    def reset(self, restart_ids: bool = False) -> None:
        """Forget every track (a seek, a new source). Ids keep counting up, so one timeline never reuses an id;
        `restart_ids` starts again from 1, for a new timeline (a new source: its own session, numbered as a
        headless replay of it would be)."""
        self._tracks = []
        if restart_ids:
            self._next_id = 1

    def update(self, faces: list[Face]) -> TrackUpdate:
        """Match this frame's faces to the tracks -> the faces with their track ids (the given ones are left as
        they are) and the tracks that ended on this frame (missed more than max_missed frames in a row), each
        reported once."""
        boxes = [np.asarray(f.box, np.float32) for f in faces]
        pairs = self._match(boxes)
        ids: list[int] = [-1] * len(faces)
        matched_tracks = set()
        for ti, di in pairs:
            track = self._tracks[ti]
            track.matched(boxes[di])
            ids[di] = track.id
            matched_tracks.add(ti)
        matched_dets = {di for _, di in pairs}

        ended = []
        kept = []
        for ti, track in enumerate(self._tracks):
            if ti not in matched_tracks:
                track.missed += 1
                if track.missed > self.max_missed:
                    ended.append(track.id)
                    continue
            kept.append(track)
        for di, face in enumerate(faces):
            if di not in matched_dets:
                track = Track(id=self._next_id, box=boxes[di].copy())
                self._next_id += 1
                ids[di] = track.id
                kept.append(track)
        self._tracks = kept
        return TrackUpdate([replace(face, track_id=tid) for face, tid in zip(faces, ids)], ended)

    def _match(self, boxes: list[np.ndarray]) -> list[tuple[int, int]]:
        """Greedy (track index, detection index) pairs: IoU first, then centre distance for what is left."""
        if not self._tracks or not boxes:
            return []
        # A track is compared through both its last box and its extrapolated one, whichever fits better: the
        # prediction helps a steadily moving face, the last box one that stopped or turned.
        refs = [(t.box, t.predicted_box()) for t in self._tracks]
        candidates = []
        for ti, (last, pred) in enumerate(refs):
            for di, box in enumerate(boxes):
                iou = max(box_iou(last, box), box_iou(pred, box))
                if iou >= self.iou_threshold:
                    candidates.append((-iou, ti, di))
        pairs, used_t, used_d = self._greedy(candidates, set(), set())

        candidates = []
        for ti, (last, pred) in enumerate(refs):
            if ti in used_t:
                continue
            for di, box in enumerate(boxes):
                if di in used_d:
                    continue
                s_track, s_det = _side(last), _side(box)
                if s_track <= 0 or s_det <= 0 or max(s_track, s_det) / min(s_track, s_det) > self.max_size_ratio:
                    continue
                scale = 0.5 * (s_track + s_det)
                c = _centre(box)
                dist = min(np.linalg.norm(c - _centre(last)), np.linalg.norm(c - _centre(pred))) / scale
                if dist <= self.max_centre_distance:
                    candidates.append((float(dist), ti, di))
        more, _, _ = self._greedy(candidates, used_t, used_d)
        return pairs + more

    @staticmethod
    def _greedy(candidates, used_t: set, used_d: set):
        pairs = []
        used_t, used_d = set(used_t), set(used_d)
        for _, ti, di in sorted(candidates):
            if ti in used_t or di in used_d:
                continue
            pairs.append((ti, di))
            used_t.add(ti)
            used_d.add(di)
        return pairs, used_t, used_d
