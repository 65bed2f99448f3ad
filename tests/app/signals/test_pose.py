"""app.signals.pose: head pose by PnP on the mesh, with the documented signs, on a real face and its mirror image."""
import math

import cv2
import numpy as np
import pytest

from app.faces.detect import DetectorConfig, FaceMeshDetector
from app.signals.pose import PoseEstimator, angles_from_rotation

TURNED_FRAME = 396  # WolfgangLanger_Pexels.mp4: the head turned ~15 degrees


@pytest.fixture(scope="module")
def estimator():
    return PoseEstimator()


def _frame(path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def test_angles_of_known_rotations():
    def rot(axis, deg):
        return cv2.Rodrigues(np.array(axis, np.float64) * math.radians(deg))[0]
    # face frame: x right, y down, z away from the camera; the camera's y points down
    assert angles_from_rotation(np.eye(3)).as_tuple() == pytest.approx((0, 0, 0), abs=1e-9)
    p = angles_from_rotation(rot([0, 1, 0], -20))   # nose swings towards +x (the image's right)
    assert p.yaw == pytest.approx(20) and p.pitch == pytest.approx(0, abs=1e-9) and p.roll == pytest.approx(0, abs=1e-9)
    p = angles_from_rotation(rot([1, 0, 0], -15))   # nose swings towards -y (up in the image)
    assert p.pitch == pytest.approx(15) and p.yaw == pytest.approx(0, abs=1e-9)
    p = angles_from_rotation(rot([0, 0, 1], 10))    # the top of the head goes right: clockwise on screen
    assert p.roll == pytest.approx(10) and p.yaw == pytest.approx(0, abs=1e-9)


def test_a_synthetic_face_projected_with_a_known_pose_is_recovered(estimator):
    """The canonical model itself, turned and projected through the assumed camera, placed off-centre."""
    h, w = 480, 640
    f = float(max(h, w))
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    t = np.array([0.0, 0.0, 60.0])  # 60 cm in front of the lens, on the optical axis
    r = cv2.Rodrigues(np.array([0.0, -math.radians(25), 0.0]))[0]
    model = estimator.model[:, 0, :]
    image, _ = cv2.projectPoints(model, cv2.Rodrigues(r)[0], t, k, None)
    mesh = np.zeros((478, 2), np.float32)
    mesh[estimator.ids] = image[:, 0, :]
    pose = estimator.estimate(mesh, (h, w))
    assert pose.yaw == pytest.approx(25, abs=0.5) and abs(pose.pitch) < 0.5 and abs(pose.roll) < 0.5


@pytest.mark.data
def test_yaw_flips_sign_on_the_mirror_image_of_a_real_face(videos, estimator):
    image = _frame(videos / "WolfgangLanger_Pexels.mp4", TURNED_FRAME)
    poses, noses = [], []
    with FaceMeshDetector(DetectorConfig(video=False, max_faces=1)) as det:
        for im in (image, np.ascontiguousarray(image[:, ::-1])):
            (face,) = det.detect(im)
            poses.append(estimator.estimate(face.mesh, im.shape[:2]))
            # an independent look at the sign: where the nose tip sits between the two cheek edges
            left, right, nose = face.mesh[234, 0], face.mesh[454, 0], face.mesh[1, 0]
            noses.append((nose - (left + right) / 2) / abs(right - left))
    a, b = poses
    assert abs(a.yaw) > 8 and abs(b.yaw) > 8 and np.sign(a.yaw) == -np.sign(b.yaw)
    assert np.sign(a.yaw) == np.sign(noses[0])  # yaw > 0: the nose points to the image's right
    assert abs(a.yaw + b.yaw) < 3 and abs(a.roll + b.roll) < 3 and abs(a.pitch - b.pitch) < 3


def test_a_frontal_photo_reads_near_zero(astronaut_bgr, estimator):
    with FaceMeshDetector(DetectorConfig(video=False, max_faces=1)) as det:
        (face,) = det.detect(astronaut_bgr)
    pose = estimator.estimate(face.mesh, astronaut_bgr.shape[:2])
    assert abs(pose.yaw) < 8 and abs(pose.pitch) < 15 and abs(pose.roll) < 10
