import numpy as np
import pytest

from app.ui.state.display import (LabelSmoother, attention_cells, face_at, fit_rect, follow_face, format_clock,
    view_to_frame)


def test_fit_rect_keeps_aspect_and_centres():
    x, y, w, h, s = fit_rect(640, 360, 1000, 1000)  # wide source in a square view: letterbox
    assert (w, h) == (1000, 562.5) and x == 0 and y == pytest.approx((1000 - 562.5) / 2) and s == pytest.approx(1000 / 640)
    x, y, w, h, s = fit_rect(640, 360, 400, 100)    # wide view: pillarbox
    assert h == 100 and w == pytest.approx(640 * 100 / 360) and y == 0 and x == pytest.approx((400 - w) / 2)
    assert fit_rect(0, 360, 100, 100) == (0, 0, 0, 0, 0)


def test_view_to_frame_inverts_the_fit():
    # 640x360 shown in 1280x1000: scale 2, frame starts at y=140
    assert view_to_frame(640, 140 + 360, 640, 360, 1280, 1000) == pytest.approx((320, 180))
    assert view_to_frame(10, 10, 640, 360, 1280, 1000) is None  # in the letterbox bar


def test_face_at_prefers_the_smallest_box():
    boxes = [(1, (0, 0, 100, 100)), (2, (40, 40, 60, 60))]
    assert face_at(boxes, 50, 50) == 2
    assert face_at(boxes, 10, 10) == 1
    assert face_at(boxes, 200, 10) is None


def test_follow_face_keeps_the_pick_else_the_largest():
    boxes = [(3, (0, 0, 10, 10)), (5, (0, 0, 50, 50))]
    assert follow_face(3, boxes) == 3
    assert follow_face(9, boxes) == 5
    assert follow_face(None, boxes) == 5
    assert follow_face(3, []) is None


def test_label_smoother_is_an_ema_per_track():
    s = LabelSmoother(factor=0.5)
    a, b = np.eye(7, dtype=np.float32)[0], np.eye(7, dtype=np.float32)[1]
    assert np.allclose(s.update(1, a), a)            # the first value passes through
    assert np.allclose(s.update(1, b), 0.5 * a + 0.5 * b)
    assert np.allclose(s.update(2, b), b)            # tracks are independent
    s.drop([1])
    assert s.get(1) is None and np.allclose(s.update(1, b), b)
    assert np.allclose(LabelSmoother(1.0).update(0, a), a)
    with pytest.raises(ValueError):
        LabelSmoother(0.0)


def test_attention_cells_scale_weights_to_the_largest():
    crops = [np.full((8, 8), i, np.uint8) for i in range(4)]
    cells = attention_cells([0.2, 0.9, 1.3, 0.5], [0.1, 0.2, 0.4, 0.3], [10, 11, 12, 13], crops)
    assert [c.frame_index for c in cells] == [10, 11, 12, 13]
    assert [c.weight_height for c in cells] == pytest.approx([0.25, 0.5, 1.0, 0.75])
    assert cells[2].alpha == 1.0  # clipped into the bar
    assert cells[3].crop is crops[3]
    assert [c.peak for c in cells] == [False, False, True, False]
    assert not any(c.peak for c in attention_cells([0.5] * 3, [1 / 3] * 3, range(3), None))  # uniform: no peak
    assert attention_cells([], [], [], None) == []
    assert len(attention_cells([0.5] * 5, [0.2] * 5, range(5), crops)) == 4  # never more cells than crops


def test_format_clock():
    assert format_clock(0) == "0:00.0"
    assert format_clock(75.25) == "1:15.2"
    assert format_clock(3725) == "1:02:05"
