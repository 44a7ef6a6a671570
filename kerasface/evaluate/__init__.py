"""Evaluation: insightface-protocol and LFW verification, ROC and TAR@FAR, Market-1501 CMC/mAP, 1:N identification.

Metrics are NumPy; only `pair_scores` and `embed_images` run a Keras model.
"""

from kerasface.evaluate.embeddings import FLIP_MODES, embed_images, pair_scores
from kerasface.evaluate.plots import plot_features_2d, plot_roc
from kerasface.evaluate.readers import (
    ReidSet,
    load_images,
    read_lfw_pairs,
    read_market1501,
    read_verification_bin,
)
from kerasface.evaluate.retrieval import (
    Identification,
    IdentificationRates,
    RetrievalResult,
    average_precision,
    cmc_map,
    identification_rates,
    identify,
)
from kerasface.evaluate.separation import Separation, class_separation
from kerasface.evaluate.similarity import cosine_scores
from kerasface.evaluate.verification import (
    INSIGHTFACE,
    MIDPOINT,
    PROTOCOLS,
    InsightFaceVerification,
    VerificationResult,
    best_accuracy_threshold,
    insightface_verification,
    midpoint_verification,
    roc,
    smallest_measurable_far,
    squared_distances,
    tar_at_far,
    threshold_at_far,
    verify,
)

__all__ = [
    "FLIP_MODES",
    "INSIGHTFACE",
    "MIDPOINT",
    "PROTOCOLS",
    "Identification",
    "IdentificationRates",
    "InsightFaceVerification",
    "ReidSet",
    "RetrievalResult",
    "Separation",
    "VerificationResult",
    "average_precision",
    "best_accuracy_threshold",
    "class_separation",
    "cmc_map",
    "cosine_scores",
    "embed_images",
    "identification_rates",
    "identify",
    "insightface_verification",
    "load_images",
    "midpoint_verification",
    "pair_scores",
    "plot_features_2d",
    "plot_roc",
    "read_lfw_pairs",
    "read_market1501",
    "read_verification_bin",
    "roc",
    "smallest_measurable_far",
    "squared_distances",
    "tar_at_far",
    "threshold_at_far",
    "verify",
]
