import keras
from keras import ops

from kerasface._checks import assert_labels_in_range, check_non_negative, check_positive_int, check_rank
from kerasface.distribute.replicas import all_gather, scale_for_replicas
from kerasface.heads.base import split_inputs


_CALL_ERROR = (
    "CenterLoss is called as layer([embeddings, labels]): it needs each embedding's class to pull it "
    "to that class's centre. Received: {received}"
)


@keras.saving.register_keras_serializable(package="kerasface")
class CenterLoss(keras.layers.Layer):
    """Centre loss, Wen et al., ECCV 2016: pulls features to their class centre.

    Called as `layer([embeddings, labels], training=...)`, it returns the
    embeddings unchanged and adds `weight * 1/2 mean_i ||x_i - c_{y_i}||^2`
    (with the centres before this step's update) through `add_loss`. The
    centres are a non-trainable weight that gradient descent never touches;
    each training call moves them by eq. 4 of the paper:
    `c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)`.
    Classes absent from the batch do not move, and only the batch's rows
    are written. Under a `tf.distribute` strategy the replicas' labels and
    offsets are gathered, so the centres move as one device would move them
    on the global batch.

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
        if not (
            isinstance(input_shape, (list, tuple))
            and len(input_shape) == 2
            and all(isinstance(shape, (list, tuple)) for shape in input_shape)
        ):
            raise ValueError(_CALL_ERROR.format(received=f"one input of shape {tuple(input_shape)}"))
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
            raise ValueError(_CALL_ERROR.format(received=f"one input of shape {tuple(embeddings.shape)}"))
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
        labels = assert_labels_in_range(labels, self.num_classes, type(self).__name__)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        centers = ops.convert_to_tensor(self.centers)
        offsets = ops.take(centers, labels, axis=0) - ops.cast(embeddings, "float32")
        loss = self.weight * 0.5 * ops.mean(ops.sum(ops.square(offsets), axis=1))
        if training:
            self.centers.assign(moved_centers(centers, offsets, labels, self.alpha))
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


def moved_centers(centers, offsets, labels, alpha):
    """The centres after eq. 4: `c_j - alpha sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)` (no gradient).

    Each sample adds its own term to its class's row (a scatter-add over the
    batch), so the work grows with the batch, not with the number of
    classes. Under `tf.distribute` the offsets and labels of all replicas
    are gathered first (every replica then writes the same rows).

    Args:
        centers: the `(num_classes, dim)` centres before the step.
        offsets: `c_{y_i} - x_i` for the batch, `(batch, dim)`.
        labels: the batch's int32 labels, `(batch,)`.
        alpha: the update rate.
    """
    offsets = all_gather(ops.stop_gradient(offsets))
    labels = all_gather(labels)
    same_class = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    counts = ops.sum(ops.cast(same_class, offsets.dtype), axis=1, keepdims=True)
    moves = -alpha * offsets / (1.0 + counts)
    return ops.scatter_update(centers, ops.expand_dims(labels, 1), moves, reduction="add")
