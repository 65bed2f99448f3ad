"""Headless replay of a video file (app/runs/replay.py) in this process, on the shortest shared videos and a random
model (FOR TESTS ONLY: the replay is under test, not accuracy): the exports hold a row per frame with a face and
nothing is left beside them, a repeated file is one session, a stop request exports the rows so far, a damaged file
is exported up to the damage and says so, the study files come from the same run with notes on what they lack, and
a missing or corrupt input fails with one line before anything is written (or a model is loaded)."""
from __future__ import annotations

import multiprocessing
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest

from app.capture.frame import CaptureError
from app.pipeline import Pipeline, PipelineConfig
from app.runs.interrupt import Interrupted, StopFlag
from app.runs.replay import check_inputs, export_targets, replay, replay_file
from app.study.options import BaselineSpec, Marker, StudyConfig
from app.timeline.files import ExportError
from app.timeline.formats import read_session

pytestmark = pytest.mark.data

SINGLE_FACE_FRAMES = 72  # single_face.mp4: a face in every frame, 2.37 s at 30 fps
NO_FACE_FRAMES = 95      # no_face.mp4 (its container declares 98)


@pytest.fixture(scope="module")
def config(random_gray_model) -> PipelineConfig:
    return PipelineConfig(weights=random_gray_model, device="cpu")


@pytest.fixture(scope="module")
def pipeline(config):
    """One pipeline for the module: replay_file resets it (tracks, face ids) before each file."""
    with Pipeline(config) as p:
        yield p


@pytest.fixture(scope="module")
def single(videos, pipeline, tmp_path_factory):
    """single_face.mp4 replayed once into a CSV and a JSON."""
    out = tmp_path_factory.mktemp("single")
    ticks = []
    result = replay_file(videos / "single_face.mp4", [out / "s.csv", out / "s.json"], pipeline, progress=False,
                         on_frames=ticks.append)
    return out, result, ticks


def leftovers(folder: Path) -> list[str]:
    """Journals, their side files and temp files: what a replay must not leave once its exports are written."""
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".tmp"))


def test_a_replay_exports_a_row_per_frame_with_a_face_and_leaves_nothing_else(single, videos, pipeline):
    out, result, ticks = single
    video = videos / "single_face.mp4"
    assert result.status == "done" and result.error is None and result.damage is None and result.notes == []
    assert result.source == video and result.exports == [out / "s.csv", out / "s.json"]
    assert result.frames == result.declared_frames == SINGLE_FACE_FRAMES
    assert sum(ticks) == SINGLE_FACE_FRAMES and set(ticks) <= {16, SINGLE_FACE_FRAMES % 16}  # progress in steps
    _, csv_rows = read_session(out / "s.csv")
    meta, json_rows = read_session(out / "s.json")
    assert csv_rows == json_rows
    assert [r.frame_index for r in csv_rows] == list(range(SINGLE_FACE_FRAMES))
    assert {r.face_id for r in csv_rows} == {1}  # face ids from 1 in each file
    assert [r.time_s for r in csv_rows] == sorted(r.time_s for r in csv_rows)
    assert meta["source"] == str(video) and meta["model"] == pipeline.card.name
    assert meta["providers"] == ["CPUExecutionProvider"]
    assert result.summary["n_frames"] == SINGLE_FACE_FRAMES and result.summary["n_rows"] == len(csv_rows)
    assert sorted(p.name for p in out.iterdir()) == ["s.csv", "s.json"]


def test_without_overlap_the_rows_are_the_same(single, videos, pipeline, tmp_path):
    """The face mesh of the next frames on a thread of its own (overlap, the default) changes no row."""
    out, _, _ = single
    result = replay_file(videos / "single_face.mp4", [tmp_path / "plain.csv"], pipeline, progress=False,
                         overlap=False)
    assert result.frames == SINGLE_FACE_FRAMES
    assert (tmp_path / "plain.csv").read_text() == (out / "s.csv").read_text()


def test_frames_without_a_face_count_and_are_exported_with_all_frames_only(videos, config, pipeline, tmp_path):
    video = videos / "no_face.mp4"
    faceless = replay_file(video, [tmp_path / "faces.csv"], pipeline, progress=False)
    assert faceless.status == "done"  # 95 of the 98 it declares: within what a container's estimate is off by
    assert faceless.frames == faceless.summary["n_frames"] == NO_FACE_FRAMES and faceless.summary["n_rows"] == 0
    assert read_session(tmp_path / "faces.csv")[1] == []
    with Pipeline(PipelineConfig(weights=config.weights, device="cpu", all_frames=True)) as every_frame:
        replay_file(video, [tmp_path / "all.csv"], every_frame, progress=False)
    df = pd.read_csv(tmp_path / "all.csv")
    assert df["frame_index"].tolist() == list(range(NO_FACE_FRAMES)) and (df["face_found"] == 0).all()
    assert df["face_id"].isna().all()


def test_a_repeated_file_is_one_session_with_a_callback_after_each_pass(videos, pipeline, tmp_path):
    passes = []
    result = replay_file(videos / "single_face.mp4", [tmp_path / "soak.csv"], pipeline, progress=False, repeat=2,
                         on_pass=lambda done, frames: passes.append((done, frames)))
    n = SINGLE_FACE_FRAMES
    # a pass is told at its last frame, or at the next pass's first when that was not decoded yet (decoding runs
    # ahead on a thread of its own)
    assert [done for done, _ in passes] == [1, 2] and passes[0][1] in (n, n + 1) and passes[1][1] == 2 * n
    assert result.frames == result.summary["n_frames"] == 2 * n
    assert result.declared_frames == n  # the file's own figure, not the session's
    rows = read_session(tmp_path / "soak.csv")[1]
    assert [r.frame_index for r in rows] == list(range(2 * n))  # indices and times go on into the second pass
    times = [r.time_s for r in rows]
    assert all(b > a for a, b in zip(times, times[1:]))


def test_a_stop_request_ends_the_replay_at_the_next_frame_with_the_rows_so_far_exported(videos, pipeline,
                                                                                        tmp_path):
    stop = StopFlag.shared(multiprocessing.get_context())
    out = tmp_path / "cut.csv"
    # asked for after 16 frames (the first progress tick), as a signal to a worker process of a folder replay does
    with pytest.raises(Interrupted) as stopped:
        replay_file(videos / "single_face.mp4", [out, tmp_path / "cut.json"], pipeline, progress=False,
                    on_frames=lambda n: stop.request(signal.SIGTERM), stop=stop)
    assert stopped.value.signum == signal.SIGTERM
    rows = read_session(out)[1]
    assert [r.frame_index for r in rows] == list(range(16))
    assert read_session(tmp_path / "cut.json")[1] == rows
    assert leftovers(tmp_path) == []


def test_a_truncated_file_is_exported_up_to_the_damage_and_says_so(videos, pipeline, tmp_path):
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 20])  # index first: its first ~17 of 472 frames decode
    result = replay_file(cut, [tmp_path / "cut.csv"], pipeline, progress=False)
    assert result.status == "damaged" and result.error is None
    assert result.declared_frames == 472 and 5 < result.frames < 472
    assert f"decoded {result.frames} of the 472 frames" in result.damage
    rows = read_session(tmp_path / "cut.csv")[1]
    assert 0 < len(rows) <= result.frames and rows[-1].frame_index < result.frames
    assert leftovers(tmp_path) == []


def test_the_study_files_come_from_the_same_run_and_the_notes_say_what_they_lack(videos, pipeline, tmp_path):
    markers = (Marker(1, 0.5, "stimulus"), Marker(2, 1.5, "rest"), Marker(3, 10.0, "too late"))
    study = StudyConfig(summary_every_s=1.0, baseline=BaselineSpec("between", start_label="rest",
                                                                   end_label="never shown"))
    out = tmp_path / "study.csv"
    result = replay_file(videos / "single_face.mp4", [out, tmp_path / "study.json"], pipeline, progress=False,
                         study=study, markers=markers)
    assert [p.name for p in result.exports] == ["study.csv", "study.json", "study_events.csv", "study_epochs.csv",
                                                "study_summary.csv"]
    assert all(p.is_file() for p in result.exports)
    late, baseline = result.notes
    assert late.startswith("1 marker after the end of the video (its last frame is at 2.37 s): 'too late' at 10 s")
    assert baseline == ("baseline: no marker labelled 'never shown' after 'rest' at 1.5 s: the study files have no "
                        "baseline-corrected columns")
    df = pd.read_csv(out)
    assert not [c for c in df.columns if c.endswith("_corrected")]
    events = pd.read_csv(tmp_path / "study_events.csv")
    assert events["label"].tolist() == ["stimulus", "rest", "too late"]
    epochs = pd.read_csv(tmp_path / "study_epochs.csv").set_index("label")
    assert epochs.loc["stimulus", "n_frames"] == len(df[df.time_s < 3.5])  # [-0.5 s, 3.5 s): every frame
    assert epochs.loc["too late", "n_frames"] == 0
    summary = pd.read_csv(tmp_path / "study_summary.csv")
    assert summary["start_s"].tolist() == [0.0, 1.0, 2.0] and summary["n_frames"].sum() == len(df)


def test_a_missing_or_corrupt_video_is_one_line_and_nothing_is_written(videos, pipeline, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes((videos / "single_face.mp4").read_bytes()[:20000])  # the header without its frames
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    for video, why in ((tmp_path / "missing.mp4", "not found"), (corrupt, "cannot open"), (empty, "is empty")):
        with pytest.raises(CaptureError) as failed:
            replay_file(video, [out / "x.csv"], pipeline, progress=False)
        message = str(failed.value)
        assert video.name in message and why in message and "\n" not in message
    assert list(out.iterdir()) == []


def test_bad_inputs_fail_before_the_model_loads(videos, tmp_path):
    """replay() checks the video and every export first: with a model that does not exist, the input's own error
    comes, not the model's."""
    no_model = PipelineConfig(weights=tmp_path / "no_model.onnx", device="cpu")
    with pytest.raises(CaptureError, match="not found"):
        replay(tmp_path / "missing.mp4", [tmp_path / "x.csv"], no_model, progress=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="a_file is not a folder"):
        replay(videos / "single_face.mp4", [blocker / "x.csv"], no_model, progress=False)
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        replay(videos / "single_face.mp4", [tmp_path / "x.txt"], no_model, progress=False)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(CaptureError, match="no video files in folder"):
        check_inputs(empty, [tmp_path / "out"])
    with pytest.raises(ValueError, match="is a folder: app.runs.folder.run_folder replays folders"):
        replay(empty, [tmp_path / "out"], no_model, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty_folder"]


def test_export_targets_name_each_videos_exports_after_it_in_a_folder_replay():
    video = Path("/in/clip one.mp4")
    exports = [Path("/out/results"), Path("/out/run.csv"), Path("/out/run.JSON")]
    assert export_targets(video, exports, many=False) == exports
    assert export_targets(video, exports, many=True) == [Path("/out/results/clip one.csv"),
                                                        Path("/out/run_clip one.csv"), Path("/out/run_clip one.JSON")]


def test_a_folders_videos_are_listed_in_order_and_replayed_by_run_folder(videos, config, tmp_path):
    """replay() takes one file; a folder goes through app.runs.folder.run_folder, which goes on after a video that
    fails (tests/app/runs/test_folder.py has the rest)."""
    from app.runs.folder import run_folder

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(videos / "single_face.mp4", folder / "b_single.mp4")
    (folder / "a_corrupt.mp4").write_bytes((videos / "single_face.mp4").read_bytes()[:20000])
    out = tmp_path / "out"
    assert check_inputs(folder, [out]) == [folder / "a_corrupt.mp4", folder / "b_single.mp4"]
    told = []
    run = run_folder(folder, [out], config, progress=False, on_result=told.append)
    failed, done = run.results
    assert sorted(r.source.name for r in told) == ["a_corrupt.mp4", "b_single.mp4"]
    assert (failed.status, failed.frames, failed.exports) == ("failed", 0, [])
    assert "a_corrupt.mp4" in failed.error and "\n" not in failed.error
    assert (done.status, done.frames, done.exports) == ("done", SINGLE_FACE_FRAMES, [out / "b_single.csv"])
    assert len(read_session(out / "b_single.csv")[1]) == SINGLE_FACE_FRAMES
