"""The FAN Live window: live video with labels, the selected face's probabilities and FAN attention, a running
timeline, sources, recording and export, settings, and a status bar of what the pipeline is doing.

Threads (see app.ui.workers): a CaptureWorker per source feeds a Handoff; one PipelineWorker owns the engine's
Pipeline and records every result's rows; this GUI thread only receives results (a cheap slot per frame: smoothing,
history) and draws the newest one at most `RENDER_HZ` times a second, so a fast replay never floods the event loop.

What is shown lives in a Qt-free view model (app.ui.state.live.LiveState); recording and export in
app.ui.controllers.recording.RecordingController. The window wires them to the views.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QMainWindow

from app.capture.camera import (camera_index, describe_source, list_cameras, mask_url)
from app.capture.threads import Handoff
from app.emotions import EMOTIONS
from app.paths import ROOT
from app.pipeline import FrameResult, PipelineConfig, PipelineInfo
from app.study.options import SOURCE_GAP_LABEL
from app.ui.controllers.markers import install as install_markers
from app.ui.controllers.recording import RecordingController
from app.ui.controllers.sessions import sessions_dir
from app.ui.state.live import LiveState
from app.ui.state.options import WindowOptions
from app.ui.state.playback import PlaybackRules, Steps
from app.ui.state.status import model_summary, running_on, status_texts
from app.ui.widgets.settings import SettingsDock, UiSettings
from app.ui.widgets.source_picker import dropped_video, parse_live_spec, reopenable
from app.ui.widgets.status_bar import add_status_labels, show_status
from app.ui.widgets.toolbar import MainToolbar, make_action
from app.ui.widgets.dialogs import ask_export, ask_video
from app.ui.widgets.live_view import LiveView
from app.ui.widgets.workspace import Workspace
from app.ui.workers import CaptureWorker, PipelineWorker, SourceInfo, TaskWorker

ASSETS = ROOT / "assets"
RENDER_HZ = 40          # the most redraws a second; a 30 fps camera still shows every frame
FAST_RENDER_HZ = 25     # as fast as possible: the model's throughput matters more than showing every frame
STATUS_INTERVAL_MS = 500
ORGANIZATION = APP_NAME = "FAN Live"
_LINGERING: set[CaptureWorker] = set()  # capture threads still blocked in a read when their window stopped them
LAST_SOURCE_SETTING = "ui/last_source"  # the last live source opened (a URL's password masked)
HOW_TO_GET_A_MODEL = ("Choose a model file in Settings (a model's .onnx or .json card), or train and export one "
                      "into weights/ as the README describes.")


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

        self.handoff = Handoff(latest=True)
        # recording and export; its signals are the window's: session_saved(paths) when a recording's files are
        # written, session_exported(paths) when an export is
        self.recording = RecordingController(self._run_task, self)
        self.recording.frames_received = lambda: self.capture_worker.frames_read if self.capture_worker else 0
        if self.options.reconnect is not None:
            self.recording.reconnect_s = self.options.reconnect
        self.session_log = self.recording.log
        self.session_saved = self.recording.session_saved
        self.session_exported = self.recording.session_exported
        self.capture_worker: CaptureWorker | None = None
        self.source_info: SourceInfo | None = None
        self.pipeline_info: PipelineInfo | None = None
        self.model_error = ""
        self._tasks: set[TaskWorker] = set()
        self.playback = PlaybackRules()  # when a file plays and when a session starts (app/ui/state/playback.py)
        self._open_first_camera = False   # no source given: open the first camera the probe finds
        self._probe_when_open = False     # --camera N: list the others once N is open
        self._closing = False

        # display state (GUI thread only): a Qt-free view model the slots feed and render() reads
        self.live = LiveState(len(EMOTIONS), smoothing=self.settings.smoothing)
        self._last_render = 0.0
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
        # M, 1-9, the markers dock, timeline lines, LSL, baseline view
        self.markers = install_markers(self, on_error=self._on_error_occurred,
                                       on_corrected=lambda _on: self._update_timeline(force=True))
        self.pipeline_worker.start()
        self.statusBar().showMessage("Loading the model...")

        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start(STATUS_INTERVAL_MS)
        self.recording.recover()
        self._start_initial_source()

    # ------------------------------------------------------------------------------------------------ building
    def _build_ui(self) -> None:
        ws = Workspace()
        self.setCentralWidget(ws)
        self.video, self.transport, self.face_panel = ws.video, ws.transport, ws.face_panel
        self.attention, self.timeline, self.splitter = ws.attention, ws.timeline, ws.splitter
        self.model_banner, self.error_banner, self.notice_banner = ws.model_banner, ws.error_banner, ws.notice_banner
        self.view = LiveView(self.live, ws, lambda track_id, probs: self.markers.view_probs(track_id, probs), self)
        self.video.face_clicked.connect(self._on_face_clicked)
        self.video.action_button.clicked.connect(self.open_video_dialog)
        self.transport.play_toggled.connect(self._on_play_toggled)
        self.transport.step_requested.connect(self.step)
        self.transport.seek_requested.connect(self.seek)
        self.transport.speed_changed.connect(self._on_speed_changed)
        self.transport.loop_toggled.connect(self._on_loop_toggled)
        self.model_banner.button.clicked.connect(self.choose_model)
        self.notice_banner.label.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))

        self.settings_dock = SettingsDock(self.settings)
        self.settings_dock.settings_applied.connect(self._on_settings_applied)
        self.settings_dock.smoothing_toggled.connect(self._on_smoothing_toggled)
        self.addDockWidget(Qt.RightDockWidgetArea, self.settings_dock)
        self.settings_dock.hide()
        self.status_labels = add_status_labels(self.statusBar())

    def _build_actions(self) -> None:
        tb = MainToolbar(self, self.settings_dock.toggleViewAction())
        self.addToolBar(tb)
        self.camera_combo = tb.source_picker
        self.camera_combo.rescan_requested.connect(self.probe_cameras)
        self.camera_combo.source_chosen.connect(self._open_typed)
        self.open_action, self.record_action, self.export_action = tb.open_action, tb.record_action, tb.export_action
        self.sessions_action, self.fullscreen_action = tb.sessions_action, tb.fullscreen_action
        self.open_action.triggered.connect(self.open_video_dialog)
        self.record_action.toggled.connect(self._on_record_toggled)
        self.export_action.triggered.connect(self.export_dialog)
        self.sessions_action.triggered.connect(self.open_sessions_folder)
        self.fullscreen_action.triggered.connect(self.toggle_fullscreen)
        self.addActions(tb.actions_with_shortcuts)
        for text, shortcut, slot in (("Play/pause", "Space", self.toggle_play),
                                     ("Previous frame", "Left", lambda: self.step(-1)),
                                     ("Next frame", "Right", lambda: self.step(1)),
                                     ("Leave full screen", "Esc",
                                      lambda: self.isFullScreen() and self.toggle_fullscreen())):
            a = make_action(self, text, shortcut)
            a.triggered.connect(slot)
            self.addAction(a)

    # ------------------------------------------------------------------------------------------------ sources
    def _start_initial_source(self) -> None:
        video, camera = self.options.video, self.options.camera
        if camera is None and video is None:  # the last live source used, if it can be opened again
            camera = reopenable(str(self.store.value(LAST_SOURCE_SETTING, "") or ""))
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
        self.camera_combo.show_probing()
        probe = self._run_task(list_cameras, on_done=self._on_cameras_listed)
        probe.setObjectName("camera probe")

    def _on_cameras_listed(self, cameras: list[int]) -> None:
        spec = self.source_info.spec if self.source_info is not None and self.source_info.is_live else None
        cameras = self.camera_combo.show_cameras(cameras, spec, str(self.store.value(LAST_SOURCE_SETTING, "") or ""))
        if self._open_first_camera:
            self._open_first_camera = False
            if cameras:
                self.open_source(cameras[0])
            else:
                self.video.set_message("No camera found on this machine.\n"
                                       "Open a video file to analyse it (or drop one here).", "Open video...")
        self._sync_camera_combo()

    def _sync_camera_combo(self) -> None:
        self.camera_combo.show_current(self.capture_worker.spec if self.capture_worker else None)

    def _open_typed(self, spec) -> None:
        try:
            self.open_source(parse_live_spec(spec))
        except ValueError as e:
            self._on_error_occurred(str(e))

    def open_video_dialog(self) -> None:
        path = ask_video(self, self.store)
        if path is not None:
            self.open_source(path)

    def open_source(self, spec) -> None:
        """Switch to a camera index or a video path: the old source stops (its recording is saved), the new one
        opens on its capture thread; errors come back as a message."""
        self._stop_capture()
        self._stop_recording()
        self.playback.source_closed()
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
        steps = self.playback.source_opened(info.is_live)  # files record from the start; cameras when asked
        if self.playback.waiting_for_model:
            self.video.set_message("Loading the model...\nThe video starts once it is ready, so that every "
                                   "frame is analysed.")
        self._take(steps)

    def _take(self, steps: Steps) -> None:
        """Carry out what the playback rules decided after an event."""
        if steps.stop_recording:
            self.recording.stop()
        if steps.start_recording:
            self.start_recording()
        if steps.release and self.capture_worker is not None:
            if self.video.message.startswith("Loading the model"):
                self.video.set_message("")
            self.capture_worker.release()

    def _on_pass_finished(self, generation: int) -> None:
        """Every frame of a pass through the file is processed and recorded: its session is complete, so save it.
        A looping file records its next pass as a new session."""
        worker = self.capture_worker
        if worker is None or generation != worker.generation or self.source_info is None:
            return
        self.recording.finish_pass()
        self._take(self.playback.pass_finished(self.transport.loop_check.isChecked()))

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
        self.recording.note_source_event(event)
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
        if self.latest is None:
            return
        self._last_render = time.monotonic()
        self.view.draw(self.pipeline_info, self.source_info is not None and self.source_info.is_live)

    def _update_timeline(self, force: bool = False) -> None:
        self.view.update_timeline(force)

    def _on_face_clicked(self, track_id: int) -> None:
        self.live.select(track_id)
        self.render()
        self._update_timeline(force=True)

    # ------------------------------------------------------------------------------------------------ model
    def _on_pipeline_loaded(self, info: PipelineInfo) -> None:
        self.pipeline_info = info
        self.model_error = ""
        if self.capture_worker is not None:
            self.capture_worker.preroll = info.window_length - 1
        self.settings_dock.set_head_types(info.head_types, info.default_head)
        self.attention.set_head(info.head)  # what the strip's bars mean for this head (app.recognition.heads.STRIP)
        self.settings_dock.model_info.setText(model_summary(info))
        if info.random_init:
            self.model_banner.show_message(
                f"The model '{info.model}' has random weights (a test fixture): its labels mean nothing. "
                + HOW_TO_GET_A_MODEL, "Choose model...")
        else:
            self.model_banner.hide()
        # CUDA wanted but not started is a quiet fact of the status bar (its provider label and tooltip say why),
        # not a banner: the notices are for what the user must act on
        self.statusBar().showMessage(f"Model {info.model} loaded, running {running_on(info.providers)}", 5000)
        self._take(self.playback.model_loaded(self.session_log.recording))

    def _on_pipeline_failed(self, message: str) -> None:
        self.pipeline_info = None
        self.model_error = message
        steps = self.playback.model_failed()
        self.model_banner.show_message(f"<b>No model loaded.</b> {message}<br>{HOW_TO_GET_A_MODEL} "
                                       "The video still plays, without labels.", "Choose model...")
        self.settings_dock.model_info.setText(f"No model loaded: {message}")
        self.statusBar().showMessage("No model loaded", 5000)
        self._take(steps)

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
        self.playback.recording_stopped()
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
        stem = self.session_log.last.export_paths[0].stem if self.session_log.last.export_paths else "session"
        answer = ask_export(self, self.store, sessions_dir(), stem)
        if answer is not None:
            self.export_to(*answer)

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
        cw = self.capture_worker
        texts = status_texts(
            input_fps=cw.input_meter.rate() if cw else None,
            processing_fps=self.pipeline_worker.process_meter.rate(),
            source_fps=self.source_info.fps if self.source_info is not None else None,
            waiting=cw is not None and cw.waiting_for_analysis,
            latency_ms=self.live.latency.value(), model_ms=self.live.model_ms.value(), info=self.pipeline_info,
            faces=len(self.latest.faces) if self.latest is not None else 0,
            recording_rows=len(self.session_log.last) if self.session_log.recording else None)
        show_status(self.status_labels, texts, self.session_log.recording)

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
    def dragEnterEvent(self, event) -> None:
        if dropped_video(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        p = dropped_video(event.mimeData())
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
        self.view.stop()
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


