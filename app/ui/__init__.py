"""The FAN Live desktop window: the only package that imports Qt.

It drives the same engine objects as the headless CLI (app.capture sources, app.pipeline.Pipeline,
app.timeline.recorder.SessionRecorder) from two thin worker threads, and draws what they produce. Display logic that needs no Qt
(layout math, smoothing, meters, the attention strip's data, the timeline's ring buffer, the frame hand-off, session
files) lives in plain modules here so it is tested without a window.
"""

from app.ui import qt_compat as _qt_compat

_qt_compat.apply()  # before any window exists: see qt_compat for the PySide6 6.12 / Python 3.11 crash it prevents
