"""app.faces.track: synthetic boxes for the matching rules, MediaPipe on the shared videos for the real thing."""
import numpy as np
import pytest

from app.faces.detect import Face
from app.faces.track import FaceTracker, box_iou


def _face(cx: float, cy: float, side: float = 100.0) -> Face:
    h = side / 2
    lm = np.array([[cx - 20, cy - 10], [cx + 20, cy - 10], [cx, cy], [cx - 15, cy + 20], [cx + 15, cy + 20]])
    return Face(box=np.array([cx - h, cy - h, cx + h, cy + h]), landmarks5=lm)


def _ids(faces: list[Face]) -> list[int]:
    return [f.track_id for f in faces]


def test_update_returns_new_faces_in_the_given_order_and_leaves_the_given_ones_untouched():
    tracker = FaceTracker()
    given = [_face(100, 100), _face(400, 100)]
    out = tracker.update(given).faces
    assert _ids(out) == [1, 2] and _ids(given) == [-1, -1]
    assert all(np.array_equal(o.box, g.box) for o, g in zip(out, given))
    with pytest.raises(AttributeError):
        out[0].track_id = 7  # frozen: a face handed on never changes under its reader


def test_box_iou():
    a = np.array([0, 0, 10, 10], np.float32)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, np.array([5, 0, 15, 10], np.float32)) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20, 20, 30, 30], np.float32)) == 0.0
    assert box_iou(a, np.array([5, 5, 5, 5], np.float32)) == 0.0  # degenerate box


def test_moving_face_keeps_one_id():
    tracker = FaceTracker()
    ids = set()
    for t in range(60):  # 8 px per frame, then a sharp turn
        x = 100 + 8 * t if t < 30 else 340 - 8 * (t - 30)
        update = tracker.update([_face(x, 200 + 3 * np.sin(t))])
        ids.update(_ids(update.faces))
        assert update.ended == []
    assert ids == {1} and tracker.active_ids == [1]


def test_fast_motion_without_overlap_keeps_the_id():
    """60 px per frame with 100 px boxes: IoU drops to 0.25, below the threshold; the centre fallback holds it."""
    tracker = FaceTracker(iou_threshold=0.3)
    ids = {tracker.update([_face(100 + 60 * t, 200)]).faces[0].track_id for t in range(10)}
    assert ids == {1}


def test_velocity_prediction_follows_a_face_faster_than_its_size():
    """130 px per frame with 100 px boxes: only where the face is predicted to be is close enough to match."""
    tracker = FaceTracker()
    ids = {tracker.update([_face(x, 200)]).faces[0].track_id for x in (100, 190, 320, 450, 580, 710)}
    assert ids == {1}


def test_two_faces_keep_two_ids_when_they_pass_close():
    tracker = FaceTracker()
    first = None
    for t in range(40):
        # A moves right, B moves left, 30 px apart vertically at the crossing; the detector lists them in a random order
        a, b = _face(100 + 5 * t, 200), _face(300 - 5 * t, 320)
        swapped = t % 3 == 0
        out = tracker.update([b, a] if swapped else [a, b]).faces
        ids = (out[1].track_id, out[0].track_id) if swapped else (out[0].track_id, out[1].track_id)
        if first is None:
            first = ids
        assert ids == first, t
    assert sorted(first) == [1, 2]


def test_short_gap_keeps_the_id():
    tracker = FaceTracker(max_missed=5)
    tid = tracker.update([_face(100, 100)]).faces[0].track_id
    tracker.update([_face(104, 100)])
    for _ in range(2):  # two missed detections while the face keeps moving
        update = tracker.update([])
        assert update.faces == [] and update.ended == [] and tracker.active_ids == [tid]
    assert tracker.update([_face(116, 100)]).faces[0].track_id == tid


def test_long_gap_ends_the_track_and_a_new_face_gets_a_new_id():
    tracker = FaceTracker(max_missed=5)
    tid = tracker.update([_face(100, 100)]).faces[0].track_id
    for _ in range(5):  # max_missed misses: still alive
        assert tracker.update([]).ended == []
    assert tracker.update([]).ended == [tid] and tracker.active_ids == []  # one more: ended, reported once
    assert tracker.update([]).ended == []
    new = tracker.update([_face(100, 100)]).faces[0].track_id  # same place, but the old track is gone
    assert new != tid and new == tid + 1


def test_a_face_far_away_is_a_new_track():
    tracker = FaceTracker()
    a = tracker.update([_face(100, 100)]).faces[0].track_id
    b = tracker.update([_face(600, 400)]).faces[0].track_id  # 5 face sizes away: not the same face
    assert a != b and tracker.active_ids == [a, b]


def test_ids_are_never_reused_after_reset():
    tracker = FaceTracker()
    tracker.update([_face(100, 100), _face(400, 100)])
    tracker.reset()
    assert tracker.active_ids == []
    assert _ids(tracker.update([_face(100, 100)]).faces) == [3]
    tracker.reset(restart_ids=True)  # a new timeline (a new source in the window): numbered as a headless replay
    assert _ids(tracker.update([_face(100, 100)]).faces) == [1]


def test_rejects_bad_settings():
    with pytest.raises(ValueError):
        FaceTracker(iou_threshold=0)
    with pytest.raises(ValueError):
        FaceTracker(max_missed=-1)


def _track_video(path, step: int = 2):
    """(frame index, ids on that frame, ended ids) for every `step`-th frame, FaceMeshDetector in video mode."""
    from app.capture.sources import open_source
    from app.faces.detect import DetectorConfig, FaceMeshDetector

    out = []
    tracker = FaceTracker()
    with open_source(path) as src, FaceMeshDetector(DetectorConfig(video=True)) as detector:
        for frame in src:
            if frame.index % step:
                continue
            update = tracker.update(detector.detect(frame.image))
            out.append((frame.index, _ids(update.faces), update.ended))
    return out, tracker


@pytest.mark.data
def test_real_videos_one_id_per_face_and_the_track_ends_when_the_face_leaves(videos):
    rows, tracker = _track_video(videos / "WolfgangLanger_Pexels.mp4")
    seen = {i for _, ids, _ in rows for i in ids}
    assert seen == {1}
    assert sum(1 for _, ids, _ in rows if ids) > 0.9 * len(rows)  # the face is found almost throughout
    assert all(not ended for _, _, ended in rows)

    rows, tracker = _track_video(videos / "face_noface.mov")
    seen = {i for _, ids, _ in rows for i in ids}
    assert seen == {1}
    last_seen = max(idx for idx, ids, _ in rows if ids)
    ended_at = [idx for idx, _, ended in rows if ended == [1]]
    assert len(ended_at) == 1 and ended_at[0] > last_seen  # ends once, after the face has gone
    assert tracker.active_ids == []
    assert rows[0][1] == [1]  # the face is there at the start
