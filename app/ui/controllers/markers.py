"""The window's study tools: event markers (M, and 1-9 with names the user sets), their list (rename, delete), their
lines on the timeline, the baseline choice and the "baseline-corrected" view, the interval summary of exports, and
the LSL toggle.

`MarkerController` holds the logic (no widgets): the `app.study.extension.Study` of the current recording (each recording gets
its own, attached to its `SessionRecorder`, so markers are journalled with the rows and written into its exports),
the LSL outlets, the baseline means for the corrected view. `MarkersDock` shows and edits it. `install(window)` wires
both into a MainWindow with the window's own signals, so the window itself changes by a few lines.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.timeline.rows import rows_from_result
from app.study.options import (SUMMARY_MIN_S, BaselineSpec, EpochWindow, Marker, StudyConfig, StudyError,
    check_baseline_recording, parse_epoch)
from app.study.baseline import Baseline, compute_baseline
from app.study.extension import Study

MARKER_KEY_LABEL = "marker"                      # M
DEFAULT_KEY_NAMES = tuple(f"stimulus {k}" for k in range(1, 10))   # 1-9 until the user names them
KEY_NAMES_SETTING = "study/key_names"            # "name1, name2, ..." in the window's QSettings
SUMMARY_SETTING = "study/summary_every_s"        # 0: no interval summary in the exports
EPOCH_SETTING = "study/epoch"                    # "PRE,POST" seconds around each marker
BASELINE_REFRESH_MS = 2000
CORRECTED_Y_RANGE = (-1.05, 1.08)
RAW_Y_RANGE = (-0.1, 1.08)


def parse_key_names(text: str) -> tuple[str, ...]:
    """'rest, happy face, , sad' -> 9 names, the defaults where left empty."""
    given = [" ".join(s.split()) for s in str(text or "").split(",")]
    return tuple((given[i] if i < len(given) and given[i] else DEFAULT_KEY_NAMES[i]) for i in range(9))


class MarkerController(QObject):
    markers_changed = Signal(list)      # [Marker] by time
    lsl_changed = Signal(bool)          # streaming on/off
    corrected_changed = Signal(bool)    # the timeline shows baseline-corrected probabilities (or not)
    error_occurred = Signal(str)

    def __init__(self, now: Callable[[], float | None], store: QSettings, parent: QObject | None = None):
        """now() is the current media time (the newest processed frame's), or None before any."""
        super().__init__(parent)
        self._now = now
        self.store = store
        self.study = Study(self._config())
        self._attached = False        # self.study belongs to a recording (else: markers made before any)
        self.recorder = None
        self.lsl = None
        self.show_corrected = False
        self.dock: MarkersDock | None = None       # the dock and timeline lines install() builds for a window
        self.lines: TimelineMarkers | None = None
        self.baseline: Baseline | None = None
        self._baseline_message: str | None = None
        self.key_names = parse_key_names(str(store.value(KEY_NAMES_SETTING, "")))

    # -- settings

    @property
    def summary_every_s(self) -> float | None:
        v = float(self.store.value(SUMMARY_SETTING, 0.0) or 0.0)
        return v if v >= SUMMARY_MIN_S else None

    def set_summary_every(self, seconds: float) -> None:
        self.store.setValue(SUMMARY_SETTING, float(seconds))
        self.study.set_config(StudyConfig(self.epoch, self.summary_every_s, self.study.config.baseline))

    @property
    def epoch(self) -> EpochWindow:
        try:
            return parse_epoch(str(self.store.value(EPOCH_SETTING, "1,3")))
        except StudyError:
            return EpochWindow()

    def set_epoch(self, text: str) -> bool:
        """'PRE,POST' (e.g. '1,3'); False (and error_occurred) when it is not one."""
        try:
            epoch = parse_epoch(text)
        except StudyError as e:
            self.error_occurred.emit(str(e))
            return False
        self.store.setValue(EPOCH_SETTING, f"{epoch.pre_s:g},{epoch.post_s:g}")
        self.study.set_config(StudyConfig(epoch, self.study.config.summary_every_s, self.study.config.baseline))
        return True

    def set_key_names(self, text: str) -> None:
        self.key_names = parse_key_names(text)
        self.store.setValue(KEY_NAMES_SETTING, ", ".join(self.key_names))

    def _config(self, baseline: BaselineSpec | None = None) -> StudyConfig:
        return StudyConfig(epoch=self.epoch, summary_every_s=self.summary_every_s, baseline=baseline)

    # -- recordings

    def new_study(self) -> Study:
        """The Study a new recording records with (RecordingController.study_factory): the baseline choice goes on;
        markers made before any recording go into the first one."""
        carried = self.study.markers if not self._attached else []
        self.study = Study(self._config(self.study.config.baseline), carried)
        self._attached = True
        self.baseline = None
        self.markers_changed.emit(self.study.markers)
        return self.study

    def attach_recorder(self, recorder) -> None:
        """The recorder of the current (or last) recording: the corrected view reads its rows back."""
        self.recorder = recorder

    # -- markers

    def add(self, label: str | None = None, key: int | None = None, time_s: float | None = None) -> Marker | None:
        """A marker at `time_s` (default: the current media time): `label`, key k's name (1-9) or "marker"."""
        t = self._now() if time_s is None else time_s
        if t is None:
            self.error_occurred.emit("No frame yet: a marker needs a media time (open a video or a camera).")
            return None
        name = label or (self.key_names[key - 1] if key else MARKER_KEY_LABEL)
        m = self.study.add_marker(t, name)
        if self.lsl is not None:
            self.lsl.push_marker(m.label)
        self._changed()
        return m

    def rename(self, marker_id: int, label: str) -> None:
        try:
            self.study.rename_marker(marker_id, label)
        except StudyError as e:
            self.error_occurred.emit(str(e))
            return
        self._changed()

    def delete(self, marker_id: int) -> None:
        try:
            self.study.delete_marker(marker_id)
        except StudyError as e:
            self.error_occurred.emit(str(e))
            return
        self._changed()

    def _changed(self) -> None:
        self.markers_changed.emit(self.study.markers)
        if self.show_corrected:
            self.refresh_baseline()

    # -- baseline

    def set_baseline(self, spec: BaselineSpec | None) -> None:
        self.study.set_baseline(spec)  # journalled with the recording
        self.refresh_baseline()

    def refresh_baseline(self) -> None:
        """The baseline means of the chosen span, from the rows recorded so far (streamed from the journal)."""
        spec = self.study.config.baseline
        self.baseline = None
        if spec is None or self.recorder is None:
            return
        try:
            self.baseline = compute_baseline(spec, self.study.markers, self.recorder.iter_rows())
        except (StudyError, OSError) as e:
            message = f"baseline-corrected view: {e}"
            if self.show_corrected and message != self._baseline_message:  # once, not on every refresh
                self.error_occurred.emit(message)
            self._baseline_message = message
            return
        self._baseline_message = None

    def refresh_if_incomplete(self) -> None:
        """While the corrected view is on and its baseline span is still being recorded (or had no face yet)."""
        if not self.show_corrected or self.study.config.baseline is None:
            return
        b, t = self.baseline, self._now()
        if b is None or (b.span is not None and t is not None and t <= b.span[1] + 1.0):
            self.refresh_baseline()

    def set_show_corrected(self, on: bool) -> None:
        self.show_corrected = bool(on)
        if on:
            self.refresh_baseline()
        self.corrected_changed.emit(self.show_corrected)

    def view_probs(self, track_id: int | None, probs: np.ndarray) -> np.ndarray:
        """What the timeline plots for a face: its probabilities, or those minus its baseline mean when the
        corrected view is on and the face has a baseline."""
        if not self.show_corrected or self.baseline is None or track_id is None or not len(probs):
            return probs
        mean = self.baseline.mean_for(track_id)
        return probs if mean is None else probs - np.asarray(mean, probs.dtype)

    # -- LSL

    def set_lsl(self, on: bool) -> bool:
        """Open or close the LSL outlets; False (and error_occurred, one line) when liblsl cannot load."""
        if on and self.lsl is None:
            from app.study.lsl import LslStreams, LslUnavailable

            try:
                self.lsl = LslStreams()
            except LslUnavailable as e:
                self.error_occurred.emit(str(e))
                self.lsl_changed.emit(False)
                return False
        elif not on and self.lsl is not None:
            self.lsl.close()
            self.lsl = None
        self.lsl_changed.emit(self.lsl is not None)
        return True

    def stream(self, rows: Iterable) -> None:
        """Each processed frame's rows (GUI thread, as results arrive)."""
        if self.lsl is not None:
            self.lsl.push_rows(rows)

    def close(self) -> None:
        self.set_lsl(False)


class TimelineMarkers:
    """The markers as labelled vertical lines on a TimelineView's plot."""

    def __init__(self, timeline):
        self.timeline = timeline
        self.lines: list[pg.InfiniteLine] = []

    def show(self, markers: list[Marker]) -> None:
        item = self.timeline.plot.getPlotItem()
        for line in self.lines:
            item.removeItem(line)
        self.lines = []
        for m in markers:
            line = pg.InfiniteLine(pos=m.time_s, angle=90, movable=False, pen=pg.mkPen("#d0d0d0", width=1,
                                                                                       style=Qt.DashLine),
                                   label=m.label, labelOpts={"position": 0.95, "color": "#d0d0d0"})
            item.addItem(line, ignoreBounds=True)
            self.lines.append(line)

    def set_corrected(self, on: bool) -> None:
        self.timeline.plot.getPlotItem().setYRange(*(CORRECTED_Y_RANGE if on else RAW_Y_RANGE), padding=0)


class MarkersDock(QDockWidget):
    """The marker list (double-click or Rename to rename, Delete to delete), key names, baseline, summary, LSL."""

    def __init__(self, controller: MarkerController, parent: QWidget | None = None):
        super().__init__("Markers and study", parent)
        self.setObjectName("markersDock")
        self.controller = controller
        body = QWidget()
        lay = QVBoxLayout(body)
        self.list = QListWidget()
        self.list.setSelectionMode(QListWidget.ExtendedSelection)
        self.list.itemDoubleClicked.connect(lambda item: self.rename_selected())
        QShortcut(QKeySequence.Delete, self.list, self.delete_selected, context=Qt.WidgetShortcut)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add (M)")
        self.add_button.clicked.connect(lambda: controller.add())
        self.rename_button = QPushButton("Rename...")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        for b in (self.add_button, self.rename_button, self.delete_button):
            b.setFocusPolicy(Qt.NoFocus)
            row.addWidget(b)
        lay.addLayout(row)

        form = QFormLayout()
        self.key_names = QLineEdit(", ".join(controller.key_names))
        self.key_names.setToolTip("Names of the markers keys 1-9 add, comma-separated")
        self.key_names.editingFinished.connect(lambda: controller.set_key_names(self.key_names.text()))
        form.addRow("Keys 1-9", self.key_names)
        self.epoch = QLineEdit(f"{controller.epoch.pre_s:g},{controller.epoch.post_s:g}")
        self.epoch.setToolTip("Epochs: seconds before and after each marker, PRE,POST (1,3: -1 s to +3 s)")
        self.epoch.editingFinished.connect(lambda: controller.set_epoch(self.epoch.text()))
        form.addRow("Epoch", self.epoch)
        self.baseline_kind = QComboBox()
        self.baseline_kind.addItems(["none", "first N seconds", "between the two selected markers",
                                     "a separate recording..."])
        self.baseline_seconds = QDoubleSpinBox()
        self.baseline_seconds.setRange(0.5, 3600.0)
        self.baseline_seconds.setValue(10.0)
        self.baseline_seconds.setSuffix(" s")
        self.baseline_kind.activated.connect(lambda _i: self.apply_baseline())
        self.baseline_seconds.editingFinished.connect(self.apply_baseline)
        base_row = QHBoxLayout()
        base_row.addWidget(self.baseline_kind, 1)
        base_row.addWidget(self.baseline_seconds)
        form.addRow("Baseline", base_row)
        self.corrected = QCheckBox("show baseline-corrected on the timeline")
        self.corrected.toggled.connect(controller.set_show_corrected)
        form.addRow("", self.corrected)
        self.summary = QDoubleSpinBox()
        self.summary.setRange(0.0, 3600.0)
        self.summary.setSpecialValueText("off")
        self.summary.setSuffix(" s")
        self.summary.setValue(controller.summary_every_s or 0.0)
        self.summary.setToolTip("Exports also write <session>_summary.csv over intervals of this length")
        self.summary.editingFinished.connect(lambda: controller.set_summary_every(self.summary.value()))
        form.addRow("Summary every", self.summary)
        self.lsl = QCheckBox("stream to LSL (Lab Streaming Layer)")
        self.lsl.toggled.connect(controller.set_lsl)
        controller.lsl_changed.connect(self._show_lsl)
        form.addRow("", self.lsl)
        lay.addLayout(form)
        self.setWidget(body)
        controller.markers_changed.connect(self.show_markers)

    def show_markers(self, markers: list[Marker]) -> None:
        self.list.clear()
        for m in markers:
            item = QListWidgetItem(f"{m.time_s:8.2f} s   {m.label}")
            item.setData(Qt.UserRole, m.marker_id)
            self.list.addItem(item)

    def selected_ids(self) -> list[int]:
        return [int(i.data(Qt.UserRole)) for i in self.list.selectedItems()]

    def rename_selected(self, label: str | None = None) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        if label is None:
            current = next(m.label for m in self.controller.study.markers if m.marker_id == ids[0])
            label, ok = QInputDialog.getText(self, "Rename marker", "Label:", text=current)
            if not ok:
                return
        for mid in ids:
            self.controller.rename(mid, label)

    def delete_selected(self) -> None:
        for mid in self.selected_ids():
            self.controller.delete(mid)

    def apply_baseline(self) -> None:
        kind = self.baseline_kind.currentIndex()
        if kind == 0:
            spec = None
        elif kind == 1:
            spec = BaselineSpec("first", seconds=self.baseline_seconds.value())
        elif kind == 2:
            chosen = sorted((m for m in self.controller.study.markers if m.marker_id in set(self.selected_ids())),
                            key=lambda m: m.time_s)
            if len(chosen) != 2:
                self.controller.error_occurred.emit("Select the two markers that start and end the baseline.")
                self.baseline_kind.setCurrentIndex(0)
                return
            spec = BaselineSpec("between", start_label=chosen[0].label, end_label=chosen[1].label)
        else:  # a session CSV/JSON of the same person at rest: one mean for every face
            path, _ = QFileDialog.getOpenFileName(self, "Baseline recording (a FAN Live session)", "",
                                                  "FAN Live sessions (*.csv *.json)")
            if not path:
                self.baseline_kind.setCurrentIndex(0)
                return
            try:
                spec = BaselineSpec("file", path=str(check_baseline_recording(path)))
            except StudyError as e:  # e.g. a stimulus log picked by mistake: said now, not dropped at the export
                self.controller.error_occurred.emit(str(e))
                self.baseline_kind.setCurrentIndex(0)
                return
        self.controller.set_baseline(spec)

    def _show_lsl(self, on: bool) -> None:
        if self.lsl.isChecked() != on:
            self.lsl.blockSignals(True)
            self.lsl.setChecked(on)
            self.lsl.blockSignals(False)


def install(window, on_error: Callable[[str], None], on_corrected: Callable[[bool], None]) -> MarkerController:
    """Wire the study tools into a MainWindow through its public parts (recording controller, pipeline worker,
    timeline, settings store, options): M and 1-9, the dock, the timeline lines, each recording's Study, LSL on
    processed frames, the corrected view. `on_error(message)` shows an error; `on_corrected(on)` redraws the
    timeline after the corrected view was turned on or off. Returns the controller, which holds its dock (`dock`)
    and timeline lines (`lines`); the window adds nothing else of its own."""
    def now() -> float | None:
        latest = window.latest
        return None if latest is None else float(latest.frame.time_s)

    c = MarkerController(now, window.store, window)
    window.recording.study_factory = c.new_study
    window.recording.recording_changed.connect(lambda on: c.attach_recorder(window.recording.last))
    window.pipeline_worker.frame_processed.connect(lambda result, *_: c.stream(rows_from_result(result)))
    c.error_occurred.connect(on_error)

    lines = c.lines = TimelineMarkers(window.timeline)
    c.markers_changed.connect(lines.show)
    c.corrected_changed.connect(lines.set_corrected)
    c.corrected_changed.connect(on_corrected)

    dock = c.dock = MarkersDock(c, window)
    window.addDockWidget(Qt.RightDockWidgetArea, dock)
    dock.hide()
    toggle = dock.toggleViewAction()
    toggle.setText("Markers")
    toggle.setShortcut(QKeySequence("Ctrl+M"))
    window.addAction(toggle)

    def key(text: str, slot) -> QAction:
        a = QAction(text, window)
        a.setShortcut(QKeySequence(text))
        a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(slot)
        window.addAction(a)
        return a

    key("M", lambda: c.add())
    for k in range(1, 10):
        key(str(k), lambda _checked=False, k=k: c.add(key=k))

    if getattr(window.options, "lsl", False):  # main.py --lsl: streaming from the start (the dock's box shows it)
        c.set_lsl(True)

    timer = QTimer(window)  # the corrected view follows a baseline still being recorded (first N s)
    timer.setInterval(BASELINE_REFRESH_MS)
    timer.timeout.connect(c.refresh_if_incomplete)
    timer.start()
    return c
