"""Face verification: ROC, TAR at a FAR, and two 10-fold accuracy protocols.

Two protocols give the k-fold accuracy, and every result names the one that
produced it (`result.protocol`):

- `"insightface"` (`insightface_verification`): the protocol behind the
  published LFW, CFP-FP and AgeDB-30 numbers of ArcFace, CosFace and their
  successors. Squared L2 distances of L2-normalised embeddings, thresholds on
  a fixed grid, VAL@FAR by interpolation.
- `"midpoint"` (`verify`): kerasface's exact optimum on scores. A pair is
  declared "same identity" when its score (a cosine similarity, or any score
  where higher means more alike) is `>= threshold`, the convention of
  `sklearn.metrics.roc_curve`, thresholds midway between neighbouring scores.

The ROC functions (`roc`, `tar_at_far`, `threshold_at_far`) use all pairs at
once, without folds.
"""

import dataclasses

import numpy as np

from kerasface._checks import check_positive_int
from kerasface.evaluate.similarity import check_features, l2_normalize

# Relative slack on far * num_impostors, so that e.g. 1e-3 * 1000 counts as 1.
_FAR_SLACK = 1e-9

INSIGHTFACE = "insightface"
MIDPOINT = "midpoint"
PROTOCOLS = {
    INSIGHTFACE: (
        "insightface arcface_torch eval/verification.py: L2-normalised embeddings, squared L2 distance "
        "< t, t on the grid 0:4:0.01 chosen on the other folds; VAL@FAR with t interpolated on 0:4:0.001"
    ),
    MIDPOINT: "kerasface: cosine score >= t, t midway between neighbouring scores chosen on the other folds",
}
# insightface's threshold grids (eval/verification.py `evaluate`): accuracy, then VAL@FAR.
ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)


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
        protocol: `"midpoint"`, the protocol that produced these numbers
            (see `PROTOCOLS`).
    """

    accuracy: float
    std: float
    fold_accuracies: tuple
    fold_thresholds: tuple
    protocol: str = MIDPOINT


def verify(scores, issame, folds=10):
    """Verification accuracy with the `"midpoint"` protocol on scores.

    The pairs are cut into `folds` contiguous blocks in their given order (the
    10 sets of 300 same + 300 different pairs of LFW's `pairs.txt`). For each
    block the threshold that maximises accuracy on the other blocks
    (`best_accuracy_threshold`) is applied to it.

    Args:
        scores: one score per pair, higher for more alike.
        issame: one boolean per pair.
        folds: number of blocks, from 2 to the number of pairs. Defaults to `10`.

    Returns:
        A `VerificationResult` with `protocol="midpoint"`. Published LFW,
        CFP-FP and AgeDB-30 numbers come from `insightface_verification`
        instead, which can differ in the last digits.

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


# The clear name of `verify`'s protocol, beside `insightface_verification`.
midpoint_verification = verify


@dataclasses.dataclass(frozen=True)
class InsightFaceVerification:
    """The k-fold accuracy and VAL@FAR of insightface's verification protocol.

    Attributes:
        accuracy: mean of the per-fold accuracies (insightface's `acc2`).
        std: their standard deviation (population, insightface's `std2`).
        fold_accuracies: accuracy on each held-out fold.
        fold_thresholds: the squared-L2 distance threshold (a pair is "same"
            when its distance is `< threshold`) chosen on the other folds
            for each fold.
        val: mean over the folds of the true-accept rate at `far_target`
            (insightface's `val`).
        val_std: its standard deviation over the folds.
        far: mean false-accept rate actually reached on the held-out folds.
        far_target: the FAR that `val` is measured at.
        fold_val_thresholds: the interpolated distance threshold of each fold.
        protocol: `"insightface"` (see `PROTOCOLS`).
    """

    accuracy: float
    std: float
    fold_accuracies: tuple
    fold_thresholds: tuple
    val: float
    val_std: float
    far: float
    far_target: float
    fold_val_thresholds: tuple
    protocol: str = INSIGHTFACE


def squared_distances(embeddings_a, embeddings_b):
    """Squared L2 distance, in [0, 4], between the L2-normalised rows of the two arrays."""
    a = check_features(embeddings_a, "embeddings_a")
    b = check_features(embeddings_b, "embeddings_b")
    if a.shape != b.shape:
        raise ValueError(
            "embeddings_a and embeddings_b must hold the two embeddings of each pair, with one shape. "
            f"Received: embeddings_a.shape={a.shape}, embeddings_b.shape={b.shape}"
        )
    return np.sum(np.square(l2_normalize(a) - l2_normalize(b)), axis=1)


def _accepted(distances, thresholds):
    """How many `distances` are `< threshold`, for each threshold (insightface's `np.less`)."""
    return np.searchsorted(np.sort(distances), thresholds, side="left")


def _slinear(x, y, target):
    """`scipy.interpolate.interp1d(x, y, kind="slinear")(target)` for a nondecreasing `x` with repeats.

    insightface interpolates the threshold grid over the training FARs, which
    repeat (the FAR is a step function). SciPy <= 1.8 built a degree-1
    B-spline on the knots `[x0, x0, x1, ..., xn, xn]` and evaluated it on the
    last knot span starting at or below `target`: the line from the last
    `(x[i], y[i])` with `x[i] <= target` to the next point. SciPy >= 1.9
    refuses repeated `x` ("Expect x to not have duplicates"); this keeps the
    older result, with de Boor's operations in SciPy's order.
    """
    index = int(np.clip(np.searchsorted(x, target, side="right") - 1, 0, len(x) - 2))
    x0, x1 = x[index], x[index + 1]
    if x1 == x0:  # an empty knot span: SciPy's de Boor recursion gives both weights 0
        return 0.0
    weight = 1.0 / (x1 - x0)
    return float(y[index] * (weight * (x1 - target)) + y[index + 1] * (weight * (target - x0)))


def insightface_verification(embeddings_a, embeddings_b, issame, folds=10, far=1e-3):
    """Verification accuracy and VAL@FAR with insightface's protocol.

    This is the protocol of insightface's `recognition/arcface_torch/eval/
    verification.py` (`test`, `evaluate`, `calculate_roc`, `calculate_val`;
    itself from facenet's `lfw.py`), which produced the published LFW,
    CFP-FP and AgeDB-30 numbers of ArcFace and the models compared with it:

    1. Both embeddings of a pair are L2-normalised (insightface normalises the
       sum of an image's and its mirror's embeddings, `embed_images(...,
       flip="sum")`; normalising again changes nothing) and compared by
       squared L2 distance, in [0, 4]. A pair is "same" when its distance is
       `< t`.
    2. Accuracy: the pairs are cut into `folds` contiguous blocks
       (`sklearn.model_selection.KFold(folds, shuffle=False)`). For each
       block, `t` is the first threshold of the grid `np.arange(0, 4, 0.01)`
       with the best accuracy on the other blocks, and the block's accuracy
       is measured at it.
    3. VAL@FAR: for each block, the FAR of the other blocks is computed at
       every threshold of `np.arange(0, 4, 0.001)` and `t` is interpolated
       linearly at `far` (`interp1d(far, thresholds, kind="slinear")`, see
       `_slinear`), or `0` (nothing accepted) when no threshold reaches
       `far`; VAL and FAR are measured on the block at `t`.

    insightface's optional PCA (`pca=0` in `test`) is not used for published
    numbers and is not offered. Its `_xnorm` (mean embedding norm) is a
    diagnostic, not part of the protocol.

    Args:
        embeddings_a, embeddings_b: arrays (n, dim), row i of each is pair i.
        issame: one boolean per pair, in the file's order.
        folds: number of blocks, from 2 to the number of pairs. Defaults to `10`.
        far: the false-accept rate of VAL@FAR, in (0, 1]. Defaults to `1e-3`.

    Returns:
        An `InsightFaceVerification` with `protocol="insightface"`.

    Raises:
        ValueError: bad shapes, non-finite values, or a block (or the
            blocks around it) without both same and different pairs, where
            insightface would divide by zero.

    Reference:
        - [Deng et al., 2019, ArcFace](https://arxiv.org/abs/1801.07698)
    """
    distances = squared_distances(embeddings_a, embeddings_b)
    if np.shape(issame) != distances.shape:
        raise ValueError(
            "issame must hold one boolean per pair (row of the embeddings). "
            f"Received: len(embeddings_a)={distances.size}, issame.shape={np.shape(issame)}"
        )
    distances, issame = check_pairs(distances, issame)
    folds = check_positive_int(folds, "folds", "insightface_verification")
    if not 2 <= folds <= distances.size:
        raise ValueError(
            "insightface_verification: folds must be between 2 and the number of pairs "
            f"({distances.size}). Received: folds={folds}"
        )
    if not 0 < far <= 1:
        raise ValueError(f"insightface_verification: far must be in (0, 1]. Received: far={far}")
    accuracies, thresholds, vals, fars, val_thresholds = [], [], [], [], []
    for number, held_out in enumerate(np.array_split(np.arange(distances.size), folds)):
        train = np.ones(distances.size, dtype=bool)
        train[held_out] = False
        for name, mask in (("held-out", held_out), ("training", train)):
            if issame[mask].all() or not issame[mask].any():
                raise ValueError(
                    f"insightface_verification: the {name} pairs of fold {number} must hold both same and "
                    "different pairs (VAL and FAR divide by their counts). Keep the pairs in the file's "
                    f"order, or use fewer folds. Received: folds={folds}"
                )
        same, different = distances[train][issame[train]], distances[train][~issame[train]]
        # Accuracy at each grid threshold on the training folds; argmax keeps the first best.
        correct = _accepted(same, ACCURACY_THRESHOLDS) + (different.size - _accepted(different, ACCURACY_THRESHOLDS))
        threshold = ACCURACY_THRESHOLDS[np.argmax(correct / (same.size + different.size))]
        accepted = distances[held_out] < threshold
        accuracies.append(float(np.sum(accepted == issame[held_out])) / held_out.size)
        thresholds.append(float(threshold))
        # VAL@FAR: interpolate the threshold giving `far` on the training folds.
        far_train = _accepted(different, VAL_THRESHOLDS) / different.size
        val_threshold = _slinear(far_train, VAL_THRESHOLDS, far) if np.max(far_train) >= far else 0.0
        accepted = distances[held_out] < val_threshold
        held_same = issame[held_out]
        vals.append(float(np.sum(accepted & held_same)) / float(np.sum(held_same)))
        fars.append(float(np.sum(accepted & ~held_same)) / float(np.sum(~held_same)))
        val_thresholds.append(val_threshold)
    return InsightFaceVerification(
        accuracy=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        fold_accuracies=tuple(accuracies),
        fold_thresholds=tuple(thresholds),
        val=float(np.mean(vals)),
        val_std=float(np.std(vals)),
        far=float(np.mean(fars)),
        far_target=float(far),
        fold_val_thresholds=tuple(val_thresholds),
    )
