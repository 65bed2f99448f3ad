"""The main view: the current frame scaled to the widget with its aspect ratio kept, each face's box with track id,
label and confidence drawn over it, and a centred message when there is nothing to show. A click on a face emits
face_clicked(track_id)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QPushButton, QSizePolicy, QVBoxLayout, QWidget

from app.ui.widgets import theme
from app.ui.state.display import face_at, fit_rect, view_to_frame


@dataclass(frozen=True)
class FaceOverlay:
    """What is drawn for one face: box (x0, y0, x1, y1) in frame pixels; label None until the window has a
    prediction."""

    track_id: int
    box: tuple[float, float, float, float]
    label: str | None
    confidence: float
    selected: bool


def scaled_qimage(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, QImage]:
    """A BGR or gray uint8 array resized to width x height (OpenCV: area filter when shrinking, linear when
    enlarging; several times faster than Qt's smooth scaling) as a 32-bit QImage, the format the window's backing
    store blits without converting. Returns (buffer, image): the caller keeps the buffer alive with the image."""
    width, height = max(1, int(width)), max(1, int(height))
    h, w = image.shape[:2]
    if (w, h) != (width, height):
        shrink = width < w or height < h
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    bgra = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA if image.ndim == 2 else cv2.COLOR_BGR2BGRA)
    return bgra, QImage(bgra.data, width, height, bgra.strides[0], QImage.Format_RGB32)


class VideoView(QWidget):
    face_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self._array: np.ndarray | None = None
        self._scaled: tuple[np.ndarray, QImage] | None = None  # the frame at its drawn size, made once per frame
        self._faces: list[FaceOverlay] = []
        self._message = ""
        self._label_font = QFont(self.font())
        self._label_font.setPointSizeF(max(9.0, self.font().pointSizeF()))
        self._label_font.setBold(True)
        self._message_font = QFont(self.font())
        self._message_font.setPointSizeF(self.font().pointSizeF() * 1.25)
        # a call-to-action under the message (e.g. "Open video..." when no camera opens); hidden unless wanted
        self.action_button = QPushButton(self)
        self.action_button.hide()
        lay = QVBoxLayout(self)
        lay.addStretch(3)
        lay.addWidget(self.action_button, 0, Qt.AlignHCenter)
        lay.addStretch(2)
        self.frames_shown = 0

    # -- content -----------------------------------------------------------------------------------------------
    def set_frame(self, image: np.ndarray, faces: list[FaceOverlay]) -> None:
        self._array = np.ascontiguousarray(image)
        self._scaled = None
        self._faces = faces
        self.frames_shown += 1
        self.update()

    def clear_frame(self) -> None:
        self._array = self._scaled = None
        self._faces = []
        self.update()

    def set_message(self, text: str, action: str | None = None) -> None:
        """A centred message over the view ('' hides it); `action` labels action_button (None hides it)."""
        self._message = text
        self.action_button.setVisible(bool(action))
        if action:
            self.action_button.setText(action)
        self.update()

    @property
    def message(self) -> str:
        return self._message

    @property
    def faces(self) -> list[FaceOverlay]:
        return list(self._faces)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return None if self._array is None else (self._array.shape[1], self._array.shape[0])

    def frame_rect(self) -> QRectF:
        """Where the frame is drawn, in widget pixels (empty without a frame)."""
        if self._array is None:
            return QRectF()
        x, y, w, h, _ = fit_rect(self._array.shape[1], self._array.shape[0], self.width(), self.height())
        return QRectF(x, y, w, h)

    # -- events ------------------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if self._array is None or event.button() != Qt.LeftButton:
            return super().mousePressEvent(event)
        p = view_to_frame(event.position().x(), event.position().y(), self._array.shape[1], self._array.shape[0],
                          self.width(), self.height())
        if p is not None:
            hit = face_at(((f.track_id, f.box) for f in self._faces), *p)
            if hit is not None:
                self.face_clicked.emit(hit)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(theme.VIDEO_BACKGROUND))
        if self._array is not None:
            rect = self.frame_rect()
            w, h = round(rect.width()), round(rect.height())
            if self._scaled is None or (self._scaled[1].width(), self._scaled[1].height()) != (w, h):
                self._scaled = scaled_qimage(self._array, w, h)
            painter.drawImage(round(rect.x()), round(rect.y()), self._scaled[1])
            scale = rect.width() / self._array.shape[1]
            painter.setRenderHint(QPainter.Antialiasing, True)
            for face in sorted(self._faces, key=lambda f: f.selected):  # the selected face on top
                self._draw_face(painter, face, rect.x(), rect.y(), scale)
        if self._message:
            self._draw_message(painter)
        painter.end()

    def _draw_face(self, painter: QPainter, face: FaceOverlay, ox: float, oy: float, scale: float) -> None:
        x0, y0, x1, y1 = face.box
        box = QRectF(ox + x0 * scale, oy + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale)
        color = theme.emotion_color(face.label) if face.label else QColor(theme.MUTED)
        if face.selected:  # a dark halo keeps the selected box visible on any background
            painter.setPen(QPen(QColor(0, 0, 0, 160), 5))
            painter.drawRect(box)
        painter.setPen(QPen(color, 3 if face.selected else 2))
        painter.drawRect(box)
        text = f"#{face.track_id}  " + (f"{face.label} {face.confidence:.0%}" if face.label else "reading...")
        painter.setFont(self._label_font)
        fm = painter.fontMetrics()
        tw, th = fm.horizontalAdvance(text) + 10, fm.height() + 4
        ty = box.top() - th if box.top() - th >= oy else box.bottom()  # above the box unless it would leave the frame
        chip = QRectF(box.left() - (1.5 if face.selected else 1), ty, tw, th)
        painter.fillRect(chip, color)
        painter.setPen(QColor("#111214") if color.lightnessF() > 0.55 else QColor("#ffffff"))
        painter.drawText(chip.adjusted(5, 0, -5, 0), Qt.AlignVCenter | Qt.AlignLeft, text)

    def _draw_message(self, painter: QPainter) -> None:
        painter.setFont(self._message_font)
        r = QRectF(self.rect()).adjusted(40, 0, -40, 0)
        if self._array is not None:  # over a frame: a dark band so the text stays readable
            band = QRectF(0, self.height() * 0.35, self.width(), self.height() * 0.3)
            painter.fillRect(band, QColor(0, 0, 0, 170))
        painter.setPen(QColor(theme.TEXT))
        flags = Qt.AlignHCenter | Qt.AlignVCenter | Qt.TextWordWrap
        bounding = painter.boundingRect(r, flags, self._message)
        target = QRectF(r.x(), self.height() * 0.45 - bounding.height() / 2, r.width(), bounding.height())
        if not self.action_button.isVisible():
            target.moveCenter(QPointF(self.width() / 2, self.height() / 2))
        painter.drawText(target, flags, self._message)
