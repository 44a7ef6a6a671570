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
