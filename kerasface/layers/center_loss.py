import keras
from keras import ops

from kerasface._checks import check_labels, check_non_negative, check_positive_int, check_rank
from kerasface.distribute.replicas import all_reduce_sum, scale_for_replicas
from kerasface.heads.base import split_inputs


@keras.saving.register_keras_serializable(package="kerasface")
class CenterLoss(keras.layers.Layer):
    """Centre loss, Wen et al., ECCV 2016: pulls features to their class centre.

    Called as `layer([embeddings, labels], training=...)`, it returns the
    embeddings unchanged and adds `weight * 1/2 mean_i ||x_i - c_{y_i}||^2`
    (with the centres before this step's update) through `add_loss`. The
    centres are a non-trainable weight that gradient descent never touches;
    each training call moves them by eq. 4 of the paper:
    `c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)`.
    Classes absent from the batch do not move. Under a `tf.distribute`
    strategy the per-class sums and counts are summed over the replicas, so
    the centres move as one device would move them on the global batch.

    Args:
        num_classes: number of identities.
        alpha: the centre update rate, in [0, 1]. Defaults to `0.5`.
        weight: lambda, the weight of the loss next to softmax. Defaults to `0.003`.

    Reference:
        - [Wen et al., 2016](https://ydwen.github.io/papers/WenECCV16.pdf)
    """

    def __init__(self, num_classes, alpha=0.5, weight=0.003, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        where = type(self).__name__
        self.num_classes = check_positive_int(num_classes, "num_classes", where)
        self.alpha = check_non_negative(alpha, "alpha", where)
        if self.alpha > 1:
            raise ValueError(f"{where}: alpha must lie in [0, 1]. Received: alpha={alpha}")
        self.weight = check_non_negative(weight, "weight", where)

    def build(self, input_shape):
        embeddings_shape = input_shape[0]
        check_rank(embeddings_shape, 2, type(self).__name__)
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_classes, embeddings_shape[-1]),
            initializer="zeros",
            trainable=False,
            # Every replica computes the same update from all-reduced sums.
            aggregation="only_first_replica",
        )

    def call(self, inputs, training=None):
        embeddings, labels = split_inputs(inputs)
        if labels is None:
            raise ValueError("CenterLoss is called as layer([embeddings, labels]).")
        # Keras divides `add_loss` values by the number of replicas itself.
        self.add_loss(self._loss_and_update(embeddings, labels, training))
        return embeddings

    def loss_and_update(self, embeddings, labels, training=False):
        """The weighted loss of a batch; on a training call, moves the centres.

        For models that combine losses themselves (`FaceModel.compute_loss`)
        rather than through `add_loss`. Like a Keras `Loss`, the value is
        divided by the number of `tf.distribute` replicas, so that it adds to
        the compiled loss and the replicas' gradients sum to the global ones.
        """
        return scale_for_replicas(self._loss_and_update(embeddings, labels, training))

    def _loss_and_update(self, embeddings, labels, training):
        check_rank(embeddings.shape, 2, type(self).__name__)
        check_labels(labels, self.num_classes, type(self).__name__)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        centers = ops.convert_to_tensor(self.centers)
        offsets = ops.take(centers, labels, axis=0) - ops.cast(embeddings, "float32")
        loss = self.weight * 0.5 * ops.mean(ops.sum(ops.square(offsets), axis=1))
        if training:
            self.centers.assign(centers - self.alpha * center_update(offsets, labels, self.num_classes))
        return loss

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "alpha": self.alpha,
            "weight": self.weight,
        }


def center_update(offsets, labels, num_classes):
    """sum_{i: y_i = j} (c_j - x_i) / (1 + n_j) for every class j (no gradient).

    The sums and counts run over the global batch: under `tf.distribute` they
    are summed over the replicas (one all-reduce of both).
    """
    offsets = ops.stop_gradient(offsets)
    ones = ops.ones_like(offsets[:, :1])
    totals = all_reduce_sum(ops.segment_sum(ops.concatenate([offsets, ones], axis=1), labels, num_segments=num_classes))
    sums, counts = totals[:, :-1], totals[:, -1:]
    return sums / (1.0 + counts)
