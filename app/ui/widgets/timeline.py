"""The running timeline: the selected face's 7 probabilities over session time in a scrolling pyqtgraph plot, with a
band of its top label underneath; stretches where the reading's reliability is low are dimmed (a shade over the
plot, darker the lower the reliability below RELIABLE). The window calls `show_series` at its display rate (not per
processed frame); each call is 7 `setData`s and two one-row images on the visible span only, so the plot never slows
the video."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.timeline.summary import RELIABLE
from app.ui.widgets import theme

SPAN_S = 30.0      # seconds of history in view once the session is longer
MIN_SPAN_S = 10.0  # the narrowest view, so the first seconds are not a smear at the left edge


def legend_html(labels: Sequence[str]) -> str:
    """The curves' legend as rich text for the section header (outside the plot, so it never hides a curve)."""
    return " &nbsp;".join(f"<span style='color:{theme.EMOTION_COLORS.get(n, theme.MUTED)}'>\u25ac</span> {n}"
                          for n in labels)


def shade_alpha(reliability: np.ndarray) -> np.ndarray:
    """Reliability (N,) -> the shade's alpha (N,) uint8: 0 at or above RELIABLE, up to 180 (70%) at 0."""
    r = np.nan_to_num(np.asarray(reliability, np.float32), nan=0.0)
    return (np.clip((RELIABLE - r) / RELIABLE, 0.0, 1.0) * 180).astype(np.ubyte)


class TimelineView(QWidget):
    def __init__(self, labels: Sequence[str], span_s: float = SPAN_S, parent: QWidget | None = None):
        super().__init__(parent)
        self.labels = tuple(labels)
        self.span_s = span_s
        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget(background=theme.BACKGROUND)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        item = self.plot.getPlotItem()
        item.setYRange(-0.1, 1.08, padding=0)
        item.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
        item.setLabel("left", "probability", color=theme.MUTED)
        item.setLabel("bottom", "session time (s)", color=theme.MUTED)
        item.showGrid(x=True, y=True, alpha=0.15)
        for axis in ("left", "bottom"):
            ax = item.getAxis(axis)
            ax.setPen(pg.mkPen(theme.GRID))
            ax.setTextPen(pg.mkPen(theme.MUTED))
        self.curves = [self.plot.plot([], [], pen=pg.mkPen(theme.EMOTION_COLORS.get(name, theme.MUTED), width=2),
                                      skipFiniteCheck=True) for name in self.labels]
        # the top label as a band under the curves: one image row of class colours stretched over the span (one
        # item, whatever the number of frames)
        self.band = pg.ImageItem(axisOrder="row-major")
        self.band.setZValue(-10)
        item.addItem(self.band)
        # low reliability as a shade over the curves: one image row of background-coloured alpha over the span
        self.shade = pg.ImageItem(axisOrder="row-major")
        self.shade.setZValue(10)
        item.addItem(self.shade)
        self._shade_rgb = np.array(pg.mkColor(theme.BACKGROUND).getRgb()[:3], np.ubyte)
        self._lut = np.array([pg.mkColor(theme.EMOTION_COLORS.get(n, theme.MUTED)).getRgb()
                              for n in self.labels], np.ubyte)
        self.placeholder = pg.TextItem("", color=theme.MUTED, anchor=(0.5, 0.5))
        item.addItem(self.placeholder, ignoreBounds=True)
        item.setXRange(0, MIN_SPAN_S, padding=0)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 4)
        lay.addWidget(self.plot)
        self.points_shown = 0
        self.dimmed_share = 0.0   # of the plotted span, the share dimmed for low reliability
        self.set_placeholder("The selected face's probabilities appear here as the video plays.")

    def set_placeholder(self, text: str) -> None:
        self.placeholder.setText(text)
        self.placeholder.setVisible(bool(text))
        if text:
            x0, x1 = self.plot.getPlotItem().viewRange()[0]
            self.placeholder.setPos((x0 + x1) / 2, 0.5)

    def show_series(self, times: np.ndarray, probs: np.ndarray, now: float, rel_times: np.ndarray | None = None,
                    reliability: np.ndarray | None = None) -> None:
        """times (N,), probs (N, K) of one face, oldest first; `now` is the session's latest time (the right edge);
        rel_times (M,), reliability (M,): the face's reliability over time, for the dimming (None: no dimming)."""
        # a short session fills the plot (at least MIN_SPAN_S wide); a long one scrolls with the last span_s seconds
        x1 = max(now, MIN_SPAN_S)
        self.plot.getPlotItem().setXRange(max(0.0, x1 - self.span_s), x1, padding=0)
        self.points_shown = len(times)
        if not len(times):
            self.clear_series()
            return
        self.set_placeholder("")
        for k, curve in enumerate(self.curves):
            curve.setData(times, probs[:, k], skipFiniteCheck=True)
        self._show_band(times, probs)
        self._show_shade(times, rel_times, reliability)

    def _show_shade(self, times: np.ndarray, rel_times: np.ndarray | None, reliability: np.ndarray | None) -> None:
        """Dim where reliability < RELIABLE: alpha rises linearly from 0 at RELIABLE to ~70% at 0."""
        self.dimmed_share = 0.0
        if rel_times is None or reliability is None or not len(rel_times) or len(times) < 2:
            self.shade.clear()
            return
        t0, t1 = float(times[0]), float(times[-1])
        if t1 <= t0:
            self.shade.clear()
            return
        dim = shade_alpha(np.asarray(reliability, np.float32)[_step_index(t0, t1, rel_times)])
        self.dimmed_share = float((dim > 0).mean())
        rgba = np.empty((1, len(dim), 4), np.ubyte)
        rgba[0, :, :3] = self._shade_rgb
        rgba[0, :, 3] = dim
        self.shade.setImage(rgba, autoLevels=False)
        self.shade.setRect(t0, -0.1, t1 - t0, 1.18)

    def _show_band(self, times: np.ndarray, probs: np.ndarray) -> None:
        # resample the top label onto a regular grid of the visible span, so one image row draws the whole band
        t0, t1 = float(times[0]), float(times[-1])
        if t1 <= t0:
            self.band.clear()
            return
        top = probs.argmax(1)[_step_index(t0, t1, times)]
        rgba = self._lut[top][None, :, :]  # (1, n, 4)
        self.band.setImage(rgba, autoLevels=False)
        self.band.setRect(t0, -0.09, t1 - t0, 0.06)

    def clear_series(self) -> None:
        for curve in self.curves:
            curve.setData([], [])
        self.band.clear()
        self.shade.clear()
        self.dimmed_share = 0.0
        self.points_shown = 0


def _step_index(t0: float, t1: float, sample_times: np.ndarray, n: int = 400) -> np.ndarray:
    """For n evenly spaced times over [t0, t1], the index of the last sample at or before each (a step function
    resampled onto a regular grid, so one image row draws a whole band)."""
    grid = np.linspace(t0, t1, n)
    return np.clip(np.searchsorted(sample_times, grid, side="right") - 1, 0, len(sample_times) - 1)
