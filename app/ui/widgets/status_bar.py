"""The status bar's permanent labels; their text comes from app.ui.state.status.status_texts."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

from app.ui.widgets import theme

LABELS = (("source", "Current source"), ("input", "Frames read per second"),
          ("processing", "Frames through the model per second"),
          ("pace", "A file is analysed frame by frame: when the model is slower than real time, playback waits for it"),
          ("latency", "Capture to result, median of recent frames (model time in brackets)"),
          ("provider", "ONNX Runtime execution provider in use"), ("faces", "Faces tracked now"),
          ("recording", "Recording state"))


def add_status_labels(bar: QStatusBar) -> dict[str, QLabel]:
    """One permanent label per key of LABELS, in that order."""
    labels = {}
    for key, tip in LABELS:
        label = QLabel("")
        label.setToolTip(tip)
        # a label may shrink below its text (then it is cut) rather than make the window wider than a small screen
        # (a long file name as the source)
        label.setMinimumWidth(24)
        bar.addPermanentWidget(label)
        labels[key] = label
    return labels


def show_status(labels: dict[str, QLabel], texts: dict[str, str], recording: bool) -> None:
    """Set the labels from status_texts' dict ("provider_tip" is the provider label's tooltip)."""
    for key, text in texts.items():
        if key == "provider_tip":
            labels["provider"].setToolTip(text)
        else:
            labels[key].setText(text)
    labels["recording"].setStyleSheet(f"color: {theme.RECORD_RED};" if recording else "")
