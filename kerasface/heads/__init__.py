"""Margin heads: layers that turn embeddings (and labels) into logits."""

from kerasface.heads.additive import (
    ArcFace,
    CombinedMargin,
    CosFace,
    NormFace,
    combined_margin,
)
from kerasface.heads.base import CosineMarginHead, Head
from kerasface.heads.lsoftmax import ASoftmax, LSoftmax, SphereFace
from kerasface.heads.partial_fc import SampledRowsTraining
from kerasface.heads.softmax import Softmax

AMSoftmax = CosFace

__all__ = [
    "AMSoftmax",
    "ASoftmax",
    "ArcFace",
    "CombinedMargin",
    "CosFace",
    "CosineMarginHead",
    "Head",
    "LSoftmax",
    "NormFace",
    "SampledRowsTraining",
    "Softmax",
    "SphereFace",
    "combined_margin",
]
