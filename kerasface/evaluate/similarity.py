"""Cosine similarity between embeddings (NumPy)."""

import numpy as np

_EPSILON = 1e-12


def check_features(features, name):
    """Returns `features` as a finite float array of shape (n, dim), or raises `ValueError`."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must have shape (n, dim). Received: {name}.shape={features.shape}")
    if not np.isfinite(features).all():
        bad = np.argwhere(~np.isfinite(features))[:3].tolist()
        raise ValueError(f"{name} must be finite. Received NaN or infinity at {bad}")
    return features


def l2_normalize(features):
    """Rows divided by their norm; zero rows stay zero."""
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), _EPSILON)


def cosine_scores(a, b):
    """Cosine similarity of each row of `a` with the same row of `b`: shape (n,)."""
    a, b = check_features(a, "a"), check_features(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"cosine_scores pairs row i of a with row i of b. Received: a.shape={a.shape}, b.shape={b.shape}"
        )
    return np.sum(l2_normalize(a) * l2_normalize(b), axis=1)


def cosine_similarity_matrix(a, b):
    """Cosine similarity of every row of `a` with every row of `b`: shape (len(a), len(b))."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Features must share one dimension. Received: dims {a.shape[1]} and {b.shape[1]}")
    return l2_normalize(a) @ l2_normalize(b).T
