"""The Python API: a video in, the CSV export's table out, as a DataFrame."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from app.api import AnalysisConfig, analyze_folder, analyze_video
from app.capture.frame import CaptureError
from app.pipeline import PipelineConfig
from app.timeline.rows import CSV_COLUMNS, LIVE_COLUMNS
from app.timeline.formats import read_session

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def single(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "single_face.csv"
    return analyze_video(videos / "single_face.mp4", exports=[out]), out


def test_analyze_video_equals_the_csv_export_of_the_same_run(single):
    df, csv = single
    assert list(df.columns[: len(CSV_COLUMNS)]) == list(CSV_COLUMNS)
    assert list(df.columns) == pd.read_csv(csv, nrows=0).columns.tolist()  # every column the export has
    pd.testing.assert_frame_equal(df, pd.read_csv(csv, float_precision="round_trip"), check_exact=True)
    assert len(df) == 72 and set(df["face_id"]) == {1}
    assert df["frame_index"].dtype == "int64" and df["face_id"].dtype == "int64"
    assert df["label"].dtype == object and df["p_happiness"].dtype == "float64"
    # the exact values the recorder wrote (no float lost on the way through text)
    _, rows = read_session(csv)
    file_columns = [c for c in CSV_COLUMNS if c not in LIVE_COLUMNS]  # a file's frames have no capture latency
    assert [list(r.csv_values())[: len(file_columns)] for r in rows] == df[file_columns].values.tolist()
    assert df[list(LIVE_COLUMNS)].isna().all().all()
    assert df.attrs["status"] == "done" and df.attrs["summary"]["n_rows"] == 72


def test_analyze_folder_adds_the_video_and_reports_failures(videos, single, tmp_path):
    df_single, _ = single
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(videos / "single_face.mp4", folder / "single_face.mp4")
    (folder / "broken.mp4").write_text("not a video\n")
    df = analyze_folder(folder, AnalysisConfig(pipeline=PipelineConfig(), workers=1), export_dir=tmp_path / "out")
    assert list(df.columns) == ["video", *df_single.columns]
    assert set(df["video"]) == {"single_face.mp4"}
    pd.testing.assert_frame_equal(df.drop(columns="video"), df_single, check_exact=True)
    assert list(df.attrs["failed"]) == ["broken.mp4"]
    again = analyze_folder(folder, AnalysisConfig(), export_dir=tmp_path / "out")  # read back, not recomputed
    assert again.attrs["skipped"] == ["single_face.mp4"]
    pd.testing.assert_frame_equal(again, df, check_exact=True)


def test_bad_input_is_one_line_and_the_config_is_checked(tmp_path):
    with pytest.raises(CaptureError, match="missing.mp4"):
        analyze_video(tmp_path / "missing.mp4")
    with pytest.raises(CaptureError) as info:  # said "no video files in folder ." (Path("") is the working folder)
        analyze_video("")
    assert str(info.value) == "no video given (an empty path)"
    with pytest.raises(CaptureError, match="is a folder: analyze_folder reads every video in one"):
        analyze_video(tmp_path)
    with pytest.raises(ValueError, match="workers"):
        AnalysisConfig(workers=0)
