"""Evaluation: LFW-protocol verification, ROC and TAR@FAR, Market-1501 CMC/mAP, 1:N identification.

Metrics are NumPy; only `pair_scores` and `embed_images` run a Keras model.
"""

from kerasface.evaluate.embeddings import embed_images, pair_scores
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
    VerificationResult,
    best_accuracy_threshold,
    roc,
    smallest_measurable_far,
    tar_at_far,
    threshold_at_far,
    verify,
)

__all__ = [
    "Separation",
    "class_separation",
    "plot_features_2d",
    "Identification",
    "IdentificationRates",
    "ReidSet",
    "RetrievalResult",
    "VerificationResult",
    "average_precision",
    "best_accuracy_threshold",
    "cmc_map",
    "cosine_scores",
    "embed_images",
    "identification_rates",
    "identify",
    "load_images",
    "pair_scores",
    "plot_roc",
    "read_lfw_pairs",
    "read_market1501",
    "read_verification_bin",
    "roc",
    "smallest_measurable_far",
    "tar_at_far",
    "threshold_at_far",
    "verify",
]
