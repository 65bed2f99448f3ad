"""The FAN Live window: live video with labels, the selected face's probabilities and FAN attention, a running
timeline, sources, recording and export, settings, and a status bar of what the pipeline is doing.

Threads (see app.ui.workers): a CaptureWorker per source feeds a FrameHandoff; one PipelineWorker owns the engine's
Pipeline and records every result's rows; this GUI thread only receives results (a cheap slot per frame: smoothing,
history) and draws the newest one at most `RENDER_HZ` times a second, so a fast replay never floods the event loop.

    run_app(options) -> int  entry point for main.py (an app.ui.options.WindowOptions)

What is shown lives in a Qt-free view model (app.ui.live_state.LiveState); recording and export in
app.ui.recording.RecordingController. The window wires them to the views.
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QColor, QDesktopServices, QIcon, QKeySequence, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.capture import (
    VIDEO_SUFFIXES,
    camera_index,
    describe_source,
    is_device_path,
    is_masked,
    is_stream_url,
    list_cameras,
    mask_url,
)
from app.emotions import EMOTIONS
from app.study import SOURCE_GAP_LABEL
from app.pipeline import FrameResult, PipelineConfig
from app.ui import theme
from app.ui.display import attention_cells
from app.ui.face_panel import AttentionStrip, FacePanel
from app.ui.handoff import FrameHandoff
from app.ui.live_state import LiveState
from app.ui.options import WindowOptions
from app.ui.recording import RecordingController
from app.ui.sessions import sessions_dir
from app.ui.settings import SettingsDock, UiSettings
from app.ui.markers import install as install_markers
from app.ui.timeline import TimelineView, legend_html
from app.ui.transport import TransportBar
from app.ui.video_view import FaceOverlay, VideoView
from app.ui.workers import CaptureWorker, PipelineInfo, PipelineWorker, SourceInfo, TaskWorker

ASSETS = Path(__file__).resolve().parents[2] / "assets"
RENDER_HZ = 40          # the most redraws a second; a 30 fps camera still shows every frame
FAST_RENDER_HZ = 25     # as fast as possible: the model's throughput matters more than showing every frame
TIMELINE_HZ = 10        # the plot scrolls smoothly enough at 10 Hz, and pyqtgraph is the costliest view to redraw
STATUS_INTERVAL_MS = 500
ORGANIZATION = APP_NAME = "FAN Live"
RESCAN = "rescan"       # the source picker's "look for cameras again" item
_LINGERING: set[CaptureWorker] = set()  # capture threads still blocked in a read when their window stopped them
LAST_SOURCE_SETTING = "ui/last_source"  # the last live source opened (a URL's password masked)
HOW_TO_GET_A_MODEL = ("Choose a model file in Settings (a model's .onnx or .json card), or train and export one "
                      "into weights/ as the README describes.")


def _dot_icon(color: str) -> QIcon:
    """A filled circle: the universal 'record' symbol."""
    pix = QPixmap(32, 32)
    pix.fill(Qt.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing, True)
    p.setPen(QPen(QColor("#ffffff"), 2))
    p.setBrush(QColor(color))
    p.drawEllipse(5, 5, 22, 22)
    p.end()
    return QIcon(pix)


class Banner(QFrame):
    """A one-line message strip above the video: model problems (persistent), errors and notices (dismissable)."""

    def __init__(self, kind: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName({"warning": "banner", "error": "errorBanner", "notice": "noticeBanner"}[kind])
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.LinksAccessibleByMouse)
        self.label.setOpenExternalLinks(False)
        self.button = QPushButton()
        self.button.hide()
        self.close_button = QToolButton()
        self.close_button.setText("\u2715")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.button)
        lay.addWidget(self.close_button)
        self.hide()

    def show_message(self, text: str, button: str | None = None) -> None:
        self.label.setText(text)
        self.button.setVisible(bool(button))
        if button:
            self.button.setText(button)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class NoticeBanner(Banner):
    """Notices in a queue, so one never hides another unread: the oldest shows, with "+N more"; dismissing it shows
    the next. A notice with the `key` of a queued one replaces it in place (a session's "recording to" becomes its
    "saved")."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("notice", parent)
        self._queue: list[tuple[str | None, str]] = []  # (key, text), oldest first
        self.close_button.clicked.disconnect()
        self.close_button.clicked.connect(self.dismiss)

    def show_message(self, text: str, button: str | None = None, key: str | None = None) -> None:
        for i, (k, _) in enumerate(self._queue):
            if key is not None and k == key:
                self._queue[i] = (key, text)
                break
        else:
            self._queue.append((key, text))
        self._show_first()

    def dismiss(self) -> None:
        if self._queue:
            self._queue.pop(0)
        self._show_first()

    def _show_first(self) -> None:
        if not self._queue:
            self.hide()
            return
        more = len(self._queue) - 1
        self.label.setText(self._queue[0][1] + (f" <i>(+{more} more: \u2715 shows the next)</i>" if more else ""))
        self.close_button.setToolTip("Next notice" if more else "Dismiss")
        self.show()

    @property
    def messages(self) -> list[str]:
        """Every notice not dismissed yet, oldest first."""
        return [text for _, text in self._queue]


class MainWindow(QMainWindow):
    """The window. `settings_store` defaults to the user's QSettings; tests pass an INI file of their own."""

    def __init__(self, options: WindowOptions | None = None, settings_store: QSettings | None = None):
        super().__init__()
        self.options = options or WindowOptions()
        self.store = settings_store or QSettings(ORGANIZATION, APP_NAME)
        self.settings = UiSettings.load(self.store).with_args(self.options)
        self.setWindowTitle(APP_NAME)
        icon = ASSETS / "icon.svg"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)

        # engine-side state
        self.handoff = FrameHandoff(latest=True)
        # recording and export (app.ui.recording); its signals are the window's: session_saved(paths) when a
        # recording's files are written, session_exported(paths) when an export is
        self.recording = RecordingController(self._run_task, self)
        self.session_log = self.recording.log
        self.session_saved = self.recording.session_saved
        self.session_exported = self.recording.session_exported
        self.capture_worker: CaptureWorker | None = None
        self.source_info: SourceInfo | None = None
        self.pipeline_info: PipelineInfo | None = None
        self.model_error = ""
        self._tasks: set[TaskWorker] = set()
        self._record_when_ready = False
        self._open_first_camera = False   # no source given: open the first camera the probe finds
        self._probe_when_open = False     # --camera N: list the others once N is open
        self._closing = False

        # display state (GUI thread only): a Qt-free view model the slots feed and render() reads
        self.live = LiveState(len(EMOTIONS), smoothing=self.settings.smoothing)
        self._last_render = 0.0
        self._last_timeline = 0.0
        self._timeline_timer = QTimer(self)
        self._timeline_timer.setSingleShot(True)
        self._timeline_timer.timeout.connect(lambda: self._update_timeline(force=True))
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self.render)

        self._build_ui()
        self._build_actions()
        self.restore_geometry()
        self.recording.recording_changed.connect(self._show_recording)
        self.recording.notice.connect(lambda text, key: self.notice_banner.show_message(text, key=key or None))
        self.recording.error_occurred.connect(self._on_error_occurred)

        self.pipeline_worker = PipelineWorker(self._pipeline_config(self.settings), self.handoff, self.session_log)
        self.pipeline_worker.frame_processed.connect(self._on_frame_processed)
        self.pipeline_worker.pipeline_loaded.connect(self._on_pipeline_loaded)
        self.pipeline_worker.pipeline_failed.connect(self._on_pipeline_failed)
        self.pipeline_worker.error_occurred.connect(self._on_error_occurred)
        self.pipeline_worker.pass_finished.connect(self._on_pass_finished)
        self.pipeline_worker.recording_failed.connect(self.recording.on_recording_failed)
        self.markers = install_markers(self)  # M, 1-9, the markers dock, timeline lines, LSL, baseline view
        self.pipeline_worker.start()
        self.statusBar().showMessage("Loading the model...")

        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start(STATUS_INTERVAL_MS)
        self.recording.recover()
        self._start_initial_source()

    # ------------------------------------------------------------------------------------------------ building
    def _build_ui(self) -> None:
        self.video = VideoView()
        self.video.face_clicked.connect(self._on_face_clicked)
        self.video.action_button.clicked.connect(self.open_video_dialog)
        self.transport = TransportBar()
        self.transport.play_toggled.connect(self._on_play_toggled)
        self.transport.step_requested.connect(self.step)
        self.transport.seek_requested.connect(self.seek)
        self.transport.speed_changed.connect(self._on_speed_changed)
        self.transport.loop_toggled.connect(self._on_loop_toggled)

        self.model_banner = Banner("warning")
        self.model_banner.close_button.hide()  # a missing model stays visible until one loads
        self.model_banner.button.clicked.connect(self.choose_model)
        self.error_banner = Banner("error")
        self.notice_banner = NoticeBanner()
        self.notice_banner.label.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))

        video_col = QWidget()
        vl = QVBoxLayout(video_col)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(0)
        vl.addWidget(self.video, 1)
        vl.addWidget(self.transport)

        self.face_panel = FacePanel(EMOTIONS)
        self.face_panel.setMinimumWidth(260)
        top = QSplitter(Qt.Horizontal)
        top.addWidget(video_col)
        top.addWidget(self.face_panel)
        top.setStretchFactor(0, 4)
        top.setStretchFactor(1, 1)
        top.setSizes([900, 300])

        self.attention = AttentionStrip()
        attention_box = self._section(
            "ATTENTION OVER THE WINDOW",
            f"<span style='color:{theme.ALPHA_BLUE}'>\u25a0</span> self-attention \u03b1 &nbsp;&nbsp; "
            f"<span style='color:{theme.WEIGHT_ORANGE}'>\u25a0</span> final weight (\u03b1\u00b7\u03b2, normalised; "
            "relative to the window's largest) &nbsp;&nbsp; oldest \u2192 newest", self.attention)
        self.timeline = TimelineView(EMOTIONS)
        timeline_box = self._section(
            "TIMELINE", f"selected face, last {self.timeline.span_s:.0f} s; band: top label &nbsp;&nbsp; "
            + legend_html(EMOTIONS), self.timeline)

        main = QSplitter(Qt.Vertical)
        main.addWidget(top)
        main.addWidget(attention_box)
        main.addWidget(timeline_box)
        main.setStretchFactor(0, 5)
        main.setStretchFactor(1, 0)
        main.setStretchFactor(2, 2)
        main.setSizes([520, 160, 220])
        main.setChildrenCollapsible(False)
        self.splitter = main

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(6, 6, 6, 0)
        cl.setSpacing(6)
        for banner in (self.model_banner, self.error_banner, self.notice_banner):
            cl.addWidget(banner)
        cl.addWidget(main, 1)
        self.setCentralWidget(central)

        self.settings_dock = SettingsDock(self.settings)
        self.settings_dock.settings_applied.connect(self._on_settings_applied)
        self.settings_dock.smoothing_toggled.connect(self._on_smoothing_toggled)
        self.addDockWidget(Qt.RightDockWidgetArea, self.settings_dock)
        self.settings_dock.hide()

        sb = self.statusBar()
        self.status_labels = {}
        for key, tip in (("source", "Current source"), ("input", "Frames read per second"),
                         ("processing", "Frames through the model per second"),
                         ("pace", "A file is analysed frame by frame: when the model is slower than real time, "
                                  "playback waits for it"),
                         ("latency", "Capture to result, median of recent frames (model time in brackets)"),
                         ("provider", "ONNX Runtime execution provider in use"), ("faces", "Faces tracked now"),
                         ("recording", "Recording state")):
            label = QLabel("")
            label.setToolTip(tip)
            # a label may shrink below its text (then it is cut) rather than make the window wider than a small
            # screen (a long file name as the source)
            label.setMinimumWidth(24)
            sb.addPermanentWidget(label)
            self.status_labels[key] = label

    def _section(self, title: str, legend: str, body: QWidget) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 4, 6, 2)
        lay.setSpacing(2)
        head = QHBoxLayout()
        t = QLabel(title)
        t.setObjectName("sectionTitle")
        leg = QLabel(legend)
        leg.setStyleSheet(f"color: {theme.MUTED};")
        head.addWidget(t)
        head.addSpacing(12)
        head.addWidget(leg, 1)
        lay.addLayout(head)
        lay.addWidget(body, 1)
        return box

    def _build_actions(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)

        def action(text, slot, shortcut=None, tip=None, checkable=False, icon=None):
            a = QAction(text, self)
            if icon is not None:
                a.setIcon(self.style().standardIcon(icon))
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.WindowShortcut)
            a.setToolTip(f"{tip or text} ({QKeySequence(shortcut).toString()})" if shortcut else (tip or text))
            a.setCheckable(checkable)
            (a.toggled if checkable else a.triggered).connect(slot)
            self.addAction(a)
            return a

        self.camera_combo = QComboBox()
        self.camera_combo.setEditable(True)  # a typed stream URL, device path or camera index
        self.camera_combo.setInsertPolicy(QComboBox.NoInsert)
        self.camera_combo.setFocusPolicy(Qt.ClickFocus)  # keys go to the window's shortcuts until it is clicked
        self.camera_combo.setMinimumWidth(220)
        self.camera_combo.setToolTip("The cameras that open on this machine and the last source used; or type a "
                                     "stream URL (rtsp://, http://.../stream.mjpg, udp://, srt://), a device path "
                                     "(/dev/video2) or a camera number, then Enter")
        self.camera_combo.lineEdit().setFocusPolicy(Qt.ClickFocus)
        self.camera_combo.lineEdit().setPlaceholderText("camera, rtsp://..., /dev/video2")
        self.camera_combo.addItem("Looking for cameras...", None)
        self.camera_combo.activated.connect(self._on_camera_chosen)
        self.camera_combo.lineEdit().returnPressed.connect(self._on_source_typed)
        tb.addWidget(QLabel(" Source "))
        tb.addWidget(self.camera_combo)
        self.open_action = action("Open video...", self.open_video_dialog, "Ctrl+O", "Open a video file",
                                  icon=QStyle.SP_DialogOpenButton)
        tb.addAction(self.open_action)
        tb.addSeparator()
        self.record_action = action("Record", self._on_record_toggled, "Ctrl+R",
                                    "Start/stop recording the session (files record from the start)", checkable=True)
        self.record_action.setIcon(_dot_icon(theme.RECORD_RED))
        tb.addAction(self.record_action)
        tb.widgetForAction(self.record_action).setObjectName("record")
        self.export_action = action("Export...", self.export_dialog, "Ctrl+E", "Export the session: CSV, JSON, PNG",
                                    icon=QStyle.SP_DialogSaveButton)
        tb.addAction(self.export_action)
        self.sessions_action = action("Sessions folder", self.open_sessions_folder, None,
                                      "Open the folder where sessions are saved automatically",
                                      icon=QStyle.SP_DirOpenIcon)
        tb.addAction(self.sessions_action)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        tb.addWidget(spacer)
        settings = self.settings_dock.toggleViewAction()
        settings.setText("Settings")
        settings.setIcon(self.style().standardIcon(QStyle.SP_FileDialogDetailedView))
        tb.addAction(settings)
        self.fullscreen_action = action("Full screen", self.toggle_fullscreen, "F", "Full screen",
                                        icon=QStyle.SP_TitleBarMaxButton)
        tb.addAction(self.fullscreen_action)
        action("Play/pause", self.toggle_play, "Space")
        action("Previous frame", lambda: self.step(-1), "Left")
        action("Next frame", lambda: self.step(1), "Right")
        action("Leave full screen", lambda: self.isFullScreen() and self.toggle_fullscreen(), "Esc")

    # ------------------------------------------------------------------------------------------------ sources
    def _start_initial_source(self) -> None:
        video, camera = self.options.video, self.options.camera
        last = str(self.store.value(LAST_SOURCE_SETTING, "") or "")
        if camera is None and video is None and last and not is_masked(last) and \
                (camera_index(last) is not None or is_stream_url(last) or is_device_path(last)):
            camera = camera_index(last) if camera_index(last) is not None else last  # the last one used
        if video is not None:
            self.open_source(Path(video))
            self.probe_cameras()
        elif camera is not None:
            # probing opens every camera: not while this one is opening (the device may refuse a second handle)
            self._probe_when_open = True
            self.open_source(camera_index(camera) if camera_index(camera) is not None else camera)
        else:
            self._open_first_camera = True
            self.video.set_message("Looking for cameras...")
            self.probe_cameras()

    def probe_cameras(self) -> None:
        """List the cameras that open (off the GUI thread) into the source picker."""
        self.camera_combo.clear()
        self.camera_combo.addItem("Looking for cameras...", None)
        probe = self._run_task(list_cameras, on_done=self._on_cameras_listed)
        probe.setObjectName("camera probe")

    def _on_cameras_listed(self, cameras: list[int]) -> None:
        spec = self.source_info.spec if self.source_info is not None and self.source_info.is_live else None
        if camera_index(spec) is not None:
            cameras = sorted({*cameras, camera_index(spec)})  # in use by us, so the probe could not open it
        self.camera_combo.clear()
        self.camera_combo.addItem("Choose a camera" if cameras else "No camera found", None)
        for i in cameras:
            self.camera_combo.addItem(f"Camera {i}", i)
        # the stream or device in use (its URL with the password, in memory only) and the last one used (stored
        # masked), shown masked
        extra = [spec] if isinstance(spec, str) and camera_index(spec) is None else []
        last = str(self.store.value(LAST_SOURCE_SETTING, "") or "")
        if last and camera_index(last) is None and all(mask_url(e) != last for e in extra):
            extra.append(last)
        for e in extra:
            self.camera_combo.addItem(mask_url(e), e)
        self.camera_combo.addItem("Look for cameras again", RESCAN)
        if self._open_first_camera:
            self._open_first_camera = False
            if cameras:
                self.open_source(cameras[0])
            else:
                self.video.set_message("No camera found on this machine.\n"
                                       "Open a video file to analyse it (or drop one here).", "Open video...")
        self._sync_camera_combo()

    def _sync_camera_combo(self) -> None:
        spec = self.capture_worker.spec if self.capture_worker else None
        live = spec is not None and not isinstance(spec, Path)
        i = self.camera_combo.findData(spec) if live else -1
        self.camera_combo.setCurrentIndex(max(i, 0))
        if live and i < 0:
            self.camera_combo.setEditText(describe_source(spec))

    def _on_camera_chosen(self, i: int) -> None:
        spec = self.camera_combo.itemData(i)
        if spec == RESCAN:
            self.probe_cameras()
        elif spec is not None:
            self._open_typed(spec)

    def _on_source_typed(self) -> None:
        """Enter in the Source box: a camera number, a device path or a stream URL opens; anything else is said."""
        text = self.camera_combo.currentText().strip()
        i = self.camera_combo.findText(text)
        if i >= 0 and self.camera_combo.itemData(i) is not None:
            return  # a listed item: activated() opens it
        if text:
            self._open_typed(text)

    def _open_typed(self, spec) -> None:
        spec = camera_index(spec) if camera_index(spec) is not None else str(spec).strip()
        if isinstance(spec, str) and is_masked(spec):
            self._on_error_occurred(f"{spec} has a masked password (***): type the full URL, password included.")
            return
        if isinstance(spec, str) and not (is_stream_url(spec) or is_device_path(spec)):
            self._on_error_occurred(f"Not a camera or a stream: {mask_url(spec)}. Type a camera number, a device "
                                    "path (/dev/video2) or a stream URL (rtsp://, http://, udp://, srt://).")
            return
        self.open_source(spec)

    def open_video_dialog(self) -> None:
        start = self.store.value("ui/last_video_dir", str(Path.home()))
        patterns = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", str(start),
                                              f"Videos ({patterns});;All files (*)")
        if path:
            self.store.setValue("ui/last_video_dir", str(Path(path).parent))
            self.open_source(Path(path))

    def open_source(self, spec) -> None:
        """Switch to a camera index or a video path: the old source stops (its recording is saved), the new one
        opens on its capture thread; errors come back as a message."""
        self._stop_capture()
        self._stop_recording()
        self.recording.pass_saved = False
        self.handoff.clear()
        self.error_banner.hide()
        self.source_info = None
        self.live.clear_source()
        self.video.clear_frame()
        self.transport.set_live(None)
        name = describe_source(spec)  # a URL's password masked
        self.video.set_message(f"Opening {name}...")
        self.status_labels["source"].setText(name)
        realtime, speed = self.transport.speed()
        worker = CaptureWorker(spec, self.handoff, realtime=realtime, speed=speed,
                               loop=self.transport.loop_check.isChecked(), reconnect_s=self.options.reconnect)
        worker.preroll = self.pipeline_info.window_length - 1 if self.pipeline_info else 0
        worker.source_opened.connect(self._on_source_opened)
        worker.source_event.connect(self._on_source_event)
        worker.source_ended.connect(self._on_source_ended)
        worker.damage_found.connect(self._on_damage_found)
        worker.error_occurred.connect(self._on_capture_error)
        self.capture_worker = worker
        worker.start()
        self._sync_camera_combo()

    def _on_source_opened(self, info: SourceInfo) -> None:
        if self.sender() is not self.capture_worker:
            return  # a source replaced before it finished opening
        self._probe_if_waiting()
        self.source_info = info
        self.video.set_message("")
        self.transport.set_live(info.is_live, info.frame_count, info.fps)
        self.transport.set_playing(True)
        self.status_labels["source"].setText(info.name)
        self.setWindowTitle(f"{info.name} - {APP_NAME}")
        if info.is_live:  # remembered for the next start; a URL's password is never stored
            self.store.setValue(LAST_SOURCE_SETTING, mask_url(str(info.spec)))
        if not info.is_live:  # files record from the start, every frame; cameras when the user asks
            self._record_when_ready = True
            self._maybe_start_recording()
            if self.pipeline_info is None and not self.model_error:
                self.video.set_message("Loading the model...\nThe video starts once it is ready, so that every "
                                       "frame is analysed.")
            self._release_capture()

    def _release_capture(self) -> None:
        """Let the file play once the model has settled (loaded and recording, or failed: then it plays unlabelled),
        so that frame 0 is analysed and recorded like every other."""
        worker = self.capture_worker
        if worker is None or self.source_info is None or self.source_info.is_live:
            return
        if self.pipeline_info is None and not self.model_error:
            return  # _on_pipeline_loaded / _on_pipeline_failed call again
        if self.video.message.startswith("Loading the model"):
            self.video.set_message("")
        worker.release()

    def _on_pass_finished(self, generation: int) -> None:
        """Every frame of a pass through the file is processed and recorded: its session is complete, so save it.
        A looping file records its next pass as a new session."""
        worker = self.capture_worker
        if worker is None or generation != worker.generation or self.source_info is None:
            return
        self.recording.finish_pass()
        if self.transport.loop_check.isChecked():
            self._record_when_ready = True
            self._maybe_start_recording()
            worker.release()

    def _on_source_ended(self) -> None:
        if self.sender() is self.capture_worker:
            self.transport.set_playing(False)
            self.statusBar().showMessage("End of video: Space plays it again; Ctrl+E exports the session.", 8000)

    def _on_source_event(self, event) -> None:
        """A live source was lost (reconnecting), came back, or ended: a banner; the gap is a marker of the recording.
        The capture thread does the waiting, so the window goes on drawing the last frame meanwhile."""
        if self.sender() is not self.capture_worker:
            return
        if event.kind == "lost":
            self.error_banner.show_message(event.message)
            self.status_labels["source"].setText(f"{self.source_info.name if self.source_info else ''} "
                                                 "(reconnecting)")
            return
        if event.gap is not None and self.session_log.recording:
            self.markers.add(SOURCE_GAP_LABEL, time_s=event.gap.start_s)
        if event.kind == "back":
            self.error_banner.hide()
            self.notice_banner.show_message(event.message, key="source")
            if self.source_info is not None:
                self.status_labels["source"].setText(self.source_info.name)
        # "ended" reaches the window as the capture error that follows it

    def _on_damage_found(self, message: str) -> None:
        if self.sender() is self.capture_worker:
            self.notice_banner.show_message(f"Damaged file: {message}. The session holds every frame decoded.",
                                            key=f"damage {message}")

    def _probe_if_waiting(self) -> None:
        if self._probe_when_open:
            self._probe_when_open = False
            self.probe_cameras()

    def _on_capture_error(self, message: str) -> None:
        if self.sender() is not self.capture_worker:
            return
        self._probe_if_waiting()
        self._on_error_occurred(message)
        self.transport.set_live(None)
        self.transport.set_playing(False)
        if self.latest is None:
            self.video.set_message("This source could not be opened.\nOpen another video or choose a camera.",
                                   "Open video...")

    def _stop_capture(self) -> None:
        worker, self.capture_worker = self.capture_worker, None
        if worker is not None:
            worker.stop()
            if worker.wait(5000):
                worker.deleteLater()
            else:
                # A read blocked in the source (a stalled stream or camera answers within its own read timeout):
                # Qt aborts the process if a running QThread is destroyed, so the worker is kept until it ends.
                _LINGERING.add(worker)
                worker.finished.connect(lambda w=worker: (_LINGERING.discard(w), w.deleteLater()))

    # ------------------------------------------------------------------------------------------------ transport
    def toggle_play(self) -> None:
        self._on_play_toggled(not self.transport.playing)

    def _on_play_toggled(self, play: bool) -> None:
        if self.capture_worker is None or self.source_info is None:
            return
        if play and self.recording.pass_saved and not self.recording.recording and self.pipeline_info:
            # the file's session was saved at its end: playing it again records a new one, started before the first
            # frame of it is read
            self.start_recording()
        self.recording.pass_saved = False
        self.capture_worker.set_paused(not play)
        self.transport.set_playing(play)

    def step(self, n: int) -> None:
        if self.capture_worker is not None and self.source_info is not None and not self.source_info.is_live:
            self.capture_worker.step(n)
            self.transport.set_playing(False)

    def seek(self, index: int) -> None:
        if self.capture_worker is not None and self.source_info is not None and not self.source_info.is_live:
            self.capture_worker.seek(index)

    def _on_speed_changed(self, realtime: bool, speed: float) -> None:
        if self.capture_worker is not None:
            self.capture_worker.set_speed(realtime, speed)

    def set_speed_fast(self) -> None:
        """As fast as possible (every frame processed); for the benchmark and tests."""
        self.transport.set_speed_index(self.transport.speed_combo.count() - 1)

    def _on_loop_toggled(self, on: bool) -> None:
        if self.capture_worker is not None:
            self.capture_worker.set_loop(on)

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # ------------------------------------------------------------------------------------------------ results
    def _on_frame_processed(self, result: FrameResult, generation: int, latency_ms: float) -> None:
        """Every processed frame arrives here: keep the cheap running state, draw later (at most RENDER_HZ)."""
        if self.capture_worker is None or self._closing:
            return
        self.live.push(result, generation, latency_ms)  # a new generation (source, seek, loop) resets it
        if not self._render_timer.isActive():
            hz = RENDER_HZ if self.transport.speed()[0] or self.source_info is None or self.source_info.is_live \
                else FAST_RENDER_HZ
            wait = self._last_render + 1.0 / hz - time.monotonic()
            self._render_timer.start(max(0, int(wait * 1000)))

    @property
    def latest(self) -> FrameResult | None:
        """The newest processed frame (None before the first one of a source)."""
        return self.live.latest

    def render(self) -> None:
        """Draw the newest result into every view (the render timer calls this at most RENDER_HZ times a second)."""
        result = self.latest
        if result is None:
            return
        self._last_render = time.monotonic()
        shown = self.live.follow()
        overlays = []
        for track_id, box in self.live.boxes():
            d = self.live.displayed(track_id)
            overlays.append(FaceOverlay(track_id, box, d.label if d else None, d.confidence if d else 0.0,
                                        track_id == shown))
        self.video.set_frame(result.frame.image, overlays)
        self._render_face(shown)
        live = self.source_info is not None and self.source_info.is_live
        self.transport.set_position(result.frame.index, result.frame.time_s, live)

    def _render_face(self, track_id: int | None) -> None:
        if track_id is None:
            note = "No face in view." if self.pipeline_info else "No model loaded: faces are not read."
            self.face_panel.show_face(None, None, 0.0, None, note)
            self.attention.clear("No face in view." if self.pipeline_info else "No model loaded.")
            self._update_timeline()
            return
        d = self.live.displayed(track_id)
        pred = self.live.last_predictions.get(track_id)
        window = self.pipeline_info.window_length if self.pipeline_info else 0
        if d is None or pred is None:
            self.face_panel.show_face(track_id, None, 0.0, None, "Reading the face...")
            self.attention.clear(f"Face #{track_id}: the window is filling.")
        else:
            picked = "selected" if track_id == self.live.selected_face else "largest face; click another to follow it"
            smoothing = "smoothed" if self.live.smoothing else "raw"
            self.face_panel.show_face(track_id, d.label, d.confidence, d.probs,
                                      f"{picked} \u00b7 {smoothing} probabilities \u00b7 "
                                      f"{len(pred.frame_indices)}/{window} frames in window",
                                      signals=self.live.last_signals.get(track_id))
            self.attention.set_cells(attention_cells(pred.alpha, pred.weight, pred.frame_indices, pred.crops), window)
        self.live.timeline_face = track_id
        self._update_timeline()

    def _update_timeline(self, force: bool = False) -> None:
        """Plot the history of `timeline_face` (the face shown last: a face that left the frame keeps its plot) at
        most TIMELINE_HZ times a second; a skipped update is made up by a trailing one, so the plot never stays
        behind the last frame (pause, end of file)."""
        track_id = self.live.timeline_face
        wait = self._last_timeline + 1.0 / TIMELINE_HZ - time.monotonic()
        if not force and wait > 0:
            if not self._timeline_timer.isActive():
                self._timeline_timer.start(int(wait * 1000) + 1)
            return
        self._timeline_timer.stop()
        self._last_timeline = time.monotonic()
        if track_id is None:
            if self.timeline.points_shown:
                self.timeline.clear_series()
            return
        times, probs, rel_times, reliability = self.live.series(track_id, self.timeline.span_s)
        probs = self.markers.view_probs(track_id, probs)  # minus the face's baseline mean in the corrected view
        self.timeline.show_series(times, probs, self.live.history.latest_time, rel_times, reliability)

    def _on_face_clicked(self, track_id: int) -> None:
        self.live.select(track_id)
        self.render()
        self._update_timeline(force=True)

    # ------------------------------------------------------------------------------------------------ model
    def _on_pipeline_loaded(self, info: PipelineInfo) -> None:
        previous = self.pipeline_info
        self.pipeline_info = info
        self.model_error = ""
        if self.capture_worker is not None:
            self.capture_worker.preroll = info.window_length - 1
        self.settings_dock.set_attention_types(info.attention_types, info.default_attention)
        self.attention.set_head(info.attention)  # what the strip's bars mean for this head (app.heads.STRIP)
        self.settings_dock.model_info.setText(
            f"Loaded <b>{info.model}</b><br>{info.card_path}<br>attention: {info.attention}, window "
            f"{info.window_length} frames<br>providers: {', '.join(info.providers)} ({info.precision} embedder)")
        if info.random_init:
            self.model_banner.show_message(
                f"The model '{info.model}' has random weights (a test fixture): its labels mean nothing. "
                + HOW_TO_GET_A_MODEL, "Choose model...")
        else:
            self.model_banner.hide()
        # CUDA wanted but not started is a quiet fact of the status bar (its provider label and tooltip say why),
        # not a banner: most machines have no CUDA 13, and the notices are for what the user must act on
        where = "on the CPU" if info.providers and info.providers[0].startswith("CPU") else \
            f"on {info.providers[0].replace('ExecutionProvider', '')}" if info.providers else ""
        self.statusBar().showMessage(f"Model {info.model} loaded, running {where}", 5000)
        if previous is not None and self.session_log.recording:
            self._stop_recording()  # a session's metadata names one model: a new model starts a new session
            self._record_when_ready = True
        self._maybe_start_recording()
        self._release_capture()

    def _on_pipeline_failed(self, message: str) -> None:
        self.pipeline_info = None
        self.model_error = message
        self._stop_recording()
        self.model_banner.show_message(f"<b>No model loaded.</b> {message}<br>{HOW_TO_GET_A_MODEL} "
                                       "The video still plays, without labels.", "Choose model...")
        self.settings_dock.model_info.setText(f"No model loaded: {message}")
        self.statusBar().showMessage("No model loaded", 5000)
        self._release_capture()

    def choose_model(self) -> None:
        self.settings_dock.show()
        self.settings_dock.raise_()
        self.settings_dock.browse_model()

    def _on_settings_applied(self, s: UiSettings) -> None:
        self.settings = s
        self.live.smoothing = s.smoothing
        s.save(self.store)
        self.statusBar().showMessage("Loading the model...")
        self.pipeline_worker.configure(self._pipeline_config(s))

    def _on_smoothing_toggled(self, on: bool) -> None:
        self.settings = replace(self.settings, smoothing=on)
        self.live.smoothing = on
        self.settings.save(self.store)
        self.render()

    # ------------------------------------------------------------------------------------------------ session
    def _maybe_start_recording(self) -> None:
        if self._record_when_ready and self.pipeline_info is not None and self.source_info is not None:
            self._record_when_ready = False
            self.start_recording()

    def _on_record_toggled(self, on: bool) -> None:
        if on and not self.session_log.recording:
            if self.pipeline_info is None or self.source_info is None:
                self._show_recording(False)
                self._on_error_occurred("Nothing to record yet: " + ("load a model first (Settings)."
                                                                     if self.pipeline_info is None
                                                                     else "open a video or a camera first."))
                return
            self.start_recording()
        elif not on and self.session_log.recording:
            self._stop_recording()

    def start_recording(self) -> None:
        self.recording.start(self.source_info, self.pipeline_info)

    def _pipeline_config(self, settings: UiSettings) -> PipelineConfig:
        """The stored settings' pipeline, with what only the command line chooses (--no-blendshapes,
        --raw-probabilities)."""
        return replace(settings.pipeline_config(), blendshapes=self.options.blendshapes,
                       calibrated=self.options.calibrated)

    def _stop_recording(self, wait: bool = False) -> None:
        self._record_when_ready = False
        self.recording.stop(wait)

    def _show_recording(self, on: bool) -> None:
        """The Record button follows the recording, without re-triggering it."""
        self.record_action.blockSignals(True)
        self.record_action.setChecked(on)
        self.record_action.setText("Recording" if on else "Record")
        self.record_action.blockSignals(False)

    def export_dialog(self) -> None:
        if self.session_log.last is None or not len(self.session_log.last):
            self._on_error_occurred("Nothing to export yet: no face has been recorded in this session "
                                    "(files record from the start; Ctrl+R records a camera).")
            return
        last = self.store.value("ui/last_export_dir", str(sessions_dir()))
        stem = self.session_log.last.export_paths[0].stem if self.session_log.last.export_paths else "session"
        filters = {"CSV + JSON + PNG plot (*.csv)": ("csv", "json", "png"), "CSV table (*.csv)": ("csv",),
                   "JSON with metadata (*.json)": ("json",), "PNG plot (*.png)": ("png",)}
        path, chosen = QFileDialog.getSaveFileName(self, "Export the session", str(Path(last) / f"{stem}.csv"),
                                                   ";;".join(filters))
        if path:
            self.store.setValue("ui/last_export_dir", str(Path(path).parent))
            self.export_to(Path(path), filters.get(chosen, ("csv", "json", "png")))

    def export_to(self, path: Path, kinds=("csv", "json", "png")) -> TaskWorker | None:
        """Export the current (or last) recording, with the plot of the face shown; session_exported(paths)."""
        return self.recording.export_to(Path(path), kinds, self.live.shown_face)

    def open_sessions_folder(self) -> None:
        folder = sessions_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # ------------------------------------------------------------------------------------------------ errors, status
    def _on_error_occurred(self, message: str) -> None:
        self.error_banner.show_message(message)
        self.statusBar().showMessage(message, 10000)

    def _update_status(self) -> None:
        s = self.status_labels
        cw = self.capture_worker
        s["input"].setText(f"input {cw.input_meter.rate():.1f} fps" if cw else "input -")
        processing = self.pipeline_worker.process_meter.rate()
        s["processing"].setText(f"processing {processing:.1f} fps")
        fps = self.source_info.fps if self.source_info is not None else None
        if cw is not None and cw.waiting_for_analysis:
            pace = f" ({processing / fps:.2f}x)" if fps else ""
            s["pace"].setText(f"analysis slower than real time: playback waits for it{pace}")
        else:
            s["pace"].setText("")
        lat, model = self.live.latency.value(), self.live.model_ms.value()
        s["latency"].setText(f"latency {lat:.0f} ms ({model:.0f} ms model)" if lat is not None else "latency -")
        if self.pipeline_info:
            short = [p.replace("ExecutionProvider", "") for p in self.pipeline_info.providers]
            fallback = " (CUDA unavailable)" if self.pipeline_info.fallback_reason else ""
            s["provider"].setText(f"provider {short[0]}{fallback}" if short else "provider ?")
            s["provider"].setToolTip(", ".join(self.pipeline_info.providers) +
                                     f"; {self.pipeline_info.precision} embedder" + (
                f"\nCUDA not used: {self.pipeline_info.fallback_reason}" if self.pipeline_info.fallback_reason
                else ""))
        else:
            s["provider"].setText("no model")
        s["faces"].setText(f"faces {len(self.latest.faces)}" if self.latest is not None else "faces 0")
        rec = self.session_log.last
        s["recording"].setText(f"\u25cf REC {len(rec)} rows" if self.session_log.recording else "not recording")
        s["recording"].setStyleSheet(f"color: {theme.RECORD_RED};" if self.session_log.recording else "")

    # ------------------------------------------------------------------------------------------------ tasks
    def _run_task(self, fn, *args, on_done=None, **kwargs) -> TaskWorker:
        task = TaskWorker(fn, *args, **kwargs)
        self._tasks.add(task)
        if on_done is not None:
            task.task_finished.connect(on_done)
        task.error_occurred.connect(self._on_error_occurred)
        task.finished.connect(lambda: (self._tasks.discard(task), task.deleteLater()))
        task.start()
        return task

    # ------------------------------------------------------------------------------------------------ drag & drop
    @staticmethod
    def _dropped_video(event) -> Path | None:
        if event.mimeData().hasUrls():
            for url in event.mimeData().urls():
                p = Path(url.toLocalFile())
                if p.suffix.lower() in VIDEO_SUFFIXES:
                    return p
        return None

    def dragEnterEvent(self, event) -> None:
        if self._dropped_video(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        p = self._dropped_video(event)
        if p is not None:
            event.acceptProposedAction()
            self.open_source(p)

    # ------------------------------------------------------------------------------------------------ lifecycle
    def restore_geometry(self) -> None:
        geo = self.store.value("ui/geometry")
        if geo is not None and self.restoreGeometry(geo):
            return
        screen = self.screen().availableGeometry() if self.screen() else None
        # first run: a comfortable size, but never larger than a small laptop screen
        self.resize(min(1360, int(screen.width() * 0.92)) if screen else 1360,
                    min(900, int(screen.height() * 0.92)) if screen else 900)

    def threads_running(self) -> list[str]:
        """Names of this window's threads still running (empty after close)."""
        threads = [self.pipeline_worker, self.capture_worker, *self._tasks]
        return [t.objectName() or type(t).__name__ for t in threads if t is not None and t.isRunning()]

    def shutdown(self) -> None:
        """Stop every thread and save the recording; idempotent."""
        if self._closing:
            return
        self._closing = True
        self._status_timer.stop()
        self._render_timer.stop()
        self._timeline_timer.stop()
        self._stop_capture()
        self.handoff.close()
        self.pipeline_worker.stop()
        self.pipeline_worker.wait(10000)
        self.markers.close()  # the LSL outlets, if streaming
        self._stop_recording(wait=True)
        self.recording.export_on_exit(list(self.options.export))
        for task in list(self._tasks):
            task.wait(10000)
        self.store.setValue("ui/geometry", self.saveGeometry())
        self.settings.save(self.store)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def make_app() -> QApplication:
    """The QApplication with the app's names and theme (reused if one exists: tests, tools)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationVersion(__version__)
    theme.apply_theme(app)
    return app


def run_app(options: WindowOptions) -> int:
    """Open the window (main.py without --no-window) and run until it closes; the exit code."""
    app = make_app()
    window = MainWindow(options)
    window.show()
    # Ctrl+C in the terminal, a `kill` (SIGTERM) and a closed terminal or logout (SIGHUP) close the window like its
    # close button: threads stopped, the session's CSV and JSON written. Python only runs signal handlers between
    # bytecodes, so a timer wakes the interpreter while Qt's loop waits.
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        window.close()
        app.quit()

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    code = app.exec()
    return 128 + received[0] if received else code
