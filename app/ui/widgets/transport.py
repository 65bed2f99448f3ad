"""The transport bar under the video: play/pause, frame step, seek slider, media time, replay speed and loop.

It only shows state and emits the user's requests; the window forwards them to the capture worker. Its controls
never take keyboard focus, so space and the arrows always reach the window's shortcuts.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from app.ui.state.display import format_clock

# (label, realtime, speed): real-time modes are paced by media time (frames dropped when the model is slower);
# the fast mode processes every frame as quickly as the model allows.
SPEEDS = (("0.5x", True, 0.5), ("1x real time", True, 1.0), ("2x", True, 2.0), ("As fast as possible", False, 1.0))


class JumpSlider(QSlider):
    """A slider that jumps to where it is clicked (QSlider pages by default, which nobody expects on a timeline)."""

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton and self.orientation() == Qt.Horizontal:
            value = QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), int(event.position().x()),
                                                   self.width())
            self.setValue(value)
            self.sliderMoved.emit(value)
        super().mousePressEvent(event)


class TransportBar(QWidget):
    play_toggled = Signal(bool)        # True: play
    step_requested = Signal(int)       # +1 / -1
    seek_requested = Signal(int)       # frame index
    speed_changed = Signal(bool, float)  # realtime, speed
    loop_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        style = self.style()
        self._icon_play = style.standardIcon(QStyle.SP_MediaPlay)
        self._icon_pause = style.standardIcon(QStyle.SP_MediaPause)
        self.play_button = self._button(self._icon_play, "Play / pause (Space)")
        self.play_button.clicked.connect(self._on_play_clicked)
        self.back_button = self._button(style.standardIcon(QStyle.SP_MediaSkipBackward), "Previous frame (Left)")
        self.back_button.clicked.connect(lambda: self.step_requested.emit(-1))
        self.forward_button = self._button(style.standardIcon(QStyle.SP_MediaSkipForward), "Next frame (Right)")
        self.forward_button.clicked.connect(lambda: self.step_requested.emit(1))
        self.slider = JumpSlider(Qt.Horizontal)
        self.slider.setFocusPolicy(Qt.NoFocus)
        self.slider.setRange(0, 0)
        self.slider.sliderMoved.connect(self.seek_requested)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.time_label.setMinimumWidth(self.time_label.fontMetrics().horizontalAdvance("00:00.0 / 00:00.0") + 8)
        self.time_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.speed_combo = QComboBox()
        self.speed_combo.setFocusPolicy(Qt.NoFocus)
        self.speed_combo.setToolTip("Replay speed: real time (frames dropped if the model is slower) or every frame "
                                    "as fast as possible")
        for label, _, _ in SPEEDS:
            self.speed_combo.addItem(label)
        self.speed_combo.setCurrentIndex(1)
        self.speed_combo.currentIndexChanged.connect(self._on_speed_changed)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setFocusPolicy(Qt.NoFocus)
        self.loop_check.toggled.connect(self.loop_toggled)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        for w in (self.back_button, self.play_button, self.forward_button):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.time_label)
        lay.addSpacing(8)
        lay.addWidget(self.speed_combo)
        lay.addWidget(self.loop_check)
        self._playing = False
        self._duration = 0.0
        self.set_live(None)

    def _button(self, icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.NoFocus)
        return b

    # -- state from the window ---------------------------------------------------------------------------------
    def set_live(self, live: bool | None, frame_count: int | None = None, fps: float | None = None) -> None:
        """None: no source; True: a camera (pause only); False: a file (everything)."""
        has_file = live is False
        for w in (self.back_button, self.forward_button, self.slider, self.speed_combo, self.loop_check):
            w.setEnabled(has_file)
        self.play_button.setEnabled(live is not None)
        self.slider.setRange(0, max(0, (frame_count or 1) - 1))
        self._duration = (frame_count / fps) if (has_file and frame_count and fps) else 0.0
        self.time_label.setText("live" if live else format_clock(0) + (f" / {format_clock(self._duration)}"
                                                                        if self._duration else ""))

    def set_playing(self, playing: bool) -> None:
        self._playing = playing
        self.play_button.setIcon(self._icon_pause if playing else self._icon_play)

    @property
    def playing(self) -> bool:
        return self._playing

    def set_position(self, index: int, time_s: float, live: bool) -> None:
        if live:
            self.time_label.setText(f"live {format_clock(time_s)}")
            return
        if not self.slider.isSliderDown():  # never fight the user's drag
            if index > self.slider.maximum():
                self.slider.setMaximum(index)
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self.time_label.setText(format_clock(time_s) + (f" / {format_clock(self._duration)}" if self._duration
                                                        else ""))

    def speed(self) -> tuple[bool, float]:
        _, realtime, speed = SPEEDS[self.speed_combo.currentIndex()]
        return realtime, speed

    def set_speed_index(self, i: int) -> None:
        self.speed_combo.setCurrentIndex(i)

    # -- user ----------------------------------------------------------------------------------------------------
    def _on_play_clicked(self) -> None:
        self.play_toggled.emit(not self._playing)

    def _on_speed_changed(self, i: int) -> None:
        _, realtime, speed = SPEEDS[i]
        self.speed_changed.emit(realtime, speed)
