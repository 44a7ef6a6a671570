"""Face detection with five landmarks (MTCNN) or boxes only (Haar cascade)."""

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from kerasface.align.templates import LANDMARK_NAMES


@dataclass(frozen=True)
class Face:
    """A detected face.

    Attributes:
        box: `(x, y, width, height)` in pixels.
        landmarks: (5, 2) float array (left eye, right eye, nose, left mouth
            corner, right mouth corner, as seen in the image), or `None` for
            a detector without landmarks.
        score: detector confidence; larger is more certain.
    """

    box: tuple
    landmarks: np.ndarray
    score: float


def _as_rgb(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"detect expects a uint8 image. Received: image.dtype={image.dtype}")
    if image.ndim == 2:
        return np.stack([image] * 3, axis=-1)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return np.ascontiguousarray(image[..., :3])
    raise ValueError(f"detect expects an (H, W) or (H, W, 3) image. Received: image.shape={image.shape}")


@functools.lru_cache(maxsize=1)
def _mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError as error:
        raise ImportError(
            "Face detection with detector='mtcnn' needs the mtcnn package: "
            "`pip install kerasface[detect]` (or `pip install mtcnn`)."
        ) from error
    return MTCNN()


def _detect_mtcnn(image):
    faces = _mtcnn().detect_faces(image)
    return [
        Face(
            box=tuple(int(v) for v in face["box"]),
            landmarks=np.array([face["keypoints"][name] for name in LANDMARK_NAMES], np.float64),
            score=float(face["confidence"]),
        )
        for face in faces
    ]


@functools.lru_cache(maxsize=1)
def _haar_cascade():
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def _detect_haar(image):
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    boxes, _, weights = _haar_cascade().detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=5, outputRejectLevels=True
    )
    return [
        Face(box=tuple(int(v) for v in box), landmarks=None, score=float(weight))
        for box, weight in zip(boxes, np.ravel(weights))
    ]


DETECTORS = {"mtcnn": _detect_mtcnn, "haar": _detect_haar}


def detect(image, detector="mtcnn"):
    """Finds the faces in an RGB image, most confident first.

    Args:
        image: uint8 RGB `(H, W, 3)` (grayscale `(H, W)` is accepted).
        detector: `"mtcnn"` (Zhang et al. 2016; boxes and five landmarks,
            weights ship with the `mtcnn` package) or `"haar"` (OpenCV's
            bundled frontal-face Haar cascade, Viola and Jones 2001; boxes
            only, `landmarks` is `None`).

    Returns:
        A list of `Face(box, landmarks, score)` sorted by decreasing score.

    Reference:
        - [Zhang et al., 2016](https://arxiv.org/abs/1604.02878)
    """
    if detector not in DETECTORS:
        raise ValueError(f"Unknown detector; choose one of {sorted(DETECTORS)}. Received: detector={detector!r}")
    faces = DETECTORS[detector](_as_rgb(image))
    return sorted(faces, key=lambda face: face.score, reverse=True)


def central_face_values(boxes, image_shape):
    """How strongly each box is "the" face of the image: its area minus twice its squared offset from the centre.

    This is the criterion of facenet's `src/align/align_dataset_mtcnn.py`
    (`bounding_box_size - offset_dist_squared * 2.0`, when
    `detect_multiple_faces` is off) and of insightface's detectors
    (`area - offset_dist_squared * 2.0`), with which the training and test
    sets of published models were aligned: a large face wins, and being
    near the centre counts twice as much as pixels of area.

    Args:
        boxes: array (n, 4) of `(x, y, width, height)` boxes, as `Face.box`.
        image_shape: the image's shape, `(height, width, ...)`; its centre
            is `(width / 2, height / 2)`, as facenet takes it.

    Returns:
        An array of n values; the largest marks the face to keep.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    height, width = image_shape[:2]
    x, y, box_width, box_height = boxes.T
    offset_squared = (x + box_width / 2 - width / 2) ** 2 + (y + box_height / 2 - height / 2) ** 2
    return box_width * box_height - 2.0 * offset_squared


def by_centrality(faces, image_shape):
    """`faces` ordered by `central_face_values`, the face that facenet and insightface keep first.

    Ties keep the detector's order (its most confident first), as `np.argmax`
    keeps the first of equal values.
    """
    if not faces:
        return []
    values = central_face_values([face.box for face in faces], image_shape)
    return [faces[index] for index in np.argsort(-values, kind="stable")]


def select_face(faces, image_shape):
    """The face that facenet and insightface keep: the largest face nearest the image centre, or `None`.

    Args:
        faces: `Face`s of one image, as `detect` returns them.
        image_shape: that image's shape, `(height, width, ...)`.
    """
    ordered = by_centrality(faces, image_shape)
    return ordered[0] if ordered else None
