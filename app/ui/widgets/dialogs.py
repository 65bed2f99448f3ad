"""The window's file dialogs; each remembers its folder in the window's settings store."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from app.capture.video import VIDEO_SUFFIXES

EXPORT_FILTERS = {"CSV + JSON + PNG plot (*.csv)": ("csv", "json", "png"), "CSV table (*.csv)": ("csv",),
                  "JSON with metadata (*.json)": ("json",), "PNG plot (*.png)": ("png",)}


def ask_video(parent: QWidget, store: QSettings) -> Path | None:
    """A video file to open, or None (cancelled)."""
    start = store.value("ui/last_video_dir", str(Path.home()))
    patterns = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
    path, _ = QFileDialog.getOpenFileName(parent, "Open a video", str(start), f"Videos ({patterns});;All files (*)")
    if not path:
        return None
    store.setValue("ui/last_video_dir", str(Path(path).parent))
    return Path(path)


def ask_export(parent: QWidget, store: QSettings, folder: Path, stem: str) -> tuple[Path, tuple[str, ...]] | None:
    """Where to export a session and in which formats, or None (cancelled); `folder` is the first run's start."""
    last = store.value("ui/last_export_dir", str(folder))
    path, chosen = QFileDialog.getSaveFileName(parent, "Export the session", str(Path(last) / f"{stem}.csv"),
                                               ";;".join(EXPORT_FILTERS))
    if not path:
        return None
    store.setValue("ui/last_export_dir", str(Path(path).parent))
    return Path(path), EXPORT_FILTERS.get(chosen, ("csv", "json", "png"))
