"""Draws the window's Qt-free view model (app.ui.state.live.LiveState) into the workspace's views: the video with its
face boxes, the followed face's panel and attention strip, and that face's timeline."""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from app.ui.state.display import attention_cells
from app.ui.state.live import LiveState
from app.ui.widgets.video_view import FaceOverlay
from app.ui.widgets.workspace import Workspace

TIMELINE_HZ = 10        # the plot scrolls smoothly enough at 10 Hz, and pyqtgraph is the costliest view to redraw


class LiveView(QObject):
    """`draw(info, is_live)` paints the newest result; the timeline follows at most TIMELINE_HZ times a second.
    `view_probs(track_id, probs)` gives the probabilities the timeline plots (the markers' baseline-corrected view)."""

    def __init__(self, live: LiveState, ws: Workspace, view_probs: Callable, parent: QObject | None = None):
        super().__init__(parent)
        self.live, self.ws, self._view_probs = live, ws, view_probs
        self._last_timeline = 0.0
        self._timeline_timer = QTimer(self)
        self._timeline_timer.setSingleShot(True)
        self._timeline_timer.timeout.connect(lambda: self.update_timeline(force=True))

    def draw(self, info, is_live: bool) -> None:
        """The newest result into every view; `info` is the loaded model's PipelineInfo or None."""
        result = self.live.latest
        if result is None:
            return
        shown = self.live.follow()
        overlays = []
        for track_id, box in self.live.boxes():
            d = self.live.displayed(track_id)
            overlays.append(FaceOverlay(track_id, box, d.label if d else None, d.confidence if d else 0.0,
                                        track_id == shown))
        self.ws.video.set_frame(result.frame.image, overlays)
        self.draw_face(shown, info)
        self.ws.transport.set_position(result.frame.index, result.frame.time_s, is_live)

    def draw_face(self, track_id: int | None, info) -> None:
        panel, strip = self.ws.face_panel, self.ws.attention
        if track_id is None:
            note = "No face in view." if info else "No model loaded: faces are not read."
            panel.show_face(None, None, 0.0, None, note)
            strip.clear("No face in view." if info else "No model loaded.")
            self.update_timeline()
            return
        d = self.live.displayed(track_id)
        pred = self.live.last_predictions.get(track_id)
        window = info.window_length if info else 0
        if d is None or pred is None:
            panel.show_face(track_id, None, 0.0, None, "Reading the face...")
            strip.clear(f"Face #{track_id}: the window is filling.")
        else:
            picked = "selected" if track_id == self.live.selected_face else "largest face; click another to follow it"
            smoothing = "smoothed" if self.live.smoothing else "raw"
            panel.show_face(track_id, d.label, d.confidence, d.probs,
                            f"{picked} \u00b7 {smoothing} probabilities \u00b7 "
                            f"{len(pred.frame_indices)}/{window} frames in window",
                            signals=self.live.last_signals.get(track_id))
            strip.set_cells(attention_cells(pred.alpha, pred.weight, pred.frame_indices, pred.crops), window)
        self.live.timeline_face = track_id
        self.update_timeline()

    def update_timeline(self, force: bool = False) -> None:
        """Plot the history of `timeline_face` (the face shown last: a face that left the frame keeps its plot) at
        most TIMELINE_HZ times a second; a skipped update is made up by a trailing one, so the plot never stays
        behind the last frame (pause, end of file)."""
        track_id = self.live.timeline_face
        wait = self._last_timeline + 1.0 / TIMELINE_HZ - time.monotonic()
        if not force and wait > 0:
            if not self._timeline_timer.isActive():
                self._timeline_timer.start(int(wait * 1000) + 1)
            return
        self._timeline_timer.stop()
        self._last_timeline = time.monotonic()
        timeline = self.ws.timeline
        if track_id is None:
            if timeline.points_shown:
                timeline.clear_series()
            return
        times, probs, rel_times, reliability = self.live.series(track_id, timeline.span_s)
        probs = self._view_probs(track_id, probs)  # minus the face's baseline mean in the corrected view
        timeline.show_series(times, probs, self.live.history.latest_time, rel_times, reliability)

    def stop(self) -> None:
        self._timeline_timer.stop()
