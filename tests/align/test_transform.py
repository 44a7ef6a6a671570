"""Similarity estimation and warping, without a detector."""

import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from kerasface.align import TEMPLATES, align, estimate_transform, get_template, umeyama

ARCFACE = TEMPLATES["arcface_112x112"].scaled()


def apply(matrix, points):
    return np.asarray(points) @ matrix[:, :2].T + matrix[:, 2]


def similarity(scale, angle, shift):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]])


def test_templates_are_the_published_coordinates():
    np.testing.assert_allclose(TEMPLATES["sphereface_112x96"].points[0], (30.2946, 51.6963))
    np.testing.assert_allclose(TEMPLATES["sphereface_112x96"].points[4], (62.7299, 92.2041))
    # insightface's arcface_dst is SphereFace's template moved 8 px right (96 -> 112 wide).
    np.testing.assert_allclose(ARCFACE - TEMPLATES["sphereface_112x96"].scaled(), [[8, 0]] * 5, atol=1e-9)
    assert TEMPLATES["arcface_112x112"].image_size == (112, 112)
    np.testing.assert_allclose(TEMPLATES["arcface_112x112"].scaled((224, 224)), 2 * ARCFACE)


def test_recovers_a_known_similarity_exactly():
    truth = similarity(0.37, 0.4, (12.0, -5.0))
    landmarks = apply(np.linalg.inv(np.vstack([truth, [0, 0, 1]]))[:2], ARCFACE)
    np.testing.assert_allclose(estimate_transform(landmarks), truth, atol=1e-10)


def test_matches_scikit_image_least_squares():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 200, (5, 2))
    target = rng.uniform(0, 112, (5, 2))
    np.testing.assert_allclose(umeyama(source, target), SimilarityTransform.from_estimate(source, target).params[:2])


def test_never_returns_a_reflection():
    matrix = umeyama(ARCFACE, ARCFACE * [-1, 1])  # the best fit would be a mirror
    assert np.linalg.det(matrix[:, :2]) > 0


def test_is_equivariant_to_rotating_the_image():
    landmarks = np.array([[204.0, 100], [245, 102], [224, 126], [202, 139], [244, 140]])
    rotation = np.vstack([similarity(1.0, np.radians(20), (30.0, -40.0)), [0, 0, 1]])
    rotated = apply(rotation[:2], landmarks)
    # aligning the rotated landmarks, after the rotation, is aligning the originals
    composed = np.vstack([estimate_transform(rotated), [0, 0, 1]]) @ rotation
    np.testing.assert_allclose(composed[:2], estimate_transform(landmarks), atol=1e-9)


def test_align_warps_landmark_pixels_onto_the_template():
    """A black image with white dots at the landmarks; after alignment each
    dot sits on its template point."""
    truth = similarity(0.5, -0.3, (-40.0, 10.0))
    landmarks = apply(np.linalg.inv(np.vstack([truth, [0, 0, 1]]))[:2], TEMPLATES["sphereface_112x96"].scaled())
    image = np.zeros((300, 300), np.uint8)
    for x, y in np.round(landmarks).astype(int):
        image[y - 3 : y + 4, x - 3 : x + 4] = 255
    crop = align(image, landmarks, "sphereface_112x96")
    assert crop.shape == (112, 96) and crop.dtype == np.uint8
    for x, y in TEMPLATES["sphereface_112x96"].points:
        assert crop[round(y), round(x)] > 200
    assert crop.mean() < 20


def test_image_size_scales_the_template():
    landmarks = ARCFACE * 2 + 10
    crop = align(np.zeros((300, 300, 3), np.uint8), landmarks, image_size=(56, 56))
    assert crop.shape == (56, 56, 3)
    np.testing.assert_allclose(
        estimate_transform(landmarks, image_size=(56, 56)), similarity(0.25, 0, (-2.5, -2.5)), atol=1e-12
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="Did you mean arcface_112x112"):
        get_template("arcface_112")
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        estimate_transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="one point"):
        estimate_transform(np.ones((5, 2)))
    with pytest.raises(ValueError, match="finite"):
        estimate_transform(np.full((5, 2), np.nan))
