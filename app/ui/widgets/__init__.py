"""The Qt widgets: the main window (wiring), the video view, panels, timeline, transport bar and settings dock."""
