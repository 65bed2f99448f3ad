"""The timeline's dimming of low-reliability stretches: the shade's alpha, and the plot drawing it."""
import numpy as np

from app.ui.widgets.timeline import shade_alpha


def test_shade_is_clear_when_reliable_and_darker_the_less_reliable():
    a = shade_alpha(np.array([1.0, 0.5, 0.25, 0.0, np.nan]))
    assert a.dtype == np.uint8 and a[0] == 0 and a[1] == 0 and 0 < a[2] < a[3] == 180 and a[4] == 180


def test_the_plot_dims_the_unreliable_half(qtbot):
    from app.emotions import EMOTIONS
    from app.ui.widgets.timeline import TimelineView

    view = TimelineView(EMOTIONS)
    qtbot.addWidget(view)
    t = np.linspace(0, 4, 41)
    probs = np.full((41, 7), 1 / 7, np.float32)
    rel = np.where(t < 2, 0.9, 0.1)
    view.show_series(t, probs, 4.0, t, rel)
    assert 0.45 < view.dimmed_share < 0.55
    view.show_series(t, probs, 4.0)  # no reliability (a version 1 session): nothing dimmed
    assert view.dimmed_share == 0.0
