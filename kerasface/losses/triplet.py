"""Triplet losses with online mining over the batch (FaceNet and after).

Under a `tf.distribute` strategy each replica mines within its own slice of
the global batch, and the loss is the mean over replicas. With `gather=True`
the loss classes gather the embeddings and labels of every replica first and
mine over the whole global batch, as one device would.
"""

import keras
from keras import ops

from kerasface.distribute.replicas import all_gather, scale_for_replicas
from kerasface.losses.base import FunctionLoss
from kerasface.losses.distances import DISTANCES, pairwise_distances


def _prepare(labels, embeddings, distance):
    if len(embeddings.shape) != 2:
        raise ValueError(f"Triplet losses expect embeddings of rank 2 (batch, dim). Received shape {embeddings.shape}.")
    labels = ops.reshape(labels, (-1,))
    embeddings = ops.cast(embeddings, "float32")
    distances = pairwise_distances(embeddings, distance)
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    return distances, same


def _masked_max(values, mask, axis):
    """Max of `values` where `mask` is 1; the row minimum where it is all 0."""
    low = ops.min(values, axis=axis, keepdims=True)
    return ops.max((values - low) * mask, axis=axis, keepdims=True) + low


def _masked_min(values, mask, axis):
    """Min of `values` where `mask` is 1; the row maximum where it is all 0."""
    high = ops.max(values, axis=axis, keepdims=True)
    return ops.min((values - high) * mask, axis=axis, keepdims=True) + high


def triplet_semihard_loss(labels, embeddings, margin=1.0, distance="l2"):
    """FaceNet's triplet loss with online semi-hard negatives (Schroff et al. 2015).

    For every anchor-positive pair (a, p), the negative is the closest one
    farther than p; where none is, the farthest negative of a. The loss is
    the mean of `max(d(a, p) - d(a, n) + margin, 0)` over all pairs, which is
    tensorflow-addons' `TripletSemiHardLoss`. An anchor with no positive
    contributes nothing.
    """
    distances, same = _prepare(labels, embeddings, distance)
    different = ops.cast(ops.logical_not(same), "float32")
    # farther[a, p, n]: n is a negative of a and farther from a than p is.
    farther = ops.expand_dims(different, 1) * ops.cast(
        ops.expand_dims(distances, 1) > ops.expand_dims(distances, 2), "float32"
    )
    has_semihard = ops.sum(farther, axis=2) > 0.0
    semihard = ops.squeeze(_masked_min(ops.expand_dims(distances, 1), farther, axis=2), 2)
    hardest = _masked_max(distances, different, axis=1)
    negatives = ops.where(has_semihard, semihard, hardest)
    positives = ops.cast(same, "float32") - ops.eye(ops.shape(distances)[0])
    losses = ops.maximum((margin + distances - negatives) * positives, 0.0)
    return ops.sum(losses) / ops.maximum(ops.sum(positives), 1.0)


def triplet_hard_loss(labels, embeddings, margin=1.0, soft=False, distance="l2"):
    """Batch-hard triplet loss (Hermans et al. 2017): per anchor, the farthest
    positive against the closest negative; `soft` uses softplus (no margin)."""
    distances, same = _prepare(labels, embeddings, distance)
    positives = ops.cast(same, "float32") - ops.eye(ops.shape(distances)[0])
    hardest_positive = _masked_max(distances, positives, axis=1)
    hardest_negative = _masked_min(distances, ops.cast(ops.logical_not(same), "float32"), axis=1)
    gap = hardest_positive - hardest_negative
    losses = ops.softplus(gap) if soft else ops.maximum(gap + margin, 0.0)
    return ops.mean(losses)


def triplet_batch_all(labels, embeddings, margin=0.2, distance="l2"):
    """Batch-all triplet loss: the mean over every valid triplet (a, p, n) with
    a positive loss, and the fraction of valid triplets that have one.

    Returns:
        `(loss, fraction_positive)`; a fraction falling towards 0 while the
        loss stays up is the sign of collapsed embeddings.
    """
    distances, same = _prepare(labels, embeddings, distance)
    positives = ops.cast(same, "float32") - ops.eye(ops.shape(distances)[0])
    negatives = 1.0 - ops.cast(same, "float32")
    valid = ops.expand_dims(positives, 2) * ops.expand_dims(negatives, 1)
    losses = ops.maximum(ops.expand_dims(distances, 2) - ops.expand_dims(distances, 1) + margin, 0.0)
    losses = losses * valid
    num_positive = ops.sum(ops.cast(losses > 1e-16, "float32"))
    loss = ops.sum(losses) / (num_positive + 1e-16)
    return loss, num_positive / (ops.sum(valid) + 1e-16)


def triplet_batch_all_loss(labels, embeddings, margin=0.2, distance="l2"):
    return triplet_batch_all(labels, embeddings, margin, distance)[0]


def _check(margin, distance, where):
    if margin < 0:
        raise ValueError(f"{where}: margin must be >= 0. Received: margin={margin}")
    if distance not in DISTANCES:
        raise ValueError(f"{where}: distance must be one of {DISTANCES}. Received: distance={distance!r}")


class _TripletLoss(FunctionLoss):
    """A loss `fn(labels, embeddings, margin, distance, ...)` as a Keras `Loss`.

    `gather=True` mines over the embeddings of all `tf.distribute` replicas
    (a no-op on one replica and on JAX, whose arrays are global already).
    """

    def __init__(self, margin, distance, gather=False, reduction="sum_over_batch_size", name=None, **settings):
        _check(margin, distance, type(self).__name__)
        super().__init__(reduction, name, margin=float(margin), distance=distance, **settings)
        self.gather = bool(gather)

    def call(self, y_true, y_pred):
        if self.gather:
            y_true, y_pred = all_gather(ops.reshape(y_true, (-1,))), all_gather(y_pred)
        # Keras divides only non-scalar losses by the number of replicas; these are scalars.
        return scale_for_replicas(super().call(y_true, y_pred))

    def get_config(self):
        return {**super().get_config(), "gather": self.gather}


@keras.saving.register_keras_serializable(package="kerasface")
class TripletSemiHardLoss(_TripletLoss):
    """`triplet_semihard_loss` as a `Loss`, called as `loss(labels, embeddings)`.

    Args:
        margin: the triplet margin `alpha`. Defaults to `1.0` (FaceNet used 0.2).
        distance: `"l2"`, `"squared_l2"` or `"angular"` (1 - cosine).
        gather: under `tf.distribute`, mine over the global batch (all
            replicas' embeddings) rather than each replica's slice.
            Defaults to `False`.

    Reference:
        - [Schroff et al., 2015](https://arxiv.org/abs/1503.03832)
    """

    fn = staticmethod(triplet_semihard_loss)

    def __init__(
        self,
        margin=1.0,
        distance="l2",
        gather=False,
        reduction="sum_over_batch_size",
        name="triplet_semihard_loss",
    ):
        super().__init__(margin, distance, gather, reduction=reduction, name=name)


@keras.saving.register_keras_serializable(package="kerasface")
class TripletHardLoss(_TripletLoss):
    """`triplet_hard_loss` as a `Loss`, called as `loss(labels, embeddings)`.

    Reference:
        - [Hermans et al., 2017](https://arxiv.org/abs/1703.07737)
    """

    fn = staticmethod(triplet_hard_loss)

    def __init__(
        self,
        margin=1.0,
        soft=False,
        distance="l2",
        gather=False,
        reduction="sum_over_batch_size",
        name="triplet_hard_loss",
    ):
        super().__init__(margin, distance, gather, reduction=reduction, name=name, soft=bool(soft))


@keras.saving.register_keras_serializable(package="kerasface")
class TripletBatchAllLoss(_TripletLoss):
    """`triplet_batch_all_loss` as a `Loss`; watch `FractionPositiveTriplets`."""

    fn = staticmethod(triplet_batch_all_loss)

    def __init__(
        self,
        margin=0.2,
        distance="l2",
        gather=False,
        reduction="sum_over_batch_size",
        name="triplet_batch_all_loss",
    ):
        super().__init__(margin, distance, gather, reduction=reduction, name=name)


@keras.saving.register_keras_serializable(package="kerasface")
class FractionPositiveTriplets(keras.metrics.Mean):
    """The fraction of valid triplets with a positive batch-all loss."""

    def __init__(self, margin=0.2, distance="l2", name="fraction_positive_triplets", **kwargs):
        super().__init__(name=name, **kwargs)
        _check(margin, distance, type(self).__name__)
        self.margin = float(margin)
        self.distance = distance

    def update_state(self, y_true, y_pred, sample_weight=None):
        fraction = triplet_batch_all(y_true, y_pred, self.margin, self.distance)[1]
        return super().update_state(fraction)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "distance": self.distance}
