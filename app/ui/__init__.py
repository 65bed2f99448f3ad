"""The FAN Live desktop window: the only package that imports Qt.

It drives the same engine objects as the headless CLI (app.capture sources, app.pipeline.Pipeline,
app.session.SessionRecorder) from two thin worker threads, and draws what they produce. Display logic that needs no Qt
(layout math, smoothing, meters, the attention strip's data, the timeline's ring buffer, the frame hand-off, session
files) lives in plain modules here so it is tested without a window.
"""
