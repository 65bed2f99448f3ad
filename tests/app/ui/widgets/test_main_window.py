"""The real window, offscreen, on the shared videos with a random model (FOR TESTS ONLY): frames, face boxes,
probabilities and attention bars update; export and autosave read back; a corrupt file shows an error and the window
stays usable; no camera and no model are explained in the window; keys and clicks work; closing stops every thread."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.capture.frame import CaptureError, Frame, FrameSource
from app.capture.sources import open_source
from app.recognition.card import ModelError
from app.timeline.formats import read_session
from app.ui.widgets.source_picker import RESCAN

pytestmark = pytest.mark.qt

TIMEOUT_MS = 60_000  # generous: two shared cores, a model and MediaPipe starting


def showing_a_read_face(w) -> bool:
    faces = w.video.faces
    return bool(faces) and any(f.label for f in faces) and w.face_panel.bars.has_values and bool(w.attention.cells)


@pytest.mark.data
def test_replay_updates_the_views_exports_and_closes_cleanly(make_window, videos, sessions, tmp_path, qtbot,
                                                             monkeypatch):
    w = make_window(videos / "single_face.mp4")
    saved = []
    w.session_saved.connect(saved.append)
    qtbot.waitUntil(lambda: showing_a_read_face(w), timeout=TIMEOUT_MS)
    w.render()  # draw the newest result now, so the views and the state compared below are of the same frame

    # the video view shows frames of the source's size with a box on the face
    assert w.video.frame_size == (640, 360)
    face = w.video.faces[0]
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360 and face.selected
    # the panel: 7 probabilities summing to 1, and the label shown is their top class
    probs = w.face_panel.bars.values
    assert probs.shape == (7,) and abs(float(probs.sum()) - 1) < 1e-3
    assert face.label == w.face_panel.bars.labels[int(np.argmax(probs))]
    # the attention strip: one cell per window frame, oldest first, bars within [0, 1], a crop per cell
    pred = w.live.last_predictions[face.track_id]
    cells = w.attention.cells
    assert [c.frame_index for c in cells] == list(pred.frame_indices)
    assert len(cells) <= w.pipeline_info.window_length
    assert all(0 <= c.alpha <= 1 and 0 <= c.weight_height <= 1 and c.crop is not None for c in cells)
    assert max(c.weight_height for c in cells) == pytest.approx(1.0)
    # the face's signals: the reliability + pose line and the five strongest blendshapes of this face
    sig = w.live.last_signals[face.track_id]
    assert f"reliability <b>{sig.reliability:.2f}</b>" in w.face_panel.readout.text()
    assert w.face_panel.blendshapes.items == sig.top_blendshapes(5) and len(w.face_panel.blendshapes.items) == 5
    frames_then = w.video.frames_shown
    qtbot.waitUntil(lambda: w.video.frames_shown > frames_then + 3 and w.timeline.points_shown > 3,
                    timeout=TIMEOUT_MS)
    # the status bar names the provider in use and counts
    w._update_status()
    assert "CPU" in w.status_labels["provider"].text() and "fps" in w.status_labels["processing"].text()
    assert "REC" in w.status_labels["recording"].text()  # files record from the start

    # the file plays to its end and pauses there; its session is complete then, and saved
    qtbot.waitUntil(lambda: not w.transport.playing, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.latest.frame.index == w.capture_worker.last_index, timeout=TIMEOUT_MS)  # last frame in
    qtbot.waitUntil(lambda: bool(saved), timeout=TIMEOUT_MS)
    rows = w.session_log.rows()
    assert rows and {r.face_id for r in rows} == {face.track_id}
    csv_path, json_path = saved[0]
    assert csv_path.parent == sessions and read_session(csv_path)[1] == rows == read_session(json_path)[1]
    assert not list(sessions.glob("*.partial*")) and not w.session_log.recording
    assert any("Session saved" in m for m in w.notice_banner.messages)

    out = tmp_path / "export"
    out.mkdir()
    # Ctrl+E: the save dialog (answered here) picks the file name and the formats
    monkeypatch.setattr("app.ui.widgets.dialogs.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(out / "single_face.csv"), "CSV + JSON + PNG plot (*.csv)"))
    with qtbot.waitSignal(w.session_exported, timeout=TIMEOUT_MS) as exported:
        qtbot.keyClick(w, Qt.Key_E, Qt.ControlModifier)
    paths = exported.args[0]
    assert [p.suffix for p in paths] == [".csv", ".json", ".png"]
    assert read_session(paths[0])[1] == rows
    meta, json_rows = read_session(paths[1])
    assert json_rows == rows and meta["model"] == "random_test" and meta["providers"] == ["CPUExecutionProvider"]
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
    assert any("Exported" in m for m in w.notice_banner.messages)

    # playing the file again records it again, as a new session from frame 0
    qtbot.keyClick(w, Qt.Key_Space)
    qtbot.waitUntil(lambda: len(saved) == 2, timeout=TIMEOUT_MS)
    assert saved[1][0] != csv_path and read_session(saved[1][0])[1][0].frame_index == 0

    w.close()
    assert w.threads_running() == [] and w.pipeline_worker.isFinished()


@pytest.mark.data
def test_a_truncated_file_says_so_and_its_session_holds_what_was_decoded(make_window, videos, tmp_path, qtbot):
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 10])  # index first: ~41 of 472 frames decode
    w = make_window(cut, fast=True)
    saved = []
    w.session_saved.connect(saved.append)
    qtbot.waitUntil(lambda: bool(saved) and any("Damaged file" in m for m in w.notice_banner.messages),
                    timeout=TIMEOUT_MS)
    (damaged,) = [m for m in w.notice_banner.messages if "Damaged file" in m]
    rows = read_session(saved[0][0])[1]
    assert "cut.mp4" in damaged and "of the 472 frames" in damaged
    decoded = int(damaged.split("decoded ")[1].split()[0])
    assert 20 < decoded < 100 and decoded - 3 <= rows[-1].frame_index < decoded


@pytest.mark.data
def test_a_corrupt_file_shows_an_error_and_the_window_stays_usable(make_window, videos, tmp_path, qtbot):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(20_000))
    w = make_window(broken)
    qtbot.waitUntil(lambda: "broken.mp4" in w.error_banner.text, timeout=TIMEOUT_MS)
    assert w.video.message and w.video.action_button.isVisible()  # offers to open another file
    assert w.capture_worker is None or not w.capture_worker.isRunning() or w.capture_worker.wait(5000)

    w.open_source(videos / "single_face.mp4")
    assert not w.error_banner.isVisible()
    qtbot.waitUntil(lambda: w.video.frames_shown > 3 and bool(w.video.faces), timeout=TIMEOUT_MS)
    assert w.video.message == ""


def test_no_camera_is_said_in_the_window_with_a_way_to_open_a_file(make_window, qtbot):
    w = make_window()
    qtbot.waitUntil(lambda: "No camera" in w.video.message, timeout=TIMEOUT_MS)
    assert w.video.action_button.isVisible() and w.video.action_button.text().startswith("Open video")
    assert w.camera_combo.currentText() == "No camera found"
    assert not w.transport.play_button.isEnabled()


@pytest.mark.data
def test_without_a_model_the_video_plays_and_the_message_says_how_to_get_one(make_window, videos, qtbot,
                                                                             monkeypatch):
    def no_model():
        raise ModelError("no trained weights in weights/: train with `python -m models.train frames ...` then "
                         "export, or pass --weights")

    monkeypatch.setattr("app.pipeline.find_default_model", no_model)
    w = make_window(videos / "single_face.mp4", weights=None)
    qtbot.waitUntil(lambda: "No model loaded" in w.model_banner.text, timeout=TIMEOUT_MS)
    assert "no trained weights in weights/" in w.model_banner.text and w.model_banner.button.isVisible()
    qtbot.waitUntil(lambda: w.video.frames_shown > 3, timeout=TIMEOUT_MS)
    assert all(f.label is None for f in w.video.faces)  # no labels without a model, and no crash
    assert not w.session_log.recording
    w._update_status()
    assert w.status_labels["provider"].text() == "no model"


@pytest.mark.data
def test_keys_step_seek_and_click_select(make_window, videos, qtbot):
    w = make_window(videos / "WolfgangLanger_Pexels.mp4")
    qtbot.waitUntil(lambda: showing_a_read_face(w), timeout=TIMEOUT_MS)

    qtbot.keyClick(w, Qt.Key_Space)  # pause
    assert not w.transport.playing and w.capture_worker.paused
    w.seek(100)
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.frame.index == 100, timeout=TIMEOUT_MS)
    qtbot.keyClick(w, Qt.Key_Right)
    qtbot.waitUntil(lambda: w.latest.frame.index == 101, timeout=TIMEOUT_MS)
    qtbot.keyClick(w, Qt.Key_Left)
    qtbot.waitUntil(lambda: w.latest.frame.index == 100, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.transport.slider.value() == 100, timeout=TIMEOUT_MS)
    # stepping back refilled the FAN window up to the frame shown: the strip is as full as in playback
    w.render()
    window = w.pipeline_info.window_length
    assert [c.frame_index for c in w.attention.cells] == list(range(101 - window, 101))

    # click the face: it becomes the selected one
    qtbot.waitUntil(lambda: bool(w.video.faces), timeout=TIMEOUT_MS)
    face = w.video.faces[0]
    rect = w.video.frame_rect()
    scale = rect.width() / w.video.frame_size[0]
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    qtbot.mouseClick(w.video, Qt.LeftButton, pos=QPoint(int(rect.x() + cx * scale), int(rect.y() + cy * scale)))
    assert w.live.selected_face == face.track_id

    qtbot.keyClick(w, Qt.Key_Space)  # play again
    assert w.transport.playing and not w.capture_worker.paused
    qtbot.keyClick(w, Qt.Key_F)
    qtbot.waitUntil(lambda: w.isFullScreen(), timeout=5000)
    qtbot.keyClick(w, Qt.Key_F)
    qtbot.waitUntil(lambda: not w.isFullScreen(), timeout=5000)


@pytest.mark.data
def test_dropping_a_video_opens_it(make_window, videos, qtbot):
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(videos / "single_face.mp4"))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    w.dropEvent(event)
    qtbot.waitUntil(lambda: w.source_info is not None and w.source_info.name == "single_face.mp4",
                    timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.video.frames_shown > 0, timeout=TIMEOUT_MS)


def slow_pipeline(monkeypatch, seconds: float) -> None:
    from app.pipeline import Pipeline

    process = Pipeline.process

    def slow_process(self, frame):
        time.sleep(seconds)
        return process(self, frame)

    monkeypatch.setattr(Pipeline, "process", slow_process)


@pytest.mark.data
def test_a_file_is_analysed_frame_by_frame_even_when_the_model_is_slower_than_real_time(make_window, videos, qtbot,
                                                                                        monkeypatch):
    """At 1x with a model slower than the video, a file's playback waits for the analysis (no frame dropped), and
    the status bar says so."""
    slow_pipeline(monkeypatch, 0.06)  # ~15 fps: half the video's 30 fps
    w = make_window(videos / "single_face.mp4")  # real time, 1x
    assert w.transport.speed() == (True, 1.0)
    qtbot.waitUntil(lambda: w.pipeline_worker.frames_processed > 10, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: w._update_status() or "playback waits" in w.status_labels["pace"].text(),
                    timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not w.transport.playing and not w.session_log.recording, timeout=TIMEOUT_MS)
    assert w.handoff.dropped == 0 and w.pipeline_worker.frames_processed == 72
    assert sorted({r.frame_index for r in w.session_log.rows()}) == list(range(72))  # one face on every frame


class PacedModel:
    """Pipeline.process that starts on a frame, says which, and finishes only when the test lets it: the test sets
    the model's pace, so a slow model is slow by construction, not by the clock."""

    def __init__(self, monkeypatch):
        from app.pipeline import Pipeline

        self.started: queue.Queue[int] = queue.Queue()   # frame indices, as the model starts on them
        self._go = threading.Semaphore(0)
        self._free = threading.Event()
        process = Pipeline.process

        def paced(pipeline, frame):
            self.started.put(frame.index)
            while not self._go.acquire(timeout=0.05) and not self._free.is_set():
                pass
            return process(pipeline, frame)

        monkeypatch.setattr(Pipeline, "process", paced)

    def next_started(self) -> int:
        return self.started.get(timeout=TIMEOUT_MS / 1000)

    def finish_one(self) -> None:
        self._go.release()

    def free(self) -> None:
        """No more waiting (the window is about to close)."""
        self._free.set()


class PacedCamera(FrameSource):
    """A live source of a real video's frames that delivers the next frame only when the test says so."""

    is_live = True

    def __init__(self, video):
        self._video = open_source(video)
        self._name = "camera 0"
        self._size = self._video.size
        self._n = 0
        self._ticks = threading.Semaphore(0)

    @property
    def position(self) -> int:
        return self._n

    def deliver(self) -> None:
        self._ticks.release()

    def read(self):
        while not self._ticks.acquire(timeout=0.05):
            if self._closed:
                return None
        frame = self._video.read()
        if frame is None:
            self._video.seek(0)
            frame = self._video.read()
        self._n += 1
        return Frame(self._n - 1, (self._n - 1) / 30, frame.image)

    def _close(self):
        self._video.close()


@pytest.mark.data
def test_a_slow_model_gets_the_newest_camera_frame_and_the_skipped_ones_are_counted(make_window, videos, qtbot,
                                                                                     monkeypatch):
    """The live policy, at a pace the test sets (no wall-clock figures): while the model works on a frame, newer
    camera frames replace each other in the one-slot hand-off, each replacement counted as a drop; the model then
    takes the newest; no frame is shown after a newer one."""
    from app.ui import workers
    from app.ui.widgets import main_window

    camera = PacedCamera(videos / "single_face.mp4")
    model = PacedModel(monkeypatch)
    shown, processed = [], []
    render = main_window.MainWindow.render

    def render_and_note(self):
        if self.latest is not None:
            shown.append(self.latest.frame.index)
        render(self)

    monkeypatch.setattr(main_window.MainWindow, "render", render_and_note)
    monkeypatch.setattr(main_window, "list_cameras", lambda *a, **k: [0])
    monkeypatch.setattr(workers, "open_source", lambda spec: camera)
    w = make_window()
    qtbot.waitUntil(lambda: w.pipeline_info is not None and w.capture_worker is not None, timeout=TIMEOUT_MS)
    w.pipeline_worker.frame_processed.connect(lambda result, *_: processed.append(result.frame.index))

    def arrives(k: int) -> None:  # one camera frame, handed over before the next one comes
        camera.deliver()
        qtbot.waitUntil(lambda: w.capture_worker.last_index == k, timeout=TIMEOUT_MS)

    try:
        camera.deliver()
        assert model.next_started() == 0          # the model is busy with frame 0
        for k in range(1, 7):                      # six frames come meanwhile: each replaces the one before it
            arrives(k)
        assert w.handoff.latest and w.handoff.dropped == 5
        model.finish_one()
        assert model.next_started() == 6           # the newest frame, not the oldest waiting
        arrives(7)
        arrives(8)
        model.finish_one()
        assert model.next_started() == 8
        model.finish_one()
        qtbot.waitUntil(lambda: processed == [0, 6, 8] and shown and shown[-1] == 8, timeout=TIMEOUT_MS)
    finally:
        model.free()
        camera.close()  # its read waits for the test's ticks: closing it lets the capture thread end
    assert w.handoff.dropped == 6 and w.capture_worker.frames_read == 9 == len(processed) + w.handoff.dropped
    assert shown == sorted(shown) and set(shown) <= {0, 6, 8}  # never a stale frame after a newer one


@pytest.mark.data
def test_applied_settings_reload_the_model_and_are_remembered(make_window, videos, qtbot):
    from app.ui.widgets.settings import UiSettings

    w = make_window(videos / "single_face.mp4")
    qtbot.waitUntil(lambda: w.pipeline_info is not None and w.session_log.recording, timeout=TIMEOUT_MS)
    first = w.session_log.last
    dock = w.settings_dock
    assert dock.head_combo.isEnabled()  # the random model ships both heads
    dock.head_combo.setCurrentIndex(dock.head_combo.findData("self"))
    dock.window_spin.setValue(8)
    with qtbot.waitSignal(w.pipeline_worker.pipeline_loaded, timeout=TIMEOUT_MS) as loaded:
        dock.apply_button.click()
    assert loaded.args[0].window_length == 8 and loaded.args[0].head == "self"
    stored = UiSettings.load(w.store)
    assert stored.window_length == 8 and stored.head == "self"
    # a session names one model: the new model records into a new session, the old one is saved
    qtbot.waitUntil(lambda: w.session_log.last is not first and w.session_log.recording, timeout=TIMEOUT_MS)
    assert w.session_log.last.metadata.window_length == 8


class FakeCamera(FrameSource):
    """A live source made of a real video's frames at 30 fps, that can 'unplug' after some frames."""

    is_live = True

    def __init__(self, video, fail_after: int | None = None):
        self._video = open_source(video)
        self._name = "camera 0"
        self._size = self._video.size
        self._n = 0
        self._fail_after = fail_after
        self._t0 = time.monotonic()

    @property
    def position(self) -> int:
        return self._n

    def read(self):
        if self._closed:
            return None
        if self._fail_after is not None and self._n >= self._fail_after:
            raise CaptureError("camera 0 stopped delivering frames (unplugged?)")
        time.sleep(1 / 30)
        frame = self._video.read()
        if frame is None:
            self._video.seek(0)
            frame = self._video.read()
        self._n += 1
        return Frame(self._n - 1, time.monotonic() - self._t0, frame.image)

    def _close(self):
        self._video.close()


@pytest.mark.data
def test_a_camera_plays_live_records_on_demand_and_reports_unplugging(make_window, videos, qtbot, monkeypatch):
    from app.ui import workers
    from app.ui.widgets import main_window

    cameras = {"fail_after": None}
    monkeypatch.setattr(main_window, "list_cameras", lambda *a, **k: [0])
    monkeypatch.setattr(workers, "open_source", lambda spec: FakeCamera(videos / "single_face.mp4",
                                                                        cameras["fail_after"]))
    w = make_window(reconnect=0)  # no video: the first camera that opens is used; an unplug ends it at once
    qtbot.waitUntil(lambda: showing_a_read_face(w), timeout=TIMEOUT_MS)
    assert w.source_info.is_live and w.camera_combo.currentText() == "Camera 0"
    assert not w.transport.slider.isEnabled() and not w.transport.forward_button.isEnabled()
    assert w.handoff.latest  # a camera never queues frames
    assert not w.session_log.recording  # cameras record when asked
    qtbot.keyClick(w, Qt.Key_E, Qt.ControlModifier)  # nothing recorded yet: said (no dialog), not crashed
    assert "Nothing to export" in w.error_banner.text
    qtbot.keyClick(w, Qt.Key_R, Qt.ControlModifier)
    assert w.session_log.recording
    qtbot.waitUntil(lambda: len(w.session_log.rows()) > 5, timeout=TIMEOUT_MS)
    assert w.session_log.last.metadata.source == "camera 0"

    cameras["fail_after"] = 10  # the next camera opened unplugs after 10 frames
    w.open_source(0)
    qtbot.waitUntil(lambda: "stopped delivering" in w.error_banner.text, timeout=TIMEOUT_MS)
    assert not w.transport.play_button.isEnabled()


@pytest.mark.data
def test_an_unwritable_sessions_folder_is_reported_and_playback_goes_on(make_window, videos, tmp_path, qtbot,
                                                                        monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the sessions folder should be")
    monkeypatch.setenv("FANLIVE_SESSIONS_DIR", str(blocker / "sessions"))
    w = make_window(videos / "single_face.mp4")
    qtbot.waitUntil(lambda: "cannot record" in w.error_banner.text, timeout=TIMEOUT_MS)
    assert not w.session_log.recording and not w.record_action.isChecked()
    qtbot.waitUntil(lambda: showing_a_read_face(w), timeout=TIMEOUT_MS)


def test_sessions_a_crash_left_are_recovered_at_start(make_window, sessions, qtbot):
    from dataclasses import replace

    from app.timeline.rows import CSV_COLUMNS

    sessions.mkdir(parents=True)
    journal = sessions / "2024-05-01_12-00-00_clip.csv.partial.csv"
    row = ["0.5", "15", "1", "1", "2", "30", "40", "happiness", "0.4", *["0.1"] * 3, "0.4", *["0.1"] * 3, "0.5", "0.1"]
    journal.write_text(",".join(CSV_COLUMNS) + "\n" + ",".join(row) + "\n")  # a moment ago: a quick restart
    w = make_window()
    assert "Recovered 1 session" in w.notice_banner.text
    assert len(read_session(sessions / "2024-05-01_12-00-00_clip.csv")[1]) == 1
    # the model loads on a machine without CUDA: a quiet fact in the status bar, the recovery notice stays
    qtbot.waitUntil(lambda: w.pipeline_info is not None, timeout=TIMEOUT_MS)
    w._on_pipeline_loaded(replace(w.pipeline_info, fallback_reason="libcudnn.so.9: cannot open shared object file"))
    w._update_status()
    assert "Recovered 1 session" in w.notice_banner.text and "CUDA" not in w.notice_banner.text
    assert "CUDA unavailable" in w.status_labels["provider"].text()
    assert "libcudnn" in w.status_labels["provider"].toolTip()
    # notices queue: a newer one waits behind it, a dismissed one shows the next
    w.notice_banner.show_message("Exported a.csv")
    assert "Recovered 1 session" in w.notice_banner.text and "+1 more" in w.notice_banner.text
    w.notice_banner.close_button.click()
    assert w.notice_banner.text.startswith("Exported a.csv")
    w.notice_banner.close_button.click()
    assert not w.notice_banner.isVisible()


@pytest.mark.data
def test_as_fast_as_possible_processes_every_frame(make_window, videos, qtbot):
    w = make_window()
    w.set_speed_fast()
    w.open_source(videos / "single_face.mp4")
    qtbot.waitUntil(lambda: not w.transport.playing and w.latest is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: w.latest.frame.index == 71, timeout=TIMEOUT_MS)
    assert w.pipeline_worker.frames_processed == w.capture_worker.frames_read == 72 and w.handoff.dropped == 0
    assert sorted({r.frame_index for r in w.session_log.rows()}) == list(range(72))  # one face on every frame


@pytest.mark.data
def test_a_window_sessions_json_counts_every_frame_processed(make_window, videos, qtbot, tmp_path):
    """The window's JSONs took the frames with a face for the session's frames (72 of face_noface.mov's 169), in the
    autosaved session and in Export... alike; coverage was over those 72."""
    import json

    w = make_window(videos / "face_noface.mov", fast=True)
    saved = []
    w.session_saved.connect(saved.append)
    qtbot.waitUntil(lambda: bool(saved), timeout=TIMEOUT_MS)
    summary = json.loads(saved[0][1].read_text())["summary"]
    assert summary["n_frames"] == w.pipeline_worker.frames_processed == 169 > summary["n_rows"]
    with qtbot.waitSignal(w.session_exported, timeout=TIMEOUT_MS):
        w.export_to(tmp_path / "e.json", kinds=("json",))
    assert json.loads((tmp_path / "e.json").read_text())["summary"] == summary


@pytest.mark.data
def test_camera_from_the_command_line_is_listed_though_busy_and_cameras_can_be_rescanned(make_window, videos, qtbot,
                                                                                         monkeypatch):
    from app.ui import workers
    from app.ui.widgets import main_window

    probes = []

    def list_cameras(*a, **k):
        probes.append(1)
        return []  # the camera we opened is busy: the probe cannot open it

    monkeypatch.setattr(main_window, "list_cameras", list_cameras)
    monkeypatch.setattr(workers, "open_source", lambda spec: FakeCamera(videos / "single_face.mp4"))
    w = make_window(camera=0)
    qtbot.waitUntil(lambda: w.camera_combo.currentText() == "Camera 0", timeout=TIMEOUT_MS)
    assert probes == [1]  # probed once, after the camera opened
    rescan = w.camera_combo.findData(RESCAN)
    w.camera_combo.activated.emit(rescan)
    qtbot.waitUntil(lambda: len(probes) == 2 and w.camera_combo.currentText() == "Camera 0", timeout=TIMEOUT_MS)


@pytest.mark.data
def test_no_blendshapes_and_precision_reach_the_window_pipeline(make_window, videos, qtbot):
    """--no-blendshapes and --precision given to main.py without --no-window: the window's pipeline has no iris
    refinement and no bs_* values, and the session's metadata names the embedder graph that ran."""
    w = make_window(videos / "single_face.mp4", blendshapes=False, precision="fp32")
    qtbot.waitUntil(lambda: w.pipeline_info is not None and len(w.session_log.rows()) > 3, timeout=TIMEOUT_MS)
    assert w.pipeline_info.precision == "fp32" and w.session_log.last.metadata.precision == "fp32"
    assert not w.pipeline_info.blendshapes
    row = [r for r in w.session_log.rows() if r.face_found][-1]
    assert row.blendshapes is None or all(v != v for v in row.blendshapes)  # empty bs_* (NaN when measured)
    assert row.reliability is not None and row.yaw is not None  # pose and reliability stay
