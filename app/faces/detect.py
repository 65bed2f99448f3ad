"""Face detection with MediaPipe face mesh: image -> faces with a box and the 5 alignment landmarks.

FaceMeshDetector.detect() is the pure per-frame core; tracking (stable ids) lives in app.faces.track and alignment in
app.faces.align, which the training module shares. detect() returns one Face per person: MediaPipe's video mode
can report one face twice in a frame (a face it tracks and the same face detected again, boxes overlapping ~85%),
which would give one person several ids; `suppress_duplicates` keeps the larger of such boxes.

Beside the whole-frame mesh: the close-up retry (a padded view, for a face larger than the frame), the skipping of
an image identical to one the idle mesh has just found nothing in (the same result, for free), and the small-face
pass for large frames (a tiled search, the mesh on a crop around each face). `mediapipe_solutions()` imports only
the two MediaPipe solutions used here.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np


def mediapipe_solutions():
    """mediapipe.python.solutions with its face_mesh and face_detection modules imported, and nothing else of
    MediaPipe yet.

    `import mediapipe` runs the package's __init__, which imports every solution's drawing helpers (matplotlib's
    pyplot) and the Tasks API (its audio side too): ~0.6-0.9 s of a replay's ~1.5 s start-up, none of which the face
    mesh uses. Here, when MediaPipe is not imported yet, the two packages above the solutions are registered
    without running their __init__, and the two solution modules are imported on their own. The rest is not lost:
    the first attribute that code anywhere asks of either package (`mp.solutions.drawing_utils`, `mp.tasks`,
    `mp.__version__`) runs both __init__s as usual, in the package objects already registered."""
    if "mediapipe" not in sys.modules:
        spec = importlib.util.find_spec("mediapipe")
        package = importlib.util.module_from_spec(spec)
        sys.modules["mediapipe"] = package
        try:
            solutions_spec = importlib.util.find_spec("mediapipe.python.solutions")  # imports mediapipe.python
            solutions = importlib.util.module_from_spec(solutions_spec)
            sys.modules["mediapipe.python.solutions"] = solutions
            sys.modules["mediapipe.python"].solutions = solutions
        except BaseException:
            del sys.modules["mediapipe"]
            sys.modules.pop("mediapipe.python.solutions", None)
            raise

        def finish(name: str):
            for module in (solutions, package):  # the solutions' __init__ first: the package's imports it
                module.__dict__.pop("__getattr__", None)
            solutions_spec.loader.exec_module(solutions)
            spec.loader.exec_module(package)
            return getattr(package, name)

        package.__getattr__ = finish
        solutions.__getattr__ = lambda name: getattr(finish("solutions"), name)
    import mediapipe.python.solutions.face_detection  # noqa: F401 - registers the module on its package
    import mediapipe.python.solutions.face_mesh  # noqa: F401

    return sys.modules["mediapipe.python.solutions"]


# Face-mesh landmark indices (MediaPipe canonical mesh). "image-left" is the subject's right side.
_LEFT_EYE = (33, 133)      # image-left eye: outer and inner corners
_RIGHT_EYE = (362, 263)    # image-right eye: inner and outer corners
_NOSE_TIP = 1
_MOUTH_LEFT, _MOUTH_RIGHT = 61, 291


@dataclass(frozen=True)
class Face:
    """One face in one frame. box is (x0, y0, x1, y1) in frame pixels; landmarks5 is (5, 2) float32 in the
    template's order; mesh is the full face mesh (478, 2) float32 in pixels (468 points + 10 iris points; None
    when the face did not come from the mesh); crop is the aligned uint8 crop (None until the pipeline's alignment
    returns a face with it); track_id is -1 until the tracker returns a face with it. Frozen: each stage returns
    new faces (`dataclasses.replace`), so a face handed to another thread never changes under it."""

    box: np.ndarray
    landmarks5: np.ndarray
    track_id: int = -1
    crop: np.ndarray | None = field(default=None, repr=False)
    mesh: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        # normalised once here, the only place a Face's fields are written
        object.__setattr__(self, "box", np.asarray(self.box, np.float32).reshape(4))
        object.__setattr__(self, "landmarks5", np.asarray(self.landmarks5, np.float32).reshape(5, 2))
        if self.mesh is not None:
            object.__setattr__(self, "mesh", np.asarray(self.mesh, np.float32).reshape(-1, 2))

    @property
    def size(self) -> float:
        """Inter-ocular distance in pixels: the scale that decides whether a face is too small to read."""
        return float(np.linalg.norm(self.landmarks5[1] - self.landmarks5[0]))


def landmarks5_from_mesh(points: np.ndarray) -> np.ndarray:
    """(468, 2) mesh points in pixels -> (5, 2) eye centres, nose tip, mouth corners."""
    return np.stack([
        points[list(_LEFT_EYE)].mean(0), points[list(_RIGHT_EYE)].mean(0),
        points[_NOSE_TIP], points[_MOUTH_LEFT], points[_MOUTH_RIGHT]]).astype(np.float32)


# A NormalizedLandmark serialised with x, y and z only: field tag 1 (length-delimited, 15 bytes), then three
# float32 fields (tags 0x0d, 0x15, 0x1d). Read as one numpy view instead of 478 protobuf attribute reads per face.
_LANDMARK_RECORD = np.dtype([("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"),
                             ("tz", "u1"), ("z", "<f4")])


def mesh_points(landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe's NormalizedLandmarkList -> (N, 2) float32 pixels. Parses the serialised message directly when every
    landmark has exactly x, y, z (what the face mesh writes; ~20x faster than reading each point), else reads the
    points one by one."""
    buf = landmarks.SerializeToString()
    n = len(landmarks.landmark)
    if len(buf) == n * _LANDMARK_RECORD.itemsize:
        rec = np.frombuffer(buf, _LANDMARK_RECORD)
        if (np.all(rec["tag"] == 0x0A) and np.all(rec["len"] == 15) and np.all(rec["tx"] == 0x0D)
                and np.all(rec["ty"] == 0x15) and np.all(rec["tz"] == 0x1D)):
            xy = np.stack([rec["x"], rec["y"]], 1).astype(np.float64) * (width, height)  # as Python's floats do
            return xy.astype(np.float32)
    return np.array([(p.x * width, p.y * height) for p in landmarks.landmark], np.float32)


# Two boxes are one face when their intersection covers more than this share of the smaller box. Faces of different
# people overlap far less, even when one partly hides the other.
DUPLICATE_OVERLAP = 0.6


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two (x0, y0, x1, y1) boxes over the smaller one's area (1.0: one inside the other)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / smaller) if smaller > 0 else 0.0


def suppress_duplicates(faces: list[Face], max_overlap: float = DUPLICATE_OVERLAP) -> list[Face]:
    """One Face per person in a frame: of boxes overlapping by more than `max_overlap` (of the smaller one), the
    larger face is kept. The survivors keep their original order."""
    order = sorted(range(len(faces)), key=lambda i: -faces[i].size)
    kept: list[int] = []
    for i in order:
        if all(_overlap(faces[i].box, faces[k].box) <= max_overlap for k in kept):
            kept.append(i)
    return [faces[i] for i in sorted(kept)]


@dataclass(frozen=True)
class DetectorConfig:
    max_faces: int = 4                   # faces tracked at once: the one default every front end reads
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    # Inter-ocular distance below which a face is skipped: fewer pixels than this carry no readable expression.
    min_face_px: float = 12.0
    # Video mode lets MediaPipe track landmarks between frames (faster, steadier); still mode detects every call.
    video: bool = True
    # The 10 iris points (468-477) the blendshape network reads; they cost MediaPipe's iris refinement (measured in
    # docs/results.md, "Blendshapes, head pose and reliability"). Left out of repr: models.data.facecache keys its caches
    # on repr(DetectorConfig) and pins this False (the crops the models were trained on), so its existing caches
    # stay valid.
    refine_landmarks: bool = field(default=True, repr=False)
    # A face that fills the frame (a laptop camera at arm's length) reaches past its edges, and MediaPipe's detector
    # misses it. With closeup_every = k > 0, every k-th frame in a row without a face (every such image in still
    # mode) is tried again with a border of CLOSEUP_PAD of its longer side; while that padded view finds faces it is
    # the view tried first. 0 = never (the training crop caches pin this). Out of repr for the same reason as above.
    closeup_every: int = field(default=0, repr=False)
    # While the mesh tracks no face its next result depends on the image alone (MediaPipe's graph then runs its face
    # detector on the whole image, and nothing carries over from earlier frames), so an image identical to one it
    # has just found nothing in would find nothing again: such a call is skipped, and the result is the same (title
    # cards, paused or frozen video). False calls the mesh on every view of every frame (the benchmark's A/B). Out
    # of repr: the results do not depend on it.
    skip_still: bool = field(default=True, repr=False)
    # Small faces in a large frame (a group, a classroom at 1080p): the mesh's own detector sees the whole frame at
    # 128x128, where a face of 150 of 1920 pixels is 10 pixels and lost. The small-face pass finds them on tiles of
    # the frame and reads each with the mesh on a crop around it (SmallFaceConfig below). auto: on for frames whose
    # longer side is at least SmallFaceConfig.min_frame_side; on; off. Out of repr: the training caches (one face,
    # small frames) never reach it.
    small_faces: str = field(default="auto", repr=False)

    def __post_init__(self) -> None:
        if self.small_faces not in SMALL_FACES_MODES:
            raise ValueError(f"small_faces must be one of {', '.join(SMALL_FACES_MODES)}, got {self.small_faces!r}")


SMALL_FACES_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class SmallFaceConfig:
    """The small-face pass's settings (DetectorConfig.small_faces)."""

    min_frame_side: int = 1280   # auto: frames with a longer side of at least this many pixels
    tile: int = 640              # search tiles of about this many pixels a side (what the detector reads well)
    tile_overlap: float = 0.25   # each tile reaches this share of its size into its neighbours: no face is cut
    tile_input: int = 256        # a tile is shrunk to this longer side before the detector (it reads 128x128)
    search_every: int = 5        # frames between two searches while fewer than max_faces are found; a face lost
                                 # in between is found again by the next one (within the tracker's max_missed)
    crop_scale: float = 2.0      # the crop the mesh reads around a face: this many times the face box's side


SMALL_FACES = SmallFaceConfig()

CLOSEUP_PAD = 0.25  # border per side, as a share of the frame's longer side (edge pixels replicated)


class FaceMeshDetector:
    """MediaPipe face mesh over BGR uint8 frames. Not thread-safe: one instance per thread."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        self.config = config
        self._mesh = mediapipe_solutions().face_mesh.FaceMesh(
            static_image_mode=not config.video, max_num_faces=config.max_faces, refine_landmarks=config.refine_landmarks,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence)
        self._padded = False  # the padded view found the last faces: try it first
        self._missed = 0      # frames in a row without a face
        self._idle = True     # the mesh's last call returned no face at all (before any filter): it tracks nothing
        self._still: dict[int, np.ndarray] = {}  # pad -> a copy of the last image the idle mesh found nothing in
        self.calls = {"mesh": 0, "still": 0, "search": 0, "crop": 0}  # mesh calls made, skipped as unchanged
        # (still), tiled searches and crop mesh calls of the small-face pass
        self._small: _SmallFaces | None = None  # the small-face pass, made on the first frame that needs it

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        every = self.config.closeup_every
        first_pad = round(CLOSEUP_PAD * max(image_bgr.shape[:2])) if self._padded else 0
        faces = self._detect_view(image_bgr, first_pad)
        if not faces and every > 0:
            self._missed += 1
            if self._padded or not self.config.video or self._missed % every == 0:
                other_pad = 0 if self._padded else round(CLOSEUP_PAD * max(image_bgr.shape[:2]))
                faces = self._detect_view(image_bgr, other_pad)
                if faces:
                    self._padded = other_pad > 0
        if faces:
            self._missed = 0
        if self._small_pass(image_bgr.shape):
            if self._small is None:
                self._small = _SmallFaces(self.config, SMALL_FACES, self.calls)
            faces = self._small.detect(image_bgr, faces)
        return faces

    def _small_pass(self, shape: tuple[int, ...]) -> bool:
        mode = self.config.small_faces
        return mode == "on" or (mode == "auto" and max(shape[:2]) >= SMALL_FACES.min_frame_side)

    def _detect_view(self, image_bgr: np.ndarray, pad: int) -> list[Face]:
        """Faces in the image seen with a replicated border of `pad` pixels, in the image's own coordinates."""
        seen = self._still.get(pad) if self.config.skip_still and self._idle else None
        if seen is not None and seen.shape == image_bgr.shape and np.array_equal(seen, image_bgr):
            self.calls["still"] += 1
            return []
        view = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image_bgr
        h, w = view.shape[:2]
        rgb = cv2.cvtColor(view, cv2.COLOR_BGR2RGB) if view.ndim == 3 else cv2.cvtColor(view, cv2.COLOR_GRAY2RGB)
        result = self._mesh.process(rgb)
        self.calls["mesh"] += 1
        found = bool(result.multi_face_landmarks)
        if self.config.skip_still:
            if self._idle and not found:  # from the idle state this image gives nothing: remember it (a copy, as
                if seen is None or seen.shape != image_bgr.shape:  # the caller may draw on its frame later)
                    seen = self._still[pad] = np.empty_like(image_bgr)
                np.copyto(seen, image_bgr)
            elif found:
                self._still.clear()
        self._idle = not found
        return suppress_duplicates(_read_mesh(result, w, h, (-pad, -pad), self.config.min_face_px))

    def close(self) -> None:
        self._mesh.close()
        if self._small is not None:
            self._small.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _covered(box: np.ndarray, boxes) -> bool:
    return any(_overlap(box, b) > DUPLICATE_OVERLAP for b in boxes)


def _read_mesh(result, w: int, h: int, offset: tuple[float, float], min_face_px: float) -> list[Face]:
    """MediaPipe's face mesh result on an image of w x h -> Faces with (468 or 478, 2) mesh points in pixels moved by
    `offset` (into the frame's coordinates), too-small ones left out."""
    faces = []
    for lm in result.multi_face_landmarks or ():
        pts = mesh_points(lm, w, h) + np.asarray(offset, np.float32)
        x0, y0 = pts[:468].min(0)
        x1, y1 = pts[:468].max(0)
        face = Face(box=np.array([x0, y0, x1, y1]), landmarks5=landmarks5_from_mesh(pts), mesh=pts)
        if face.size >= min_face_px:
            faces.append(face)
    return faces


class _SmallFaces:
    """The small-face pass of one FaceMeshDetector. Per frame, after the whole-frame mesh:

    1. every face of the last frame that the whole-frame mesh did not find again is read on a crop around its last
       box (a face mesh in still mode on that crop, one face);
    2. every `search_every` frames, while fewer than max_faces are found, MediaPipe's face detector looks at
       overlapping tiles of the frame, each shrunk to `tile_input` pixels; a face it sees that no face found covers
       is read on a crop the same way, on this frame.

    A crop is a square of `crop_scale` times the face's box, inside the frame: there the face is as large to the
    mesh's own detector as in a webcam's frame. Faces from crops come after the whole-frame mesh's, up to
    max_faces, never one covered by another (DUPLICATE_OVERLAP)."""

    def __init__(self, config: DetectorConfig, small: SmallFaceConfig, calls: dict):
        self.config, self.small, self.calls = config, small, calls
        solutions = mediapipe_solutions()
        self._mesh = solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=config.refine_landmarks,
            min_detection_confidence=config.min_detection_confidence)
        self._detector = solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=config.min_detection_confidence)
        self._last: list[np.ndarray] = []  # the last frame's face boxes
        self._since_search = small.search_every  # search on the first frame

    def detect(self, image_bgr: np.ndarray, found: list[Face]) -> list[Face]:
        faces = list(found)
        wanted = [b for b in self._last if not _covered(b, [f.box for f in faces])]
        self._since_search += 1
        if len(faces) + len(wanted) < self.config.max_faces and self._since_search >= self.small.search_every:
            self._since_search = 0
            wanted += [b for b in self.search(image_bgr) if not _covered(b, [f.box for f in faces] + wanted)]
        for box in wanted:
            if len(faces) >= self.config.max_faces:
                break
            for face in self.read_crop(image_bgr, box):
                if not _covered(face.box, [f.box for f in faces]):
                    faces.append(face)
        self._last = [f.box for f in faces]
        return faces

    def tiles(self, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) of the search tiles of a frame: about `tile` pixels a side, overlapping."""
        h, w = shape[:2]
        nx, ny = max(1, round(w / self.small.tile)), max(1, round(h / self.small.tile))
        tw = min(w, int(w / nx * (1 + self.small.tile_overlap)))
        th = min(h, int(h / ny * (1 + self.small.tile_overlap)))
        return [(int(x), int(y), int(x) + tw, int(y) + th) for y in np.linspace(0, h - th, ny)
                for x in np.linspace(0, w - tw, nx)]

    def search(self, image_bgr: np.ndarray) -> list[np.ndarray]:
        """Face boxes (x0, y0, x1, y1) the detector sees on the frame's tiles, one per face (largest kept)."""
        self.calls["search"] += 1
        boxes = []
        for x0, y0, x1, y1 in self.tiles(image_bgr.shape):
            tile = image_bgr[y0:y1, x0:x1]
            scale = min(1.0, self.small.tile_input / max(tile.shape[:2]))
            if scale < 1.0:
                tile = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            result = self._detector.process(cv2.cvtColor(tile, cv2.COLOR_BGR2RGB))
            for d in result.detections or ():
                r = d.location_data.relative_bounding_box
                tw, th = x1 - x0, y1 - y0
                boxes.append(np.array([x0 + r.xmin * tw, y0 + r.ymin * th, x0 + (r.xmin + r.width) * tw,
                                       y0 + (r.ymin + r.height) * th], np.float32))
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        kept: list[np.ndarray] = []
        for b in boxes:
            if not _covered(b, kept):
                kept.append(b)
        return kept

    def read_crop(self, image_bgr: np.ndarray, box: np.ndarray) -> list[Face]:
        """The face mesh on a square crop centred on `box` -> the face in it (frame pixels), or none. Where the
        crop reaches past the frame, the frame's edge pixels are replicated (as the close-up retry does): a face at
        the frame's edge stays in the crop's middle, where the mesh's detector finds it."""
        self.calls["crop"] += 1
        h, w = image_bgr.shape[:2]
        side = int(max(box[2] - box[0], box[3] - box[1]) * self.small.crop_scale)
        if side < 16:
            return []
        x0 = int(round((box[0] + box[2]) / 2 - side / 2))
        y0 = int(round((box[1] + box[3]) / 2 - side / 2))
        crop = image_bgr[max(y0, 0):max(min(y0 + side, h), 0), max(x0, 0):max(min(x0 + side, w), 0)]
        if crop.size == 0:
            return []
        top, left = max(-y0, 0), max(-x0, 0)
        bottom, right = side - top - crop.shape[0], side - left - crop.shape[1]
        if top or left or bottom or right:
            crop = cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_REPLICATE)
        result = self._mesh.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        return _read_mesh(result, side, side, (x0, y0), self.config.min_face_px)

    def close(self) -> None:
        self._mesh.close()
        self._detector.close()
