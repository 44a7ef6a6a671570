"""Face detection and five-point similarity alignment."""

from kerasface.align.detect import Face, by_centrality, central_face_values, detect, select_face
from kerasface.align.templates import (
    LANDMARK_NAMES,
    TEMPLATE_CROPS,
    TEMPLATES,
    Template,
    fit_to_template,
    get_template,
)
from kerasface.align.transform import align, estimate_transform, umeyama

__all__ = [
    "LANDMARK_NAMES",
    "TEMPLATES",
    "TEMPLATE_CROPS",
    "Face",
    "Template",
    "align",
    "by_centrality",
    "central_face_values",
    "detect",
    "estimate_transform",
    "fit_to_template",
    "get_template",
    "select_face",
    "umeyama",
]
