"""Dataset readers on tiny generated fixtures in every layout, and the real FER+ / CK+48 counts."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.emotions import EMOTIONS
from models.data.datasets import (Clip, DatasetError, Sample, ckplus_clips, class_counts, duplicate_mask,
    ferplus_majority, rafdb_split, read_ckplus, read_clip_folders, read_ferplus, read_image_folder, read_index_csv,
    read_rafdb, read_sfew, read_taiwanese, sfew_split, stratified_split, subject_folds, subject_split,
    taiwanese_split)

E = {name: i for i, name in enumerate(EMOTIONS)}


def _png(path: Path, value: int = 128, size: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size), value, np.uint8))
    return path


# ---------------------------------------------------------------------------------------------------- FER+

# name, votes in label.csv order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_ROWS = [
    ("a.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]),   # singles dropped: 4 of 9 remaining -> ambiguous
    ("b.png", [9, 0, 0, 1, 0, 0, 0, 0, 0, 0]),   # neutral
    ("c.png", [0, 6, 2, 0, 0, 0, 0, 0, 2, 0]),   # happiness (6 of 10)
    ("d.png", [2, 0, 0, 0, 0, 0, 0, 8, 0, 0]),   # contempt -> outside the 7
    ("e.png", [0, 0, 0, 0, 0, 0, 0, 0, 3, 7]),   # not a face
    ("f.png", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),   # every vote single -> ambiguous, no soft target
    ("g.png", [0, 0, 0, 0, 5, 5, 0, 0, 0, 0]),   # tie: 5 is not more than half of 10 -> ambiguous
    ("h.png", [1, 0, 0, 0, 0, 0, 6, 0, 0, 3]),   # fear 6 of 9
]


def _ferplus_split(folder: Path, rows=FERPLUS_ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, votes in rows:
        _png(folder / name)
        lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (folder / "label.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_ferplus_majority_rule():
    assert ferplus_majority([4, 0, 0, 1, 3, 2, 0, 0, 0, 0])[:2] == (None, "ambiguous")
    label, cat, soft = ferplus_majority([9, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    assert (label, cat) == (E["neutral"], "neutral")
    np.testing.assert_allclose(soft, np.eye(7)[E["neutral"]])  # the single sadness vote is dropped
    label, cat, soft = ferplus_majority([0, 6, 2, 0, 0, 0, 0, 0, 2, 0])
    assert (label, cat) == (E["happiness"], "happiness")
    assert soft[E["happiness"]] == pytest.approx(0.75) and soft[E["surprise"]] == pytest.approx(0.25)  # unknown out
    assert ferplus_majority([2, 0, 0, 0, 0, 0, 0, 8, 0, 0])[:2] == (None, "contempt")
    assert ferplus_majority([1] * 10) == (None, "ambiguous", None)
    assert ferplus_majority([0, 0, 0, 0, 0, 0, 0, 0, 0, 10])[2] is None  # NF only: no 7-class soft target


def test_read_ferplus_parent_and_single_split(tmp_path):
    _ferplus_split(tmp_path / "FER2013Train")
    _ferplus_split(tmp_path / "FER2013Valid", FERPLUS_ROWS[:3])
    splits = read_ferplus(tmp_path)
    assert list(splits) == ["FER2013Train", "FER2013Valid"]
    train = splits["FER2013Train"]
    by = {s.path.stem: s for s in train}
    assert [by[n].label for n in "abcdefgh"] == [None, E["neutral"], E["happiness"], None, None, None, None,
                                                 E["fear"]]
    assert [by[n].source_label for n in "adef"] == ["ambiguous", "contempt", "NF", "ambiguous"]
    assert by["f"].votes is None and by["e"].votes is None
    assert by["h"].votes.shape == (7,) and by["h"].votes.sum() == pytest.approx(1.0)
    assert by["h"].votes[E["fear"]] == pytest.approx(1.0)  # neutral single vote dropped, NF outside the 7
    assert all(s.path.is_file() for s in train)
    # one split folder, and split names given short
    assert list(read_ferplus(tmp_path / "FER2013Valid")) == ["FER2013Valid"]
    assert list(read_ferplus(tmp_path, split_names=["valid"])) == ["FER2013Valid"]
    assert class_counts(train)["none"] == 5


def test_read_ferplus_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_ferplus(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no FER\\+ split folder"):
        read_ferplus(tmp_path)
    split = _ferplus_split(tmp_path / "FER2013Train")
    (split / "b.png").unlink()
    with pytest.raises(DatasetError, match="missing, first b.png"):
        read_ferplus(tmp_path)
    (split / "label.csv").write_text('x.png,"(0, 0, 48, 48)",1,2\n')
    with pytest.raises(DatasetError, match="expected 12 columns"):
        read_ferplus(split)


# ------------------------------------------------------------------------------------------- image folders

def test_read_image_folder_aliases_and_skips(tmp_path, caplog):
    for folder, n in [("angry", 2), ("Happy", 1), ("sad", 1), ("surprised", 1), ("fearful", 1), ("neutral", 1),
                      ("disgust", 1), ("contempt", 3)]:
        for i in range(n):
            _png(tmp_path / folder / f"{i}.jpg")
    (tmp_path / "angry" / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="models.data.datasets"):
        samples = read_image_folder(tmp_path)
    assert "contempt" in caplog.text
    counts = class_counts(samples)
    assert counts == {"anger": 2, "disgust": 1, "fear": 1, "happiness": 1, "sadness": 1, "surprise": 1,
                      "neutral": 1, "none": 0}
    assert {s.source_label for s in samples if s.label == E["happiness"]} == {"Happy"}
    with pytest.raises(DatasetError):
        read_image_folder(tmp_path / "contempt")  # only image files, no class folders


# ------------------------------------------------------------------------------------------------- CSV index

def test_read_index_csv(tmp_path, caplog):
    _png(tmp_path / "imgs" / "x.png")
    _png(tmp_path / "imgs" / "y.png")
    _png(tmp_path / "imgs" / "z.png")
    csv_path = tmp_path / "meta" / "index.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("path,label,subject\n../imgs/x.png,happy,S1\n../imgs/y.png,Anger,\n../imgs/z.png,contempt,S2\n")
    with caplog.at_level(logging.WARNING, logger="models.data.datasets"):
        samples = read_index_csv(csv_path)
    assert "contempt" in caplog.text
    assert [s.label for s in samples] == [E["happiness"], E["anger"], None]
    assert [s.subject for s in samples] == ["S1", None, "S2"]
    assert all(s.path.is_file() for s in samples)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,emotion\nx.png,happy\n")
    with pytest.raises(DatasetError, match="'path' and 'label'"):
        read_index_csv(bad)
    bad.write_text("path,label\nimgs/missing.png,happy\n")
    with pytest.raises(DatasetError, match="missing"):
        read_index_csv(bad)


# ---------------------------------------------------------------------------------------------------- CK+

def _ckplus(root: Path, with_index: bool) -> Path:
    rows = ["path,label,subject,sequence,frame"]
    layout = {("anger", "S010", "004"): 3, ("happy", "S010", "006"): 3, ("contempt", "S011", "002"): 3,
              ("surprise", "S011", "001"): 3, ("sadness", "S012", "003"): 3}
    for (label, subj, seq), n in layout.items():
        for f in (18, 9, 10)[:n]:  # written out of order on purpose
            rel = f"{label}/{subj}_{seq}_{f:08d}.png"
            _png(root / rel)
            rows.append(f"{rel},{label},{subj},{subj}_{seq},{f}")
    if with_index:
        (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("with_index", [True, False])
def test_read_ckplus_and_clips(tmp_path, with_index):
    samples = read_ckplus(_ckplus(tmp_path, with_index))
    assert len(samples) == 15
    assert sum(s.label is None for s in samples) == 3  # contempt kept out of the 7
    assert {s.source_label for s in samples if s.label is None} == {"contempt"}
    assert all(s.subject and s.sequence and s.frame for s in samples)
    clips = ckplus_clips(samples)
    assert len(clips) == 4 and all(isinstance(c, Clip) for c in clips)
    for c in clips:
        frames = [int(p.stem.split("_")[-1]) for p in c.frames]
        assert frames == sorted(frames) == [9, 10, 18]
        assert c.subject == c.name.split("_")[0]
    assert len(ckplus_clips(samples, keep_unlabeled=True)) == 5


# ---------------------------------------------------------------------------------------------- clip folders

def test_read_clip_folders_frames_and_video(tmp_path):
    for i in (1, 2, 10):
        _png(tmp_path / "happy" / "clip_a" / f"frame{i}.png", value=10 * i)
    _png(tmp_path / "Angry" / "clip_b" / "0001.jpg")
    (tmp_path / "sad" / "empty_clip").mkdir(parents=True)
    video = tmp_path / "surprised" / "clip_c.avi"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    (tmp_path / "contempt" / "clip_d").mkdir(parents=True)

    clips = {c.name: c for c in read_clip_folders(tmp_path)}
    assert set(clips) == {"happy/clip_a", "Angry/clip_b", "surprised/clip_c"}
    assert [p.name for p in clips["happy/clip_a"].frames] == ["frame1.png", "frame2.png", "frame10.png"]
    assert clips["happy/clip_a"].label == E["happiness"] and clips["Angry/clip_b"].label == E["anger"]
    c = clips["surprised/clip_c"]
    assert c.label == E["surprise"] and c.frames == [] and c.video == video
    cap = cv2.VideoCapture(str(c.video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


# ------------------------------------------------------------------------------------------ folds and counts

def test_subject_folds_never_share_a_subject():
    rng = np.random.default_rng(1)
    samples = [Sample(Path(f"{i}.png"), int(rng.integers(7)), subject=f"S{int(rng.integers(40)):03d}")
               for i in range(600)]
    folds = subject_folds(samples, k=10, seed=0)
    assert folds.shape == (600,) and set(folds) == set(range(10))
    for subj in {s.subject for s in samples}:
        assert len({f for f, s in zip(folds, samples) if s.subject == subj}) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= max(np.bincount([int(s.subject[1:]) for s in samples]))
    assert np.array_equal(folds, subject_folds(samples, k=10, seed=0))  # deterministic per seed
    with pytest.raises(DatasetError, match="cannot fill"):
        subject_folds(samples[:3], k=10)


def test_subject_folds_on_clips_without_subjects():
    clips = [Clip(i % 7, [Path(f"c{i}/0.png")], name=f"c{i}") for i in range(20)]
    folds = subject_folds(clips, k=5)
    assert np.bincount(folds).tolist() == [4] * 5


def test_duplicate_mask(tmp_path):
    a = [Sample(_png(tmp_path / "a" / f"{i}.png", value=i)) for i in range(3)]
    b = [Sample(_png(tmp_path / "b" / f"{i}.png", value=v)) for i, v in enumerate((2, 7, 0))]
    assert duplicate_mask(b, a).tolist() == [True, False, True]


# ---------------------------------------------------------------------------------------------- real data

@pytest.mark.data
def test_real_ferplus_counts_match_readme(shared_data):
    splits = read_ferplus(shared_data / "ferplus")
    train, valid = splits["FER2013Train"], splits["FER2013Valid"]
    assert len(train) == 28558 and len(valid) == 3579
    expected_train = {"neutral": 8733, "happiness": 7284, "surprise": 3136, "sadness": 3022, "anger": 2098,
                      "fear": 536, "disgust": 116}
    expected_valid = {"neutral": 1180, "happiness": 862, "surprise": 411, "sadness": 348, "anger": 289, "fear": 60,
                      "disgust": 25}
    for samples, expected in ((train, expected_train), (valid, expected_valid)):
        counts = class_counts(samples)
        assert {k: counts[k] for k in expected} == expected
    cats = {}
    for s in train:
        cats[s.source_label] = cats.get(s.source_label, 0) + 1
    assert (cats["contempt"], cats["unknown"], cats["NF"], cats["ambiguous"]) == (120, 77, 2, 3434)


@pytest.mark.data
def test_real_ckplus(shared_data):
    samples = read_ckplus(shared_data / "ckplus48")
    assert len(samples) == 981
    assert len({s.subject for s in samples}) == 118
    counts = class_counts(samples)
    assert (counts["anger"], counts["disgust"], counts["fear"], counts["happiness"], counts["sadness"],
            counts["surprise"], counts["none"]) == (135, 177, 75, 207, 84, 249, 54)
    clips = ckplus_clips(samples)
    assert len(clips) == 327 - 18 and all(len(c.frames) == 3 for c in clips)
    folds = subject_folds(clips, k=10)
    for f in range(10):
        inside = {c.subject for c, g in zip(clips, folds) if g == f}
        outside = {c.subject for c, g in zip(clips, folds) if g != f}
        assert not inside & outside


def test_stratified_split_is_fixed_disjoint_and_per_class():
    labels = np.repeat(np.arange(7), [400, 30, 11, 5, 2, 1, 200])
    tr, va = stratified_split(labels, 0.1, seed=0)
    assert not set(tr) & set(va) and len(tr) + len(va) == len(labels)
    counts = np.bincount(labels[va], minlength=7)
    assert counts.tolist() == [40, 3, 1, 1, 1, 0, 20]  # 10% rounded, at least one of a class with two or more
    tr2, va2 = stratified_split(labels, 0.1, seed=0)
    assert np.array_equal(va, va2) and not np.array_equal(va, stratified_split(labels, 0.1, seed=1)[1])


@pytest.mark.data
def test_real_rafdb_and_its_val_split(shared_data):
    samples = read_rafdb(shared_data)
    assert len(samples) == 12271 and all(s.label is not None for s in samples)
    counts = class_counts(samples)
    assert (counts["happiness"], counts["neutral"], counts["sadness"], counts["surprise"], counts["disgust"],
            counts["anger"], counts["fear"]) == (4772, 2524, 1982, 1290, 717, 705, 281)
    tr, va = rafdb_split(samples)
    assert len(va) == 1226 and len(tr) + len(va) == 12271 and not set(tr) & set(va)
    val_counts = class_counts([samples[i] for i in va])
    for name in EMOTIONS:  # stratified: every class holds 10% of its images out
        assert abs(val_counts[name] - 0.1 * counts[name]) <= 1


def test_subject_split_holds_out_whole_subjects():
    samples = [Sample(Path(f"{s}_{i}.png"), i % 7, subject=s) for s in "ABCDEFGH" for i in range(5)]
    tr, va = subject_split(samples, 3, seed=0)
    held = {samples[i].subject for i in va}
    assert len(held) == 3 and held.isdisjoint({samples[i].subject for i in tr})
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(samples)))
    assert np.array_equal(va, subject_split(samples, 3, seed=0)[1])  # fixed
    with pytest.raises(DatasetError):
        subject_split(samples, 8, seed=0)


@pytest.mark.data
def test_real_posed_set_and_its_performer_split(shared_data):
    samples = read_taiwanese(shared_data)
    assert len(samples) == 1223 and len({s.subject for s in samples}) == 29
    assert class_counts(samples)["anger"] == 200 and class_counts(samples)["neutral"] == 69
    tr, va = taiwanese_split(samples)
    held = {samples[i].subject for i in va}
    assert len(held) == 6 and held.isdisjoint({samples[i].subject for i in tr})
    assert all(samples[i].label is not None for i in va)


@pytest.mark.data
def test_real_sfew_and_its_val_split(shared_data):
    samples = read_sfew(shared_data)
    assert len(samples) == 860 and class_counts(samples)["happiness"] == 179
    tr, va = sfew_split(samples)
    assert len(va) == 172 and len(np.intersect1d(tr, va)) == 0
    assert min(v for k, v in class_counts([samples[i] for i in va]).items() if k != "none") >= 10
