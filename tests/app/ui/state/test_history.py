import numpy as np

from app.ui.state.history import ProbabilityHistory


def test_history_keeps_the_last_span_in_order():
    h = ProbabilityHistory(n_classes=7, capacity=50)
    for i in range(120):  # wraps the ring twice
        h.append(1, i * 0.1, np.full(7, i, np.float32))
    t, p = h.series(1)
    assert len(t) == 50 and np.all(np.diff(t) > 0) and p[-1, 0] == 119
    t, p = h.series(1, span_s=1.0)
    assert np.isclose(t[-1], 11.9) and t[0] >= 11.9 - 1.0 - 1e-9 and len(t) in (10, 11)
    t, p = h.series(7)
    assert t.shape == (0,) and p.shape == (0, 7)
    h.clear()
    assert h.track_ids == []
