"""MTCNN detection and alignment on real photographs that ship with
scikit-image: the astronaut (Eileen Collins) and faces of LFW."""

import sys

import cv2
import numpy as np
import pytest
from skimage import data

from kerasface.align import TEMPLATES, align, detect, estimate_transform
from kerasface.align.detect import _mtcnn

pytest.importorskip("mtcnn")

ROTATION_DEGREES = 20
FACE_CENTRE = (224.0, 120.0)
SWAP_LEFT_RIGHT = [1, 0, 2, 4, 3]


def lfw_face(index):
    """A 25x25 grayscale LFW face, enlarged to 100x100 and padded (MTCNN's
    smallest face is 20 px and it needs some context)."""
    face = (data.lfw_subset()[index] * 255).round().astype(np.uint8)
    face = cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(face, 50, 50, 50, 50, cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def photos():
    """Every image of this module and its detections, computed once."""
    astronaut = data.astronaut()
    rotation = cv2.getRotationMatrix2D(FACE_CENTRE, ROTATION_DEGREES, 1.0)
    images = {
        "astronaut": astronaut,
        "flipped": np.ascontiguousarray(astronaut[:, ::-1]),
        "rotated": cv2.warpAffine(astronaut, rotation, astronaut.shape[1::-1]),
        "lfw_0": lfw_face(0),
        "lfw_56": lfw_face(56),
    }
    return {name: (image, detect(image)) for name, image in images.items()}


def residuals(landmarks, template):
    matrix = estimate_transform(landmarks, template)
    moved = landmarks @ matrix[:, :2].T + matrix[:, 2]
    return np.linalg.norm(moved - TEMPLATES[template].scaled(), axis=1)


def mean_abs(a, b):
    return np.abs(a.astype(float) - b.astype(float)).mean()


def test_one_confident_face_with_landmarks_in_order(photos):
    for name, (image, faces) in photos.items():
        assert len(faces) == 1, name
        face = faces[0]
        assert face.score > 0.95 and face.landmarks.shape == (5, 2)
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
        assert lx < nx < rx and mlx < mrx, name  # left and right as seen
        assert max(ly, ry) < ny < min(mly, mry), name  # eyes, nose, mouth
        x, y, w, h = face.box
        assert np.all((face.landmarks >= [x, y]) & (face.landmarks <= [x + w, y + h])), name


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("name", ["astronaut", "lfw_0", "lfw_56"])
def test_aligned_landmarks_land_on_the_template(photos, name, template):
    distances = residuals(photos[name][1][0].landmarks, template)
    assert distances.max() < 8.0 and distances.mean() < 5.0, distances


def test_the_crop_shows_the_landmarks_where_the_matrix_sends_them(photos):
    """Detecting again in the (enlarged) crop finds each landmark where the
    estimated matrix maps it, so the warp and the matrix agree."""
    image, faces = photos["astronaut"]
    landmarks = faces[0].landmarks
    matrix = estimate_transform(landmarks, "arcface_112x112")
    crop = align(image, landmarks, "arcface_112x112")
    again = detect(cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))
    expected = landmarks @ matrix[:, :2].T + matrix[:, 2]
    distances = np.linalg.norm(again[0].landmarks / 3 - expected, axis=1)
    assert distances.max() < 4.0 and distances.mean() < 2.5, distances


def test_flipped_copy_aligns_to_the_mirrored_crop(photos):
    image, faces = photos["astronaut"]
    flipped, flipped_faces = photos["flipped"]
    width = image.shape[1]
    mirrored = np.c_[width - 1 - faces[0].landmarks[:, 0], faces[0].landmarks[:, 1]]
    # The detector reports landmarks as seen: the mirrored left eye is the right one.
    np.testing.assert_allclose(flipped_faces[0].landmarks, mirrored[SWAP_LEFT_RIGHT], atol=2.5)
    reference = align(image, faces[0].landmarks)[:, ::-1]
    aligned = mean_abs(align(flipped, flipped_faces[0].landmarks), reference)
    unswapped = mean_abs(align(flipped, mirrored), reference)
    assert aligned < 15 and aligned < 0.2 * unswapped, (aligned, unswapped)


def test_rotated_copy_aligns_to_the_same_crop(photos):
    image, faces = photos["astronaut"]
    rotated, rotated_faces = photos["rotated"]
    matrix, rotated_matrix = estimate_transform(faces[0].landmarks), estimate_transform(rotated_faces[0].landmarks)

    def angle(m):
        return np.degrees(np.arctan2(m[1, 0], m[0, 0]))

    # cv2's positive angle turns the image counter-clockwise; alignment turns it back.
    assert angle(rotated_matrix) - angle(matrix) == pytest.approx(ROTATION_DEGREES, abs=3)
    reference = align(image, faces[0].landmarks)
    aligned = mean_abs(align(rotated, rotated_faces[0].landmarks), reference)
    unaligned = mean_abs(cv2.warpAffine(rotated, matrix, (112, 112)), reference)
    assert aligned < 15 and aligned < 0.4 * unaligned, (aligned, unaligned)


def test_haar_cascade_finds_the_same_face_without_landmarks(photos):
    image, faces = photos["astronaut"]
    haar = detect(image, detector="haar")
    assert len(haar) == 1 and haar[0].landmarks is None
    (ax, ay, aw, ah), (bx, by, bw, bh) = haar[0].box, faces[0].box
    overlap = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    assert overlap / (aw * ah + bw * bh - overlap) > 0.5


def test_missing_mtcnn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mtcnn", None)
    with pytest.raises(ImportError, match=r"pip install kerasface\[detect\]"):
        _mtcnn.__wrapped__()


def test_bad_detector_arguments():
    with pytest.raises(ValueError, match="detector='dlib'"):
        detect(np.zeros((8, 8, 3), np.uint8), detector="dlib")
    with pytest.raises(ValueError, match="uint8"):
        detect(np.zeros((8, 8, 3), np.float32))
