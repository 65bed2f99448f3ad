"""The attention strip draws only what the chosen head has (app.recognition.heads.STRIP): alpha bars for FAN's heads, a caption
that names equal weights as such for heads without attention."""
import numpy as np
import pytest

pytest.importorskip("PySide6")

from app.ui.state.display import attention_cells  # noqa: E402
from app.ui.widgets.face_panel import AttentionStrip  # noqa: E402

pytestmark = pytest.mark.qt


@pytest.mark.parametrize("head, alpha, words", [("fan", True, "\u03b1\u00b7\u03b2"), ("self", True, "\u03b1"),
                                                ("fusion", False, "equal weights"), ("gru-causal", False, "no attention"),
                                                ("transformer", False, "newest frame's attention"),
                                                ("ensemble", False, "equal weights")])
def test_the_strip_says_what_its_bars_are(qtbot, head, alpha, words):
    strip = AttentionStrip()
    qtbot.addWidget(strip)
    strip.resize(600, 160)
    strip.set_head(head)
    assert strip.kind.alpha is alpha and words in strip.caption and ("\u03b1;" in strip.caption) is alpha
    t = 4
    strip.set_cells(attention_cells(np.full(t, 1 / t), np.full(t, 1 / t), np.arange(t), [None] * t), 8)
    strip.grab()  # paints with this head's bars and caption
    assert not any(c.peak for c in strip.cells)  # equal weights point at no frame
