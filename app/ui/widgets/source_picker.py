"""The toolbar's source picker: the cameras that open on this machine, the live source in use and the last one
used (a URL's password masked), or a typed camera number, device path or stream URL."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox

from app.capture.camera import camera_index, describe_source, is_device_path, is_masked, is_stream_url, mask_url
from app.capture.video import VIDEO_SUFFIXES

RESCAN = "rescan"       # the "look for cameras again" item


def parse_live_spec(spec) -> int | str:
    """A typed or chosen source as open_source takes it: a camera index, or a device path or stream URL (ValueError,
    one line a user can act on, for anything else or a URL whose password was masked)."""
    spec = camera_index(spec) if camera_index(spec) is not None else str(spec).strip()
    if isinstance(spec, str) and is_masked(spec):
        raise ValueError(f"{spec} has a masked password (***): type the full URL, password included.")
    if isinstance(spec, str) and not (is_stream_url(spec) or is_device_path(spec)):
        raise ValueError(f"Not a camera or a stream: {mask_url(spec)}. Type a camera number, a device "
                         "path (/dev/video2) or a stream URL (rtsp://, http://, udp://, srt://).")
    return spec


def reopenable(last: str) -> int | str | None:
    """The stored last source as open_source takes it, or None when there is none or it cannot be opened as stored
    (a masked URL, or text that is no camera, device or stream)."""
    if not last or is_masked(last):
        return None
    if camera_index(last) is not None:
        return camera_index(last)
    return last if is_stream_url(last) or is_device_path(last) else None


def dropped_video(mime) -> Path | None:
    """The first video file among a drag's URLs (a QMimeData), or None."""
    if mime.hasUrls():
        for url in mime.urls():
            p = Path(url.toLocalFile())
            if p.suffix.lower() in VIDEO_SUFFIXES:
                return p
    return None


class SourcePicker(QComboBox):
    """An editable combo box. `source_chosen(spec)` when the user picks or types a source (Enter);
    `rescan_requested()` for "Look for cameras again"."""

    source_chosen = Signal(object)
    rescan_requested = Signal()

    def __init__(self):
        super().__init__()
        self.setEditable(True)  # a typed stream URL, device path or camera index
        self.setInsertPolicy(QComboBox.NoInsert)
        self.setFocusPolicy(Qt.ClickFocus)  # keys go to the window's shortcuts until it is clicked
        self.setMinimumWidth(220)
        self.setToolTip("The cameras that open on this machine and the last source used; or type a stream URL "
                        "(rtsp://, http://.../stream.mjpg, udp://, srt://), a device path (/dev/video2) or a camera "
                        "number, then Enter")
        self.lineEdit().setFocusPolicy(Qt.ClickFocus)
        self.lineEdit().setPlaceholderText("camera, rtsp://..., /dev/video2")
        self.addItem("Looking for cameras...", None)
        self.activated.connect(self._on_activated)
        self.lineEdit().returnPressed.connect(self._on_typed)

    def show_probing(self) -> None:
        self.clear()
        self.addItem("Looking for cameras...", None)

    def show_cameras(self, cameras: list[int], in_use, last: str) -> list[int]:
        """List `cameras` (with `in_use`, the live source open now, which a probe cannot open again) and `last`, the
        stored last source (masked). Returns the camera indices listed."""
        if camera_index(in_use) is not None:
            cameras = sorted({*cameras, camera_index(in_use)})
        self.clear()
        self.addItem("Choose a camera" if cameras else "No camera found", None)
        for i in cameras:
            self.addItem(f"Camera {i}", i)
        # the stream or device in use (its URL with the password, in memory only) and the last one used (stored
        # masked), shown masked
        extra = [in_use] if isinstance(in_use, str) and camera_index(in_use) is None else []
        if last and camera_index(last) is None and all(mask_url(e) != last for e in extra):
            extra.append(last)
        for e in extra:
            self.addItem(mask_url(e), e)
        self.addItem("Look for cameras again", RESCAN)
        return cameras

    def show_current(self, spec) -> None:
        """Select the live source `spec` (a Path, a file, selects nothing)."""
        live = spec is not None and not isinstance(spec, Path)
        i = self.findData(spec) if live else -1
        self.setCurrentIndex(max(i, 0))
        if live and i < 0:
            self.setEditText(describe_source(spec))

    def _on_activated(self, i: int) -> None:
        spec = self.itemData(i)
        if spec == RESCAN:
            self.rescan_requested.emit()
        elif spec is not None:
            self.source_chosen.emit(spec)

    def _on_typed(self) -> None:
        """Enter: a camera number, a device path or a stream URL is chosen; a listed item opens by activated()."""
        text = self.currentText().strip()
        i = self.findText(text)
        if i >= 0 and self.itemData(i) is not None:
            return
        if text:
            self.source_chosen.emit(text)
