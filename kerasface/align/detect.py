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
