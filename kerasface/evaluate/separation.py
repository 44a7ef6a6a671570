"""How compact and how separated classes are in feature space (the centre-loss paper's question)."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Separation:
    """Mean distances and angles within and between classes.

    `intra_*`: mean over samples of the distance (angle) to their class mean;
    `inter_*`: mean over pairs of classes of the distance (angle) between
    their means. The ratios intra / inter are smaller for more
    discriminative features.
    """

    intra_distance: float
    inter_distance: float
    intra_angle: float
    inter_angle: float

    @property
    def distance_ratio(self):
        return self.intra_distance / self.inter_distance

    @property
    def angle_ratio(self):
        return self.intra_angle / self.inter_angle


def _angles(a, b):
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0))


def class_separation(features, labels):
    """`Separation` of `features` (N, D) grouped by integer `labels` (N,)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(
            f"features must be (N, D) with one label each. Received: features {features.shape}, labels {labels.shape}"
        )
    classes, index = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"class_separation needs at least 2 classes. Received: {len(classes)}")
    means = np.stack([features[index == k].mean(axis=0) for k in range(len(classes))])
    first, second = np.triu_indices(len(classes), k=1)
    return Separation(
        intra_distance=float(np.linalg.norm(features - means[index], axis=1).mean()),
        inter_distance=float(np.linalg.norm(means[first] - means[second], axis=1).mean()),
        intra_angle=float(_angles(features, means[index]).mean()),
        inter_angle=float(_angles(means[first], means[second]).mean()),
    )
