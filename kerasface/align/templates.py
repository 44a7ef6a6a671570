"""Five-point landmark templates of the aligned face crops.

Points are (x, y) in pixels, in the order left eye, right eye, nose tip, left
mouth corner, right mouth corner, "left" meaning the image's left. The values are used as published, on a
0-based pixel grid, as insightface and the PyTorch ports of SphereFace do
(SphereFace's MATLAB script counts pixels from 1).
"""

import difflib
from dataclasses import dataclass

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Template:
    """Landmark positions in a crop of `image_size` = (height, width)."""

    name: str
    points: tuple
    image_size: tuple
    source: str

    def scaled(self, image_size=None):
        """The points for a crop of another `(height, width)`, each axis scaled."""
        points = np.asarray(self.points, np.float64)
        if image_size is None:
            return points
        height, width = image_size
        return points * [width / self.image_size[1], height / self.image_size[0]]


TEMPLATES = {
    template.name: template
    for template in (
        Template(
            "sphereface_112x96",
            (
                (30.2946, 51.6963),
                (65.5318, 51.5014),
                (48.0252, 71.7366),
                (33.5493, 92.3655),
                (62.7299, 92.2041),
            ),
            (112, 96),
            "SphereFace (Liu et al. 2017), preprocess/code/face_align_demo.m `coord5point`",
        ),
        Template(
            "arcface_112x112",
            (
                (38.2946, 51.6963),
                (73.5318, 51.5014),
                (56.0252, 71.7366),
                (41.5493, 92.3655),
                (70.7299, 92.2041),
            ),
            (112, 112),
            "insightface python-package/insightface/utils/face_align.py `arcface_dst`",
        ),
    )
}


def get_template(template):
    """A `Template` from its name (or the template itself).

    Raises:
        ValueError: for an unknown name, with the closest known names.
    """
    if isinstance(template, Template):
        return template
    if template not in TEMPLATES:
        close = difflib.get_close_matches(str(template), TEMPLATES, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown alignment template. Known templates: {sorted(TEMPLATES)}.{hint} Received: template={template!r}"
        )
    return TEMPLATES[template]


def _template_crops():
    """`{(source_size, target_size): (top, left)}` for every pair of templates that differ by a whole-pixel crop.

    insightface's `arcface_112x112` is SphereFace's `sphereface_112x96` moved
    8 pixels right (x + 8, y unchanged), so the SphereFace crop is columns
    8:104 of the ArcFace crop.
    """
    crops = {}
    for source in TEMPLATES.values():
        for target in TEMPLATES.values():
            shift = np.asarray(source.points) - np.asarray(target.points)
            top, left = np.round(shift[0, ::-1]).astype(int)
            fits = (
                0 <= top <= source.image_size[0] - target.image_size[0]
                and 0 <= left <= source.image_size[1] - target.image_size[1]
            )
            if source is not target and fits and np.allclose(shift, [left, top], atol=1e-6):
                crops[(source.image_size, target.image_size)] = (int(top), int(left))
    return crops


TEMPLATE_CROPS = _template_crops()


def crop_box(source_hw, target_hw):
    """Where faces aligned at `source_hw` hold the crop of the template of `target_hw`.

    The one place that says how the known templates relate: `fit_to_template`
    and the training pipelines (`kerasface.data`) both crop with it.

    Args:
        source_hw: `(height, width)` of the aligned faces.
        target_hw: `(height, width)` the model takes.

    Returns:
        `(top, left, height, width)` of the crop: `(0, 0, *target_hw)` for
        equal sizes, `(0, 8, 112, 96)` for ArcFace 112x112 faces given to a
        SphereFace 112x96 model; `None` when no crop of the one is the other
        (resizing would distort the faces).
    """
    source, target = tuple(int(v) for v in source_hw), tuple(int(v) for v in target_hw)
    if source == target:
        return (0, 0, *target)
    if (source, target) not in TEMPLATE_CROPS:
        return None
    return (*TEMPLATE_CROPS[(source, target)], *target)


def fit_to_template(images, target_hw):
    """Crops aligned faces of one template to the size of another, never resizing.

    An ArcFace-aligned 112x112 crop holds the SphereFace 112x96 crop in its
    columns 8:104 (the two templates differ by an 8-pixel shift only), so a
    SphereFace model gets the faces it was trained on. Resizing 112 to 96
    columns instead would squash each face by 14% and move the eyes by 2.5
    pixels off the SphereFace template.

    Args:
        images: aligned faces, NHWC array (any dtype).
        target_hw: the model's `(height, width)`, or `None` where it takes
            any size.

    Returns:
        `images` unchanged when they already have `target_hw` (or it is
        `None`), else the crop (a view, no copy).

    Raises:
        ValueError: for images that are not NHWC, or for a size pair that is
            not a crop between two known templates (`TEMPLATES`).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"fit_to_template expects images (n, height, width, channels). Received: images.shape={images.shape}"
        )
    if target_hw is None:
        return images
    source, target = tuple(int(v) for v in images.shape[1:3]), tuple(int(v) for v in target_hw)
    if source == target:
        return images
    box = crop_box(source, target)
    if box is None:
        known = ", ".join(f"{s[0]}x{s[1]} -> {t[0]}x{t[1]}" for s, t in TEMPLATE_CROPS)
        raise ValueError(
            f"Cannot fit {source[0]}x{source[1]} aligned faces to {target[0]}x{target[1]} without distorting "
            f"them; the known template crops are {known}. Align the images to the model's template "
            f"(`kerasface align --template ...`). Received: images of {source[0]}x{source[1]}, "
            f"target_hw={target}"
        )
    top, left, height, width = box
    return images[:, top : top + height, left : left + width]
