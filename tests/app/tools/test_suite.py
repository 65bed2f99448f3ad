"""The benchmark's suites (app/tools/suite.py) as behaviour, never speed: the GPU suite runs end to end on the CPU provider
at a tiny size and writes its one file; the long-clip replay keeps its rows with every exact lever; rows compare."""
from __future__ import annotations

import json

import pytest

from app.tools import suite


def test_compare_rows_counts_the_faces_found_per_frame_against_the_reference():
    head = "time_s,frame_index,face_id,label\n"
    ref = head + "0,0,1,happiness\n0,0,2,sadness\n0.1,1,1,happiness\n0.2,2,,\n"
    late = head + "0.1,1,1,happiness\n"                                  # found a frame late, one face
    extra = head + "0,0,1,happiness\n0,0,2,sadness\n0,0,3,fear\n0.1,1,1,happiness\n"  # one more than the reference
    assert suite.compare_rows(ref, ref) == {"identical": True, "face_rows": 3, "face_rows_reference": 3,
                                            "face_recall": 1.0}
    assert suite.compare_rows(late, ref)["face_recall"] == pytest.approx(1 / 3, abs=1e-4)
    r = suite.compare_rows(extra, ref)
    assert r["face_recall"] == 1.0 and not r["identical"] and r["face_rows"] == 4


@pytest.mark.data
@pytest.mark.parametrize("with_ffmpeg", [True, False], ids=["ffmpeg", "no-ffmpeg"])
def test_the_gpu_suite_runs_on_the_cpu_provider_and_writes_one_file(tmp_path, ffmpeg, monkeypatch, with_ffmpeg):
    """As a lent GPU machine would run it, on the CPU provider at a tiny size; also where there is no ffmpeg (that
    machine's image has none): its clips are then made with OpenCV."""
    from app.tools.bench import main

    if not with_ffmpeg:
        monkeypatch.setenv("FANLIVE_FFMPEG", str(tmp_path / "no-ffmpeg-here"))

    out = tmp_path / "out"
    assert main(["--suite", "--device", "cpu", "--out", str(out), "--seconds", "0.4", "--frames", "10",
                 "--repeat", "1"]) == 0
    assert [p.name for p in out.iterdir()] == [suite.SUITE_FILE]
    result = json.loads((out / suite.SUITE_FILE).read_text())
    (embedder,) = result["embedder"].values()
    assert embedder["providers"][0] == "CPUExecutionProvider"
    assert set(embedder["batches"]) == {"1", "4", "16"} and all(
        b["ms_per_face"] > 0 for b in embedder["batches"].values())
    faces = result["end_to_end"]["cpu"]["faces"]
    for n in ("1", "4", "16"):  # 1, 2x2 and 4x4 copies of single_face.mp4 at 1920x1080: every face, once
        assert faces[n]["faces_per_frame"] == int(n) and faces[n]["ids"] == int(n)
        assert faces[n]["duplicate_pairs"] == 0 and faces[n]["frames"] > 0
    assert result["replay"]["runs"]["cpu"]["frames"] == 10
    check = result["rows_check"]
    assert check["passed"] and check["identical"] and check["rows"] == check["rows_reference"] > 0


@pytest.mark.data
def test_the_whole_replay_keeps_its_rows_with_the_exact_levers(tmp_path, videos, ffmpeg):
    """A short clip of title cards around a face through `python main.py ... --no-window` and fresh replay
    processes: skipping unchanged images (shipped) gives the rows of the mesh on every frame, and stride:4 is
    measured against them."""
    from app.tools.clips import long_clip

    clip = long_clip(videos, tmp_path / "long.mp4", parts=(1.0, "single_face.mp4", 1.5))
    levers = {k: suite.LEVERS[k] for k in ("as shipped", suite.REFERENCE, "gate stride:4")}
    result = suite.long_bench(clip, rounds=1, levers=levers, log=lambda _: None)
    rows = result["replays"]
    assert result["frames"] == 24 + 58 + 36 and result["decode_mesh_fps"] > 0
    assert rows["main.py"]["identical"] and rows["as shipped"]["identical"]
    assert rows[suite.REFERENCE]["face_rows_reference"] >= 50
    assert 0.9 <= rows["gate stride:4"]["face_recall"] <= 1.0
