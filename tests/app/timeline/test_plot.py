"""The timeline plot: a real PNG of one face's probabilities over time."""
import numpy as np
import pytest

from app.timeline.plot import plot_timeline
from tests.app.timeline.test_recorder import make_rows


def test_plot_timeline_writes_a_real_png(tmp_path):
    import matplotlib.image

    rows = make_rows(60, faces=(1, 2))
    rows = [r for r in rows if not (r.face_id == 1 and 20 <= r.frame_index < 40)]  # face 1 lost for a while
    out = plot_timeline(rows, tmp_path / "t.png", face_id=1, title="face 1 test")
    assert out == tmp_path / "t.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(out)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05 and len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 7
    assert not list(tmp_path.glob("*.tmp"))
    plot_timeline(rows, tmp_path / "auto.png")  # the face with the most rows
    with pytest.raises(ValueError, match="face 9"):
        plot_timeline(rows, tmp_path / "none.png", face_id=9)
    with pytest.raises(ValueError, match="no face found"):
        plot_timeline([], tmp_path / "none.png")
