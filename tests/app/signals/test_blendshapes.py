"""app.signals.blendshapes: the converted network equals MediaPipe's own, on a real photo."""
import hashlib
import json

import cv2
import numpy as np
import pytest

from app import paths
from app.signals.blendshapes import BLENDSHAPE_NAMES, LANDMARK_SUBSET, BlendshapeError, BlendshapeModel, default_path
from app.faces.detect import DetectorConfig, FaceMeshDetector

SMILE = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]


@pytest.fixture(scope="module")
def task_file():
    path = paths.models_root() / "mediapipe" / "face_landmarker.task"
    if not path.is_file():
        pytest.fail(f"MediaPipe's face_landmarker.task not found at {path}; set FANLIVE_MODELS")
    return path


@pytest.fixture(scope="module")
def model():
    return BlendshapeModel()


def test_scores_equal_mediapipes_face_landmarker_on_a_real_photo(astronaut_bgr, task_file, model):
    """MediaPipe's FaceLandmarker task runs the original TFLite network on its own 478 landmarks: fed the same
    landmarks, the shipped ONNX conversion must give the same 52 scores."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    rgb = np.ascontiguousarray(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB))
    h, w = rgb.shape[:2]
    options = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(task_file)),
                                           output_face_blendshapes=True, num_faces=1)
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    points = np.array([(p.x * w, p.y * h) for p in result.face_landmarks[0]], np.float32)
    want = np.array([c.score for c in result.face_blendshapes[0]], np.float32)
    assert [c.category_name for c in result.face_blendshapes[0]] == list(BLENDSHAPE_NAMES)
    got = model.run(points)
    assert got.shape == (52,) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4
    assert want[SMILE].min() > 0.5  # she smiles: the comparison is not between two sets of zeros


def test_the_apps_refined_mesh_reads_the_smile_too(astronaut_bgr, model):
    """The live path: the legacy face mesh with refine_landmarks (iris points) feeds the network directly."""
    with FaceMeshDetector(DetectorConfig(video=False, max_faces=1)) as det:
        (face,) = det.detect(astronaut_bgr)
    assert face.mesh.shape == (478, 2)
    scores = model.run(face.mesh)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[SMILE].min() > 0.5 and scores[BLENDSHAPE_NAMES.index("jawOpen")] < 0.3
    with pytest.raises(ValueError, match="refine_landmarks"):
        model.run(face.mesh[:468])


def test_shipped_file_is_the_conversion_of_the_task_and_matches_its_card(task_file, tmp_path):
    from models.release.blendshapes import main

    assert main(["--task", str(task_file), "--out", str(tmp_path / "bs.onnx")]) == 0
    shipped = default_path().read_bytes()
    assert hashlib.sha256((tmp_path / "bs.onnx").read_bytes()).hexdigest() == hashlib.sha256(shipped).hexdigest()
    card = json.loads(default_path().with_suffix(".json").read_text())
    assert card["sha256"] == hashlib.sha256(shipped).hexdigest() and card["licence"].startswith("Apache-2.0")
    assert tuple(card["landmark_subset"]) == LANDMARK_SUBSET and len(LANDMARK_SUBSET) == 146
    assert (tmp_path / "face_geometry.json").read_text() == (paths.WEIGHTS_DIR / "face_geometry.json").read_text()
    assert (paths.WEIGHTS_DIR / card["licence_file"]).is_file()


def test_a_corrupt_file_is_refused(tmp_path):
    bad = tmp_path / "face_blendshapes.onnx"
    bad.write_bytes(default_path().read_bytes()[:-10])
    (tmp_path / "face_blendshapes.json").write_text(default_path().with_suffix(".json").read_text())
    with pytest.raises(BlendshapeError, match="sha256"):
        BlendshapeModel(bad)
