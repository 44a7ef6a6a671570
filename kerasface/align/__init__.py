"""Face detection and five-point similarity alignment."""

from kerasface.align.detect import Face, detect
from kerasface.align.templates import LANDMARK_NAMES, TEMPLATES, Template, get_template
from kerasface.align.transform import align, estimate_transform, umeyama

__all__ = [
    "LANDMARK_NAMES",
    "TEMPLATES",
    "Face",
    "Template",
    "align",
    "detect",
    "estimate_transform",
    "get_template",
    "umeyama",
]
