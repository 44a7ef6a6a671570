"""Similarity alignment of five facial landmarks onto a template."""

import cv2
import numpy as np

from kerasface.align.templates import get_template


def umeyama(source, target):
    """Least-squares similarity transform (rotation, uniform scale,
    translation; no reflection) mapping `source` points onto `target`.

    Umeyama (1991), "Least-squares estimation of transformation parameters
    between two point patterns", eqs. 38-42.

    Returns:
        The 2x3 matrix `[c R | t]` with `target ~ c R source + t`.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    source_variance = (source_centred**2).sum(1).mean()
    if source_variance < 1e-12:
        raise ValueError(f"Cannot align landmarks that all lie on one point. Received: landmarks={source.tolist()}")
    covariance = target_centred.T @ source_centred / len(source)
    u, d, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = (d * sign).sum() / source_variance
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def _check_landmarks(landmarks, count):
    points = np.asarray(landmarks, np.float64)
    if points.shape != (count, 2) or not np.all(np.isfinite(points)):
        raise ValueError(
            f"Expected {count} finite (x, y) landmarks, shape ({count}, 2): left eye, right eye, nose, "
            f"left mouth corner, right mouth corner. Received: landmarks of shape {points.shape}"
        )
    return points


def estimate_transform(landmarks, template="arcface_112x112", image_size=None):
    """The 2x3 similarity matrix that maps `landmarks` onto a template.

    Args:
        landmarks: (5, 2) array of (x, y): left eye, right eye, nose, left
            mouth corner, right mouth corner, left and right as seen in the
            image (as `detect` reports them).
        template: a template name (`"arcface_112x112"`,
            `"sphereface_112x96"`), a `Template`, or a (5, 2) array of
            target points.
        image_size: optional `(height, width)` of the crop; the template is
            scaled to it.

    Returns:
        float64 array of shape (2, 3) for `cv2.warpAffine`.
    """
    if isinstance(template, np.ndarray):
        target = _check_landmarks(template, 5)
    else:
        target = get_template(template).scaled(image_size)
    return umeyama(_check_landmarks(landmarks, 5), target)


def align(image, landmarks, template="arcface_112x112", image_size=None):
    """Crops and aligns a face: the similarity that best maps its five
    landmarks onto the template, applied with `cv2.warpAffine` (bilinear,
    black border).

    Args:
        image: (H, W) or (H, W, C) array.
        landmarks: (5, 2) landmarks as in `estimate_transform`.
        template: `"arcface_112x112"` (insightface, 112x112 crops) or
            `"sphereface_112x96"` (SphereFace, CosFace: 112x96 crops), or a
            `Template`.
        image_size: `(height, width)` of the crop; defaults to the
            template's own size.

    Returns:
        The aligned crop, same dtype and channels as `image`.

    Example:

    ```python
    face = kerasface.align.detect(image)[0]
    crop = kerasface.align.align(image, face.landmarks, "sphereface_112x96")
    ```
    """
    template = get_template(template)
    height, width = image_size or template.image_size
    matrix = estimate_transform(landmarks, template, (height, width))
    return cv2.warpAffine(np.asarray(image), matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
