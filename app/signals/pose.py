"""Head pose from face-mesh landmarks: yaw, pitch and roll in degrees, by fitting MediaPipe's canonical face model to
the mesh with a perspective-n-point solve (OpenCV's SQPnP).

    estimator = PoseEstimator()                           # weights/face_geometry.json (33 rigid landmarks, cm)
    pose = estimator.estimate(mesh_points_px, (h, w))     # HeadPose(yaw, pitch, roll) in degrees

The model points are the 33 landmarks MediaPipe itself uses to register the canonical face (its Procrustes basis:
forehead, nose bridge, eye corners, cheekbones, jaw; no lips), so an open mouth or a smile does not tilt the pose.
The camera is a pinhole with focal length = the frame's larger side (a ~53 degree field of view, a webcam's) and the
principal point at the centre. The angles are those of the head relative to its line of sight to the camera, so a
face that looks into the lens reads 0, 0 wherever it is in the frame (relative to the optical axis, a face near the
top edge looking at the lens would read ~20 degrees of pitch).

Sign conventions, as seen in the image (the subject facing the camera is 0, 0, 0):
    yaw   > 0: the nose points to the image's right (for a non-mirrored camera, the subject turns to their left);
    pitch > 0: the nose points up (the subject raises the chin);
    roll  > 0: the head tilts clockwise in the image (the top of the head moves to the image's right).
A mirror image flips the signs of yaw and roll and keeps pitch.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app import paths

GEOMETRY_FILE = "face_geometry.json"


@dataclass(frozen=True)
class HeadPose:
    yaw: float     # degrees, see the module docstring for the signs
    pitch: float
    roll: float

    def as_tuple(self) -> tuple[float, float, float]:
        return self.yaw, self.pitch, self.roll


def load_geometry(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(landmark ids (N,), canonical 3D points (N, 3) in cm: x right, y up, z towards the camera)."""
    path = Path(path) if path is not None else paths.WEIGHTS_DIR / GEOMETRY_FILE
    try:
        doc = json.loads(path.read_text())
        ids = np.array(doc["landmark_ids"], np.int64)
        pts = np.array(doc["points"], np.float64).reshape(len(ids), 3)
    except (OSError, ValueError, KeyError) as e:
        raise RuntimeError(f"cannot read the face geometry {path.name}: {e}") from None
    return ids, pts


def angles_from_rotation(r: np.ndarray) -> HeadPose:
    """A rotation from the face's frame to OpenCV's camera frame (x right, y down, z forward) -> HeadPose.

    The face's frame is the canonical model's with y and z flipped (x right, y down, z away from the camera), so the
    identity is a face looking straight into the camera. Angles are read from where the face's forward and up axes
    point, which keeps each one meaningful on its own (no gimbal order to remember)."""
    forward = -r[:, 2]            # out of the face, towards the camera at rest: (0, 0, -1)
    up = -r[:, 1]                 # top of the head: (0, -1, 0) at rest
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    roll = math.degrees(math.atan2(up[0], -up[1]))
    return HeadPose(yaw, pitch, roll)


class PoseEstimator:
    """Canonical-face PnP. Pure (no state between frames); ~0.1 ms a face."""

    def __init__(self, geometry: str | Path | None = None):
        ids, pts = load_geometry(geometry)
        self.ids = ids
        self.model = (pts * np.array([1.0, -1.0, -1.0]))[:, None, :].astype(np.float64)  # (N, 1, 3) face frame

    def estimate(self, mesh_points: np.ndarray, frame_shape: tuple[int, int]) -> HeadPose:
        """(>= 468, 2) mesh landmarks in pixels and the frame's (height, width) -> HeadPose in degrees."""
        pts = np.asarray(mesh_points, np.float64)
        if pts.ndim != 2 or pts.shape[0] <= int(self.ids.max()):
            raise ValueError(f"pose needs the face mesh's landmarks, got {pts.shape}")
        h, w = int(frame_shape[0]), int(frame_shape[1])
        f = float(max(h, w))
        k = np.array([[f, 0, w / 2.0], [0, f, h / 2.0], [0, 0, 1]], np.float64)
        image = pts[self.ids, :2][:, None, :]
        ok, rvec, tvec = cv2.solvePnP(self.model, image, k, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return HeadPose(float("nan"), float("nan"), float("nan"))
        r, _ = cv2.Rodrigues(rvec)
        return angles_from_rotation(line_of_sight(tvec).T @ r)


def line_of_sight(t: np.ndarray) -> np.ndarray:
    """The rotation taking the camera's optical axis (0, 0, 1) onto the ray to the point t (3,): expressing a head's
    rotation in that frame measures it against the line of sight instead of the optical axis."""
    z = np.asarray(t, np.float64).reshape(3)
    n = float(np.linalg.norm(z))
    if n == 0:
        return np.eye(3)
    z = z / n
    axis = np.cross([0.0, 0.0, 1.0], z)
    s, c = float(np.linalg.norm(axis)), float(z[2])
    if s < 1e-12:
        return np.eye(3)
    rvec = axis / s * math.atan2(s, c)
    return cv2.Rodrigues(rvec)[0]
