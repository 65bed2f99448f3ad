"""The window's study tools on a real replay (offscreen, random model FOR TESTS ONLY): markers added with M and 1-9,
renamed and deleted, drawn on the timeline, journalled with the recording, written into its autosave and its export
(events, epochs, summary), the baseline-corrected view, and the LSL toggle streaming to an inlet."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from app.timeline.files import extension_journal_for
from app.study.tables import PROB_COLUMNS, sidecar_path
from app.study.options import BaselineSpec
from app.ui.controllers.markers import parse_key_names

pytestmark = [pytest.mark.qt, pytest.mark.data]

TIMEOUT_MS = 60_000


def test_key_names_fill_in_defaults():
    assert parse_key_names("rest, happy  face,,") == ("rest", "happy face", *(f"stimulus {k}" for k in range(3, 10)))


def test_markers_added_in_the_window_appear_in_its_exports(make_window, videos, sessions, tmp_path, qtbot,
                                                            monkeypatch):
    w = make_window(videos / "single_face.mp4")
    saved = []
    w.session_saved.connect(saved.append)
    c = w.markers
    c.set_key_names("rest, smile")
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.frame.index >= 10 and w.session_log.recording,
                    timeout=TIMEOUT_MS)
    qtbot.keyClick(w, Qt.Key_Space)  # pause: the markers go at known frames
    qtbot.waitUntil(lambda: not w.transport.playing, timeout=TIMEOUT_MS)
    t0 = w.latest.frame.time_s
    qtbot.keyClick(w, Qt.Key_1)        # "rest"
    qtbot.keyClick(w, Qt.Key_M)        # "marker"
    qtbot.keyClick(w, Qt.Key_2)        # "smile"
    assert [(m.time_s, m.label) for m in c.study.markers] == [(t0, "rest"), (t0, "marker"), (t0, "smile")]
    assert w.markers.dock.list.count() == 3
    lines = w.markers.lines.lines  # drawn on the timeline's plot at the markers' times
    assert [ln.value() for ln in lines] == [t0] * 3 and lines[0].scene() is w.timeline.plot.scene()
    # rename and delete through the dock's list (Ctrl+M shows it)
    qtbot.keyClick(w, Qt.Key_M, Qt.ControlModifier)
    qtbot.waitUntil(lambda: w.markers.dock.isVisible(), timeout=5000)
    w.markers.dock.list.item(1).setSelected(True)
    w.markers.dock.rename_selected("surprise stimulus")
    w.markers.dock.list.clearSelection()
    w.markers.dock.list.item(2).setSelected(True)
    w.markers.dock.list.setFocus()
    qtbot.keyClick(w.markers.dock.list, Qt.Key_Delete)
    assert [m.label for m in c.study.markers] == ["rest", "surprise stimulus"]
    recorder = w.session_log.last
    journal = extension_journal_for(recorder.journal_path)
    assert journal.exists() and "surprise stimulus" in journal.read_text()  # journalled as it happens

    # a baseline (the first second) and the corrected view: the timeline plots probabilities minus its mean
    c.set_baseline(BaselineSpec("first", seconds=1.0))
    c.set_show_corrected(True)
    assert c.baseline is not None
    fid = next(iter(c.baseline.means))
    raw = np.full((2, 7), 1 / 7, np.float32)
    np.testing.assert_allclose(c.view_probs(fid, raw), raw - np.asarray(c.baseline.means[fid], np.float32))

    c.set_summary_every(0.5)
    assert not c.set_epoch("soon")  # one error line, the setting stays
    assert c.set_epoch("0.5,2") and c.study.config.epoch.post_s == 2.0
    qtbot.keyClick(w, Qt.Key_Space)  # play to the end: the session is saved with its markers
    qtbot.waitUntil(lambda: bool(saved), timeout=TIMEOUT_MS)
    csv_path = saved[0][0]
    events = pd.read_csv(sidecar_path(csv_path, "events"))
    assert list(events.label) == ["rest", "surprise stimulus"] and list(events.time_s) == [t0, t0]
    df = pd.read_csv(csv_path, float_precision="round_trip")  # exact times at the epoch edges
    ep = pd.read_csv(sidecar_path(csv_path, "epochs"))
    e = ep.iloc[0]
    win = df[(df.face_id == e.face_id) & (df.time_s >= t0 - 0.5) & (df.time_s < t0 + 2)]
    assert e.n_frames == len(win) > 0
    np.testing.assert_allclose(e[list(PROB_COLUMNS)].to_numpy(float), win[list(PROB_COLUMNS)].mean().to_numpy(),
                               rtol=1e-9)
    assert "p_anger_corrected" in df.columns and "p_anger_corrected" in ep.columns
    assert len(pd.read_csv(sidecar_path(csv_path, "summary"))) >= 4  # 0.5 s intervals of a 2.4 s clip
    doc = json.loads(saved[0][1].read_text())
    assert [ev["label"] for ev in doc["events"]] == ["rest", "surprise stimulus"]
    assert not journal.exists()

    # Export... writes the same study files beside the chosen name
    with qtbot.waitSignal(w.session_exported, timeout=TIMEOUT_MS) as exported:
        w.export_to(tmp_path / "out.csv", kinds=("csv", "json"))
    names = [p.name for p in exported.args[0]]
    assert names == ["out.csv", "out.json", "out_events.csv", "out_epochs.csv", "out_summary.csv"]
    assert pd.read_csv(tmp_path / "out_epochs.csv").equals(ep)

    # a file that is no session (here the events table) is refused when it is picked, not dropped at the export
    events_path = tmp_path / "out_events.csv"
    monkeypatch.setattr("app.ui.controllers.markers.QFileDialog.getOpenFileName", lambda *a, **k: (str(events_path), ""))
    w.markers.dock.baseline_kind.setCurrentIndex(3)
    with qtbot.waitSignal(c.error_occurred, timeout=TIMEOUT_MS) as refused:
        w.markers.dock.apply_baseline()
    assert refused.args[0].startswith(f"baseline recording {events_path} is not a FAN Live session export")
    assert w.markers.dock.baseline_kind.currentIndex() == 0 and c.study.config.baseline != BaselineSpec(
        "file", path=str(events_path))

    # a separate recording as the baseline (the dock's file dialog, answered here): one mean for every face
    monkeypatch.setattr("app.ui.controllers.markers.QFileDialog.getOpenFileName", lambda *a, **k: (str(csv_path), ""))
    w.markers.dock.baseline_kind.setCurrentIndex(3)
    w.markers.dock.apply_baseline()
    assert c.study.config.baseline == BaselineSpec("file", path=str(csv_path))
    np.testing.assert_allclose(c.baseline.means[None], df[list(PROB_COLUMNS)].mean().to_numpy(), atol=1e-12)


def test_the_lsl_toggle_streams_processed_frames(make_window, videos, qtbot):
    from app.study.lsl import LslUnavailable, load_pylsl

    try:
        pylsl = load_pylsl()
    except LslUnavailable as e:
        pytest.skip(str(e))
    w = make_window(videos / "single_face.mp4", lsl=True)  # main.py --lsl: streaming from the start
    assert w.markers.lsl is not None and w.markers.dock.lsl.isChecked()
    found = pylsl.resolve_byprop("source_id", f"{w.markers.lsl.source_id}-expressions", timeout=10)
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=10)
    got = []

    def received() -> bool:  # poll without blocking: the frames are processed and streamed by this thread's loop
        sample, _ = inlet.pull_sample(timeout=0.0)
        if sample is not None:
            got.append(sample)
        return bool(got)

    qtbot.waitUntil(received, timeout=TIMEOUT_MS)
    assert got[0][0] >= 1 and abs(sum(got[0][2:]) - 1) < 1e-3  # face id, media time, 7 probabilities
    w.markers.dock.lsl.setChecked(False)
    assert w.markers.lsl is None
