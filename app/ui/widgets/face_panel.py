"""The selected face's panels: the 7 class probabilities as bars, and the FAN attention strip of the current window
(a thumbnail of each aligned frame with a blue bar for self-attention alpha and an orange bar for the final weight),
so a user sees which frames the decision rests on. The strip draws only what the chosen head has (app.recognition.heads.STRIP):
alpha bars for FAN's heads only, and a caption saying what the orange bar is (equal weights for heads without
attention: score fusion, GRU, ensemble)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.recognition.heads import STRIP, StripKind
from app.ui.widgets import theme
from app.ui.state.display import AttentionCell
from app.ui.widgets.video_view import scaled_qimage


class ProbabilityBars(QWidget):
    """One horizontal bar per class, the top class highlighted; drawn directly (no per-bar widgets)."""

    def __init__(self, labels: Sequence[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.labels = tuple(labels)
        self.values = np.zeros(len(self.labels), np.float32)
        self.has_values = False
        self.setMinimumHeight(22 * len(self.labels))
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(280, 26 * len(self.labels))

    def set_values(self, probs: np.ndarray | None) -> None:
        self.has_values = probs is not None
        self.values = np.zeros(len(self.labels), np.float32) if probs is None else np.asarray(probs, np.float32)
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        fm = p.fontMetrics()
        name_w = max(fm.horizontalAdvance(label) for label in self.labels) + 10
        pct_w = fm.horizontalAdvance("100%") + 8
        row_h = self.height() / len(self.labels)
        top = int(np.argmax(self.values)) if self.has_values else -1
        bold = QFont(p.font())
        bold.setBold(True)
        for i, (label, v) in enumerate(zip(self.labels, self.values)):
            y = i * row_h
            p.setFont(bold if i == top else self.font())
            p.setPen(QColor(theme.TEXT if i == top else theme.MUTED))
            p.drawText(QRectF(0, y, name_w, row_h), Qt.AlignVCenter | Qt.AlignLeft, label)
            track = QRectF(name_w, y + row_h * 0.22, self.width() - name_w - pct_w, row_h * 0.56)
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(theme.SURFACE))
            p.drawRoundedRect(track, 3, 3)
            if self.has_values and v > 0:
                color = theme.emotion_color(label)
                if i != top:
                    color.setAlphaF(0.75)
                p.setBrush(color)
                p.drawRoundedRect(QRectF(track.x(), track.y(), max(2.0, track.width() * float(v)), track.height()),
                                  3, 3)
            p.setPen(QColor(theme.TEXT if i == top else theme.MUTED))
            text = f"{v:.0%}" if self.has_values else "-"
            p.drawText(QRectF(self.width() - pct_w, y, pct_w, row_h), Qt.AlignVCenter | Qt.AlignRight, text)
        p.end()


class AttentionStrip(QWidget):
    """The FAN window as in the paper's figure: thumbnails oldest to newest, each with an alpha bar (blue) and a
    final-weight bar (orange, relative to the window's largest weight)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cells: list[AttentionCell] = []
        self.window_length = 0
        # thumbnails at their drawn size, by crop: the window slides one frame at a time, so each crop is scaled
        # once rather than on every redraw; values are (crop, side, buffer, QImage), the crop pinning its id
        self._thumbs: dict[int, tuple] = {}
        self._thumb_rects: list[QRectF] = []  # where each cell was drawn, for tooltips
        self._placeholder = "Select a face to see which frames the decision rests on."
        self.head = "relation"
        self.kind: StripKind = STRIP["relation"]
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(900, 140)

    def set_head(self, key: str) -> None:
        """The head whose windows are shown (a card key or app name: relation/fan, self, fusion, gru, gru-causal,
        transformer, ensemble): what its bars mean."""
        key = "relation" if key == "fan" else key
        self.head, self.kind = key, STRIP.get(key, STRIP["relation"])
        self.setToolTip("")
        self.update()

    @property
    def caption(self) -> str:
        return ("blue: self-attention \u03b1; orange: " if self.kind.alpha else "orange: ") + self.kind.weight

    def set_cells(self, cells: list[AttentionCell], window_length: int) -> None:
        self.cells = cells
        self.window_length = max(window_length, len(cells))
        self.update()

    def _thumbnail(self, crop: np.ndarray, side: int, cache: dict) -> QImage:
        entry = self._thumbs.get(id(crop))
        if entry is None or entry[0] is not crop or entry[1] != side:
            buf, img = scaled_qimage(crop, side, side)
            entry = (crop, side, buf, img)
        cache[id(crop)] = entry
        return entry[3]

    def clear(self, placeholder: str | None = None) -> None:
        if placeholder is not None:
            self._placeholder = placeholder
        self.cells = []
        self._thumbs.clear()
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        if not self.cells:
            p.setPen(QColor(theme.MUTED))
            p.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self._placeholder)
            p.end()
            return
        slots = max(self.window_length, 1)
        gap = 4.0
        fm = p.fontMetrics()
        text_h = fm.height()
        bars = (("alpha", theme.ALPHA_BLUE),) if self.kind.alpha else ()
        bars += (("weight_height", theme.WEIGHT_ORANGE),)
        bars_h = len(bars) * 11 - 3
        # the caption: what the bars are for this head (equal weights are labelled, never drawn as attention)
        p.setPen(QColor(theme.MUTED))
        p.drawText(QRectF(0, 0, self.width(), text_h), Qt.AlignLeft | Qt.AlignVCenter, self.caption)
        top = text_h + 2
        # the thumbnails are square: as wide as a slot allows, as tall as the height left over allows
        side = min((self.width() - gap * (slots - 1)) / slots, self.height() - top - bars_h - text_h - 6)
        side = max(side, 8.0)
        total_w = slots * side + (slots - 1) * gap
        x0 = (self.width() - total_w) / 2
        y0 = top + (self.height() - top - (side + bars_h + text_h + 6)) / 2
        self._thumb_rects = []
        thumbs: dict[int, tuple] = {}
        for i, cell in enumerate(self.cells):
            x = x0 + i * (side + gap)
            thumb = QRectF(x, y0, side, side)
            self._thumb_rects.append(thumb)
            if cell.crop is not None:
                p.drawImage(round(thumb.x()), round(thumb.y()), self._thumbnail(cell.crop, round(side), thumbs))
            else:
                p.fillRect(thumb, QColor(theme.SURFACE))
            # the most trusted frame gets an orange outline: the decision rests on it most
            if cell.peak:
                p.setPen(QPen(QColor(theme.WEIGHT_ORANGE), 2))
                p.setBrush(Qt.NoBrush)
                p.drawRect(thumb.adjusted(-1, -1, 1, 1))
            for k, (field_name, color) in enumerate(bars):
                height = getattr(cell, field_name)
                track = QRectF(x, y0 + side + 3 + k * 11, side, 8)
                p.setPen(Qt.NoPen)
                p.setBrush(QColor(theme.SURFACE))
                p.drawRoundedRect(track, 2, 2)
                p.setBrush(QColor(color))
                p.drawRoundedRect(QRectF(track.x(), track.y(), track.width() * height, track.height()), 2, 2)
            p.setPen(QColor(theme.MUTED))
            p.drawText(QRectF(x - gap / 2, y0 + side + bars_h + 4, side + gap, text_h), Qt.AlignCenter,
                       str(cell.frame_index))
        for i in range(len(self.cells), slots):  # the window is still filling: empty slots, so its length shows
            x = x0 + i * (side + gap)
            p.setPen(QPen(QColor(theme.GRID), 1, Qt.DashLine))
            p.setBrush(Qt.NoBrush)
            p.drawRect(QRectF(x, y0, side, side))
        self._thumbs = thumbs  # only the crops of this window stay cached
        p.end()

    def event(self, e):
        # tooltips with the exact numbers of the cell under the cursor
        if e.type() == e.Type.ToolTip:
            hit = [c for c, r in zip(self.cells, self._thumb_rects) if r.left() <= e.pos().x() <= r.right()]
            what = "final weight" if self.kind.alpha else ("equal weight" if self.kind.equal else "attention")
            alpha = f"alpha {hit[0].alpha:.2f}, " if hit and self.kind.alpha else ""
            self.setToolTip(f"frame {hit[0].frame_index}: {alpha}{what} {hit[0].weight:.3f}" if hit else "")
        return super().event(e)


class BlendshapeBars(QWidget):
    """The face's strongest blendshapes (app.signals.extract.FaceSignals.top_blendshapes) as thin bars with their scores,
    drawn directly like ProbabilityBars."""

    def __init__(self, rows: int = 5, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows = rows
        self.items: list[tuple[str, float]] = []
        self.setMinimumHeight(18 * rows)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("MediaPipe blendshapes, 0-1: approximate proxies of facial action units, e.g. mouthSmile "
                        "~ AU12, cheekSquint ~ AU6, browDown ~ AU4 (docs/export-format.md)")

    def sizeHint(self) -> QSize:
        return QSize(280, 20 * self.rows)

    def set_items(self, items: list[tuple[str, float]]) -> None:
        self.items = list(items)[: self.rows]
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        fm = p.fontMetrics()
        names = [fm.horizontalAdvance(name) for name, _ in self.items] or [0]
        name_w = min(max(names) + 10, self.width() * 0.6)
        val_w = fm.horizontalAdvance("0.00") + 8
        row_h = self.height() / self.rows
        if not self.items:
            p.setPen(QColor(theme.MUTED))
            p.drawText(self.rect(), Qt.AlignLeft | Qt.AlignVCenter, "-")
        for i, (name, v) in enumerate(self.items):
            y = i * row_h
            p.setPen(QColor(theme.MUTED))
            p.drawText(QRectF(0, y, name_w, row_h), Qt.AlignVCenter | Qt.AlignLeft, name)
            track = QRectF(name_w, y + row_h * 0.3, self.width() - name_w - val_w, row_h * 0.4)
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(theme.SURFACE))
            p.drawRoundedRect(track, 2, 2)
            p.setBrush(QColor(theme.ALPHA_BLUE))
            p.drawRoundedRect(QRectF(track.x(), track.y(), max(2.0, track.width() * float(v)), track.height()), 2, 2)
            p.setPen(QColor(theme.TEXT))
            p.drawText(QRectF(self.width() - val_w, y, val_w, row_h), Qt.AlignVCenter | Qt.AlignRight, f"{v:.2f}")
        p.end()


def signals_text(signals) -> str:
    """The panel's one-line readout of reliability and head pose (rich text), or "" without signals."""
    if signals is None:
        return ""
    r = signals.reliability
    color = theme.TEXT if r >= 0.5 else theme.WEIGHT_ORANGE
    def deg(v: float) -> str:
        return f"{v:+.0f}\u00b0" if v == v else "?"  # NaN: the pose could not be solved
    return (f"<span style='color:{color}'>reliability <b>{r:.2f}</b></span> &nbsp; "
            f"<span style='color:{theme.MUTED}'>yaw</span> {deg(signals.yaw)} "
            f"<span style='color:{theme.MUTED}'>pitch</span> {deg(signals.pitch)} "
            f"<span style='color:{theme.MUTED}'>roll</span> {deg(signals.roll)}")


class FacePanel(QWidget):
    """Header (face, label, confidence), the probability bars, then the face's signals: reliability and head pose
    in one line, and its strongest blendshapes as bars."""

    def __init__(self, labels: Sequence[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("No face")
        f = QFont(self.title.font())
        f.setPointSizeF(f.pointSizeF() * 1.5)
        f.setBold(True)
        self.title.setFont(f)
        self.subtitle = QLabel("Click a face in the video to follow it.")
        self.subtitle.setStyleSheet(f"color: {theme.MUTED};")
        self.subtitle.setWordWrap(True)
        self.bars = ProbabilityBars(labels)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        caption = QLabel("SELECTED FACE")
        caption.setObjectName("sectionTitle")
        lay.addWidget(caption)
        lay.addWidget(self.title)
        lay.addWidget(self.subtitle)
        lay.addSpacing(6)
        lay.addWidget(self.bars)
        lay.addSpacing(8)
        signals_caption = QLabel("THIS FRAME'S SIGNALS")
        signals_caption.setObjectName("sectionTitle")
        lay.addWidget(signals_caption)
        self.readout = QLabel("")
        self.readout.setToolTip("reliability: how far to trust this frame's reading, 0-1 (face size, pose, "
                                "sharpness, FAN's attention, confidence); yaw > 0 nose to the image's right, "
                                "pitch > 0 nose up, roll > 0 clockwise")
        lay.addWidget(self.readout)
        self.blendshapes = BlendshapeBars()
        lay.addWidget(self.blendshapes)
        lay.addStretch(1)

    def show_face(self, track_id: int | None, label: str | None, confidence: float, probs: np.ndarray | None,
                  note: str = "", signals=None) -> None:
        """`signals`: the face's newest app.signals.extract.FaceSignals (None: not measured yet)."""
        text = signals_text(signals)
        if text != self.readout.text():  # setText re-lays out the panel: only when the line changes
            self.readout.setText(text)
        self.blendshapes.set_items(signals.top_blendshapes(self.blendshapes.rows) if signals is not None else [])
        if track_id is None:
            self._set_title("No face", "")
            self.subtitle.setText(note or "No face in view.")
            self.bars.set_values(None)
            return
        if label is None:
            self._set_title(f"Face #{track_id}", "")
        else:
            self._set_title(f"#{track_id}  {label}  {confidence:.0%}",
                            f"color: {theme.EMOTION_COLORS.get(label, theme.TEXT)};")
        self.subtitle.setText(note)
        self.bars.set_values(probs)

    def _set_title(self, text: str, style: str) -> None:
        self.title.setText(text)
        if style != self.title.styleSheet():  # a style change re-polishes the widget: only when the label changes
            self.title.setStyleSheet(style)
