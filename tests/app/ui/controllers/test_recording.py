"""The window's record/stop state machine (RecordingController) without the window: a recording goes into the
sessions folder (a journal from the first row, the final CSV and JSON written on a task thread when it stops, nothing
left beside them), a file's finished pass is saved once, a sessions folder that cannot be written is refused with one
line and the last session stays exportable, a journal that fails stops the recording and saves what it holds, and a
crash's journals are recovered while a live recording is left alone. The tasks run on the window's TaskWorker."""
from __future__ import annotations

import json
import shutil

import pytest

from app.pipeline import Pipeline, PipelineConfig, PipelineInfo
from app.study.extension import Study
from app.study.options import Marker
from app.study.tables import sidecar_path
from app.timeline.files import ExportError, journal_path_for, session_info_for
from app.timeline.formats import read_session
from app.timeline.rows import TimelineRow
from app.ui.controllers.recording import RecordingController
from app.ui.controllers.sessions import SESSIONS_ENV
from app.ui.workers import SourceInfo, TaskWorker

pytestmark = pytest.mark.qt

TIMEOUT_MS = 30_000
PROBS = (0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)


@pytest.fixture(scope="module")
def model(random_weights) -> PipelineInfo:
    """What the pipeline thread tells the window about a loaded model (the random one: FOR TESTS ONLY)."""
    with Pipeline(PipelineConfig(weights=random_weights, device="cpu")) as pipeline:
        return pipeline.info()


FILE = SourceInfo(spec="/videos/my clip.mp4", name="my clip.mp4", is_live=False, fps=30.0, frame_count=72,
                  size=(640, 360))
CAMERA = SourceInfo(spec=0, name="camera 0", is_live=True, fps=30.0, frame_count=None, size=(640, 480))


class Tasks:
    """The window's run_task: each call on a TaskWorker of its own; errors collected as the window shows them."""

    def __init__(self):
        self.started: list[TaskWorker] = []
        self.errors: list[str] = []

    def __call__(self, fn, *args, on_done=None, **kwargs) -> TaskWorker:
        task = TaskWorker(fn, *args, **kwargs)
        if on_done is not None:
            task.task_finished.connect(on_done)
        task.error_occurred.connect(self.errors.append)
        self.started.append(task)
        task.start()
        return task


class Signals:
    def __init__(self, c: RecordingController):
        self.recording: list[bool] = []
        self.saved: list[list] = []
        self.exported: list[list] = []
        self.notices: list[tuple[str, str]] = []
        self.errors: list[str] = []
        c.recording_changed.connect(self.recording.append)
        c.session_saved.connect(self.saved.append)
        c.session_exported.connect(self.exported.append)
        c.notice.connect(lambda html, key: self.notices.append((html, key)))
        c.error_occurred.connect(self.errors.append)


@pytest.fixture
def tasks():
    t = Tasks()
    yield t
    for task in t.started:
        assert task.wait(TIMEOUT_MS), "a task thread did not end"


@pytest.fixture
def controller(qtbot, tasks, sessions) -> tuple[RecordingController, Signals]:
    c = RecordingController(tasks)
    yield c, Signals(c)
    c.stop(wait=True)  # as the window does when it closes


def rows(first: int, n: int, face: int = 1) -> list[TimelineRow]:
    return [TimelineRow(time_s=i / 30, frame_index=i, face_id=face, box=(1, 2, 30, 40), label="happiness",
                        confidence=0.4, probs=PROBS, alpha=0.5, weight=0.1) for i in range(first, first + n)]


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_recording_journals_into_the_sessions_folder_and_stop_writes_its_csv_and_json(controller, model,
                                                                                       sessions, qtbot):
    c, seen = controller
    assert c.start(FILE, model)
    assert c.recording and seen.recording == [True] and seen.errors == []
    csv_path, json_path = c.last.export_paths
    assert csv_path.parent == sessions and csv_path.name.endswith("_my-clip.csv") and json_path.stem == csv_path.stem
    html, key = seen.notices[-1]
    assert key == str(csv_path) and f"{csv_path.stem}.csv + .json" in html and sessions.as_uri() in html
    assert c.last.metadata.source == FILE.spec and c.last.metadata.model == model.model
    assert c.last.metadata.extra == {"front_end": "window", "source_name": "my clip.mp4"}

    c.log.add(rows(0, 10))  # the pipeline thread's rows: in the journal at once, no final file yet
    assert journal_path_for(csv_path).is_file() and not csv_path.exists() and not json_path.exists()
    assert len(read_session(journal_path_for(csv_path))[1]) == 10

    c.stop()  # returns at once: the files are written on a task thread
    assert not c.recording and seen.recording == [True, False]
    c.log.add(rows(10, 5))  # after stop: not part of the session
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    assert seen.saved == [[csv_path, json_path]]
    assert read_session(csv_path)[1] == read_session(json_path)[1] == rows(0, 10)
    assert names(sessions) == sorted([csv_path.name, json_path.name])  # no journal, no temp file left
    html, key = seen.notices[-1]
    assert html.startswith(f"Session saved: {csv_path.name}, {json_path.name} in ") and key == str(csv_path)
    assert c.last.n_frames == 10  # the last session stays readable for an export

    c.stop()  # not recording: nothing to do
    qtbot.wait(100)
    assert seen.recording == [True, False] and len(seen.saved) == 1


def test_a_camera_session_is_named_after_the_camera_and_stop_with_wait_writes_before_it_returns(controller, model,
                                                                                               sessions, tasks):
    c, seen = controller
    assert c.start(CAMERA, model)
    csv_path, json_path = c.last.export_paths
    assert csv_path.name.endswith("_camera-0.csv") and c.last.metadata.source == "camera 0"
    c.log.add(rows(0, 3))
    c.stop(wait=True)  # the window closing: no task thread, the files are there when it returns
    assert tasks.started == [] and seen.saved == []
    assert read_session(json_path)[1] == rows(0, 3) and names(sessions) == sorted([csv_path.name, json_path.name])


def test_a_files_pass_is_saved_once_and_the_next_recording_is_a_new_session(controller, model, sessions, qtbot):
    c, seen = controller
    assert c.start(FILE, model)
    first = c.last
    c.log.add(rows(0, 4))
    c.finish_pass()  # every frame of the pass is analysed and recorded
    assert not c.recording and c.pass_saved
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    c.finish_pass()  # the end marker of the same pass again, or of a pass nobody recorded: nothing to save
    qtbot.wait(100)
    assert len(seen.saved) == 1 and c.pass_saved

    assert c.start(FILE, model)  # played again: a new session, never over the saved one
    assert not c.pass_saved and c.last is not first
    assert c.last.export_paths[0] != first.export_paths[0]
    c.log.add(rows(0, 2))
    c.finish_pass()
    qtbot.waitUntil(lambda: len(seen.saved) == 2, timeout=TIMEOUT_MS)
    assert [len(read_session(paths[0])[1]) for paths in seen.saved] == [4, 2]


def test_an_unusable_sessions_folder_is_refused_in_one_line_and_the_last_session_stays_exportable(
        controller, model, sessions, tmp_path, monkeypatch, qtbot):
    c, seen = controller
    assert c.start(FILE, model)
    c.log.add(rows(0, 6))
    c.stop()
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    kept = c.last

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(SESSIONS_ENV, str(blocker / "sessions"))  # a folder that cannot be made
    before = len(seen.recording)
    assert not c.start(FILE, model)
    assert not c.recording and seen.recording[before:] == [False]  # the Record button goes back
    (error,) = seen.errors
    assert error == (f"cannot record: cannot create the sessions folder {blocker / 'sessions'}: Not a directory (set "
                     "FANLIVE_SESSIONS_DIR to another folder)")
    assert c.last is kept

    c.export_to(tmp_path / "out.csv", kinds=("csv", "json"))  # what was recorded is still there
    qtbot.waitUntil(lambda: bool(seen.exported), timeout=TIMEOUT_MS)
    assert seen.exported == [[tmp_path / "out.csv", tmp_path / "out.json"]]
    assert read_session(tmp_path / "out.json")[1] == rows(0, 6)


def test_nothing_to_export_is_refused_in_one_line(controller, model, qtbot, tasks, tmp_path):
    c, seen = controller
    assert c.export_to(tmp_path / "out.csv") is None
    assert seen.errors == ["Nothing to export yet: nothing has been recorded in this session."]
    assert c.start(CAMERA, model)  # a recording that saw no face
    task = c.export_to(tmp_path / "out.csv")
    assert task.wait(TIMEOUT_MS)
    qtbot.waitUntil(lambda: bool(tasks.errors), timeout=TIMEOUT_MS)
    assert tasks.errors == ["nothing to export yet: no face has been recorded in this session"]
    assert seen.exported == [] and not (tmp_path / "out.csv").exists()


def test_a_recordings_study_is_saved_with_it(controller, model, sessions, qtbot):
    c, seen = controller
    c.study_factory = lambda: Study(markers=[Marker(1, 0.05, "stimulus")])  # each recording gets its own
    assert c.start(FILE, model)
    c.log.add(rows(0, 9))
    c.last.extension.add_marker(0.2, "key press")  # the window's marker key, while recording
    c.stop()
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    csv_path, json_path = seen.saved[0]
    events = sidecar_path(csv_path, "events").read_text().splitlines()
    assert events[1:] == ["1,0.05,stimulus", "2,0.2,key press"]
    assert [e["label"] for e in json.loads(json_path.read_text())["events"]] == ["stimulus", "key press"]
    assert not [n for n in names(sessions) if ".partial" in n or n.endswith(".tmp")]


def test_a_journal_that_fails_stops_the_recording_and_the_rows_before_it_are_saved(controller, model, sessions,
                                                                                 tasks, qtbot):
    """A disk that fills up under the journal (here a file size limit), as the pipeline thread meets it: its
    add raises, the recording stops; the window then calls on_recording_failed, which saves what the journal holds."""
    resource = pytest.importorskip("resource")
    import signal

    c, seen = controller
    assert c.start(FILE, model)
    c.log.add(rows(0, 5))
    journal = journal_path_for(c.last.export_paths[0])
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), no signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (journal.stat().st_size + 10, limits[1]))
    try:
        with pytest.raises(ExportError) as failed:
            c.log.add(rows(5, 50))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    message = str(failed.value)
    assert message.startswith(f"cannot write the journal {journal}") and "after 5 rows" in message
    assert not c.recording  # no more rows are taken

    c.on_recording_failed(message)  # what the window does with the pipeline thread's recording_failed
    assert seen.recording[-1] is False and seen.errors == [f"recording stopped: {message}"]
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    csv_path, json_path = c.last.export_paths
    # both files written, with the rows the journal kept: saved as any session (the line above said what failed)
    assert seen.saved == [[csv_path, json_path]] and tasks.errors == []
    saved = read_session(csv_path)[1]
    assert saved[:5] == rows(0, 5) and read_session(json_path)[1] == saved
    assert not journal.exists()


def test_recover_turns_a_dead_sessions_journal_into_its_files_and_leaves_a_live_one(controller, model, sessions,
                                                                                  qtbot):
    c, seen = controller
    assert c.recover() == [] and seen.notices == []  # nothing to recover: nothing said
    assert c.start(FILE, model)
    c.log.add(rows(0, 7))
    live = journal_path_for(c.last.export_paths[0])
    # what a killed run leaves: a journal nobody holds, with its session info
    dead = sessions / "2024-05-01_12-00-00_old.csv.partial.csv"
    shutil.copy(live, dead)
    shutil.copy(session_info_for(live), session_info_for(dead))
    recovered = c.recover()
    assert [p.name for p in recovered] == ["2024-05-01_12-00-00_old.csv"]
    assert read_session(recovered[0])[1] == rows(0, 7)
    html, key = seen.notices[-1]
    assert key == "recovered" and html.startswith("Recovered 1 session an earlier run did not finish: "
                                                  "2024-05-01_12-00-00_old.csv in ")
    assert live.exists() and c.recording  # the session being recorded is not touched
    c.log.add(rows(7, 1))
    c.stop()
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    assert read_session(seen.saved[0][0])[1] == rows(0, 8)


def test_export_on_exit_writes_the_last_session_to_each_path_and_goes_on_after_one_that_fails(
        controller, model, tmp_path, capsys):
    c, _ = controller
    c.export_on_exit([tmp_path / "nothing.csv"])  # nothing recorded: nothing written, nothing to say
    assert c.start(CAMERA, model)
    c.stop(wait=True)
    c.export_on_exit([tmp_path / "nothing.csv"])  # a recording without a face: the same
    assert not (tmp_path / "nothing.csv").exists() and capsys.readouterr().err == ""
    assert c.start(FILE, model)
    c.log.add(rows(0, 4))
    c.stop(wait=True)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    c.export_on_exit([blocker / "x.csv", tmp_path / "last.json"])
    assert read_session(tmp_path / "last.json")[1] == rows(0, 4)
    assert f"fan-live: export to {blocker / 'x.csv'} failed: " in capsys.readouterr().err


def test_a_live_recording_writes_the_headless_live_block_and_a_file_none(controller, model, sessions, qtbot):
    """The window's live session gets the same `live` block as a headless live recording, counted from the start
    of the recording: frames received (the capture thread's count), processed, dropped, latency, gaps, the stop."""
    import numpy as np

    from app.capture.camera import SourceEvent, SourceGap
    from app.capture.frame import Frame
    from app.pipeline import FrameResult

    c, seen = controller
    read = [500]  # frames the capture thread has read before the recording starts
    c.frames_received = lambda: read[0]
    c.reconnect_s = 4.0
    assert c.start(CAMERA, model)
    image = np.zeros((8, 8, 3), np.uint8)
    for i, latency in enumerate((20.0, 30.0, 40.0, 50.0)):  # four frames processed of the ten read
        c.log.add_result(FrameResult(frame=Frame(500 + i, 10.0 + i / 30, image), faces=[], predictions={},
                                     latency_ms=latency))
    read[0] = 510
    gap = SourceGap(10.1, 12.3, "the stream stalled")
    c.note_source_event(SourceEvent("back", 12.3, "udp://x is back after a gap of 2.2 s", gap))
    c.note_source_event(SourceEvent("ended", 14.0, "the source ended: it did not come back within 4 s",
                                    SourceGap(13.0, None, "the stream stalled")))
    c.stop()
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    live = json.loads(c.last.export_paths[1].read_text())["metadata"]["extra"]["live"]
    assert (live["frames_received"], live["frames_processed"], live["frames_dropped"]) == (10, 4, 6)
    assert live["dropped_share"] == 0.6 and live["latency_ms"]["n"] == 4 and live["latency_ms"]["max"] == 50.0
    assert 30.0 <= live["latency_ms"]["p50"] <= 40.0
    assert live["stop"] == "stopped" and live["reconnect_s"] == 4.0 and live["duration_s"] is None
    assert live["source_ended"] == "it did not come back within 4 s" and live["session_s"] >= 0
    assert live["gaps"] == [gap.to_json(), {"start_s": 13.0, "end_s": None, "duration_s": None,
                                            "reason": "the stream stalled"}]

    seen.saved.clear()
    assert c.start(FILE, model)  # a file's session has no live block
    c.log.add(rows(0, 2))
    c.stop()
    qtbot.waitUntil(lambda: bool(seen.saved), timeout=TIMEOUT_MS)
    assert "live" not in json.loads(c.last.export_paths[1].read_text())["metadata"]["extra"]
