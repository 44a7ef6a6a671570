"""fit_to_template: ArcFace 112x112 crops become SphereFace 112x96 crops by cropping, never by resizing."""

import cv2
import numpy as np
import pytest

from kerasface.align import TEMPLATES, fit_to_template

ARCFACE, SPHEREFACE = TEMPLATES["arcface_112x112"], TEMPLATES["sphereface_112x96"]
SIGMA = 1.5


def landmark_image(points, size):
    """A float image (height, width) with a Gaussian dot centred on each (x, y) point, on the 0-based pixel grid."""
    ys, xs = np.mgrid[: size[0], : size[1]].astype(np.float64)
    return sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * SIGMA**2)) for x, y in points)


def dot_centres(image, near):
    """The intensity centroid of the dot within 7 pixels of each point of `near`."""
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]].astype(np.float64)
    centres = []
    for x, y in near:
        weights = image * ((xs - x) ** 2 + (ys - y) ** 2 <= 7**2)
        centres.append([np.sum(weights * xs) / weights.sum(), np.sum(weights * ys) / weights.sum()])
    return np.array(centres)


def test_arcface_crop_puts_the_landmarks_on_the_sphereface_template():
    arcface = landmark_image(ARCFACE.points, ARCFACE.image_size)
    np.testing.assert_allclose(dot_centres(arcface, ARCFACE.points), ARCFACE.points, atol=1e-4)  # the probe works
    batch = np.stack([arcface, 2 * arcface])[..., None]  # NHWC
    cropped = fit_to_template(batch, SPHEREFACE.image_size)
    assert cropped.shape == (2, 112, 96, 1)
    centres = dot_centres(cropped[0, ..., 0], SPHEREFACE.points)
    # Eyes (and nose and mouth corners) land on SphereFace's landmarks within 0.01 pixel.
    assert np.abs(centres - SPHEREFACE.points).max() < 0.01, centres - SPHEREFACE.points
    np.testing.assert_array_equal(cropped[:, :, :, 0], batch[:, :, 8:104, 0])
    # Resizing instead (what evaluation used to do) moves the eyes about 2.5 pixels: the bug this replaces.
    squashed = cv2.resize(arcface, (96, 112), interpolation=cv2.INTER_LINEAR)
    eyes = dot_centres(squashed, SPHEREFACE.points[:2])
    assert np.abs(eyes[:, 0] - np.asarray(SPHEREFACE.points)[:2, 0]).min() > 2.0


def test_same_size_passes_through_and_uint8_is_kept():
    images = np.arange(2 * 112 * 96 * 3, dtype=np.uint32).reshape(2, 112, 96, 3).astype(np.uint8)
    assert fit_to_template(images, (112, 96)) is images
    assert fit_to_template(images, None) is images
    cropped = fit_to_template(np.zeros((1, 112, 112, 3), np.uint8), [112, 96])
    assert cropped.dtype == np.uint8 and cropped.shape == (1, 112, 96, 3)


@pytest.mark.parametrize(
    "shape, target, message",
    [
        ((1, 112, 96, 3), (112, 112), "Cannot fit 112x96 aligned faces to 112x112.*Received: images of 112x96"),
        ((1, 250, 250, 3), (112, 96), "Cannot fit 250x250 aligned faces to 112x96.*112x112 -> 112x96"),
        ((1, 112, 112, 3), (96, 96), "target_hw=\\(96, 96\\)"),
        ((112, 112, 3), (112, 96), "Received: images.shape=\\(112, 112, 3\\)"),
    ],
)
def test_other_sizes_are_refused_not_resized(shape, target, message):
    with pytest.raises(ValueError, match=message):
        fit_to_template(np.zeros(shape, np.uint8), target)


def test_crop_box_is_the_one_geometry_of_the_related_templates():
    from kerasface.align.templates import crop_box

    assert crop_box((112, 112), (112, 96)) == (0, 8, 112, 96)
    assert crop_box([112, 96], [112, 96]) == (0, 0, 112, 96)
    assert crop_box((112, 96), (112, 112)) is None  # a crop cannot grow
    assert crop_box((250, 250), (112, 96)) is None
    images = np.arange(112 * 112).reshape(1, 112, 112, 1)
    top, left, height, width = crop_box((112, 112), (112, 96))
    np.testing.assert_array_equal(fit_to_template(images, (112, 96)), images[:, top : top + height, left : left + width])
