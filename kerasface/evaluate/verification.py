"""Face verification on scored pairs: ROC, TAR at a FAR, and the LFW 10-fold accuracy.

A pair is declared "same identity" when its score (a cosine similarity, or
any score where higher means more alike) is `>= threshold`, the convention of
`sklearn.metrics.roc_curve`.
"""

import dataclasses

import numpy as np

from kerasface._checks import check_positive_int

# Relative slack on far * num_impostors, so that e.g. 1e-3 * 1000 counts as 1.
_FAR_SLACK = 1e-9


def check_pairs(scores, issame):
    """Returns `(scores, issame)` as float64 and bool arrays, or raises `ValueError`."""
    scores = np.asarray(scores, dtype=np.float64)
    issame = np.asarray(issame)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one score per pair (rank 1). Received: scores.shape={scores.shape}")
    if issame.shape != scores.shape:
        raise ValueError(
            "scores and issame must have one entry per pair each. "
            f"Received: len(scores)={scores.shape[0]}, issame.shape={issame.shape}"
        )
    if issame.dtype != bool:
        if not np.isin(issame, (0, 1)).all():
            raise ValueError(f"issame must hold booleans (or 0/1). Received values {np.unique(issame)[:5]}")
        issame = issame.astype(bool)
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))[:5].tolist()
        raise ValueError(f"scores must be finite. Received NaN or infinity at pairs {bad}")
    num_same = int(issame.sum())
    if num_same in (0, issame.size):
        raise ValueError(
            "issame must hold both same-identity and different-identity pairs. "
            f"Received: {num_same} same and {issame.size - num_same} different pairs"
        )
    return scores, issame


def _roc_counts(scores, issame):
    """Thresholds (descending, `inf` first) with the true and false accepts at each."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_same = scores[order], issame[order]
    last_of_value = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    thresholds = np.r_[np.inf, sorted_scores[last_of_value]]
    true_accepts = np.r_[0, np.cumsum(sorted_same)[last_of_value]]
    false_accepts = np.r_[0, np.cumsum(~sorted_same)[last_of_value]]
    return thresholds, true_accepts, false_accepts


def roc(scores, issame):
    """The ROC curve at every distinct score.

    Args:
        scores: one score per pair, higher for more alike.
        issame: one boolean per pair, `True` for two images of one identity.

    Returns:
        `(far, tar, thresholds)`: the false-accept rate (different pairs
        accepted), the true-accept rate (same pairs accepted) and the
        thresholds, in decreasing order starting with `inf` (nothing accepted).
        These are `sklearn.metrics.roc_curve(issame, scores,
        drop_intermediate=False)`.
    """
    scores, issame = check_pairs(scores, issame)
    thresholds, true_accepts, false_accepts = _roc_counts(scores, issame)
    return false_accepts / np.sum(~issame), true_accepts / np.sum(issame), thresholds


def smallest_measurable_far(issame):
    """`1 / number of different pairs`: a smaller FAR allows no false accept at all."""
    num_impostors = int(np.sum(~np.asarray(issame, dtype=bool)))
    if num_impostors == 0:
        raise ValueError("issame holds no different-identity pair, so no FAR can be measured.")
    return 1.0 / num_impostors


def operating_points(scores, issame, far, negatives="different-identity pairs"):
    """For each FAR: the smallest ROC threshold whose FAR is `<= far`, and its true accepts.

    Takes checked arrays (see `check_pairs`) and a 1-D array of FARs; `issame`
    may hold no same pair (the true accepts are then 0). `negatives` names
    the `False` entries in error messages. Returns `(thresholds, true_accepts)`.
    """
    num_impostors = int(np.sum(~issame))
    far = np.asarray(far, dtype=np.float64)
    if far.ndim != 1 or far.size == 0 or not np.all((far > 0) & (far <= 1)):
        raise ValueError(f"far must be a number or sequence of numbers in (0, 1]. Received: far={far.tolist()}")
    allowed = np.floor(far * num_impostors * (1 + _FAR_SLACK))
    if np.any(allowed < 1):
        low = far[allowed < 1].min()
        raise ValueError(
            f"FAR={low:g} cannot be measured with {num_impostors} {negatives}: "
            f"it needs at least {int(np.ceil(1 / low - _FAR_SLACK))}, so that one false accept "
            f"is within the rate. The smallest measurable FAR here is {1 / num_impostors:.3g}."
        )
    thresholds, true_accepts, false_accepts = _roc_counts(scores, issame)
    index = np.searchsorted(false_accepts, allowed, side="right") - 1
    return thresholds[index], true_accepts[index]


def _shaped_like(far, values):
    return float(values[0]) if np.ndim(far) == 0 else values


def tar_at_far(scores, issame, far):
    """The true-accept rate at the threshold `threshold_at_far` returns.

    This is the highest TAR of the ROC curve among the points whose FAR is
    `<= far` (no interpolation).

    Args:
        scores: one score per pair, higher for more alike.
        issame: one boolean per pair.
        far: a false-accept rate in (0, 1], or a sequence of them
            (e.g. `[1e-1, 1e-2, 1e-3]`).

    Returns:
        A float for a single `far`, else an array with one TAR per `far`.

    Raises:
        ValueError: if a `far` is below `1 / number of different pairs`
            (see `smallest_measurable_far`).
    """
    scores, issame = check_pairs(scores, issame)
    _, true_accepts = operating_points(scores, issame, np.atleast_1d(far))
    return _shaped_like(far, true_accepts / np.sum(issame))


def threshold_at_far(scores, issame, far):
    """The score threshold to deploy for a target false-accept rate.

    The smallest threshold `t` among the observed scores (or `inf`) such that
    the fraction of different-identity pairs with `score >= t` is `<= far`.

    Args:
        scores: one score per pair, higher for more alike.
        issame: one boolean per pair.
        far: a false-accept rate in (0, 1], or a sequence of them.

    Returns:
        A float for a single `far`, else an array with one threshold per `far`.
    """
    scores, issame = check_pairs(scores, issame)
    thresholds, _ = operating_points(scores, issame, np.atleast_1d(far))
    return _shaped_like(far, thresholds)


def best_accuracy_threshold(scores, issame):
    """The threshold with the highest accuracy of `score >= threshold` on these pairs.

    Thresholds are taken midway between neighbouring distinct scores (or
    `-inf` / `inf` to accept / reject everything). Ties go to the highest
    threshold, the strictest, as the first best distance threshold of
    insightface's `verification.py` and the last best score of SphereFace's
    `lfw_eval.py`.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_same = scores[order], issame[order]
    # Cut i rejects sorted pairs [:i] and accepts [i:], for i = 0 .. n.
    correct_rejects = np.r_[0, np.cumsum(~sorted_same)]
    correct_accepts = np.sum(sorted_same) - np.r_[0, np.cumsum(sorted_same)]
    between_values = np.r_[True, sorted_scores[1:] != sorted_scores[:-1], True]
    correct = np.where(between_values, correct_rejects + correct_accepts, -1)
    cut = correct.size - 1 - np.argmax(correct[::-1])
    cuts = np.r_[-np.inf, (sorted_scores[1:] + sorted_scores[:-1]) / 2, np.inf]
    return float(cuts[cut])


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    """The k-fold verification accuracy.

    Attributes:
        accuracy: mean of the per-fold accuracies.
        std: their standard deviation (population, as insightface reports it).
        fold_accuracies: accuracy on each held-out fold.
        fold_thresholds: the threshold chosen on the other folds for each fold.
    """

    accuracy: float
    std: float
    fold_accuracies: tuple
    fold_thresholds: tuple


def verify(scores, issame, folds=10):
    """Verification accuracy with the LFW protocol.

    The pairs are cut into `folds` contiguous blocks in their given order (the
    10 sets of 300 same + 300 different pairs of LFW's `pairs.txt`). For each
    block the threshold that maximises accuracy on the other blocks
    (`best_accuracy_threshold`) is applied to it.

    Args:
        scores: one score per pair, higher for more alike.
        issame: one boolean per pair.
        folds: number of blocks, from 2 to the number of pairs. Defaults to `10`.

    Returns:
        A `VerificationResult`.

    Reference:
        - [Huang et al., 2007, Labeled Faces in the Wild](http://vis-www.cs.umass.edu/lfw/lfw.pdf)
    """
    scores, issame = check_pairs(scores, issame)
    folds = check_positive_int(folds, "folds", "verify")
    if not 2 <= folds <= scores.size:
        raise ValueError(
            f"verify: folds must be between 2 and the number of pairs ({scores.size}). Received: folds={folds}"
        )
    accuracies, thresholds = [], []
    for held_out in np.array_split(np.arange(scores.size), folds):
        train = np.ones(scores.size, dtype=bool)
        train[held_out] = False
        threshold = best_accuracy_threshold(scores[train], issame[train])
        accuracies.append(float(np.mean((scores[held_out] >= threshold) == issame[held_out])))
        thresholds.append(threshold)
    return VerificationResult(
        accuracy=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        fold_accuracies=tuple(accuracies),
        fold_thresholds=tuple(thresholds),
    )
