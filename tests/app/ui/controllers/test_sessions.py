import datetime as dt
import shutil

import pytest

from app.timeline.metadata import SessionMetadata
from app.timeline.rows import TimelineRow
from app.timeline.files import journal_path_for
from app.timeline.formats import read_session
from app.ui.controllers.sessions import (SESSIONS_ENV, SessionLog, export_rows, recover_pending, session_stem,
    sessions_dir)

PROBS = (0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1)


def rows(n=5, face=1):
    return [TimelineRow(time_s=i / 10, frame_index=i, face_id=face, box=(1, 2, 30, 40), label="happiness",
                        confidence=0.4, probs=PROBS, alpha=0.5, weight=0.1) for i in range(n)]


def meta():
    return SessionMetadata(source="clip.mp4", model="m", providers=["CPUExecutionProvider"], head="relation",
                           window_length=16, started_at="2024-05-01T12:00:00+00:00", app_version="0")


def test_sessions_dir_env_and_stem(monkeypatch, tmp_path):
    monkeypatch.setenv(SESSIONS_ENV, str(tmp_path))
    assert sessions_dir() == tmp_path
    when = dt.datetime(2024, 5, 1, 12, 0, 0)
    assert session_stem("/videos/my clip.mp4", when) == "2024-05-01_12-00-00_my-clip"
    assert session_stem("camera 0", when) == "2024-05-01_12-00-00_camera-0"


def test_session_log_records_only_while_recording_and_keeps_the_last(tmp_path):
    log = SessionLog()
    log.add(rows())                      # not recording: ignored
    assert log.rows() == [] and not log.recording
    rec = log.start(tmp_path, "clip.mp4", meta())
    assert journal_path_for(rec.export_paths[0]).exists()  # autosave from the first moment
    log.add(rows(5))
    stopped = log.stop()
    log.add(rows(3))                     # after stop: ignored
    stopped.close()
    assert len(log.rows()) == 5 and log.last is stopped
    csv, js = stopped.export_paths
    assert len(read_session(csv)[1]) == 5 and read_session(js)[0]["source"] == "clip.mp4"
    second = log.start(tmp_path, "clip.mp4", meta())
    assert second.export_paths[0] != csv  # same second, same source: never overwrites


def test_export_rows_writes_each_kind(tmp_path):
    data = rows(6, face=1) + rows(2, face=2)
    out = export_rows(data, meta(), tmp_path / "out.csv", ("csv", "json", "png"), face_id=2)
    assert [p.name for p in out] == ["out.csv", "out.json", "out.png"]
    assert read_session(out[0])[1] == data and read_session(out[1])[1] == data
    assert out[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.json", "out.png"]  # no journal left
    with pytest.raises(ValueError):
        export_rows([], meta(), tmp_path / "empty.csv")


def test_recover_pending_turns_crash_journals_into_csvs(tmp_path):
    log = SessionLog()
    rec = log.start(tmp_path / "run", "clip.mp4", meta())
    log.add(rows(4))
    # what a crashed run leaves: a journal and no final files
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(rec.journal_path, crashed / "2024-05-01_12-00-00_clip.csv.partial.csv")
    (crashed / f"2024-05-01_12-00-00_clip.json.{dead_pid()}.0badf00d.tmp").write_text("{")  # killed mid-write
    assert recover_pending(tmp_path / "run") == []  # a live recording (this process holds it), however old
    log.stop().close()
    # nobody holds the copy: recovered at once, though it was written a moment ago (a quick restart)
    recovered = recover_pending(crashed)
    assert [p.name for p in recovered] == ["2024-05-01_12-00-00_clip.csv"]
    assert len(read_session(recovered[0])[1]) == 4 and not list(crashed.glob("*.partial*"))
    assert not list(crashed.glob("*.tmp"))
    assert recover_pending(tmp_path / "missing") == []


def dead_pid() -> int:
    import subprocess
    import sys

    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
